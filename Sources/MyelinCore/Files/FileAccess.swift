import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file that cannot be read or written, in words: the user's path, what was being done, and why
/// (`no such file or directory`, `permission denied`, `is a folder`, `not a regular file (a named pipe)`,
/// `no space left on the disk`, ...). Never a raw Foundation error or a hidden temporary file's name.
///
/// ```swift
/// do { _ = try ReadableFile(URL(fileURLWithPath: "/tmp")) } catch { print(error) }
/// // /tmp: cannot read the file (it is a folder, not a file)
/// ```
public struct FileError: Error, CustomStringConvertible, Equatable, Sendable {
    /// What was being done when the file failed.
    public enum Action: String, Sendable {
        /// Reading (opening or reading a file).
        case read = "cannot read the file"
        /// Writing (creating, writing or renaming a file into place).
        case write = "cannot write the file"
    }

    /// The path the user gave.
    public let path: String
    /// Whether reading or writing failed.
    public let action: Action
    /// Why, in words.
    public let reason: String
    /// The `errno` value behind the failure, when there is one.
    public let code: Int32?

    /// An error for `path` with the reason in words and, when there is one, the `errno` value behind it.
    public init(path: String, action: Action, reason: String, code: Int32? = nil) {
        self.path = path; self.action = action; self.reason = reason; self.code = code
    }

    /// The failure `errno` (`code`) means for `path`.
    public init(path: String, action: Action, errno code: Int32) {
        self.init(path: path, action: action, reason: FileError.words(errno: code), code: code)
    }

    /// Any error met while handling `path`, in words: `FileError`s stay as they are; Foundation's `CocoaError`s
    /// and POSIX errors are mapped to the same words as `errno` values.
    public init(path: String, action: Action, error: any Error) {
        if let e = error as? FileError { self = e; return }
        let ns = error as NSError
        if ns.domain == NSPOSIXErrorDomain {
            self.init(path: path, action: action, errno: Int32(ns.code)); return
        }
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            self.init(path: path, action: action, errno: Int32(underlying.code)); return
        }
        if let cocoa = error as? CocoaError {
            let reason: String
            switch cocoa.code {
            case .fileNoSuchFile, .fileReadNoSuchFile: reason = FileError.words(errno: ENOENT)
            case .fileReadNoPermission, .fileWriteNoPermission: reason = FileError.words(errno: EACCES)
            case .fileWriteOutOfSpace: reason = FileError.words(errno: ENOSPC)
            case .fileWriteVolumeReadOnly: reason = FileError.words(errno: EROFS)
            case .fileWriteFileExists: reason = FileError.words(errno: EEXIST)
            case .fileReadTooLarge: reason = "the file is too large"
            case .fileReadCorruptFile: reason = "the file is corrupt"
            case .fileReadInvalidFileName, .fileWriteInvalidFileName: reason = "invalid file name"
            default: reason = "error \(cocoa.code.rawValue)"
            }
            self.init(path: path, action: action, reason: reason); return
        }
        self.init(path: path, action: action, reason: "\(error)")
    }

    public var description: String { "\(path): \(action.rawValue) (\(reason))" }

    /// `errno` values in words (the ones files meet, in plain English; others as `strerror` says them).
    public static func words(errno code: Int32) -> String {
        switch code {
        case ENOENT: return "no such file or directory"
        case EACCES, EPERM: return "permission denied"
        case EISDIR: return "it is a folder, not a file"
        case ENOTDIR: return "a part of the path is not a folder"
        case ENOSPC: return "no space left on the disk (disk full)"
        case EDQUOT: return "disk quota exceeded"
        case EROFS: return "the file system is read-only"
        case EIO: return "input/output error (read or write error on the device)"
        case ENAMETOOLONG: return "the file name is too long"
        case ELOOP: return "too many levels of symbolic links"
        case EMFILE, ENFILE: return "too many open files"
        case EEXIST: return "the file already exists"
        case ETXTBSY: return "the file is busy"
        case EFBIG: return "the file is too large"
        case ENXIO, ENODEV: return "no such device"
        default: return String(cString: strerror(code))
        }
    }

    /// Words for a file type other than a regular file or a folder (`st_mode & S_IFMT`).
    static func kindWords(mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFDIR: return "it is a folder, not a file"
        case S_IFIFO: return "not a regular file (a named pipe, FIFO)"
        case S_IFCHR: return "not a regular file (a character device)"
        case S_IFBLK: return "not a regular file (a block device)"
        case S_IFSOCK: return "not a regular file (a socket)"
        default: return "not a regular file"
        }
    }
}

/// Anything bytes can be read from in order: a `ReadableFile`, bytes in memory, a decompressing stream.
public protocol ByteSource: AnyObject {
    /// Reads up to `buffer.count` bytes into `buffer`; returns how many (0 only at the end).
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
}

extension ByteSource {
    /// Reads until `buffer` is full or the source ends; returns how many bytes were read.
    public func readFully(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        var done = 0
        while done < buffer.count {
            let n = try read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...]))
            if n == 0 { break }
            done += n
        }
        return done
    }

    /// Up to `count` bytes (fewer only when the source ends first).
    public func read(count: Int) throws -> [UInt8] {
        var got = 0
        let bytes = try [UInt8](unsafeUninitializedCapacity: count) { out, initialized in
            got = try readFully(into: UnsafeMutableRawBufferPointer(out))
            initialized = got
        }
        return bytes
    }
}

/// Bytes in memory as a `ByteSource`.
public final class MemoryByteSource: ByteSource {
    private let bytes: [UInt8]
    private var position = 0
    /// A source that reads `bytes` from the start.
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    /// The bytes not read yet.
    public var remaining: Int { bytes.count - position }
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = Swift.min(buffer.count, bytes.count - position)
        guard n > 0 else { return 0 }
        bytes.withUnsafeBytes { src in
            buffer.baseAddress!.copyMemory(from: src.baseAddress! + position, byteCount: n)
        }
        position += n
        return n
    }
}

/// A regular file opened for reading: the one way Myelin opens data files and checkpoints, so that every
/// failure says what it is, naming the user's path: no such file or directory, permission denied (the file or
/// a folder on the path), it is a folder, not a regular file (a FIFO, a device — never opened, so a named pipe
/// cannot block the reader), or a read error.
///
/// ```swift
/// let file = try ReadableFile(URL(fileURLWithPath: "train.csv"))
/// let bytes = try file.readAll()
/// ```
public final class ReadableFile: ByteSource {
    /// The path as the user gave it.
    public let path: String
    /// The size in bytes when the file was opened.
    public let size: Int
    private let descriptor: Int32

    /// Opens `url` for reading; a `FileError` saying why when it cannot be.
    public init(_ url: URL) throws {
        let path = url.path
        self.path = path
        var info = stat()
        guard stat(path, &info) == 0 else { throw FileError(path: path, action: .read, errno: errno) }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw FileError(path: path, action: .read, reason: FileError.kindWords(mode: info.st_mode))
        }
        // O_NONBLOCK: should the path become a FIFO between stat and open, opening it does not wait for a writer.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw FileError(path: path, action: .read, errno: errno) }
        var opened = stat()
        guard fstat(fd, &opened) == 0, opened.st_mode & S_IFMT == S_IFREG else {
            let e = errno
            close(fd)
            throw FileError(path: path, action: .read, reason: opened.st_mode & S_IFMT == S_IFREG ? FileError.words(errno: e) : FileError.kindWords(mode: opened.st_mode))
        }
        descriptor = fd
        size = Int(opened.st_size)
    }

    deinit { close(descriptor) }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard buffer.count > 0 else { return 0 }
        while true {
            let n = systemRead(descriptor, buffer.baseAddress, buffer.count)
            if n >= 0 { return n }
            if errno == EINTR || errno == EAGAIN { continue }
            throw FileError(path: path, action: .read, errno: errno)
        }
    }

    /// The rest of the file (all of it when nothing was read yet).
    public func readAll() throws -> [UInt8] {
        var out = try read(count: size)
        // A file that grew since it was opened: read the rest too.
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = try chunk.withUnsafeMutableBytes { try read(into: $0) }
            if n == 0 { return out }
            out += chunk[0..<n]
        }
    }

    /// The whole file at `url`: `ReadableFile(url).readAll()`.
    public static func contents(of url: URL) throws -> [UInt8] { try ReadableFile(url).readAll() }
}

/// `read(2)` (a method named `read` hides the C function inside the class).
private func systemRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int { read(fd, buffer, count) }
