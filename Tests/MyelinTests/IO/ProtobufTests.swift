import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// The hand-written protobuf encoder, CRC-32C and TFRecord framing against known bytes and the test-side decoder.
struct ProtobufEncoderTests {
    @Test func knownBytes() {
        // The examples of https://protobuf.dev/programming-guides/encoding/.
        var w = ProtobufWriter()
        w.int(1, 150)
        #expect(w.bytes == [0x08, 0x96, 0x01])
        w = ProtobufWriter()
        w.string(2, "testing")
        #expect(w.bytes == [0x12, 0x07, 0x74, 0x65, 0x73, 0x74, 0x69, 0x6E, 0x67])
        w = ProtobufWriter()
        w.varint(300)
        #expect(w.bytes == [0xAC, 0x02])
        // int64 -1: ten bytes of two's complement.
        w = ProtobufWriter()
        w.int(1, -1)
        #expect(w.bytes == [0x08] + [UInt8](repeating: 0xFF, count: 9) + [0x01])
        // float 1.0 (fixed32) and double -2.5 (fixed64), little endian.
        w = ProtobufWriter()
        w.float(1, 1)
        w.double(2, -2.5)
        #expect(w.bytes == [0x0D, 0x00, 0x00, 0x80, 0x3F, 0x11, 0, 0, 0, 0, 0, 0, 0x04, 0xC0])
        // packed repeated int32 [3, 270, 86942] in field 4 (the guide's example).
        w = ProtobufWriter()
        w.packedInts(4, [3, 270, 86942])
        #expect(w.bytes == [0x22, 0x06, 0x03, 0x8E, 0x02, 0x9E, 0xA7, 0x05])
        // A nested message: field 3 holding field 1 = 150.
        w = ProtobufWriter()
        w.message(3) { $0.int(1, 150) }
        #expect(w.bytes == [0x1A, 0x03, 0x08, 0x96, 0x01])
        // Empty packed lists write nothing.
        w = ProtobufWriter()
        w.packedFloats(4, []); w.packedDoubles(5, []); w.packedInts(6, [])
        #expect(w.bytes.isEmpty)
    }

    @Test func roundTripThroughTheTestDecoder() throws {
        let floats: [Float] = [0, -1.5, .pi, 1e-30, -3e38, 7]
        let doubles: [Double] = [0.1, -2, 1e300]
        var w = ProtobufWriter()
        w.uint(1, UInt64.max)
        w.packedFloats(2, floats)
        w.packedDoubles(3, doubles)
        w.message(4) { m in m.string(1, "ünïcode"); m.int(2, -123_456_789_012) }
        w.bytes(536_870_911, [1, 2, 3])   // the largest field number
        let f = try decodeProtobuf(w.bytes)
        #expect(f.map(\.number) == [1, 2, 3, 4, 536_870_911])
        #expect(f[0].integer == UInt64.max && f[0].wireType == 0)
        #expect(f[1].packedFloats == floats && f[1].wireType == 2)
        #expect(f[2].packedDoubles == doubles)
        let inner = try f[3].message()
        #expect(inner.one(1)?.string == "ünïcode" && inner.one(2)?.int64 == -123_456_789_012)
        #expect(f[4].data == [1, 2, 3])
    }

    @Test func crc32cKnownVectors() {
        // RFC 3720 (iSCSI) B.4 test vectors and the standard check value.
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum((0..<32).map { UInt8($0) }) == 0x46DD_794E)
        #expect(CRC32C.checksum((0..<32).map { UInt8(31 - $0) }) == 0x113F_DB5C)
        #expect(CRC32C.checksum([]) == 0)
        // The table-driven checksum equals the bitwise one of the test support on odd lengths.
        var g = SeededGenerator(seed: 5)
        for n in [1, 7, 33, 1000] {
            let bytes = (0..<n).map { _ in UInt8(truncatingIfNeeded: g.next()) }
            #expect(CRC32C.checksum(bytes) == bitwiseCRC32C(bytes))
            #expect(CRC32C.masked(bytes) == maskCRC(bitwiseCRC32C(bytes)))
        }
    }

    @Test func tfRecordFraming() throws {
        let payloads: [[UInt8]] = [[], [42], Array("brain.Event:2".utf8), [UInt8](repeating: 7, count: 300)]
        let file = payloads.flatMap(TFRecord.frame)
        #expect(file.count == payloads.reduce(0) { $0 + $1.count + 16 })
        #expect(try readTFRecords(file) == payloads)
        // The first record's header: length 0 (8 bytes), then the masked CRC of those bytes.
        #expect(Array(file[0..<8]) == [UInt8](repeating: 0, count: 8))
        let crc = maskCRC(bitwiseCRC32C([UInt8](repeating: 0, count: 8)))
        #expect(Array(file[8..<12]) == (0..<4).map { UInt8(truncatingIfNeeded: crc >> (8 * UInt32($0))) })
        // A flipped data byte is caught by the reader.
        var bad = file
        bad[16 + 16 + 12] ^= 1
        #expect(throws: ProtobufDecodeError.self) { try readTFRecords(bad) }
        // A record cut short at the end: dropped when allowed, as TensorBoard's reader does.
        #expect(try readTFRecords(Array(file.dropLast(5)), allowTruncatedTail: true) == Array(payloads.dropLast()))
    }
}
