import Foundation

// The protocol-buffer wire format, written by hand for the two formats Myelin writes that use it: ONNX models
// (`Layer.exportONNX`) and TensorBoard event files (`TensorBoardLogger`). Only encoding, and only what those
// messages need: varints, length-delimited fields (strings, bytes, nested messages, packed repeated numbers),
// 32- and 64-bit fixed-width numbers.
//
// Why not apple/swift-protobuf with code generated from onnx.proto and event.proto: the encoder below is about
// 150 lines with no dependency, while swift-protobuf adds a package whose build (the library and its plugin) took
// about 10 minutes on this project's 2-core machines, to every build of the library, for a few dozen fields we
// only ever write. The field numbers are written out where the messages are built (ONNXExport.swift,
// TensorBoard.swift), each with the .proto message it belongs to.

/// Writes protocol-buffer messages in the wire format (https://protobuf.dev/programming-guides/encoding/).
/// Fields are appended in the order they are written; a nested message is built by a closure and written
/// length-delimited. Zero values are written as given (callers skip proto3 defaults themselves when they wish).
///
/// ```swift
/// var w = ProtobufWriter()
/// w.string(1, "tag")                         // field 1, length-delimited
/// w.message(5) { $0.double(1, 0.5) }         // field 5, a nested message with a fixed64 field 1
/// let bytes = w.bytes
/// ```
struct ProtobufWriter {
    /// The wire types of the protocol-buffer encoding.
    enum WireType: UInt64 {
        /// int32, int64, uint32, uint64, bool, enum: a varint.
        case varint = 0
        /// fixed64, sfixed64, double: 8 bytes little-endian.
        case fixed64 = 1
        /// string, bytes, nested messages, packed repeated fields: a varint length, then the bytes.
        case lengthDelimited = 2
        /// fixed32, sfixed32, float: 4 bytes little-endian.
        case fixed32 = 5
    }

    /// The encoded message so far.
    private(set) var bytes: [UInt8] = []

    /// An empty message.
    init() {}

    /// `value` as a base-128 varint: 7 bits per byte, least significant group first, the high bit set on every
    /// byte but the last.
    mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    /// The key of field `field`: (field << 3) | wire type.
    mutating func key(_ field: Int, _ type: WireType) {
        precondition(field > 0 && field < 1 << 29, "protobuf field numbers are in 1..<2^29, got \(field)")
        varint(UInt64(field) << 3 | type.rawValue)
    }

    /// An int64/int32/enum field: a negative value is written as its 64-bit two's complement (10 bytes), as
    /// protobuf does for int32 and int64 (not zigzag, which is sint64).
    mutating func int(_ field: Int, _ value: Int64) {
        key(field, .varint)
        varint(UInt64(bitPattern: value))
    }

    /// A uint64 field.
    mutating func uint(_ field: Int, _ value: UInt64) {
        key(field, .varint)
        varint(value)
    }

    /// A `float` field: 4 bytes little-endian.
    mutating func float(_ field: Int, _ value: Float) {
        key(field, .fixed32)
        appendFixed32(value.bitPattern)
    }

    /// A `double` field: 8 bytes little-endian.
    mutating func double(_ field: Int, _ value: Double) {
        key(field, .fixed64)
        appendFixed64(value.bitPattern)
    }

    /// A `bytes` field.
    mutating func bytes(_ field: Int, _ value: [UInt8]) {
        key(field, .lengthDelimited)
        varint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    /// A `string` field (UTF-8).
    mutating func string(_ field: Int, _ value: String) {
        bytes(field, Array(value.utf8))
    }

    /// A nested message built by `build`, length-delimited.
    mutating func message(_ field: Int, _ build: (inout ProtobufWriter) -> Void) {
        var inner = ProtobufWriter()
        build(&inner)
        bytes(field, inner.bytes)
    }

    /// A packed repeated `float` field: one length-delimited field of 4-byte little-endian values (nothing for
    /// an empty list, as protobuf writes it).
    mutating func packedFloats(_ field: Int, _ values: [Float]) {
        guard !values.isEmpty else { return }
        key(field, .lengthDelimited)
        varint(UInt64(values.count * 4))
        bytes.reserveCapacity(bytes.count + values.count * 4)
        for v in values { appendFixed32(v.bitPattern) }
    }

    /// A packed repeated `double` field: 8-byte little-endian values.
    mutating func packedDoubles(_ field: Int, _ values: [Double]) {
        guard !values.isEmpty else { return }
        key(field, .lengthDelimited)
        varint(UInt64(values.count * 8))
        for v in values { appendFixed64(v.bitPattern) }
    }

    /// A packed repeated `int64` field: the values as varints (two's complement for negative ones).
    mutating func packedInts(_ field: Int, _ values: [Int64]) {
        guard !values.isEmpty else { return }
        var inner = ProtobufWriter()
        for v in values { inner.varint(UInt64(bitPattern: v)) }
        bytes(field, inner.bytes)
    }

    private mutating func appendFixed32(_ v: UInt32) {
        for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: v >> UInt32(shift))) }
    }

    private mutating func appendFixed64(_ v: UInt64) {
        for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: v >> UInt64(shift))) }
    }
}

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of TFRecord files, and TFRecord's masked
/// form of it.
enum CRC32C {
    /// The byte-wise lookup table of the reflected polynomial.
    private static let table: [UInt32] = (0..<256).map { i -> UInt32 in
        var c = UInt32(i)
        for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }

    /// The CRC-32C of `bytes` ("123456789" gives 0xE3069283).
    static func checksum<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        var crc: UInt32 = 0xFFFF_FFFF
        for b in bytes { crc = table[Int((crc ^ UInt32(b)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }

    /// TFRecord's masked CRC: the checksum rotated right by 15 bits plus 0xa282ead8 (so that a CRC of data that
    /// itself holds CRCs is not trivially related to them).
    static func masked<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        let crc = checksum(bytes)
        return ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }
}

/// TFRecord framing, the container of TensorBoard's event files: each record is its length (uint64 little
/// endian), the masked CRC-32C of those 8 bytes (uint32), the data, and the masked CRC-32C of the data.
enum TFRecord {
    /// One record around `data`.
    static func frame(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(data.count + 16)
        let length = UInt64(data.count)
        let lengthBytes = (0..<8).map { UInt8(truncatingIfNeeded: length >> UInt64(8 * $0)) }
        out += lengthBytes
        out += littleEndian(CRC32C.masked(lengthBytes))
        out += data
        out += littleEndian(CRC32C.masked(data))
        return out
    }

    private static func littleEndian(_ v: UInt32) -> [UInt8] {
        (0..<4).map { UInt8(truncatingIfNeeded: v >> UInt32(8 * $0)) }
    }
}
