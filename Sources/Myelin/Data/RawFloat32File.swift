import Foundation
#if canImport(Glibc)
import Glibc
#endif

extension Tensor {
    /// A tensor read from a file of raw little-endian Float32 values in row-major order (what NumPy's
    /// `array.astype("<f4").tofile(path)` writes), laid out as `shape`. The file is read and uploaded in chunks
    /// of about a megabyte, so its values are never held twice in host memory (a 188 MB training set costs
    /// 188 MB, not three times that). Throws `DataError` naming the file when it cannot be read or its size is
    /// not `4 · shape's element count` bytes.
    ///
    /// ```swift
    /// let images = try Tensor.load(float32File: URL(fileURLWithPath: "train-x.f32"), shape: [60000, 784])
    /// ```
    public static func load(float32File url: URL, shape: [Int], on device: Device = .default) throws -> Tensor {
        let path = url.path
        guard shape.allSatisfy({ $0 >= 0 }) else { throw DataError.invalid(path, reason: "shape \(shape) has a negative size") }
        guard let count = checkedElementCount(shape), count <= Int.max / 4 else {
            throw DataError.invalid(path, reason: "shape \(shape) has more Float32 values than a file can hold")
        }
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw DataError.missingFile(path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw DataError.missingFile(path, reason: String(cString: strerror(errno))) }
        let size = Int(info.st_size)
        guard size == count * 4 else {
            throw DataError.invalid(path, reason: "\(size) bytes, expected \(count * 4) for Float32 values of shape \(shape)")
        }
        let tensor = Tensor.empty(shape, on: device)
        guard count > 0 else { return tensor }
        let rowSize = shape.count > 1 ? shape.dropFirst().reduce(1, *) : 1
        var failure: DataError?
        tensor.uploadRows(count / rowSize, rowSize: rowSize) { _, chunk in
            guard failure == nil else { return }
            let raw = UnsafeMutableRawBufferPointer(chunk)
            var done = 0
            while done < raw.count {
                let n = read(fd, raw.baseAddress! + done, raw.count - done)
                if n < 0, errno == EINTR { continue }
                if n <= 0 {
                    failure = n < 0 ? .missingFile(path, reason: String(cString: strerror(errno)))
                        : .truncated(path, expected: size, got: Int(lseek(fd, 0, SEEK_CUR)))
                    return
                }
                done += n
            }
        }
        if let failure { throw failure }
        return tensor
    }
}
