import CZlib
import Foundation

/// The element types an IDX file can hold (the third byte of its magic number).
public enum IDXType: UInt8, Sendable {
    /// Unsigned and signed bytes, big-endian 16- and 32-bit integers, big-endian IEEE 754 floats and doubles
    /// (type codes 0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E).
    case uint8 = 0x08, int8 = 0x09, int16 = 0x0B, int32 = 0x0C, float32 = 0x0D, float64 = 0x0E

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .uint8, .int8: return 1
        case .int16: return 2
        case .int32, .float32: return 4
        case .float64: return 8
        }
    }
}

/// An n-dimensional array read from an IDX file: its shape, element type and raw (big-endian) payload.
public struct IDXArray: Sendable {
    /// The dimensions from the header, e.g. [60000, 28, 28] for MNIST training images.
    public let shape: [Int]
    /// The element type from the magic number.
    public let type: IDXType
    /// The payload as stored: `shape.product × type.size` bytes, big-endian for multi-byte types.
    public let payload: [UInt8]

    /// The number of samples (the first dimension).
    public var count: Int { shape.first ?? 0 }

    /// The elements as Float, each multiplied by `scale` (1/255 turns grey levels into [0, 1]).
    public func floats(scale: Float = 1) -> [Float] {
        let n = payload.count / type.size
        return payload.withUnsafeBufferPointer { p -> [Float] in
            [Float](unsafeUninitializedCapacity: n) { out, initialized in
                switch type {
                case .uint8: for i in 0..<n { out[i] = Float(p[i]) * scale }
                case .int8: for i in 0..<n { out[i] = Float(Int8(bitPattern: p[i])) * scale }
                case .int16:
                    for i in 0..<n { out[i] = Float(Int16(bitPattern: UInt16(p[2 * i]) << 8 | UInt16(p[2 * i + 1]))) * scale }
                case .int32, .float32:
                    for i in 0..<n {
                        let b = UInt32(p[4 * i]) << 24 | UInt32(p[4 * i + 1]) << 16 | UInt32(p[4 * i + 2]) << 8 | UInt32(p[4 * i + 3])
                        out[i] = (type == .int32 ? Float(Int32(bitPattern: b)) : Float(bitPattern: b)) * scale
                    }
                case .float64:
                    for i in 0..<n {
                        var b: UInt64 = 0
                        for k in 0..<8 { b = b << 8 | UInt64(p[8 * i + k]) }
                        out[i] = Float(Double(bitPattern: b)) * scale
                    }
                }
                initialized = n
            }
        }
    }

    /// The elements as whole numbers (labels). Each must be a whole number that fits an `Int` (a float or
    /// double element of NaN, 1e30 or 2.5 is an error naming `source`, the element's index and its value).
    public func integers(source: String = "IDX data") throws -> [Int] {
        let values = floats()
        var out = [Int]()
        out.reserveCapacity(values.count)
        for (i, v) in values.enumerated() {
            guard let n = Int(exactly: v) else {
                throw DataError.invalid(source, reason: "element \(i) is \(v), not a whole number")
            }
            out.append(n)
        }
        return out
    }

    /// The same array with NaN and infinite elements refused or replaced (`policy`); only float and double
    /// files can hold them (a double beyond Float's range counts: it becomes infinite as Float). Errors name
    /// `source`, the sample (first dimension) and the element in the sample.
    public func checkedFinite(_ policy: NonFiniteValues, source: String) throws -> IDXArray {
        guard type == .float32 || type == .float64, !payload.isEmpty else { return self }
        try policy.validate(source)
        let sampleSize = Swift.max(1, shape.dropFirst().reduce(1, *))
        var replaced: [UInt8]?
        let n = payload.count / type.size
        try payload.withUnsafeBufferPointer { p in
            for i in 0..<n {
                let value: Float
                if type == .float32 {
                    value = Float(bitPattern: UInt32(p[4 * i]) << 24 | UInt32(p[4 * i + 1]) << 16 | UInt32(p[4 * i + 2]) << 8 | UInt32(p[4 * i + 3]))
                } else {
                    var b: UInt64 = 0
                    for k in 0..<8 { b = b << 8 | UInt64(p[8 * i + k]) }
                    value = Float(Double(bitPattern: b))
                }
                if value.isFinite { continue }
                switch policy {
                case .refuse:
                    throw DataError.nonFinite(source, part: "value", sample: i / sampleSize,
                                              element: sampleSize > 1 ? i % sampleSize : nil, value: value)
                case .replace(let v):
                    if replaced == nil { replaced = payload }
                    if type == .float32 {
                        let b = v.bitPattern
                        for k in 0..<4 { replaced![4 * i + k] = UInt8(truncatingIfNeeded: b >> (24 - 8 * k)) }
                    } else {
                        let b = Double(v).bitPattern
                        for k in 0..<8 { replaced![8 * i + k] = UInt8(truncatingIfNeeded: b >> (56 - 8 * k)) }
                    }
                }
            }
        }
        return replaced.map { IDXArray(shape: shape, type: type, payload: $0) } ?? self
    }
}

/// Reads IDX files, the format of MNIST and Fashion-MNIST, raw or gzip-compressed.
///
/// ```swift
/// let images = try IDX.read(URL(fileURLWithPath: "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"))
/// print(images.shape)   // [10000, 28, 28]
/// ```
public enum IDX {
    /// Reads and decodes an IDX file; gzip data (starting with 1f 8b) is decompressed with zlib as it is read.
    ///
    /// The header is read first, and nothing is read or decompressed past the size it announces: a raw file of
    /// another size is refused before its data is read, and gzip data that inflates to more than the header
    /// announces (a "gzip bomb") is refused at the first byte too many. Unreadable files say why (no such file,
    /// permission denied, a folder, a FIFO, a read error), naming the file.
    public static func read(_ url: URL) throws -> IDXArray {
        try withFileErrors(url.path) {
            let file = try ReadableFile(url)
            return try decode(from: file, size: file.size, source: url.path)
        }
    }

    /// Decodes IDX bytes (raw or gzip); `source` names the data in errors.
    public static func decode(_ bytes: [UInt8], source: String) throws -> IDXArray {
        try decode(from: MemoryByteSource(bytes), size: bytes.count, source: source)
    }

    /// The header of an IDX file (raw or gzip): its shape and element type, read without reading (or
    /// decompressing) the data. Checks what the header alone can tell: the magic number, and for a raw file
    /// that its size is the one the header announces.
    public static func header(of url: URL) throws -> (shape: [Int], type: IDXType) {
        try withFileErrors(url.path) {
            let file = try ReadableFile(url)
            let (stream, gzip) = try open(file, source: url.path)
            let h = try readHeader(stream, size: file.size, gzip: gzip, source: url.path)
            return (h.shape, h.type)
        }
    }

    /// The bytes of `input` as raw IDX data: decompressed as they are read when they start with gzip's 1f 8b.
    static func open(_ input: any ByteSource, source: String) throws -> (stream: any ByteSource, gzip: Bool) {
        let start = try input.read(count: 2)
        let replayed = PrefixedByteSource(start, input)
        if Gzip.isGzip(start) { return (try GzipReader(replayed, source: source), true) }
        return (replayed, false)
    }

    /// Reads the header from `stream` (raw IDX bytes) and checks it against the input's `size` in bytes.
    static func readHeader(_ stream: any ByteSource, size: Int, gzip: Bool, source: String)
        throws -> (shape: [Int], type: IDXType, headerSize: Int, payloadSize: Int) {
        let magic = try stream.read(count: 4)
        guard magic.count == 4 else { throw DataError.truncated(source, expected: 4, got: magic.count) }
        guard magic[0] == 0, magic[1] == 0, let type = IDXType(rawValue: magic[2]), magic[3] >= 1 else {
            throw DataError.badMagic(source, found: "0x" + magic.map { String(format: "%02x", $0) }.joined(),
                                     expected: "0x0000TTNN (TT an IDX type such as 08 for bytes, NN the number of dimensions)")
        }
        let rank = Int(magic[3])
        let headerSize = 4 + 4 * rank
        let dims = try stream.read(count: 4 * rank)
        guard dims.count == 4 * rank else { throw DataError.truncated(source, expected: headerSize, got: 4 + dims.count) }
        var shape: [Int] = []
        var elements = 1
        for d in 0..<rank {
            let o = 4 * d
            let n = Int(UInt32(dims[o]) << 24 | UInt32(dims[o + 1]) << 16 | UInt32(dims[o + 2]) << 8 | UInt32(dims[o + 3]))
            shape.append(n)
            let (p, overflow) = elements.multipliedReportingOverflow(by: n)
            guard !overflow, p <= Int(Int32.max) * 16 else {
                throw DataError.invalid(source, reason: "dimensions \(shape) are too large")
            }
            elements = p
        }
        let payloadSize = elements * type.size
        let expected = headerSize + payloadSize
        if gzip {
            // deflate shrinks data at most 1032 times: a header announcing more than that is a lie.
            let most = size.multipliedReportingOverflow(by: Gzip.maximumRatio)
            guard most.overflow || expected <= most.partialValue else {
                throw DataError.invalid(source, reason: "the header announces \(expected) bytes (\(shape)), more than \(size) bytes of gzip data can hold (at most \(most.partialValue))")
            }
        } else {
            guard size >= expected else { throw DataError.truncated(source, expected: expected, got: size) }
            guard size == expected else {
                throw DataError.invalid(source, reason: "\(size - expected) bytes after the data the header announces (\(shape))")
            }
        }
        return (shape, type, headerSize, payloadSize)
    }

    /// Decodes the IDX data `input` holds (`size` bytes, raw or gzip): the header first, then exactly the
    /// payload it announces, never more.
    static func decode(from input: any ByteSource, size: Int, source: String) throws -> IDXArray {
        let (stream, gzip) = try open(input, source: source)
        let h = try readHeader(stream, size: size, gzip: gzip, source: source)
        // Memory grows with the data that really arrives (exactly reserved up to 256 MiB), not with what the
        // header claims.
        var payload = [UInt8]()
        payload.reserveCapacity(Swift.min(h.payloadSize, 1 << 28))
        var chunk = [UInt8](repeating: 0, count: Swift.min(h.payloadSize, 1 << 22))
        while payload.count < h.payloadSize {
            let want = Swift.min(chunk.count, h.payloadSize - payload.count)
            let n = try chunk.withUnsafeMutableBytes { try stream.readFully(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<want])) }
            if n == 0 { break }
            payload += chunk[0..<n]
        }
        guard payload.count == h.payloadSize else {
            throw DataError.truncated(source, expected: h.headerSize + h.payloadSize, got: h.headerSize + payload.count)
        }
        // One byte more tells whether the data goes on past what the header announces (and, for gzip, checks
        // the end of the stream); nothing more is decompressed.
        var probe: UInt8 = 0
        let more = try withUnsafeMutableBytes(of: &probe) { try stream.read(into: $0) }
        if more > 0 {
            throw DataError.invalid(source, reason: gzip
                ? "the gzip data decompresses to more than the \(h.headerSize + h.payloadSize) bytes the header announces (\(h.shape))"
                : "bytes after the data the header announces (\(h.shape))")
        }
        return IDXArray(shape: h.shape, type: h.type, payload: payload)
    }

    /// The IDX bytes of unsigned-byte data with the given shape (for writing small test files).
    public static func encode(uint8 values: [UInt8], shape: [Int]) -> [UInt8] {
        precondition(values.count == shape.reduce(1, *), "IDX.encode: \(values.count) values for shape \(shape)")
        var out: [UInt8] = [0, 0, IDXType.uint8.rawValue, UInt8(shape.count)]
        for d in shape { out += [UInt8(d >> 24 & 0xff), UInt8(d >> 16 & 0xff), UInt8(d >> 8 & 0xff), UInt8(d & 0xff)] }
        return out + values
    }

    /// The whole file at `url`, with unreadable files as `DataError.missingFile` saying why.
    static func readFile(_ url: URL) throws -> [UInt8] {
        try withFileErrors(url.path) { try ReadableFile.contents(of: url) }
    }

    /// Runs `body`, turning a `FileError` (no such file, permission denied, ...) into `DataError.missingFile`.
    static func withFileErrors<T>(_ path: String, _ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as FileError {
            throw DataError.missingFile(path, reason: e.reason)
        }
    }
}

/// Bytes already read from a source, replayed before the rest of it.
final class PrefixedByteSource: ByteSource {
    private let prefix: MemoryByteSource
    private let rest: any ByteSource
    init(_ prefix: [UInt8], _ rest: any ByteSource) { self.prefix = MemoryByteSource(prefix); self.rest = rest }
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if prefix.remaining > 0 { return try prefix.read(into: buffer) }
        return try rest.read(into: buffer)
    }
}

/// A gzip stream decompressed through zlib's `inflate` as it is read (never a hand-written inflater), so a
/// reader takes only what it needs: memory holds one compressed chunk, not the whole output.
///
/// Concatenated gzip members (as `cat a.gz b.gz` makes) are one stream, as gzip(1) and Python's `gzip`
/// module read them; zero bytes padding the end are ignored (as both do); anything else after the last
/// member is junk and an error. A truncated or corrupt stream (bad CRC or length included) is an error.
public final class GzipReader: ByteSource {
    private let source: any ByteSource
    private let name: String
    private var stream = z_stream()
    private let input: UnsafeMutablePointer<UInt8>
    private let inputCapacity = 1 << 18
    private var sourceEnded = false
    private var memberEnded = false
    private var finished = false

    /// Decompresses `source`; `source` names it in errors (`DataError.badGzip`).
    public init(_ source: any ByteSource, source name: String) throws {
        self.source = source
        self.name = name
        input = .allocate(capacity: inputCapacity)
        guard inflateInit2_(&stream, 16 + MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            input.deallocate()
            throw DataError.badGzip(name, reason: "zlib could not start")
        }
        stream.next_in = input
        stream.avail_in = 0
    }

    deinit {
        inflateEnd(&stream)
        input.deallocate()
    }

    /// Moves the unread input to the front of the buffer and reads more after it (nothing once the source ended).
    private func refill() throws {
        let keep = Int(stream.avail_in)
        if keep > 0, stream.next_in != input { memmove(input, stream.next_in, keep) }
        stream.next_in = input
        guard !sourceEnded, keep < inputCapacity else { return }
        let n = try source.read(into: UnsafeMutableRawBufferPointer(start: input + keep, count: inputCapacity - keep))
        if n == 0 { sourceEnded = true }
        stream.avail_in = uInt(keep + n)
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        var produced = 0
        while produced < buffer.count, !finished {
            if memberEnded { try nextMember(); continue }
            if stream.avail_in == 0 { try refill() }
            let room = buffer.count - produced
            stream.next_out = buffer.baseAddress!.assumingMemoryBound(to: UInt8.self) + produced
            stream.avail_out = uInt(room)
            let status = inflate(&stream, Z_NO_FLUSH)
            produced += room - Int(stream.avail_out)
            switch status {
            case Z_STREAM_END:
                memberEnded = true
            case Z_OK:
                continue
            case Z_BUF_ERROR where stream.avail_in == 0 && !sourceEnded:
                continue
            case Z_BUF_ERROR:
                throw DataError.badGzip(name, reason: "the compressed stream is cut short (truncated file)")
            default:
                let message = stream.msg.map { String(cString: $0) } ?? "zlib error \(status)"
                throw DataError.badGzip(name, reason: message)
            }
        }
        return produced
    }

    /// After a member's end: another member, zero padding to the end, or junk (an error).
    private func nextMember() throws {
        while stream.avail_in < 2, !sourceEnded { try refill() }
        if stream.avail_in == 0 { finished = true; return }
        if stream.avail_in >= 2, stream.next_in[0] == 0x1f, stream.next_in[1] == 0x8b {
            guard inflateReset(&stream) == Z_OK else { throw DataError.badGzip(name, reason: "zlib could not reset") }
            memberEnded = false
            return
        }
        var trailing = 0
        var zeros = true
        while stream.avail_in > 0 {
            let n = Int(stream.avail_in)
            if zeros { zeros = UnsafeBufferPointer(start: stream.next_in, count: n).allSatisfy { $0 == 0 } }
            trailing += n
            stream.avail_in = 0
            try refill()
        }
        guard zeros else {
            throw DataError.badGzip(name, reason: "\(trailing) bytes after the end of the gzip data are not a gzip member (junk after the stream)")
        }
        finished = true
    }
}

/// gzip through zlib's `inflate` (never a hand-written inflater).
public enum Gzip {
    /// The most deflate can shrink data: 1032 to 1 (a gzip file of n bytes never holds more than 1032·n).
    public static let maximumRatio = 1032

    /// True when the bytes start with gzip's magic number 1f 8b.
    public static func isGzip(_ bytes: [UInt8]) -> Bool { bytes.count >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b }

    /// Decompresses a gzip stream (concatenated members included, junk after the last one refused: see
    /// `GzipReader`); `source` names it in errors. `limit` caps the output: more is an error, found at the first
    /// byte too many.
    public static func decompress(_ input: [UInt8], source: String, limit: Int = .max) throws -> [UInt8] {
        let reader = try GzipReader(MemoryByteSource(input), source: source)
        var output = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let want = Swift.min(chunk.count, limit == .max ? chunk.count : limit - output.count + 1)
            let n = try chunk.withUnsafeMutableBytes { try reader.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<want])) }
            if n == 0 { return output }
            guard output.count + n <= limit else {
                throw DataError.badGzip(source, reason: "decompresses to more than \(limit) bytes")
            }
            output += chunk[0..<n]
        }
    }

    /// Compresses bytes as a gzip stream (used to write test files).
    public static func compress(_ input: [UInt8], level: Int32 = 6) -> [UInt8] {
        var stream = z_stream()
        precondition(deflateInit2_(&stream, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY,
                                   ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK)
        defer { deflateEnd(&stream) }
        let bound = Int(deflateBound(&stream, uLong(input.count))) + 32
        var out = [UInt8](repeating: 0, count: bound)
        let written: Int = input.withUnsafeBufferPointer { inp in
            out.withUnsafeMutableBufferPointer { o in
                stream.next_in = UnsafeMutablePointer(mutating: inp.baseAddress)
                stream.avail_in = uInt(inp.count)
                stream.next_out = o.baseAddress
                stream.avail_out = uInt(bound)
                let status = deflate(&stream, Z_FINISH)
                precondition(status == Z_STREAM_END, "deflate failed: \(status)")
                return bound - Int(stream.avail_out)
            }
        }
        return Array(out[0..<written])
    }
}
