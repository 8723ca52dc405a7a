import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// Whether python3 can import onnx and onnxruntime (scripts/setup installs them with pip).
let pythonONNXAvailable = pythonCanImport("onnx, onnxruntime, numpy")

/// Exports run under ONNX Runtime give Myelin's predictions: `onnx.checker.check_model` passes (scripts/onnx_check.py)
/// and the outputs differ by at most 1e-4 from `predict`'s, on a batch of another size than the export's check.
@Suite(.enabled(if: pythonONNXAvailable, "python3 with onnx and onnxruntime is not available (scripts/setup installs them with pip)"))
struct ONNXRuntimeTests {
    /// The models of the issue and the two that cover every layer and activation.
    enum Kind: String, CaseIterable, CustomTestStringConvertible {
        case mlp, cnn, resnet, convLayers, activations
        var testDescription: String { rawValue }
    }

    static func model(_ kind: Kind, on device: Device) -> (Sequential, sampleShape: [Int]) {
        switch kind {
        case .mlp:
            return (Sequential {
                Dense(inputSize: 784, outputSize: 64, activation: .relu, weightInit: .heUniform, seed: 1, device: device)
                Dense(inputSize: 64, outputSize: 32, activation: .relu, weightInit: .heUniform, seed: 2, device: device)
                Dense(inputSize: 32, outputSize: 10, seed: 3, device: device)
            }, [784])
        case .cnn: return (ConvNets.fashionCNN(seed: 4, device: device), [784])
        case .resnet: return (ConvNets.resnet(depth: 1, seed: 5, device: device), [1, 28, 28])
        case .convLayers: return (ONNXTestModels.convLayers(on: device), [72])
        case .activations: return (ONNXTestModels.activations(on: device), [7])
        }
    }

    /// Runs `path` under ONNX Runtime on `input`; returns its output values.
    static func runONNX(_ path: URL, _ input: Tensor, in dir: URL) throws -> [Float] {
        let inputFile = dir.appendingPathComponent("input.f32")
        let outputFile = dir.appendingPathComponent("output.f32")
        try Data(input.toArray().withUnsafeBytes { Data($0) }).write(to: inputFile)
        let (status, text) = try runPythonScript("scripts/onnx_check.py", [
            path.path, inputFile.path, input.shape.map(String.init).joined(separator: ","), outputFile.path])
        #expect(status == 0 && text.hasPrefix("ok"), "onnx_check.py: \(text)")
        guard status == 0 else { return [] }
        let data = try Data(contentsOf: outputFile)
        return data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    @Test(arguments: Kind.allCases, TestDevices.all)
    func onnxRuntimeMatchesPredict(kind: Kind, device: Device) throws {
        try inTemporaryFolder { dir in
            let (model, sampleShape) = Self.model(kind, on: device)
            try ONNXTestModels.randomizeBatchNorms(model, seed: 11)
            let url = dir.appendingPathComponent("\(kind).onnx")
            try model.exportONNX(to: url, inputShape: sampleShape)
            let low: Float = kind == .activations ? -1 : 0   // images in [0, 1]; the step needs both signs
            let x = try Initializer.uniform(low: low, high: 1).make([5] + sampleShape, seed: 12, on: device)
            let expected = try model.predict(x).toArray()
            let actual = try Self.runONNX(url, x, in: dir)
            #expect(actual.count == expected.count)
            let diff = zip(actual, expected).map { Swift.abs($0 - $1) }.max() ?? .infinity
            #expect(diff <= 1e-4, "\(kind) on \(device.name): max |onnxruntime - Myelin| = \(diff)")
            #expect(expected.allSatisfy { $0.isFinite })
        }
    }
}
