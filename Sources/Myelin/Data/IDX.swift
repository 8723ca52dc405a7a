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
    /// Reads and decodes an IDX file; gzip data (starting with 1f 8b) is decompressed with zlib first.
    public static func read(_ url: URL) throws -> IDXArray {
        let bytes = try readFile(url)
        return try decode(bytes, source: url.path)
    }

    /// Decodes IDX bytes (raw or gzip); `source` names the data in errors.
    public static func decode(_ bytes: [UInt8], source: String) throws -> IDXArray {
        var raw = Gzip.isGzip(bytes) ? try Gzip.decompress(bytes, source: source) : bytes
        guard raw.count >= 4 else { throw DataError.truncated(source, expected: 4, got: raw.count) }
        let magic = raw[0..<4].map { String(format: "%02x", $0) }.joined()
        guard raw[0] == 0, raw[1] == 0, let type = IDXType(rawValue: raw[2]), raw[3] >= 1 else {
            throw DataError.badMagic(source, found: "0x" + magic,
                                     expected: "0x0000TTNN (TT an IDX type such as 08 for bytes, NN the number of dimensions)")
        }
        let rank = Int(raw[3])
        let headerSize = 4 + 4 * rank
        guard raw.count >= headerSize else { throw DataError.truncated(source, expected: headerSize, got: raw.count) }
        var shape: [Int] = []
        var elements = 1
        for d in 0..<rank {
            let o = 4 + 4 * d
            let n = Int(UInt32(raw[o]) << 24 | UInt32(raw[o + 1]) << 16 | UInt32(raw[o + 2]) << 8 | UInt32(raw[o + 3]))
            shape.append(n)
            let (p, overflow) = elements.multipliedReportingOverflow(by: n)
            guard !overflow, p <= Int(Int32.max) * 16 else {
                throw DataError.invalid(source, reason: "dimensions \(shape) are too large")
            }
            elements = p
        }
        let expected = headerSize + elements * type.size
        guard raw.count >= expected else { throw DataError.truncated(source, expected: expected, got: raw.count) }
        guard raw.count == expected else {
            throw DataError.invalid(source, reason: "\(raw.count - expected) bytes after the data the header announces (\(shape))")
        }
        raw.removeSubrange(0..<headerSize)   // in place: no second copy of the payload
        return IDXArray(shape: shape, type: type, payload: raw)
    }

    /// The IDX bytes of unsigned-byte data with the given shape (for writing small test files).
    public static func encode(uint8 values: [UInt8], shape: [Int]) -> [UInt8] {
        precondition(values.count == shape.reduce(1, *), "IDX.encode: \(values.count) values for shape \(shape)")
        var out: [UInt8] = [0, 0, IDXType.uint8.rawValue, UInt8(shape.count)]
        for d in shape { out += [UInt8(d >> 24 & 0xff), UInt8(d >> 16 & 0xff), UInt8(d >> 8 & 0xff), UInt8(d & 0xff)] }
        return out + values
    }

    static func readFile(_ url: URL) throws -> [UInt8] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw DataError.missingFile(url.path, reason: "no such file")
        }
        guard !isDir.boolValue else { throw DataError.missingFile(url.path, reason: "it is a folder") }
        do {
            return [UInt8](try Data(contentsOf: url))
        } catch {
            throw DataError.missingFile(url.path, reason: "\(error.localizedDescription)")
        }
    }
}

/// gzip through zlib's `inflate` (never a hand-written inflater).
public enum Gzip {
    /// True when the bytes start with gzip's magic number 1f 8b.
    public static func isGzip(_ bytes: [UInt8]) -> Bool { bytes.count >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b }

    /// Decompresses a gzip stream (concatenated members included); `source` names it in errors.
    public static func decompress(_ input: [UInt8], source: String) throws -> [UInt8] {
        var stream = z_stream()
        guard inflateInit2_(&stream, 16 + MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw DataError.badGzip(source, reason: "zlib could not start")
        }
        defer { inflateEnd(&stream) }
        var output = [UInt8]()
        // gzip's last four bytes hold the uncompressed size (mod 2^32, little-endian, of the last member):
        // reserve exactly that when it is plausible, so the output never grows by doubling.
        let n = input.count
        let trailerSize = n >= 18 ? Int(UInt32(input[n - 4]) | UInt32(input[n - 3]) << 8 | UInt32(input[n - 2]) << 16 | UInt32(input[n - 1]) << 24) : 0
        output.reserveCapacity(trailerSize >= n / 2 && trailerSize <= n * 1032 ? trailerSize : n * 4)
        let chunk = 1 << 20
        var buffer = [UInt8](repeating: 0, count: chunk)
        try input.withUnsafeBufferPointer { inp in
            stream.next_in = UnsafeMutablePointer(mutating: inp.baseAddress)
            stream.avail_in = uInt(inp.count)
            while true {
                let status: Int32 = buffer.withUnsafeMutableBufferPointer { out in
                    stream.next_out = out.baseAddress
                    stream.avail_out = uInt(chunk)
                    return inflate(&stream, Z_NO_FLUSH)
                }
                output.append(contentsOf: buffer[0..<(chunk - Int(stream.avail_out))])
                switch status {
                case Z_STREAM_END:
                    // Another gzip member may follow (as `cat a.gz b.gz` makes).
                    if stream.avail_in > 0, isGzip(Array(UnsafeBufferPointer(start: stream.next_in, count: min(2, Int(stream.avail_in))))) {
                        guard inflateReset(&stream) == Z_OK else { throw DataError.badGzip(source, reason: "zlib could not reset") }
                        continue
                    }
                    return
                case Z_OK:
                    continue
                case Z_BUF_ERROR:
                    if stream.avail_in == 0 { throw DataError.badGzip(source, reason: "the compressed stream is cut short (truncated file)") }
                    continue
                default:
                    let message = stream.msg.map { String(cString: $0) } ?? "zlib error \(status)"
                    throw DataError.badGzip(source, reason: message)
                }
            }
        }
        return output
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
