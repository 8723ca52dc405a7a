import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes files so that a crash never leaves a half-written file in place of a good one: the bytes go to a
/// hidden temporary file beside the target (`.<name>.<pid>.<random>.tmp`), are flushed to the disk, then the
/// temporary file is renamed over the target. Missing folders on the way are created.
///
/// A process killed in the middle of a write leaves its temporary file behind; the next write to the same
/// target removes such leftovers (only files of exactly that name pattern whose process is gone).
/// Every failure is a `FileError` naming the target path (never the temporary file) and the reason in words.
///
/// ```swift
/// try AtomicFile.checkWritable(url)          // before a long run: fails in a second, not after training
/// try AtomicFile.write(Data("hello".utf8), to: url)
/// ```
public enum AtomicFile {
    /// Writes `data` to a temporary file in the same folder, flushes it, then renames it over `url`.
    public static func write(_ data: Data, to url: URL) throws {
        let path = url.path
        let dir = url.deletingLastPathComponent()
        try checkTarget(path)
        try makeFolders(dir, for: path)
        removeStaleTemporaries(of: url)
        let tmp = temporaryPath(for: url)
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
        guard fd >= 0 else { throw FileError(path: path, action: .write, errno: errno) }
        var closed = false
        do {
            try data.withUnsafeBytes { raw in
                var done = 0
                while done < raw.count {
                    let n = systemWrite(fd, raw.baseAddress! + done, raw.count - done)
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw FileError(path: path, action: .write, errno: errno)
                    }
                    done += n
                }
            }
            guard fsync(fd) == 0 else { throw FileError(path: path, action: .write, errno: errno) }
            closed = true
            guard close(fd) == 0 else { throw FileError(path: path, action: .write, errno: errno) }
            guard rename(tmp, path) == 0 else { throw FileError(path: path, action: .write, errno: errno) }
        } catch {
            if !closed { close(fd) }
            unlink(tmp)
            throw error
        }
        // Make the rename itself durable (best effort: some file systems refuse fsync on folders).
        let dirFD = open(dir.path, O_RDONLY | O_CLOEXEC | O_DIRECTORY)
        if dirFD >= 0 { fsync(dirFD); close(dirFD) }
    }

    /// Checks, without writing anything in its place, that `write(_:to:)` can write `url`: the path is not a
    /// folder or another non-regular file (a FIFO, a device), its folder exists (or can be created: the
    /// nearest existing folder above it is writable) and a file can be created in it. Call it before a long
    /// training run so a bad output path fails at once; the error is a `FileError` naming `url`'s path.
    public static func checkWritable(_ url: URL) throws {
        let path = url.path
        try checkTarget(path)
        var dir = url.deletingLastPathComponent()
        // The nearest folder that exists; the ones below it will be created by `write`.
        while try !folderExists(dir, for: path) { dir = dir.deletingLastPathComponent() }
        if dir.path == url.deletingLastPathComponent().path {
            // The folder exists: create (and remove) a probe file in it, which also catches read-only mounts.
            let probe = temporaryPath(for: url)
            let fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
            guard fd >= 0 else { throw FileError(path: path, action: .write, errno: errno) }
            close(fd)
            unlink(probe)
        } else if access(dir.path, W_OK | X_OK) != 0 {
            throw FileError(path: path, action: .write, reason: "cannot create the folder \(url.deletingLastPathComponent().path): \(FileError.words(errno: errno)) in \(dir.path)")
        }
    }

    /// The result of `write(_:to:rescueFolders:)`.
    public enum Outcome: Equatable, Sendable {
        /// Written where asked.
        case written
        /// The intended path failed (`because`); the data was written to `to` instead.
        case rescued(to: URL, because: FileError)
    }

    /// Folders a rescued file goes to, in order: the current folder, then the temporary folder.
    public static var defaultRescueFolders: [URL] {
        [URL(fileURLWithPath: FileManager.default.currentDirectoryPath), FileManager.default.temporaryDirectory]
    }

    /// Writes `data` to `url`; when that fails, writes it to a new file `rescued-<time>-<name>` in the first of
    /// `rescueFolders` that works, so that nothing is lost (e.g. a model trained for hours and a `--save` path
    /// that became unwritable). Says where through the `Outcome`; throws the original error (a `FileError`
    /// naming `url`) only when every folder fails too, and any error that is not a `FileError` at once.
    ///
    /// ```swift
    /// if case .rescued(let place, let why) = try AtomicFile.write(bytes, to: url, rescueFolders: AtomicFile.defaultRescueFolders) {
    ///     print("\(why); saved to \(place.path) instead")
    /// }
    /// ```
    public static func write(_ data: Data, to url: URL, rescueFolders: [URL]) throws -> Outcome {
        try rescuing(url, rescueFolders: rescueFolders) { try write(data, to: $0) }
    }

    /// Runs `write` on `url`; when it throws, runs it on a new file `rescued-<time>-<name>` in the first of
    /// `rescueFolders` where it succeeds (see `write(_:to:rescueFolders:)`). For writers that encode and write
    /// in one call, such as `TrainingCheckpoint.save` or `LossPlot.write`.
    public static func rescuing(_ url: URL, rescueFolders: [URL] = defaultRescueFolders,
                                _ write: (URL) throws -> Void) throws -> Outcome {
        do {
            try write(url)
            return .written
        } catch {
            // Only a file that cannot be written is rescued; anything else (bad data) fails the same anywhere.
            guard let cause = error as? FileError else { throw error }
            let stamp = String(Int(Date().timeIntervalSince1970))
            for folder in rescueFolders {
                var candidate = folder.appendingPathComponent("rescued-\(stamp)-\(url.lastPathComponent)")
                var k = 1
                while FileManager.default.fileExists(atPath: candidate.path) {
                    k += 1
                    candidate = folder.appendingPathComponent("rescued-\(stamp)-\(k)-\(url.lastPathComponent)")
                }
                if (try? write(candidate)) != nil { return .rescued(to: candidate, because: cause) }
            }
            throw cause
        }
    }

    // MARK: temporary files

    /// The hidden temporary file a write to `url` by this process uses: `.<name>.<pid>.<random>.tmp`.
    static func temporaryPath(for url: URL) -> String {
        url.deletingLastPathComponent().appendingPathComponent(
            ".\(url.lastPathComponent).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp").path
    }

    /// The process id in the name of a temporary file of `target` (`.<target>.<pid>.<digits>.tmp`), or nil when
    /// `name` is not one.
    static func temporaryFileProcess(_ name: String, target: String) -> Int32? {
        let prefix = ".\(target)."
        guard name.hasPrefix(prefix), name.hasSuffix(".tmp") else { return nil }
        let middle = name.dropFirst(prefix.count).dropLast(4).split(separator: ".", omittingEmptySubsequences: false)
        guard middle.count == 2, let pid = Int32(middle[0]), pid > 0, UInt32(middle[1]) != nil,
              middle.allSatisfy({ $0.allSatisfy(\.isASCII) }) else { return nil }
        return pid
    }

    /// Removes the temporary files a killed write to `url` left behind: files named exactly like ours
    /// (`.<name>.<pid>.<random>.tmp`) whose process no longer runs. A write in progress (its process alive)
    /// is never touched. Returns the names removed.
    @discardableResult
    public static func removeStaleTemporaries(of url: URL) -> [String] {
        let dir = url.deletingLastPathComponent()
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir.path) else { return [] }
        var removed: [String] = []
        for name in names {
            guard let pid = temporaryFileProcess(name, target: url.lastPathComponent), !processIsAlive(pid) else { continue }
            let path = dir.appendingPathComponent(name).path
            var info = stat()
            guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { continue }
            if unlink(path) == 0 { removed.append(name) }
        }
        return removed
    }

    /// False only when no process has id `pid` (`kill(pid, 0)` says ESRCH).
    static func processIsAlive(_ pid: Int32) -> Bool {
        if pid == getpid() { return true }
        return kill(pid, 0) == 0 || errno != ESRCH
    }

    // MARK: checks

    /// A target that is a folder or not a regular file is refused (renaming over a FIFO or a device would
    /// replace it).
    static func checkTarget(_ path: String) throws {
        var info = stat()
        guard stat(path, &info) == 0 else {
            let e = errno
            if e == ENOENT { return }
            throw FileError(path: path, action: .write, errno: e)
        }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw FileError(path: path, action: .write, reason: FileError.kindWords(mode: info.st_mode))
        }
    }

    /// Whether the folder `dir` exists (false: it does not, and a folder above it may be created); throws, naming
    /// `target`, when something else is in its place or it cannot be looked at (or it is `/` and missing).
    private static func folderExists(_ dir: URL, for target: String) throws -> Bool {
        var info = stat()
        if stat(dir.path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFDIR else {
                throw FileError(path: target, action: .write, reason: "\(dir.path) is not a folder")
            }
            return true
        }
        let e = errno
        guard e == ENOENT, dir.path != "/" else { throw FileError(path: target, action: .write, errno: e) }
        return false
    }

    /// Creates the folder `dir` and those above it where missing (`mkdir -p`), with errors in words naming it: a
    /// `FileError` such as `logs: cannot write the file (cannot create the folder logs: a part of the path is not a
    /// folder)`, never Foundation's codes.
    ///
    /// ```swift
    /// try AtomicFile.makeFolder(URL(fileURLWithPath: "runs/first"))
    /// ```
    public static func makeFolder(_ dir: URL) throws { try makeFolders(dir.standardizedFileURL, for: dir.path) }

    /// `mkdir -p` with errors in words naming `target`.
    static func makeFolders(_ dir: URL, for target: String) throws {
        if try folderExists(dir, for: target) { return }
        try makeFolders(dir.deletingLastPathComponent(), for: target)
        guard mkdir(dir.path, 0o777) == 0 || errno == EEXIST else {
            throw FileError(path: target, action: .write, reason: "cannot create the folder \(dir.path): \(FileError.words(errno: errno))")
        }
    }
}

/// `write(2)` (`AtomicFile.write` hides the C function inside the enum).
private func systemWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int { write(fd, buffer, count) }
