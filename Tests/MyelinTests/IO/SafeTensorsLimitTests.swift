import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// A safetensors header naming more tensors than `SafeTensors.maxTensors` is refused before its JSON is parsed, and
/// messages list at most `SafeTensors.maxNamesListed` names.
@Suite struct SafeTensorsLimitTests {
    /// A valid file of `count` empty F32 tensors (shape [0], data_offsets [0, 0]).
    static func emptyTensors(_ count: Int) -> [UInt8] {
        var header = Array("{".utf8)
        header.reserveCapacity(count * 56)
        for i in 0..<count {
            if i > 0 { header.append(UInt8(ascii: ",")) }
            header += Array("\"t\(i)\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}".utf8)
        }
        header.append(UInt8(ascii: "}"))
        header += [UInt8](repeating: 0x20, count: (8 - header.count % 8) % 8)
        var length = UInt64(header.count).littleEndian
        return withUnsafeBytes(of: &length) { Array($0) } + header
    }

    @Test func aMillionTinyEntriesAreRefusedAtOnce() throws {
        let bytes = Self.emptyTensors(1_000_000)
        let start = Date()
        let text = errorText { _ = try SafeTensors.decode(bytes: bytes, source: "million.safetensors") }
        let seconds = Date().timeIntervalSince(start)
        #expect(text.contains("million.safetensors") && text.contains("more than the 100000 tensors"), "\(text)")
        #expect(text.count < 300, "the message lists names: \(text.prefix(300))")
        // Parsing the header took 127 s and 4.3 GB; counting its braces takes 0.16 s in a debug build.
        #expect(seconds < 3, "refusing took \(seconds) s")
    }

    @Test func aFileUnderTheCapIsRead() throws {
        let file = try SafeTensors.decode(bytes: Self.emptyTensors(1000), source: "thousand")
        #expect(file.entries.count == 1000)
        // Braces inside names and metadata strings are not counted as tensors.
        let tricky = SafeTensorsFile(entries: [SafeTensorsEntry(name: "{{{\"}}}", shape: [1], values: [1])],
                                     metadata: ["note": String(repeating: "{", count: SafeTensors.maxTensors + 10)])
        let decoded = try SafeTensors.decode(SafeTensors.encode(entries: tricky.entries, metadata: tricky.metadata), source: "tricky")
        #expect(decoded.names == ["{{{\"}}}"])
    }

    @Test func aKeyMismatchListsAtMost20NamesEach() throws {
        let model = Sequential { Dense(inputSize: 2, outputSize: 1, seed: 1, device: .cpu) }
        var entries = try model.namedTensors.map { SafeTensorsEntry(name: $0.0, shape: $0.1.shape, values: try $0.1.toArray()) }
        entries += (0..<35).map { SafeTensorsEntry(name: "extra.\($0)", shape: [1], values: [0]) }
        let text = errorText { try model.loadState(SafeTensorsFile(entries: entries), source: "many.safetensors") }
        #expect(text.contains("'extra.0'") && text.contains("... and 15 more"), "\(text)")
        #expect(text.components(separatedBy: "'extra.").count - 1 == SafeTensors.maxNamesListed, "\(text)")
        #expect(SafeTensors.nameList(["a", "b"]) == "'a', 'b'")
    }
}
