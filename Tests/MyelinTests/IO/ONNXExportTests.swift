import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

// ONNX export checked without Python: the model's structure decoded from the bytes with the test-side decoder,
// and the errors. ONNXRuntimeTests runs the exports under ONNX Runtime.

/// Test models for the ONNX export tests.
enum ONNXTestModels {
    /// Every conv-side layer: Reshape, Conv2D (padding, `.same` with an even kernel, groups, a rectangular kernel
    /// and stride, fused activations), BatchNorm, MaxPool2D and AvgPool2D with padding, Residual with the identity
    /// shortcut, ResidualBlock with a projection, Flatten, Dense, Softmax. Input [72] (2x6x6 images).
    static func convLayers(on device: Device) -> Sequential {
        Sequential {
            Reshape([2, 6, 6])
            Conv2D(inChannels: 2, outChannels: 4, kernelSize: 3, padding: 1, activation: .elu(alpha: 0.7), seed: 1, device: device)
            BatchNorm(features: 4, device: device)
            Conv2D(inChannels: 4, outChannels: 4, kernelSize: 2, padding: .same, groups: 2, activation: .leakyRelu(slope: 0.1),
                   seed: 2, device: device)
            Conv2D(inChannels: 4, outChannels: 6, kernelSize: (3, 2), stride: (2, 1), padding: (1, 0), activation: .selu,
                   seed: 3, device: device)                                          // [6, 3, 5]
            MaxPool2D(kernelSize: 2, stride: 1, padding: 1)                          // [6, 4, 6]
            AvgPool2D(kernelSize: 3, stride: 2, padding: 1)                          // [6, 2, 3]
            Residual(Sequential {
                Conv2D(inChannels: 6, outChannels: 6, kernelSize: 3, padding: 1, activation: .softplus, seed: 4, device: device)
                GELU(approximate: true)
            })
            ResidualBlock(inChannels: 6, outChannels: 8, stride: 2, seed: 5, device: device)   // [8, 1, 2]
            Flatten()
            Dense(inputSize: 16, outputSize: 10, seed: 6, device: device)
            Softmax()
        }
    }

    /// Every activation and the dense-side layers: Step, Dense with fused activations, BatchNorm on [batch,
    /// features], the activation layers, Dropout, Residual with a projection shortcut, Identity. Input [7].
    static func activations(on device: Device) -> Sequential {
        Sequential {
            Step()
            Dense(inputSize: 7, outputSize: 9, activation: .relu, seed: 1, device: device)
            Dense(inputSize: 9, outputSize: 9, activation: .sigmoid, biasInit: .uniform(low: -1, high: 1), seed: 2, device: device)
            Dense(inputSize: 9, outputSize: 9, biasInit: .uniform(low: -1, high: 1), seed: 3, device: device)
            BatchNorm(features: 9, device: device)   // on [batch, features]
            ELU(alpha: 0.5)
            Dense(inputSize: 9, outputSize: 9, activation: .selu, seed: 4, device: device)
            Softplus()
            Dense(inputSize: 9, outputSize: 9, activation: .geluErf, bias: false, seed: 5, device: device)
            GELU(approximate: true)
            Dense(inputSize: 9, outputSize: 9, activation: .silu, seed: 6, device: device)
            LeakyReLU(slope: 0.2)
            Dropout(rate: 0.5, seed: 7)
            Residual(Dense(inputSize: 9, outputSize: 9, activation: .tanh, seed: 8, device: device),
                     shortcut: Dense(inputSize: 9, outputSize: 9, bias: false, seed: 9, device: device))
            Identity()
            Tanh()
            Dense(inputSize: 9, outputSize: 5, seed: 10, device: device)
        }
    }

    /// Gives every batch normalization of `model` random running statistics, weight and bias, so that the
    /// exported inference form is tested on more than the identity.
    static func randomizeBatchNorms(_ model: any Layer, seed: UInt64) throws {
        var g = SeededGenerator(seed: seed)
        func uniform(_ n: Int, _ lo: Float, _ hi: Float) -> [Float] {
            (0..<n).map { _ in lo + (hi - lo) * Float(g.next() >> 40) / Float(1 << 24) }
        }
        for (name, t) in model.namedTensors where name.hasSuffix("running_mean") {
            let prefix = String(name.dropLast("running_mean".count))
            let n = t.count
            for (key, values) in [("running_mean", uniform(n, -0.5, 0.5)), ("running_var", uniform(n, 0.5, 2)),
                                  ("weight", uniform(n, 0.5, 1.5)), ("bias", uniform(n, -0.5, 0.5))] {
                try model.setTensor(prefix + key, Tensor(values, shape: [n], on: t.device))
            }
        }
    }
}

struct ONNXExportTests {
    /// The graph of an MLP decoded field by field: IR version, opset, nodes, initializers equal to the weights,
    /// the dynamic batch dimension.
    @Test func mlpGraphStructure() throws {
        let model = Sequential {
            Dense(inputSize: 5, outputSize: 3, activation: .relu, seed: 1, device: .cpu)
            Dropout(rate: 0.1, seed: 2)
            Dense(inputSize: 3, outputSize: 2, bias: false, seed: 3, device: .cpu)
        }
        let proto = try decodeProtobuf(model.onnxModel(inputShape: [5]))
        #expect(proto.one(1)?.int64 == 8)                                   // ir_version
        #expect(proto.one(2)?.string == "Myelin")                           // producer_name
        let opset = try #require(proto.one(8)).message()
        #expect(opset.one(1)?.string == "" && opset.one(2)?.int64 == 17)
        let graph = try #require(proto.one(7)).message()
        let nodes = try graph.all(1).map { try $0.message() }
        #expect(nodes.map { $0.one(4)?.string } == ["Gemm", "Relu", "Identity", "Gemm", "Identity"])
        // The first Gemm: input, 0.weight, 0.bias, transB = 1.
        #expect(nodes[0].all(1).map(\.string) == ["input", "0.weight", "0.bias"])
        let attribute = try #require(nodes[0].one(5)).message()
        #expect(attribute.one(1)?.string == "transB" && attribute.one(3)?.int64 == 1 && attribute.one(20)?.int64 == 2)
        #expect(nodes[3].all(1).map(\.string) == [nodes[2].one(2)!.string, "3.weight"])   // no bias
        // Each node's inputs are the graph input, an initializer or an earlier node's output.
        let initializers = try graph.all(5).map { try $0.message() }
        var known = Set(["input"] + initializers.map { $0.one(8)!.string })
        for n in nodes {
            for i in n.all(1) { #expect(known.contains(i.string), "\(i.string) used before it is made") }
            known.formUnion(n.all(2).map(\.string))
        }
        // Initializers: float32 with the model's dims and values.
        let state = model.stateDict()
        #expect(Set(initializers.map { $0.one(8)!.string }) == Set(state.keys))
        for t in initializers {
            let name = t.one(8)!.string
            #expect(t.one(2)?.int64 == 1)
            #expect(try t.one(1)?.packedInts == state[name]!.shape.map(Int64.init))
            #expect(try t.one(4)?.packedFloats == state[name]!.toArray(), "\(name)")
        }
        // Input [batch, 5] and output [batch, 2], float32.
        func shape(_ valueInfo: DecodedField) throws -> [String] {
            let tensor = try valueInfo.message().one(2)!.message().one(1)!.message()
            #expect(tensor.one(1)?.int64 == 1)
            return try tensor.one(2)!.message().all(1).map { d in
                let dim = try d.message()
                return dim.one(2)?.string ?? String(dim.one(1)!.int64)
            }
        }
        #expect(try graph.all(11).map { try $0.message().one(1)!.string } == ["input"])
        #expect(try shape(graph.one(11)!) == ["batch", "5"])
        #expect(try shape(graph.one(12)!) == ["batch", "2"])
        #expect(try graph.one(12)!.message().one(1)?.string == nodes.last!.one(2)?.string)
    }

    /// Conv attributes as ONNX needs them: pads [top, left, bottom, right] (the `.same` even kernel one less above
    /// and left), strides, group.
    @Test func convolutionAttributes() throws {
        let model = ONNXTestModels.convLayers(on: .cpu)
        let graph = try decodeProtobuf(model.onnxModel(inputShape: [72])).one(7)!.message()
        let convs = try graph.all(1).map { try $0.message() }.filter { $0.one(4)?.string == "Conv" }
        func ints(_ node: [DecodedField], _ name: String) throws -> [Int64] {
            try node.all(5).map { try $0.message() }.first { $0.one(1)?.string == name }.map { $0.all(8).map(\.int64) } ?? []
        }
        func int(_ node: [DecodedField], _ name: String) throws -> Int64? {
            try node.all(5).map { try $0.message() }.first { $0.one(1)?.string == name }?.one(3)?.int64
        }
        #expect(convs.count == 7)   // 3 + 1 in the residual + 2 in the block + its projection
        #expect(try ints(convs[0], "pads") == [1, 1, 1, 1])
        #expect(try ints(convs[1], "pads") == [0, 0, 1, 1] && int(convs[1], "group") == 2)
        #expect(try ints(convs[2], "pads") == [1, 0, 1, 0] && ints(convs[2], "strides") == [2, 1]
                && ints(convs[2], "kernel_shape") == [3, 2])
        let ops = try graph.all(1).map { try $0.message().one(4)!.string }
        for op in ["Reshape", "BatchNormalization", "MaxPool", "AveragePool", "Add", "Flatten", "Softmax", "Elu", "LeakyRelu",
                   "Selu", "Softplus", "Sigmoid"] {
            #expect(ops.contains(op), "\(op) missing from \(ops)")
        }
    }

    /// A layer with no ONNX form is an error naming it and where it is; nothing is written.
    @Test func unsupportedLayerIsNamed() {
        final class Doubler: ParameterlessLayer {
            var isTraining = true
            func callAsFunction(_ input: Tensor) throws -> Tensor { input * 2 }
            var layerDescription: String { "Doubler" }
        }
        let model = Sequential {
            Dense(inputSize: 3, outputSize: 3, device: .cpu)
            Residual(Sequential { ReLU(); Doubler() })
        }
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("model.onnx")
        let error = #expect(throws: ONNXExportError.self) { try model.exportONNX(to: url, inputShape: [3]) }
        #expect(error == .unsupportedLayer(path: "layer 1 > inner > layer 1", layer: "Doubler",
                                           reason: "Doubler has no ONNX form in Myelin's exporter (it exports Myelin's own layers only)"))
        #expect(error?.description.contains("layer 1 > inner > layer 1 (Doubler) cannot be exported") == true)
        #expect(!FileManager.default.fileExists(atPath: url.path))
    }

    /// A wrong input shape and an unwritable path are clear errors.
    @Test func badShapeAndUnwritablePath() throws {
        let model = Sequential { Dense(inputSize: 4, outputSize: 2, device: .cpu) }
        try inTemporaryFolder { dir in
            let url = dir.appendingPathComponent("m.onnx")
            let wrong = #expect(throws: ONNXExportError.self) { try model.exportONNX(to: url, inputShape: [5]) }
            #expect(wrong?.description.contains("input shape [5]") == true)
            #expect(wrong?.description.contains("expected input [..., 4]") == true)
            #expect(throws: ONNXExportError.self) { try model.exportONNX(to: url, inputShape: []) }
            // A path under a regular file, and a folder in place of the file.
            let blocker = dir.appendingPathComponent("file")
            try Data([1]).write(to: blocker)
            let underFile = blocker.appendingPathComponent("m.onnx")
            let e1 = #expect(throws: FileError.self) { try model.exportONNX(to: underFile, inputShape: [4]) }
            #expect(e1?.path == underFile.path)
            let e2 = #expect(throws: FileError.self) { try model.exportONNX(to: dir.path, inputShape: [4]) }
            #expect(e2?.description.contains(dir.path) == true)
            // Written atomically: no temporary file is left, and the file is whole.
            try model.exportONNX(to: url, inputShape: [4])
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() == ["file", "m.onnx"])
            #expect(try [UInt8](Data(contentsOf: url)) == model.onnxModel(inputShape: [4]))
        }
    }
}
