import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// `ConvNets.fashionCNN` and `ConvNets.resnet` checkpoints are PyTorch state dicts of the modules written in
/// scripts/torch_convnet_interop.py, both ways, with no conversion: PyTorch loads Myelin's file with
/// `load_state_dict(strict=True)` and predicts the same classes (logits within 1e-4), and Myelin loads PyTorch's
/// own initialization with `loadStateDict(strict: true)` and gives the same logits (within 1e-4) and classes.
/// One Python start per direction (importing torch takes seconds). Myelin's files are written from the CPU
/// device (a checkpoint does not depend on the device); PyTorch's files are loaded and run on every device.
/// With `MYELIN_INTEROP_DIR=DIR` the Myelin-to-PyTorch files stay in DIR, for running
/// `scripts/torch_convnet_interop.py DIR` by hand.
@Suite(.enabled(if: pythonTorchAvailable, "python3 cannot import torch and safetensors: run scripts/setup --test (it installs a CPU torch wheel from a find-links folder such as /opt/wheels, and safetensors with pip)"))
struct ConvNetInteropTests {
    static let models = ["cnn", "resnet1"]

    static func model(_ kind: String, seed: UInt64, on device: Device) -> Sequential {
        kind == "cnn" ? ConvNets.fashionCNN(seed: seed, device: device)
                      : ConvNets.resnet(depth: Int(kind.dropFirst(6))!, seed: seed, device: device)
    }

    /// The first 32 Fashion-MNIST test images [32, 784] when the data set is installed, else fixed values in [0, 1).
    static let inputValues: [Float] = {
        if FileManager.default.fileExists(atPath: MNIST.files(in: MNIST.fashionDirectory, split: .test).images.path),
           let data = try? MNIST.load(split: .test, limit: 32, on: .cpu), let values = try? data.features.toArray() {
            return values
        }
        return testValues(32 * 784, seed: 90).map { ($0 + 1) / 2 }
    }()

    static func inputs(on device: Device) throws -> Tensor { try Tensor(inputValues, shape: [32, 784], on: device) }

    @Test func pytorchLoadsMyelinCheckpointsStrictlyAndPredictsTheSameClasses() throws {
        let dir: URL
        if let kept = ProcessInfo.processInfo.environment["MYELIN_INTEROP_DIR"] {
            dir = URL(fileURLWithPath: kept)
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        } else {
            dir = temporaryFolder()
        }
        for kind in Self.models {
            let model = Self.model(kind, seed: 17, on: .cpu)
            let x = try Self.inputs(on: .cpu)
            // Three train-mode batches (of 8 images) give batch norm running statistics and num_batches_tracked = 3.
            try withNoGrad { for i in 0..<3 { _ = try model(x.slice((8 * i)..<(8 * i + 8)) * Float(1 + i) - 0.5 * Float(i)) } }
            model.eval()
            let y = try withNoGrad { try model(x) }
            try model.save(to: dir.appendingPathComponent("\(kind).safetensors"))
            try TorchInteropTests.writeJSON(x, to: dir.appendingPathComponent("\(kind)-inputs.json"))
            try TorchInteropTests.writeJSON(y, to: dir.appendingPathComponent("\(kind)-logits.json"))
        }
        let (status, output) = try runPythonScript("scripts/torch_convnet_interop.py", ["check", dir.path])
        print("scripts/torch_convnet_interop.py check:\n" + output, terminator: "")
        #expect(status == 0, "torch_convnet_interop.py check: \(output)")
        for kind in Self.models {
            #expect(output.contains("\(kind): strict load OK, 32/32 classes equal"), "\(output)")
        }
    }

    @Test func myelinLoadsPytorchInitializationsStrictlyAndGivesTheSameLogits() throws {
        let dir = temporaryFolder()
        try TorchInteropTests.writeJSON(try Self.inputs(on: .cpu), to: dir.appendingPathComponent("inputs.json"))
        let (status, output) = try runPythonScript("scripts/torch_convnet_interop.py", ["save", dir.path] + Self.models)
        #expect(status == 0, "torch_convnet_interop.py save: \(output)")
        guard status == 0 else { return }
        for kind in Self.models { for device in TestDevices.all {
            let model = Self.model(kind, seed: 18, on: device)
            let state = try SafeTensors.load(dir.appendingPathComponent("\(kind)-torch.safetensors")).tensors(on: device)
            try model.loadStateDict(state, strict: true)
            #expect(try model.stateDict()["2.num_batches_tracked"]!.toArray() == [3], "num_batches_tracked (I64 in the file)")
            model.eval()
            let y = try withNoGrad { try model(Self.inputs(on: device)) }
            let torchLogits = try TorchInteropTests.readJSON(dir.appendingPathComponent("\(kind)-torch-logits.json"))
            #expect(torchLogits.shape == y.shape)
            expectClose(try y.toArray(), torchLogits.values, rtol: 0, atol: 1e-4, "\(device) \(kind): Myelin vs PyTorch on PyTorch's file")
            let classes = try y.argmax().toArray()
            let torchClasses = (0..<y.shape[0]).map { row -> Float in
                let values = torchLogits.values[(row * 10)..<((row + 1) * 10)]
                return Float(values.firstIndex(of: values.max()!)! - row * 10)
            }
            #expect(classes == torchClasses, "\(device) \(kind): the same classes")
        } }
    }
}
