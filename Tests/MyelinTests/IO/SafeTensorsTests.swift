import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// The safetensors format: the Python library's layout, round trips of names, shapes, values and metadata, every
/// corruption as a clear error naming the file, model save and load, and atomic writes.
@Suite struct SafeTensorsTests {
    static let entries = [
        SafeTensorsEntry(name: "b", shape: [3], values: [0, 1, 2]),
        SafeTensorsEntry(name: "a.weight", shape: [2, 2], values: [1, -1, 0.5, 3e-8]),
        SafeTensorsEntry(name: "1.w", shape: [1], values: [.infinity]),
        SafeTensorsEntry(name: "empty", shape: [0, 4], values: []),
        SafeTensorsEntry(name: "scalar", shape: [], values: [42]),
    ]

    /// The file Python's safetensors writes for `entries` with metadata {"epoch": "3"}.
    @Test func layoutMatchesThePythonLibrary() throws {
        let data = try SafeTensors.encode(entries: Self.entries.filter { $0.name != "empty" && $0.name != "scalar" }, metadata: ["epoch": "3"])
        let bytes = [UInt8](data)
        let n = Int(bytes[0]) | Int(bytes[1]) << 8
        #expect(bytes[2..<8].allSatisfy { $0 == 0 })
        #expect(n % 8 == 0)
        let header = String(decoding: bytes[8..<(8 + n)], as: UTF8.self)
        #expect(header.trimmingCharacters(in: .whitespaces) ==
            #"{"__metadata__":{"epoch":"3"},"1.w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[4,20]},"b":{"dtype":"F32","shape":[3],"data_offsets":[20,32]}}"#)
        #expect(header.hasSuffix(" ") || (header.utf8.count % 8 == 0))
        #expect(bytes.count == 8 + n + 32)
        // The data area: 1.w = inf, then a.weight, then b, little-endian.
        #expect(Array(bytes[(8 + n)..<(8 + n + 4)]) == [0, 0, 0x80, 0x7f])
    }

    @Test func roundTripKeepsNamesShapesValuesAndMetadata() throws {
        let meta = ["epoch": "3", "note": "quote \" backslash \\ newline \n tab \t é"]
        let data = try SafeTensors.encode(entries: Self.entries, metadata: meta)
        let file = try SafeTensors.decode(data, source: "mem")
        #expect(file.metadata == meta)
        #expect(Set(file.names) == Set(Self.entries.map(\.name)))
        for e in Self.entries { #expect(file[e.name] == e) }
    }

    @Test(arguments: TestDevices.all) func tensorsRoundTripThroughAFile(device: Device) throws {
        let dir = temporaryFolder()
        let url = dir.appendingPathComponent("t.safetensors")
        let a = try Tensor(testValues(35, seed: 1), shape: [5, 7], on: device)
        let b = try Tensor(testValues(3, seed: 2), shape: [3], on: device)
        try SafeTensors.save([("w", a), ("v", b)], to: url)
        let file = try SafeTensors.load(url)
        #expect(try file["w"]?.shape == [5, 7] && file["w"]?.values == a.toArray())
        #expect(try file["v"]?.tensor(on: device).toArray() == b.toArray())
    }

    /// A valid file to corrupt: header JSON and the data area.
    func file(header: String, data: [UInt8] = [UInt8](repeating: 0, count: 16), length: UInt64? = nil) -> Data {
        var h = Array(header.utf8)
        h += [UInt8](repeating: 0x20, count: (8 - h.count % 8) % 8)
        var n = (length ?? UInt64(h.count)).littleEndian
        return Data(withUnsafeBytes(of: &n) { Array($0) } + h + data)
    }

    @Test func everyCorruptionIsAClearErrorNamingTheFile() throws {
        let good = try SafeTensors.encode(entries: Self.entries)
        // Truncated at every length: never a crash, always an error naming the file.
        for cut in [0, 3, 8, 20, good.count - 1] {
            expectCheckpointError({ _ = try SafeTensors.decode(good.prefix(cut), source: "cut.safetensors") },
                                  contains: ["cut.safetensors", "not a valid safetensors file"])
        }
        expectCheckpointError({ _ = try SafeTensors.decode(good.prefix(good.count - 1), source: "t.st") }, contains: ["outside", "truncated"])
        expectCheckpointError({ _ = try SafeTensors.decode(self.file(header: "{}", length: 1 << 40), source: "huge.st") },
                              contains: ["huge.st", "header length 1099511627776", "limit"])
        expectCheckpointError({ _ = try SafeTensors.decode(self.file(header: "{}", length: 4000), source: "long.st") },
                              contains: ["long.st", "past the end"])
        expectCheckpointError({ _ = try SafeTensors.decode(self.file(header: "{\"a\": [1, 2"), source: "json.st") },
                              contains: ["json.st", "not a JSON object"])
        expectCheckpointError({ _ = try SafeTensors.decode(self.file(header: "[1]"), source: "json.st") }, contains: ["not a JSON object"])
        expectCheckpointError({ _ = try SafeTensors.decode(self.file(header: #"{"w":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]}}"#), source: "f8.st") },
                              contains: ["f8.st", "'w'", "F8_E4M3", "F32, F64, F16, BF16"])
        expectCheckpointError({ _ = try SafeTensors.decode(self.file(header: #"{"w":{"dtype":"I64","shape":[3],"data_offsets":[0,16]}}"#), source: "i64.st") },
                              contains: ["'w'", "[3]", "8 bytes of I64", "16 bytes"])
        expectCheckpointError({ _ = try SafeTensors.decode(self.file(header: #"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#), source: "s.st") },
                              contains: ["'w'", "[3]", "8 bytes"])
        expectCheckpointError({ _ = try SafeTensors.decode(self.file(header: #"{"w":{"dtype":"F32","shape":[8],"data_offsets":[0,32]}}"#), source: "o.st") },
                              contains: ["'w'", "outside the 16-byte data area"])
        expectCheckpointError({ _ = try SafeTensors.decode(self.file(header: #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#), source: "r.st") },
                              contains: ["'w'", "backwards"])
        expectCheckpointError({ _ = try SafeTensors.decode(self.file(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#), source: "ov.st") },
                              contains: ["ov.st", "'a'", "'b'", "overlap"])
        expectCheckpointError({ _ = try SafeTensors.decode(self.file(header: #"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#), source: "n.st") },
                              contains: ["'w'", "shape"])
        expectCheckpointError({ _ = try SafeTensors.decode(self.file(header: #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}}"#), source: "d.st") },
                              contains: ["'w'", "data_offsets"])
        expectCheckpointError({ _ = try SafeTensors.decode(self.file(header: #"{"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}"#), source: "d.st") },
                              contains: ["'w'", "shape"])
        expectCheckpointError({ _ = try SafeTensors.decode(self.file(header: #"{"w":5}"#), source: "d.st") }, contains: ["'w'", "JSON object"])
        expectCheckpointError({ _ = try SafeTensors.decode(self.file(header: #"{"__metadata__":{"a":1}}"#), source: "m.st") }, contains: ["__metadata__"])
        expectCheckpointError({ _ = try SafeTensors.decode(self.file(header: #"{"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,16]}}"#), source: "big.st") },
                              contains: ["'w'"])
        expectCheckpointError({ _ = try SafeTensors.load(URL(fileURLWithPath: "/nonexistent/m.safetensors")) }, contains: ["/nonexistent/m.safetensors", "no such file"])
        // Random garbage never crashes.
        var g = SeededGenerator(seed: 11)
        for _ in 0..<200 {
            var bytes = [UInt8](good)
            for _ in 0..<3 { bytes[Int(g.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: g.next()) }
            _ = try? SafeTensors.decode(Data(bytes), source: "fuzz")
        }
    }

    @Test func refusesBadNamesWhenWriting() {
        expectCheckpointError({ _ = try SafeTensors.encode(entries: [Self.entries[0], Self.entries[0]]) }, contains: ["'b'", "twice"])
        expectCheckpointError({ _ = try SafeTensors.encode(entries: [SafeTensorsEntry(name: "x", shape: [2], values: [1])]) }, contains: ["'x'", "[2]"])
    }

    @Test(arguments: TestDevices.all) func modelSaveLoadInPlaceAndMismatches(device: Device) throws {
        let dir = temporaryFolder()
        let url = dir.appendingPathComponent("model.safetensors")
        let a = TwoTensorLayer(inputs: 3, outputs: 2, seed: 1, on: device)
        try a.save(to: url, metadata: ["epoch": "1"])
        let b = TwoTensorLayer(inputs: 3, outputs: 2, seed: 99, on: device)
        let weightObject = b.weight
        try b.load(from: url)
        #expect(b.weight === weightObject, "loading writes in place, so an optimizer's references stay valid")
        #expect(try b.weight.toArray() == a.weight.toArray() && b.bias.toArray() == a.bias.toArray())
        #expect(b.weight.requiresGrad)
        let wrong = TwoTensorLayer(inputs: 4, outputs: 2, seed: 1, on: device)
        let before = try wrong.bias.toArray()
        expectCheckpointError({ try wrong.load(from: url) }, contains: [url.path, "'0.weight'", "[3, 2]", "[4, 2]"])
        #expect(try wrong.bias.toArray() == before, "nothing changes when a check fails")
        try SafeTensors.save([("0.weight", a.weight)], to: url)
        expectCheckpointError({ try b.load(from: url) }, contains: [url.path, "'0.bias'"])
        try SafeTensors.save(a.namedTensors + [("extra", a.bias), ("optimizer.0.m", a.bias)], to: url)
        expectCheckpointError({ try b.load(from: url) }, contains: ["'extra'", "strict"])
        try b.load(from: url, strict: false)
        try SafeTensors.save(a.namedTensors + [("optimizer.0.m", a.bias)], to: url)
        try b.load(from: url)
    }

    @Test func atomicWriteLeavesTheOldFileWhenWritingFails() throws {
        let dir = temporaryFolder()
        let url = dir.appendingPathComponent("keep.safetensors")
        let a = TwoTensorLayer(inputs: 2, outputs: 2, seed: 1, on: .cpu)
        try a.save(to: url)
        let original = try Data(contentsOf: url)
        // Encoding fails (duplicate names): the file is untouched.
        #expect(throws: CheckpointError.self) { try SafeTensors.save([("x", a.bias), ("x", a.bias)], to: url) }
        #expect(try Data(contentsOf: url) == original)
        // The rename fails (a non-empty folder stands where the file should go): the folder and its file survive,
        // and no temporary file is left behind.
        let blocked = dir.appendingPathComponent("blocked.safetensors")
        try FileManager.default.createDirectory(at: blocked, withIntermediateDirectories: true)
        try original.write(to: blocked.appendingPathComponent("inside"))
        #expect(throws: (any Error).self) { try a.save(to: blocked) }
        #expect(try Data(contentsOf: blocked.appendingPathComponent("inside")) == original)
        #expect(try Data(contentsOf: url) == original)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".tmp") }
        #expect(leftovers.isEmpty, "temporary files left: \(leftovers)")
    }
}
