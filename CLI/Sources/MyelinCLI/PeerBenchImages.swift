import Foundation
import Myelin

/// The training images of a `bench peers` export kept on the host as one byte per pixel, as `myelin train` keeps
/// Fashion-MNIST (`Dataset(bytes:...)`), instead of as a Float32 tensor four times the size: the export's pixels are
/// the Float32 values nearest k/255 for bytes k, so each value v is stored as k = round(255·v) and a 256-entry
/// table gives back v itself, bit for bit (the table holds the values read, not recomputed ones). A batch becomes
/// a Float tensor on the device through the table, so the steps see exactly the values the file holds and train
/// as on the Float tensor. The convnets' whole-process peak memory then has the 47 MB of bytes, not 188 MB.
struct PeerBenchImages {
    private let bytes: [UInt8]
    private let table: [Float]
    let rowSize: Int

    /// Reads the raw Float32 file at `path` ([rows, rowSize]) in chunks of about a megabyte, or returns nil when a
    /// value is not a byte's value (outside [0, 1], or two different values round to the same byte), after which
    /// the caller loads the file as Floats. Throws `FileOptionError` naming the file when it cannot be read or has
    /// the wrong size.
    static func load(_ path: String, rows: Int, rowSize: Int) throws -> PeerBenchImages? {
        let count = rows * rowSize
        let file: ReadableFile
        do { file = try ReadableFile(URL(fileURLWithPath: path)) } catch let error as FileError {
            throw FileOptionError(message: "\(path): \(error.reason)")
        }
        guard file.size == count * 4 else {
            throw FileOptionError(message: "\(path): \(file.size) bytes, expected \(count * 4) for \(rows)×\(rowSize) Float32 values")
        }
        var table = [Float](repeating: -1, count: 256)
        var bytes = [UInt8](repeating: 0, count: count)
        var chunk = [Float](repeating: 0, count: 1 << 18)
        var done = 0, fits = true
        while done < count, fits {
            let n = Swift.min(chunk.count, count - done)
            let got = try chunk.withUnsafeMutableBytes { try file.readFully(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<(n * 4)])) }
            guard got == n * 4 else { throw FileOptionError(message: "\(path): cannot read past byte \(done * 4 + got)") }
            for i in 0..<n {
                let v = chunk[i]
                guard v >= 0, v <= 1 else { fits = false; break }
                let k = Int(v * 255 + 0.5)   // rounds as `rounded()` does for v >= 0, without a libm call
                if table[k] < 0 { table[k] = v } else if table[k].bitPattern != v.bitPattern { fits = false; break }
                bytes[done + i] = UInt8(k)
            }
            done += n
        }
        return fits ? PeerBenchImages(bytes: bytes, table: table, rowSize: rowSize) : nil
    }

    /// The images of `rows` (indices checked by the caller), in that order, as a Float tensor [rows.count, rowSize].
    func batch(_ rows: ArraySlice<Int>, on device: Device) throws -> Tensor {
        let s = rowSize
        let values = bytes.withUnsafeBufferPointer { src in
            table.withUnsafeBufferPointer { t in
                [Float](unsafeUninitializedCapacity: rows.count * s) { dst, initialized in
                    for (k, r) in rows.enumerated() {
                        for j in 0..<s { dst[k * s + j] = t[Int(src[r * s + j])] }
                    }
                    initialized = rows.count * s
                }
            }
        }
        return try Tensor(values, shape: [rows.count, s], on: device)
    }
}
