import Foundation
import Testing
@testable import Myelin

// A protocol-buffer decoder and a TFRecord reader written for the tests, independently of the library's encoder,
// so that what Myelin writes (ONNX models, TensorBoard event files) is checked without Python.

/// One field of a decoded message: its number, its wire type and its payload (the varint, the fixed-width bits,
/// or the length-delimited bytes).
struct DecodedField {
    let number: Int
    let wireType: Int
    var integer: UInt64 = 0
    var data: [UInt8] = []

    var int64: Int64 { Int64(bitPattern: integer) }
    var float: Float { Float(bitPattern: UInt32(truncatingIfNeeded: integer)) }
    var double: Double { Double(bitPattern: integer) }
    var string: String { String(decoding: data, as: UTF8.self) }
    func message() throws -> [DecodedField] { try decodeProtobuf(data) }
    /// A packed repeated float field's values.
    var packedFloats: [Float] {
        stride(from: 0, to: data.count - 3, by: 4).map { i in
            Float(bitPattern: (0..<4).reduce(UInt32(0)) { $0 | UInt32(data[i + $1]) << (8 * UInt32($1)) })
        }
    }
    /// A packed repeated double field's values.
    var packedDoubles: [Double] {
        stride(from: 0, to: data.count - 7, by: 8).map { i in
            Double(bitPattern: (0..<8).reduce(UInt64(0)) { $0 | UInt64(data[i + $1]) << (8 * UInt64($1)) })
        }
    }
    /// A packed repeated varint field's values (int64).
    var packedInts: [Int64] {
        get throws {
            var reader = ByteReader(bytes: data)
            var out: [Int64] = []
            while !reader.atEnd { out.append(Int64(bitPattern: try reader.varint())) }
            return out
        }
    }
}

struct ProtobufDecodeError: Error, CustomStringConvertible {
    let description: String
}

/// Reads bytes front to back.
struct ByteReader {
    let bytes: [UInt8]
    var position = 0
    var atEnd: Bool { position >= bytes.count }

    mutating func take(_ n: Int) throws -> [UInt8] {
        guard n >= 0, position + n <= bytes.count else {
            throw ProtobufDecodeError(description: "\(n) bytes wanted at \(position), \(bytes.count - position) left")
        }
        defer { position += n }
        return Array(bytes[position..<position + n])
    }

    mutating func varint() throws -> UInt64 {
        var value: UInt64 = 0
        for shift in stride(from: 0, to: 70, by: 7) {
            let b = try take(1)[0]
            guard shift < 64 else { throw ProtobufDecodeError(description: "varint longer than 10 bytes") }
            value |= UInt64(b & 0x7F) << UInt64(shift)
            if b & 0x80 == 0 { return value }
        }
        throw ProtobufDecodeError(description: "varint longer than 10 bytes")
    }

    mutating func littleEndian(_ n: Int) throws -> UInt64 {
        try take(n).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
    }
}

/// The fields of a message, in order.
func decodeProtobuf(_ bytes: [UInt8]) throws -> [DecodedField] {
    var r = ByteReader(bytes: bytes)
    var fields: [DecodedField] = []
    while !r.atEnd {
        let key = try r.varint()
        var f = DecodedField(number: Int(key >> 3), wireType: Int(key & 7))
        switch f.wireType {
        case 0: f.integer = try r.varint()
        case 1: f.integer = try r.littleEndian(8)
        case 2: f.data = try r.take(Int(try r.varint()))
        case 5: f.integer = try r.littleEndian(4)
        default: throw ProtobufDecodeError(description: "wire type \(f.wireType) at byte \(r.position)")
        }
        guard f.number > 0 else { throw ProtobufDecodeError(description: "field number 0") }
        fields.append(f)
    }
    return fields
}

extension Array where Element == DecodedField {
    /// Every field numbered `n`.
    func all(_ n: Int) -> [DecodedField] { filter { $0.number == n } }
    /// The last field numbered `n` (protobuf's rule for a repeated singular field), or nil.
    func one(_ n: Int) -> DecodedField? { last { $0.number == n } }
}

/// CRC-32C computed bit by bit (no table), to check the library's table-driven one independently.
func bitwiseCRC32C(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for b in bytes {
        crc ^= UInt32(b)
        for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
    }
    return ~crc
}

/// TFRecord's mask of a CRC.
func maskCRC(_ crc: UInt32) -> UInt32 { ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8 }

/// The records of a TFRecord file, every length and data checksum checked (with `bitwiseCRC32C`). A record cut
/// short at the end is an error unless `allowTruncatedTail`, which drops it (as TensorBoard's reader does).
func readTFRecords(_ bytes: [UInt8], allowTruncatedTail: Bool = false) throws -> [[UInt8]] {
    var r = ByteReader(bytes: bytes)
    var records: [[UInt8]] = []
    while !r.atEnd {
        let start = r.position
        do {
            let lengthBytes = try r.take(8)
            let length = lengthBytes.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
            guard try UInt32(r.littleEndian(4)) == maskCRC(bitwiseCRC32C(lengthBytes)) else {
                throw ProtobufDecodeError(description: "bad length checksum at byte \(start)")
            }
            let data = try r.take(Int(length))
            guard try UInt32(r.littleEndian(4)) == maskCRC(bitwiseCRC32C(data)) else {
                throw ProtobufDecodeError(description: "bad data checksum in the record at byte \(start)")
            }
            records.append(data)
        } catch let error as ProtobufDecodeError where allowTruncatedTail && error.description.contains("wanted") {
            break
        }
    }
    return records
}

/// An event of a TensorBoard event file, decoded.
struct DecodedEvent {
    var wallTime = 0.0
    var step: Int64 = 0
    var fileVersion: String?
    /// Scalars (tag, simple_value).
    var scalars: [(String, Float)] = []
    /// Histograms (tag, HistogramProto fields).
    var histograms: [(String, [DecodedField])] = []

    init(_ bytes: [UInt8]) throws {
        let fields = try decodeProtobuf(bytes)
        wallTime = fields.one(1)?.double ?? 0
        step = fields.one(2)?.int64 ?? 0
        fileVersion = fields.one(3)?.string
        if let summary = try fields.one(5)?.message() {
            for value in try summary.all(1).map({ try $0.message() }) {
                let tag = value.one(1)?.string ?? ""
                if let simple = value.one(2) { scalars.append((tag, simple.float)) }
                if let histo = value.one(5) { histograms.append((tag, try histo.message())) }
            }
        }
    }
}

/// The events of every event file in `logDir` (files in name order).
func readEventFiles(_ logDir: URL, allowTruncatedTail: Bool = false) throws -> [DecodedEvent] {
    let names = try FileManager.default.contentsOfDirectory(atPath: logDir.path).filter { $0.contains("tfevents") }.sorted()
    return try names.flatMap { name in
        try readTFRecords([UInt8](Data(contentsOf: logDir.appendingPathComponent(name))),
                          allowTruncatedTail: allowTruncatedTail).map(DecodedEvent.init)
    }
}
