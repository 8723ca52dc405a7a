import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// `Tensor.load(float32File:shape:on:)`: raw little-endian Float32 files, read in chunks straight into the tensor.
@Suite struct RawFloat32FileTests {
    static func write(_ values: [Float], name: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("myelin-raw-\(UUID().uuidString)-\(name)")
        try values.withUnsafeBufferPointer { Data(buffer: $0) }.write(to: url)
        return url
    }

    /// 331 rows of 997 values (330,007 values: more than one 2^18-value chunk, and rows that do not divide it).
    @Test(arguments: TestDevices.all) func readsEveryValueInOrderAcrossChunks(device: Device) throws {
        let values = (0..<(331 * 997)).map { Float($0 % 65_521) * 0.5 - 7 }
        let url = try Self.write(values, name: "big.f32")
        defer { try? FileManager.default.removeItem(at: url) }
        let t = try Tensor.load(float32File: url, shape: [331, 997], on: device)
        #expect(t.shape == [331, 997] && t.device === device)
        #expect(try t.toArray() == values)
        let flat = try Tensor.load(float32File: url, shape: [331 * 997], on: device)
        #expect(try flat.toArray() == values)
    }

    @Test(arguments: TestDevices.all) func smallAndEmptyShapes(device: Device) throws {
        let url = try Self.write([1, 2, 3, 4, 5, 6, 7], name: "seven.f32")
        defer { try? FileManager.default.removeItem(at: url) }
        #expect(try Tensor.load(float32File: url, shape: [7, 1], on: device).toArray() == [1, 2, 3, 4, 5, 6, 7])
        let empty = try Self.write([], name: "empty.f32")
        defer { try? FileManager.default.removeItem(at: empty) }
        #expect(try Tensor.load(float32File: empty, shape: [0, 3], on: device).count == 0)
    }

    @Test func wrongSizeOrMissingFileNamesTheFile() throws {
        let url = try Self.write([1, 2, 3, 4, 5, 6, 7], name: "short.f32")
        defer { try? FileManager.default.removeItem(at: url) }
        #expect(throws: DataError.invalid(url.path, reason: "28 bytes, expected 32 for Float32 values of shape [2, 4]")) {
            try Tensor.load(float32File: url, shape: [2, 4], on: .cpu)
        }
        #expect(throws: DataError.invalid(url.path, reason: "shape [\(Int.max / 2), 3] has more Float32 values than a file can hold")) {
            try Tensor.load(float32File: url, shape: [Int.max / 2, 3], on: .cpu)
        }
        let missing = url.deletingLastPathComponent().appendingPathComponent("no-such-file.f32")
        #expect(throws: DataError.missingFile(missing.path, reason: "No such file or directory")) {
            try Tensor.load(float32File: missing, shape: [2], on: .cpu)
        }
    }
}
