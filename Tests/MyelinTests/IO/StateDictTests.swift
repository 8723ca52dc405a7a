import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// `stateDict()` / `loadStateDict(_:strict:)`, the layout marker, old-layout checkpoints and their conversion, and
/// the dtypes safetensors files may hold.
@Suite struct StateDictTests {
    static func model(on device: Device, seed: UInt64 = 1) -> Sequential {
        Sequential {
            Dense(inputSize: 4, outputSize: 6, activation: .relu, biasInit: .uniform(low: -0.5, high: 0.5), seed: seed, device: device)
            BatchNorm(features: 6, device: device)
            Dense(inputSize: 6, outputSize: 6, activation: .tanh, biasInit: .uniform(low: -0.5, high: 0.5), seed: seed + 10, device: device)
            Dense(inputSize: 6, outputSize: 3, biasInit: .uniform(low: -0.5, high: 0.5), seed: seed + 20, device: device)
        }
    }

    static let newKeys = ["0.weight", "0.bias", "2.weight", "2.bias", "2.running_mean", "2.running_var", "2.num_batches_tracked",
                          "3.weight", "3.bias", "5.weight", "5.bias"]
    /// The same model's keys in the old layout (one index per Swift layer, no num_batches_tracked).
    static let oldKeys: [String: String] = ["0.weight": "0.weight", "0.bias": "0.bias", "2.weight": "1.weight", "2.bias": "1.bias",
                                            "2.running_mean": "1.running_mean", "2.running_var": "1.running_var",
                                            "3.weight": "2.weight", "3.bias": "2.bias", "5.weight": "3.weight", "5.bias": "3.bias"]
    static let denseWeights: Set<String> = ["0.weight", "3.weight", "5.weight"]

    /// What an old Myelin wrote for `model`: the old keys, Dense weights [in, out], no num_batches_tracked.
    static func oldLayoutEntries(_ model: Sequential) throws -> [SafeTensorsEntry] {
        try model.namedTensors.compactMap { name, t in
            guard let old = oldKeys[name] else { return nil }
            if denseWeights.contains(name) {
                return SafeTensorsEntry(name: old, shape: [t.shape[1], t.shape[0]],
                                        values: LegacyCheckpoint.transpose(try t.toArray(), rows: t.shape[0], columns: t.shape[1]))
            }
            return SafeTensorsEntry(name: old, shape: t.shape, values: try t.toArray())
        }
    }

    @Test(arguments: TestDevices.all)
    func stateDictIsKeyedLikePytorchAndLoadsInPlace(device: Device) throws {
        let a = Self.model(on: device, seed: 1), b = Self.model(on: device, seed: 2)
        let state = a.stateDict()
        #expect(state.keys.sorted() == Self.newKeys.sorted())
        #expect(a.namedTensors.map(\.0) == Self.newKeys, "namedTensors keeps the order")
        #expect(state["3.weight"] === (a.layers[2] as! Dense).weight, "stateDict holds the live tensors")
        #expect(state["3.weight"]!.shape == [6, 6] && state["5.weight"]!.shape == [3, 6])
        let weightObject = (b.layers[0] as! Dense).weight
        try b.loadStateDict(state)
        #expect((b.layers[0] as! Dense).weight === weightObject, "loading copies into the existing tensors")
        for (name, t) in b.namedTensors { #expect(try t.toArray() == state[name]!.toArray(), "\(name)") }
        let x = try Tensor(testValues(5 * 4, seed: 3), shape: [5, 4], on: device)
        a.eval(); b.eval()
        #expect(try a(x).toArray() == b(x).toArray())
    }

    @Test(arguments: TestDevices.all)
    func strictLoadingNamesEveryMissingAndUnexpectedKeyAndBothShapes(device: Device) throws {
        let model = Self.model(on: device)
        var state = Self.model(on: device, seed: 5).stateDict()
        state["0.bias"] = nil
        state["2.num_batches_tracked"] = nil
        state["9.weight"] = Tensor.zeros([2], on: device)
        let before = try model.namedTensors.map { try $0.1.toArray() }
        expectCheckpointError({ try model.loadStateDict(state) },
                              contains: ["missing", "'0.bias'", "'2.num_batches_tracked'", "unexpected", "'9.weight'", "strict: false"])
        #expect(try model.namedTensors.map { try $0.1.toArray() } == before, "nothing changes when a check fails")
        // Not strict: what both have is copied, the rest is left alone.
        try model.loadStateDict(state, strict: false)
        #expect(try (model.layers[0] as! Dense).weight.toArray() == state["0.weight"]!.toArray())
        #expect(try (model.layers[0] as! Dense).bias!.toArray() == before[1])
        // A shape mismatch is an error even when not strict, naming the tensor and both shapes.
        state["5.weight"] = Tensor.zeros([3, 4], on: device)
        expectCheckpointError({ try model.loadStateDict(state, strict: false) }, contains: ["'5.weight'", "[3, 4]", "[3, 6]"])
        // The transpose is called so.
        let file = temporaryFolder().appendingPathComponent("t.safetensors")
        var tensors = model.namedTensors
        tensors[tensors.firstIndex { $0.0 == "5.weight" }!].1 = Tensor.zeros([6, 3], on: device)
        try SafeTensors.save(tensors, metadata: [SafeTensors.layoutKey: "2"], to: file)
        expectCheckpointError({ try model.load(from: file) }, contains: ["'5.weight'", "[6, 3]", "[3, 6]", "transpose", "[out, in]"])
    }

    @Test func savedFilesCarryTheLayoutMarkerAndUnknownLayoutsAreRefused() throws {
        let dir = temporaryFolder()
        let model = Self.model(on: .cpu)
        let url = dir.appendingPathComponent("m.safetensors")
        try model.save(to: url, metadata: ["note": "x"])
        #expect(try SafeTensors.load(url).metadata == ["note": "x", "myelin_layout": "2"])
        try model.load(from: url)
        try SafeTensors.save(model.namedTensors, metadata: [SafeTensors.layoutKey: "3"], to: url)
        expectCheckpointError({ try model.load(from: url) }, contains: [url.path, "layout '3'", "reads layout 2"])
        let adam = try Adam(parameters: model.parameters)
        try TrainingCheckpoint.save(model: model, optimizer: adam, epoch: 1, seed: 1, to: url)
        #expect(try SafeTensors.load(url).metadata[SafeTensors.layoutKey] == "2")
    }

    @Test(arguments: TestDevices.all)
    func oldLayoutFilesAreRefusedWithTheWayToConvertThemAndConvertExactly(device: Device) throws {
        let dir = temporaryFolder()
        let original = Self.model(on: device, seed: 3)
        let x = try Tensor(testValues(5 * 4, seed: 9), shape: [5, 4], on: device)
        _ = try withNoGrad { try original(x) }   // running statistics
        original.eval()
        let expected = try original(x).toArray()
        let old = dir.appendingPathComponent("old.safetensors"), new = dir.appendingPathComponent("new.safetensors")
        try AtomicFile.write(SafeTensors.encode(entries: Self.oldLayoutEntries(original), metadata: ["epoch": "4"]), to: old)

        let model = Self.model(on: device, seed: 7)
        let before = try model.namedTensors.map { try $0.1.toArray() }
        expectCheckpointError({ try model.load(from: old) },
                              contains: [old.path, "old layout", "myelin convert-checkpoint OLD NEW", "LegacyCheckpoint.convert(from: old, to: new, for: model)"])
        #expect(try model.namedTensors.map { try $0.1.toArray() } == before)

        try LegacyCheckpoint.convert(from: old, to: new, for: model)
        let converted = try SafeTensors.load(new)
        #expect(converted.metadata == ["epoch": "4", "myelin_layout": "2"])
        #expect(converted.names.sorted() == Self.newKeys.sorted())
        #expect(converted["2.num_batches_tracked"]?.values == [0])
        try model.load(from: new)
        model.eval()
        #expect(try model(x).toArray() == expected, "the converted file gives the original network")
        // Converting twice, or converting a file that is not this model's, is refused.
        expectCheckpointError({ try LegacyCheckpoint.convert(from: new, to: new, for: model) }, contains: ["already", "layout '2'"])
        let other = Sequential { Dense(inputSize: 4, outputSize: 5, device: device) }
        expectCheckpointError({ try LegacyCheckpoint.convert(from: old, to: new, for: other) }, contains: [old.path, "'0.weight'", "[4, 5]", "[4, 6]"])
    }

    @Test(arguments: TestDevices.all)
    func oldTrainingCheckpointsConvertWithTheirOptimizerMoments(device: Device) throws {
        let dir = temporaryFolder()
        let model = Self.model(on: device, seed: 3)
        let adam = try Adam(parameters: model.parameters, learningRate: 0.01)
        let x = try Tensor(testValues(6 * 4, seed: 4), shape: [6, 4], on: device)
        for _ in 0..<2 {
            adam.zeroGrad()
            try model(x).square().sum().backward()
            try adam.step()
        }
        let current = dir.appendingPathComponent("current.safetensors")
        try TrainingCheckpoint.save(model: model, optimizer: adam, epoch: 2, seed: 5, to: current)
        // The same checkpoint as an old Myelin wrote it: old keys, Dense weights and their moments [in, out].
        let file = try SafeTensors.load(current)
        let parameterNames = model.namedTensors.filter { $0.1.requiresGrad }.map(\.0)
        var entries = try Self.oldLayoutEntries(model)
        for e in file.entries where e.name.hasPrefix("optimizer.") {
            let parts = e.name.split(separator: ".")
            if parts.count == 3, let i = Int(parts[1]), Self.denseWeights.contains(parameterNames[i]), e.shape.count == 2 {
                entries.append(SafeTensorsEntry(name: e.name, shape: [e.shape[1], e.shape[0]],
                                                values: LegacyCheckpoint.transpose(e.values, rows: e.shape[0], columns: e.shape[1])))
            } else {
                entries.append(e)
            }
        }
        var metadata = file.metadata
        metadata[SafeTensors.layoutKey] = nil
        let old = dir.appendingPathComponent("old.safetensors")
        try AtomicFile.write(SafeTensors.encode(entries: entries, metadata: metadata), to: old)

        let resumedModel = Self.model(on: device, seed: 8)
        let resumedAdam = try Adam(parameters: resumedModel.parameters, learningRate: 0.01)
        expectCheckpointError({ try TrainingCheckpoint.load(from: old, into: resumedModel, optimizer: resumedAdam) },
                              contains: [old.path, "training checkpoint in the old layout", "convert-checkpoint"])
        let new = dir.appendingPathComponent("new.safetensors")
        try LegacyCheckpoint.convert(from: old, to: new, for: resumedModel)
        let a = try SafeTensors.load(new), b = try SafeTensors.load(current)
        #expect(a.names.sorted() == b.names.sorted())
        for name in b.names where name != "2.num_batches_tracked" {
            #expect(a[name]?.shape == b[name]?.shape && a[name]?.values == b[name]?.values, "\(name)")
        }
        let resumed = try TrainingCheckpoint.load(from: new, into: resumedModel, optimizer: resumedAdam)
        #expect(resumed.epoch == 2 && resumed.seed == 5)
        for ((name, p), (_, q)) in zip(resumedModel.namedTensors, model.namedTensors) where name != "2.num_batches_tracked" {
            #expect(try p.toArray() == q.toArray(), "\(name)")
        }
        for ((name, s), (_, t)) in zip(resumedAdam.stateTensors(), adam.stateTensors()) {
            #expect(try s.shape == t.shape && s.toArray() == t.toArray(), "optimizer \(name)")
        }
    }

    /// A safetensors file of one tensor with the given dtype and raw little-endian bytes.
    static func file(_ dtype: String, shape: [Int], bytes: [UInt8]) -> Data {
        var header = Array(#"{"t":{"dtype":"\#(dtype)","shape":[\#(shape.map(String.init).joined(separator: ","))],"data_offsets":[0,\#(bytes.count)]}}"#.utf8)
        header += [UInt8](repeating: 0x20, count: (8 - header.count % 8) % 8)
        var n = UInt64(header.count).littleEndian
        return Data(withUnsafeBytes(of: &n) { Array($0) } + header + bytes)
    }

    static func littleEndian<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
        values.flatMap { v in withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    }

    @Test func integerAndOtherFloatDTypesLoadAsFloat() throws {
        func decode(_ dtype: String, _ shape: [Int], _ bytes: [UInt8]) throws -> SafeTensorsEntry {
            let e = try SafeTensors.decode(Self.file(dtype, shape: shape, bytes: bytes), source: "\(dtype).st")["t"]!
            #expect(e.dtype == dtype && e.shape == shape)
            return e
        }
        #expect(try decode("U8", [2, 2], [0, 7, 200, 255]).values == [0, 7, 200, 255])
        #expect(try decode("I8", [3], Self.littleEndian([Int8(-128), 0, 127])).values == [-128, 0, 127])
        #expect(try decode("U16", [2], Self.littleEndian([UInt16(1), 65535])).values == [1, 65535])
        #expect(try decode("I16", [2], Self.littleEndian([Int16(-300), 300])).values == [-300, 300])
        #expect(try decode("U32", [2], Self.littleEndian([UInt32(9), 1 << 20])).values == [9, 1_048_576])
        #expect(try decode("I32", [2], Self.littleEndian([Int32(-5), 70000])).values == [-5, 70000])
        #expect(try decode("I64", [4], Self.littleEndian([Int64(3), -1, 0, 9])).values == [3, -1, 0, 9])
        #expect(try decode("U64", [1], Self.littleEndian([UInt64(42)])).values == [42])
        #expect(try decode("BOOL", [3], [0, 1, 2]).values == [0, 1, 1])
        #expect(try decode("F64", [2], Self.littleEndian([(0.5 as Double).bitPattern, (-2.25 as Double).bitPattern])).values == [0.5, -2.25])
        // Half: 1, -2, the smallest subnormal, 65504 (the largest), +inf.
        let half = try decode("F16", [5], Self.littleEndian([UInt16(0x3C00), 0xC000, 0x0001, 0x7BFF, 0x7C00])).values
        #expect(half == [1, -2, 0x1p-24, 65504, .infinity])
        #expect(try decode("F16", [1], Self.littleEndian([UInt16(0x7E00)])).values[0].isNaN)
        #expect(try decode("BF16", [2], Self.littleEndian([UInt16(0x3F80), 0xC0A0])).values == [1, -5])
        // Labels as a data set: U8 features and I64 class indices become Float.
        let url = temporaryFolder().appendingPathComponent("data.safetensors")
        // Two tensors by hand: features (U8) and labels (I64).
        let labels = Self.littleEndian([Int64(2), 0, 1])
        var header = Array(#"{"x":{"dtype":"U8","shape":[3,2],"data_offsets":[0,6]},"y":{"dtype":"I64","shape":[3],"data_offsets":[6,30]}}"#.utf8)
        header += [UInt8](repeating: 0x20, count: (8 - header.count % 8) % 8)
        var n = UInt64(header.count).littleEndian
        try Data(withUnsafeBytes(of: &n) { Array($0) } + header + [1, 2, 3, 4, 5, 6] + labels).write(to: url)
        let data = try Dataset(safetensors: url, features: "x", targets: "y", on: .cpu)
        #expect(try data.features.toArray() == [1, 2, 3, 4, 5, 6] && data.targets.toArray() == [2, 0, 1])
        expectCheckpointError({ _ = try Dataset(safetensors: url, features: "images", targets: "y", on: .cpu) },
                              contains: [url.path, "'images'", "[\"x\", \"y\"]"])
    }
}
