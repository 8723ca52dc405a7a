import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// A layer type of the program's own whose forward pass depends on host state that changes between steps: a
/// record of its step would freeze `scale`.
private final class HostScaledLayer: ParameterlessLayer {
    var scale: Float = 1
    var isTraining = true
    func callAsFunction(_ input: Tensor) throws -> Tensor { input * scale }
    var layerDescription: String { "HostScaled(\(scale))" }
}

/// The same layer declared capturable, as only a type of Myelin's own (or a test's, through `@testable`) can be:
/// what `fit` would do if it trusted a layer type it does not know.
private final class TrustedHostScaledLayer: ParameterlessLayer, CapturableLayer {
    var scale: Float = 1
    var isTraining = true
    func callAsFunction(_ input: Tensor) throws -> Tensor { input * scale }
    var layerDescription: String { "TrustedHostScaled(\(scale))" }
}

/// A container of the program's own holding only Myelin's layers.
private final class OwnContainer: Layer {
    let inner: Dense
    var isTraining = true
    init(_ inner: Dense) { self.inner = inner }
    func callAsFunction(_ input: Tensor) throws -> Tensor { try inner(input) }
    var namedTensors: [(String, Tensor)] { inner.namedTensors }
    func setTensor(_ name: String, _ value: Tensor) throws { try inner.setTensor(name, value) }
    var layerDescription: String { "OwnContainer" }
}

/// Sets the host scale of the layer before each batch (a different one each time).
private final class ScaleEachBatch: Callback {
    let set: (Float) -> Void
    init(_ set: @escaping (Float) -> Void) { self.set = set }
    func batchWillBegin(_ batch: Int, _ context: TrainingContext) throws { set(1 + 0.5 * Float(batch)) }
}

/// Which layers `fit` captures: Myelin's own (`CapturableLayer`, and containers of them), never a layer type of
/// the program's own.
@Suite struct CapturableLayerTests {
    @Test func everyLayerOfMyelinIsCapturable() {
        let device = Device.cpu
        let layers: [any Layer] = [
            ActivationLayer(.leakyRelu(slope: 0.1)), ReLU(), Sigmoid(), Tanh(), LeakyReLU(), ELU(), SELU(), Softplus(),
            GELU(), Step(), Identity(), Softmax(), Flatten(), Dropout(rate: 0.5, seed: 1), Reshape([1, 2, 2]),
            Dense(inputSize: 4, outputSize: 2, device: device), BatchNorm(features: 2, device: device),
            Conv2D(inChannels: 1, outChannels: 2, kernelSize: 3, device: device), MaxPool2D(kernelSize: 2),
            AvgPool2D(kernelSize: 2), GlobalAvgPool2D(), ResidualBlock(inChannels: 2, outChannels: 4, stride: 2, seed: 1, device: device),
            Sequential { Dense(inputSize: 4, outputSize: 2, device: device); ReLU() },
            Residual(Dense(inputSize: 2, outputSize: 2, device: device), shortcut: Identity()),
            ConvNets.fashionCNN(seed: 1, device: device), ConvNets.resnet(depth: 1, seed: 1, device: device),
            Embedding(count: 5, dimension: 2, device: device), LayerNorm(features: 2, device: device),
            MultiHeadAttention(embedDim: 4, heads: 2, dropout: 0.1, device: device), TransformerMLP(embedDim: 2, device: device),
            TransformerBlock(embedDim: 4, heads: 2, device: device),
        ]
        for layer in layers {
            #expect(CapturedStep.isBuiltIn(layer), "\(layer.layerDescription) is not captured")
        }
    }

    @Test func aLayerTypeOfTheProgramsOwnIsNotCapturable() {
        let device = Device.cpu
        let dense = { Dense(inputSize: 2, outputSize: 2, device: device) }
        let layers: [any Layer] = [
            HostScaledLayer(),
            OwnContainer(dense()),
            Sequential { dense(); HostScaledLayer() },
            Sequential { Sequential { dense(); ReLU() }; Sequential { HostScaledLayer() } },
            Residual(HostScaledLayer()),
            Residual(dense(), shortcut: HostScaledLayer()),
            Sequential { dense(); OwnContainer(dense()) },
        ]
        for layer in layers {
            #expect(!CapturedStep.isBuiltIn(layer), "\(layer.layerDescription) is captured")
        }
        #expect(CapturedStep.isBuiltIn(TrustedHostScaledLayer()))
    }

    /// fit with capture on (the default) trains a model with a layer of the program's own eagerly, so host state
    /// its forward pass reads each step is seen: the same parameters as `capture: false`, while a record (made
    /// when the same layer is trusted) freezes the first step's scale.
    @Test(arguments: TestDevices.all) func fitTrainsAnOwnLayerEagerly(device: Device) throws {
        var g = SeededGenerator(seed: 5)
        let x = try Tensor((0..<(16 * 4)).map { _ in Float(g.nextDouble() * 2 - 1) }, shape: [16, 4], on: device)
        let y = try Tensor((0..<16).map { _ in Float(g.next() % 3) }, shape: [16], on: device)
        let data = try Dataset(features: x, targets: y)
        func train(trusted: Bool, capture: Bool) throws -> [String: [Float]] {
            let own = HostScaledLayer(), trustedOwn = TrustedHostScaledLayer()
            let model = Sequential { Dense(inputSize: 4, outputSize: 3, seed: 1, device: device); trusted ? trustedOwn : own }
            let optimizer = try SGD(parameters: model.parameters, learningRate: 0.1)
            try model.fit(data, epochs: 2, batchSize: 4, loss: .softmaxCrossEntropy, optimizer: optimizer,
                          callbacks: [ScaleEachBatch { own.scale = $0; trustedOwn.scale = $0 }],
                          shuffle: false, verbosity: .silent, capture: capture)
            return Dictionary(uniqueKeysWithValues: try model.namedTensors.map { ($0.0, try $0.1.toArray()) })
        }
        let eager = try train(trusted: false, capture: false)
        #expect(try train(trusted: false, capture: true) == eager)
        #expect(try train(trusted: true, capture: false) == eager)
        #expect(try train(trusted: true, capture: true) != eager, "a record froze nothing: the test no longer shows what the check protects")
    }
}
