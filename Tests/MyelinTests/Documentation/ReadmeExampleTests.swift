import Foundation
import Testing
import Myelin

/// The README's library examples, run on a small slice of Fashion-MNIST so the README cannot drift from the API.
@Suite struct ReadmeExampleTests {
    static let dataPresent = FileManager.default.fileExists(atPath: MNIST.fashionDirectory.path + "/train-images-idx3-ubyte.gz")

    @Test(.enabled(if: dataPresent, "Fashion-MNIST is not installed (Debian dataset-fashion-mnist)"),
          arguments: TestDevices.all)
    func fitExample(device: Device) throws {
        let (train, validation) = try MNIST.loadTrainValidation(validationCount: 200, seed: 1, limit: 1200, on: device)
        let model = Sequential {
            Dense(inputSize: 784, outputSize: 64, activation: .relu, seed: 1, device: device)
            Dense(inputSize: 64, outputSize: 10, seed: 2, device: device)
        }
        let optimizer = try Adam(parameters: model.parameters, learningRate: 1e-3)
        let history = try model.fit(train, epochs: 3, batchSize: 128, validation: validation,
                                    loss: .softmaxCrossEntropy, optimizer: optimizer, metrics: [.accuracy],
                                    verbosity: .silent)
        let accuracy = try #require(history["val_accuracy"])
        #expect(accuracy.count == 3)
        // 1000 images, 3 epochs: far above the 10% of chance.
        #expect(accuracy.last! > 0.5, "validation accuracy \(accuracy)")
    }

    @Test(arguments: TestDevices.all)
    func autogradExample(device: Device) throws {
        let x = try Tensor([1, 2, 3, 4], shape: [2, 2], on: device, requiresGrad: true)
        let y = try (x.matmul(x) + 1).relu().sum()
        try y.backward()
        // d/dx[i][j] of sum(x·x + 1) = (row sums of x)[j] + (column sums of x)[i]; every entry is positive,
        // so relu passes the gradient: rows sum to 3, 7 and columns to 4, 6.
        expectClose(try x.grad!.toArray(), [Float(3 + 4), 7 + 4, 3 + 6, 7 + 6], rtol: 1e-6, atol: 1e-6, "grad")
    }

    /// The README's transformer example ("Attention and transformer layers"), then one backward pass.
    @Test(arguments: TestDevices.all)
    func transformerExample(device: Device) throws {
        let tokens = Embedding(count: 65, dimension: 48, seed: 1, device: device)
        let positions = Embedding(count: 64, dimension: 48, seed: 2, device: device)
        let block = TransformerBlock(embedDim: 48, heads: 3, dropout: 0.1, seed: 3, device: device)
        let ln = LayerNorm(features: 48, device: device)
        let head = Linear(inputSize: 48, outputSize: 65, bias: false, seed: 4, device: device)
        let x = try Tensor([3, 1, 4, 1, 5, 9, 2], shape: [1, 7], on: device)
        let next = try Tensor([1, 4, 1, 5, 9, 2, -1], shape: [1, 7], on: device)
        let h = try tokens(x) + positions(Tensor((0..<7).map(Float.init), on: device))
        let logits = try head(ln(block(h)))
        #expect(logits.shape == [1, 7, 65])
        let loss = try softmaxCrossEntropy(logits: logits, labels: next, ignoreIndex: -1)
        try loss.backward()
        #expect(try loss.item().isFinite)
        for (name, p) in block.namedTensors + [("tokens", tokens.weight)] {
            #expect(p.grad?.shape == p.shape, "\(name) got a gradient")
        }
    }
}
