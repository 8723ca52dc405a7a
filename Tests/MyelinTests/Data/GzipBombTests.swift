import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// A byte source that counts what is read from it.
private final class CountingSource: ByteSource {
    let inner: MemoryByteSource
    var consumed = 0
    init(_ bytes: [UInt8]) { inner = MemoryByteSource(bytes) }
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = try inner.read(into: buffer)
        consumed += n
        return n
    }
}

/// Gzip bombs: the IDX header is read first, and nothing is inflated past the size it announces.
@Suite struct GzipBombTests {
    /// An IDX header announcing `count` bytes, then `megabytes` MiB of zeros, as concatenated gzip members
    /// (about 1 KB of gzip per MiB).
    static func bomb(count: Int, megabytes: Int) -> [UInt8] {
        let zeros = [UInt8](repeating: 0, count: 1 << 20)
        let member = Gzip.compress(zeros, level: 9)
        var out = Gzip.compress(IDX.encode(uint8: [UInt8](repeating: 0, count: count), shape: [count]))
        for _ in 0..<megabytes { out += member }
        return out
    }

    @Test func aStreamHoldingMoreThanTheHeaderAnnouncesIsRefusedAtTheFirstExtraByte() throws {
        let bytes = Self.bomb(count: 10, megabytes: 1024)   // 1 GiB of zeros in about 1 MB
        let source = CountingSource(bytes)
        let text = errorText { _ = try IDX.decode(from: source, size: bytes.count, source: "bomb.gz") }
        #expect(text.contains("bomb.gz") && text.contains("decompresses to more than the 18 bytes the header announces"), "\(text)")
        #expect(source.consumed <= (1 << 18) + 2, "read \(source.consumed) of \(bytes.count) compressed bytes")
        // Through the file reader too, quickly.
        try inTemporaryFolder { dir in
            let file = dir.appendingPathComponent("bomb-idx1-ubyte.gz")
            try Data(bytes).write(to: file)
            let start = Date()
            let fileText = errorText { _ = try IDX.read(file) }
            #expect(fileText.contains(file.path) && fileText.contains("decompresses to more than"), "\(fileText)")
            #expect(Date().timeIntervalSince(start) < 5)
        }
    }

    @Test func aHeaderAnnouncingMoreThanTheGzipDataCanHoldIsRefusedBeforeInflating() {
        // 1e9 bytes announced by a 40-byte gzip file: deflate never shrinks more than 1032 times.
        var header = IDX.encode(uint8: [], shape: [0])
        header[4...7] = [0x3B, 0x9A, 0xCA, 0x00]
        let gz = Gzip.compress(header)
        let text = errorText { _ = try IDX.decode(gz, source: "liar.gz") }
        #expect(text.contains("liar.gz") && text.contains("more than \(gz.count) bytes of gzip data can hold"), "\(text)")
    }

    @Test func theHeaderIsReadWithoutInflatingTheData() throws {
        let bytes = Self.bomb(count: 10, megabytes: 256)
        let source = CountingSource(bytes)
        let (stream, gzip) = try IDX.open(source, source: "h.gz")
        let h = try IDX.readHeader(stream, size: bytes.count, gzip: gzip, source: "h.gz")
        #expect(h.shape == [10] && h.type == .uint8 && gzip)
        #expect(source.consumed <= (1 << 18) + 2)
    }

    @Test func gzipDecompressTakesALimit() {
        let gz = Gzip.compress([UInt8](repeating: 1, count: 5000))
        #expect((try? Gzip.decompress(gz, source: "x", limit: 5000))?.count == 5000)
        let text = errorText { _ = try Gzip.decompress(gz, source: "x.gz", limit: 4999) }
        #expect(text.contains("x.gz") && text.contains("more than 4999 bytes"), "\(text)")
    }
}
