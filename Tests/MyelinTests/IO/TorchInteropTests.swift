import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// Myelin's files are PyTorch state dicts of the equivalent `nn.Sequential` and the other way round, with no
/// conversion by anyone: scripts/torch_interop.py loads Myelin's file with `load_state_dict(strict=True)`, and
/// Myelin loads `safetensors.torch.save_file(model.state_dict())`; both sides' outputs agree to 1e-5.
@Suite(.enabled(if: pythonTorchAvailable, "python3 cannot import torch and safetensors: run scripts/setup --test (it installs a CPU torch wheel from a find-links folder such as /opt/wheels, and safetensors with pip)"))
struct TorchInteropTests {
    /// The Myelin twin of the script's model: the same modules in the same order, fused activations included.
    static func model(_ kind: String, on device: Device) throws -> Sequential {
        let bias = Initializer.uniform(low: -0.5, high: 0.5)
        switch kind {
        case "mlp":
            // Linear(4, 8), ReLU, Linear(8, 8) (square: a transposed load would go unnoticed), Tanh, Linear(8, 3).
            return Sequential {
                Dense(inputSize: 4, outputSize: 8, activation: .relu, biasInit: bias, seed: 1, device: device)
                Dense(inputSize: 8, outputSize: 8, activation: .tanh, biasInit: bias, seed: 2, device: device)
                Dense(inputSize: 8, outputSize: 3, biasInit: bias, seed: 3, device: device)
            }
        default:
            let model = Sequential {
                Conv2D(inChannels: 1, outChannels: 3, kernelSize: 3, padding: 1, biasInit: bias, seed: 4, device: device)
                BatchNorm(features: 3, device: device)
                ReLU()
                Conv2D(inChannels: 3, outChannels: 2, kernelSize: 3, stride: 2, activation: .relu, biasInit: bias, seed: 5, device: device)
                Flatten()
                Dense(inputSize: 8, outputSize: 4, biasInit: bias, seed: 6, device: device)
            }
            let bn = model.layers[1] as! BatchNorm
            try bn.setTensor("weight", Tensor([0.5, 1.5, -1], on: device))
            try bn.setTensor("bias", Tensor([0.1, -0.2, 0.3], on: device))
            return model
        }
    }

    static func input(_ kind: String, on device: Device) throws -> Tensor {
        kind == "mlp" ? try Tensor(testValues(5 * 4, seed: 41).map { $0 * 2 }, shape: [5, 4], on: device)
                      : try Tensor(testValues(3 * 25, seed: 42).map { $0 * 2 }, shape: [3, 1, 5, 5], on: device)
    }

    static func runScript(_ arguments: [String]) throws -> (Int32, String) {
        try runPythonScript("scripts/torch_interop.py", arguments)
    }

    static func writeJSON(_ t: Tensor, to url: URL) throws {
        let object: [String: Any] = ["shape": t.shape, "values": try t.toArray().map(Double.init)]
        try JSONSerialization.data(withJSONObject: object).write(to: url)
    }

    static func readJSON(_ url: URL) throws -> (shape: [Int], values: [Double]) {
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        let shape = (object["shape"] as! [Any]).map { ($0 as! NSNumber).intValue }
        let values = (object["values"] as! [Any]).map { ($0 as! NSNumber).doubleValue }
        return (shape, values)
    }

    @Test(arguments: ["mlp", "conv"], TestDevices.all)
    func pytorchLoadsMyelinFilesStrictly(kind: String, device: Device) throws {
        let dir = temporaryFolder()
        let file = dir.appendingPathComponent("myelin.safetensors")
        let inputs = dir.appendingPathComponent("inputs.json"), outputs = dir.appendingPathComponent("outputs.json")
        let model = try Self.model(kind, on: device)
        let x = try Self.input(kind, on: device)
        // Three train-mode batches give batch norm running statistics and num_batches_tracked = 3.
        try withNoGrad { for i in 0..<3 { _ = try model(x * Float(1 + i) - 0.5 * Float(i)) } }
        model.eval()
        let y = try withNoGrad { try model(x) }
        try model.save(to: file)
        try Self.writeJSON(x, to: inputs)
        let (status, output) = try Self.runScript(["load", kind, file.path, inputs.path, outputs.path])
        #expect(status == 0, "torch_interop.py load \(kind): \(output)")
        guard status == 0 else { return }
        let torchOutput = try Self.readJSON(outputs)
        #expect(torchOutput.shape == y.shape)
        expectClose(try y.toArray(), torchOutput.values, rtol: 1e-5, atol: 1e-5, "\(device) \(kind): Myelin vs PyTorch on Myelin's file")
    }

    @Test(arguments: ["mlp", "conv"], TestDevices.all)
    func myelinLoadsPytorchFilesStrictly(kind: String, device: Device) throws {
        let dir = temporaryFolder()
        let file = dir.appendingPathComponent("torch.safetensors")
        let inputs = dir.appendingPathComponent("inputs.json"), outputs = dir.appendingPathComponent("outputs.json")
        let x = try Self.input(kind, on: device)
        try Self.writeJSON(x, to: inputs)
        let (status, output) = try Self.runScript(["save", kind, file.path, inputs.path, outputs.path])
        #expect(status == 0, "torch_interop.py save \(kind): \(output)")
        guard status == 0 else { return }
        let model = try Self.model(kind, on: device)
        let before = try model.namedTensors.map { try $0.1.toArray() }
        try model.load(from: file)   // strict
        #expect(try model.namedTensors.map { try $0.1.toArray() } != before, "the file's values replaced the model's")
        if kind == "conv" {
            #expect(try (model.layers[1] as! BatchNorm).numBatchesTracked.toArray() == [3], "num_batches_tracked (I64 in the file)")
        }
        model.eval()
        let y = try withNoGrad { try model(x) }
        let torchOutput = try Self.readJSON(outputs)
        #expect(torchOutput.shape == y.shape)
        expectClose(try y.toArray(), torchOutput.values, rtol: 1e-5, atol: 1e-5, "\(device) \(kind): Myelin vs PyTorch on PyTorch's file")
    }

    @Test func integerTensorsFromPytorchLoadAsFloats() throws {
        let file = temporaryFolder().appendingPathComponent("labels.safetensors")
        let (status, output) = try Self.runScript(["labels", file.path])
        #expect(status == 0, "torch_interop.py labels: \(output)")
        guard status == 0 else { return }
        let st = try SafeTensors.load(file)
        #expect(st["x"]?.dtype == "U8" && st["y"]?.dtype == "I64")
        let data = try Dataset(safetensors: file, features: "x", targets: "y", on: .cpu)
        #expect(data.count == 5 && data.sampleShape == [3])
        #expect(try data.features.toArray() == (0..<15).map(Float.init))
        #expect(try data.targets.toArray() == [4, 3, 2, 1, 0])
    }
}
