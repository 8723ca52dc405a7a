import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// Junk after a gzip stream and bytes after a safetensors file's data are refused; concatenated gzip members and
/// zero padding are accepted, as gzip and Python read them.
@Suite struct TrailingDataTests {
    static let idx = IDX.encode(uint8: (0..<24).map { UInt8($0 * 10) }, shape: [4, 2, 3])

    @Test func junkAfterTheGzipStreamIsRefused() {
        for junk: [UInt8] in [Array("junk".utf8), [0x1f], [0, 0, 7], [0x1f, 0x8c, 1, 2]] {
            let text = errorText { _ = try IDX.decode(Gzip.compress(Self.idx) + junk, source: "j.gz") }
            #expect(text.contains("j.gz") && text.contains("junk after the stream")
                    && text.contains("\(junk.count) bytes after the end of the gzip data"), "\(junk): \(text)")
        }
        // A second member that starts like gzip but is not valid gzip.
        let text = errorText { _ = try IDX.decode(Gzip.compress(Self.idx) + [0x1f, 0x8b, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9], source: "k.gz") }
        #expect(text.contains("k.gz") && text.contains("gzip"), "\(text)")
    }

    @Test func concatenatedMembersAndZeroPaddingAreGzipAsGzipAndPythonReadThem() throws {
        let whole = try IDX.decode(Self.idx, source: "raw")
        let split = Gzip.compress(Array(Self.idx[..<7])) + Gzip.compress(Array(Self.idx[7...]))
        #expect(try IDX.decode(split, source: "two members").payload == whole.payload)
        #expect(try IDX.decode(Gzip.compress(Self.idx) + [0, 0, 0, 0, 0], source: "padded").payload == whole.payload)
        #expect(try Gzip.decompress(split + [0, 0], source: "s") == Self.idx)
    }

    static func file(_ header: String, data: [UInt8]) -> Data {
        var h = Array(header.utf8)
        h += [UInt8](repeating: 0x20, count: (8 - h.count % 8) % 8)
        var n = UInt64(h.count).littleEndian
        return withUnsafeBytes(of: &n) { Data($0) } + Data(h) + Data(data)
    }

    @Test func safetensorsDataMustEndWhereTheLastTensorEnds() throws {
        let good = try SafeTensors.encode(entries: [SafeTensorsEntry(name: "w", shape: [2], values: [1, 2]),
                                                    SafeTensorsEntry(name: "b", shape: [1], values: [3])])
        #expect(try SafeTensors.decode(good, source: "good").names.count == 2)
        var text = errorText { _ = try SafeTensors.decode(good + Data([1, 2, 3]), source: "tail.safetensors") }
        #expect(text.contains("tail.safetensors") && text.contains("3 bytes after the end of the last tensor"), "\(text)")
        // Through a file.
        try inTemporaryFolder { dir in
            let url = dir.appendingPathComponent("m.safetensors")
            try (good + Data(count: 8)).write(to: url)
            let fileText = errorText { _ = try SafeTensors.load(url) }
            #expect(fileText.contains(url.path) && fileText.contains("8 bytes after"), "\(fileText)")
        }
        // No tensors, yet data.
        text = errorText { _ = try SafeTensors.decode(Self.file("{}", data: [0, 0, 0, 0]), source: "empty") }
        #expect(text.contains("4 bytes after"), "\(text)")
        #expect(try SafeTensors.decode(Self.file("{}", data: []), source: "empty").entries.isEmpty)
        // A gap between tensors, and data before the first.
        let f = [UInt8](repeating: 0, count: 12)
        text = errorText { _ = try SafeTensors.decode(Self.file(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#, data: f), source: "gap") }
        #expect(text.contains("4 bytes between tensors 'a'") && text.contains("'b'"), "\(text)")
        text = errorText { _ = try SafeTensors.decode(Self.file(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, data: f), source: "late") }
        #expect(text.contains("4 bytes before the first tensor 'a'"), "\(text)")
        // Zero-size tensors share an offset, as Python writes them.
        let zeros = Self.file(#"{"e":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"f":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 128, 63])
        #expect(try SafeTensors.decode(zeros, source: "zeros")["a"]?.values == [1])
    }
}
