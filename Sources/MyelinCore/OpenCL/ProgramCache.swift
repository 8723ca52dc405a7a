import COpenCL
import Foundation

/// Builds the kernel program for a device, or loads its binary from the on-disk cache.
///
/// A cache entry is the driver's program binary behind a 32-byte header: the magic `MYELINCL`, the entry format
/// version, the payload's length and a 64-bit checksum of the payload (`checksum(_:)`). An entry is handed to the
/// driver only when all four match, so a truncated, garbled or foreign file never reaches
/// `clCreateProgramWithBinary` (some drivers crash on one). A bad entry is rebuilt from source and replaced. When the
/// cache folder cannot be written, Myelin runs without a cache and says so once per folder on stderr.
///
/// An entry with a valid header can still be one the driver rejects by crashing or asserting (PoCL does). So the
/// entry is marked (`<entry>.loading`, holding the process id) before it is handed to the driver, and unmarked
/// after. A mark that survives its process (the id is no longer running) means the driver died on that entry: the
/// next process deletes the entry and rebuilds it from source, saying so on stderr. Such an entry costs one crash.
enum ProgramCache {
    /// `MYELIN_CACHE_DIR`, else `$XDG_CACHE_HOME/myelin`, else `~/.cache/myelin`.
    static var directory: URL { directory(environment: ProcessInfo.processInfo.environment) }

    /// The cache folder that `environment` names (see `directory`).
    static func directory(environment env: [String: String]) -> URL {
        if let d = env["MYELIN_CACHE_DIR"], !d.isEmpty { return URL(fileURLWithPath: d) }
        if let x = env["XDG_CACHE_HOME"], !x.isEmpty { return URL(fileURLWithPath: x).appendingPathComponent("myelin") }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/myelin")
    }

    static func options(for info: OpenCLDeviceInfo) -> String {
        [info.clStdOption, "-cl-mad-enable", "-cl-no-signed-zeros"].filter { !$0.isEmpty }.joined(separator: " ")
    }

    /// The cache key: kernel source + build options + device name + driver version.
    static func key(source: String, options: String, info: OpenCLDeviceInfo) -> String {
        var h1: UInt64 = 0xcbf2_9ce4_8422_2325
        var h2: UInt64 = 0x8422_2325_cbf2_9ce4
        for part in [source, options, info.name, info.driverVersion, info.platformVersion] {
            for byte in part.utf8 {
                h1 = (h1 ^ UInt64(byte)) &* 0x100_0000_01b3
                h2 = (h2 &+ UInt64(byte)) &* 0x9e37_79b9_7f4a_7c15
                h2 ^= h2 >> 29
            }
            h1 = (h1 ^ 0xff) &* 0x100_0000_01b3
        }
        return String(format: "%016llx%016llx", h1, h2)
    }

    /// Where the binary of `source` built for the device `info` is cached (in `directory`, by default the one the
    /// process environment names). The name carries the entry format, so Myelin versions that write other
    /// formats never read each other's entries.
    static func file(source: String, info: OpenCLDeviceInfo, directory: URL = ProgramCache.directory,
                     defines: String = "") -> URL {
        let opts = defines.isEmpty ? options(for: info) : options(for: info) + " " + defines
        return directory.appendingPathComponent("\(key(source: source, options: opts, info: info)).v\(formatVersion).bin")
    }

    /// The kernel names of a built program (`CL_PROGRAM_KERNEL_NAMES`); empty when the driver does not say.
    static func kernelNames(_ program: cl_program) -> Set<String> {
        var size = 0
        guard clGetProgramInfo(program, cl_program_info(CL_PROGRAM_KERNEL_NAMES), 0, nil, &size) == CL_SUCCESS, size > 0 else {
            return []
        }
        var buffer = [CChar](repeating: 0, count: size + 1)
        guard clGetProgramInfo(program, cl_program_info(CL_PROGRAM_KERNEL_NAMES), size, &buffer, nil) == CL_SUCCESS else { return [] }
        return Set(String(nulTerminated: buffer).split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty })
    }

    // MARK: entry format

    /// The first 8 bytes of every entry.
    static let magic: [UInt8] = Array("MYELINCL".utf8)
    /// The entry format; an entry of another version is rebuilt.
    static let formatVersion: UInt32 = 1
    /// Magic (8), format version (4), reserved (4), payload length (8), payload checksum (8); little-endian.
    static let headerSize = 32

    /// Why a cache entry was not handed to the driver.
    enum EntryProblem: Error, Equatable, CustomStringConvertible {
        case tooShort(bytes: Int)
        case wrongMagic
        case wrongVersion(UInt32)
        case wrongLength(declared: UInt64, actual: Int)
        case wrongChecksum

        var description: String {
            switch self {
            case .tooShort(let n): return "it has \(n) bytes, shorter than the \(ProgramCache.headerSize)-byte header"
            case .wrongMagic: return "it does not start with MYELINCL (not a Myelin cache entry)"
            case .wrongVersion(let v): return "its format version is \(v), this build writes \(ProgramCache.formatVersion)"
            case .wrongLength(let declared, let actual):
                return "its header declares \(declared) bytes of program, the file holds \(actual) (truncated or padded)"
            case .wrongChecksum: return "its checksum does not match its contents (damaged)"
            }
        }
    }

    /// A cache entry holding `binary`.
    static func encode(_ binary: [UInt8]) -> Data {
        var out = Data(capacity: headerSize + binary.count)
        out.append(contentsOf: magic)
        func append<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        append(formatVersion)
        append(UInt32(0))
        append(UInt64(binary.count))
        append(binary.withUnsafeBytes { checksum($0) })
        out.append(contentsOf: binary)
        return out
    }

    /// The program binary of a cache entry, after checking its header, length and checksum.
    static func decode(_ data: Data) -> Result<Data, EntryProblem> {
        data.withUnsafeBytes { raw -> Result<Data, EntryProblem> in
            guard raw.count >= headerSize else { return .failure(.tooShort(bytes: raw.count)) }
            guard Array(raw[0..<8]) == magic else { return .failure(.wrongMagic) }
            let version = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
            guard version == formatVersion else { return .failure(.wrongVersion(version)) }
            let length = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
            let actual = raw.count - headerSize
            guard length == UInt64(actual), actual > 0 else { return .failure(.wrongLength(declared: length, actual: actual)) }
            let stored = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 24, as: UInt64.self))
            let payload = UnsafeRawBufferPointer(rebasing: raw[headerSize...])
            guard checksum(payload) == stored else { return .failure(.wrongChecksum) }
            return .success(Data(payload))
        }
    }

    /// A 64-bit checksum of `bytes` (8 bytes per round, multiply-rotate mixing, the length folded in): any change
    /// of a byte, any truncation or extension gives another value except with a chance of about 2⁻⁶⁴.
    static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0x9e37_79b9_7f4a_7c15 ^ UInt64(bytes.count)
        let words = bytes.count / 8
        for i in 0..<words {
            let w = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self))
            h ^= w &* 0x87c3_7b91_1142_53d5
            h = ((h << 27) | (h >> 37)) &* 0x4cf5_ad43_2745_937f &+ 0x52dc_e729
        }
        var tail: UInt64 = 0
        for i in (words * 8)..<bytes.count { tail = (tail << 8) | UInt64(bytes[i]) }
        h ^= tail &* 0x87c3_7b91_1142_53d5
        // Final avalanche (SplitMix64).
        h = (h ^ (h >> 30)) &* 0xbf58_476d_1ce4_e5b9
        h = (h ^ (h >> 27)) &* 0x94d0_49bb_1331_11eb
        return h ^ (h >> 31)
    }

    // MARK: building

    /// Builds `source` (by default the kernel library the process environment names) for the device `info`,
    /// through the cache in `directory`; tells whether the program came from the cache.
    static func build(context: cl_context, info: OpenCLDeviceInfo, source: String? = nil,
                      directory: URL = ProgramCache.directory, defines: String = "") throws -> (program: cl_program, fromCache: Bool) {
        let source = try source ?? KernelLibrary.source()
        let opts = defines.isEmpty ? options(for: info) : options(for: info) + " " + defines
        let file = file(source: source, info: info, directory: directory, defines: defines)
        var device: cl_device_id? = info.device

        if let message = removeEntryWithSurvivingMark(file) { warn(message) }
        if let data = try? Data(contentsOf: file) {
            switch decode(data) {
            case .success(let binary):
                var err: cl_int = 0
                var status: cl_int = 0
                // Marked while the driver has it: a crash or an assertion in there leaves the mark behind.
                let mark = markFile(file)
                let marked = (try? Data("\(getpid())\n".utf8).write(to: mark)) != nil
                let program: cl_program? = binary.withUnsafeBytes { raw in
                    var length = raw.count
                    var ptr: UnsafePointer<UInt8>? = raw.bindMemory(to: UInt8.self).baseAddress
                    return clCreateProgramWithBinary(context, 1, &device, &length, &ptr, &status, &err)
                }
                let built = program != nil && err == CL_SUCCESS && status == CL_SUCCESS
                    && clBuildProgram(program, 1, &device, opts, nil, nil) == CL_SUCCESS
                if marked { try? FileManager.default.removeItem(at: mark) }
                if let program, built { return (program, true) }
                if let program { clReleaseProgram(program) }
                warn("myelin: the kernel cache entry \(file.path) was refused by the OpenCL driver; rebuilding it")
            case .failure(let problem):
                warn("myelin: ignoring the kernel cache entry \(file.path): \(problem); rebuilding it")
            }
        }

        var err: cl_int = 0
        let program: cl_program? = source.withCString { cstr in
            var p: UnsafePointer<CChar>? = cstr
            return clCreateProgramWithSource(context, 1, &p, nil, &err)
        }
        guard let program, err == CL_SUCCESS else { throw DeviceError.openCL(call: "clCreateProgramWithSource", code: err) }
        let status = clBuildProgram(program, 1, &device, opts, nil, nil)
        if status != CL_SUCCESS {
            var size = 0
            clGetProgramBuildInfo(program, info.device, cl_program_build_info(CL_PROGRAM_BUILD_LOG), 0, nil, &size)
            var log = [CChar](repeating: 0, count: size + 1)
            clGetProgramBuildInfo(program, info.device, cl_program_build_info(CL_PROGRAM_BUILD_LOG), size, &log, nil)
            clReleaseProgram(program)
            throw DeviceError.buildFailed(device: info.name, log: String(nulTerminated: log))
        }
        save(program: program, to: file)
        return (program, false)
    }

    /// The mark of `file` while it is in the driver's hands: `<entry>.loading`.
    static func markFile(_ file: URL) -> URL { URL(fileURLWithPath: file.path + ".loading") }

    /// When `file`'s mark survived the process that wrote it (a crash or assertion in the driver while it loaded the
    /// entry), deletes the entry and the mark and returns the message saying so; nil when there is no such mark. A
    /// mark whose process still runs (another process loading the same entry now, or this one) is left alone.
    static func removeEntryWithSurvivingMark(_ file: URL) -> String? {
        let mark = markFile(file)
        guard let text = try? String(contentsOf: mark, encoding: .utf8) else { return nil }
        if let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0,
           pid == getpid() || kill(pid, 0) == 0 || errno == EPERM {
            return nil
        }
        try? FileManager.default.removeItem(at: file)
        try? FileManager.default.removeItem(at: mark)
        return "myelin: the kernel cache entry \(file.path) was being loaded by the OpenCL driver when an earlier "
            + "process stopped (the driver crashed or asserted on it); deleted it, rebuilding the kernels from source"
    }

    /// Writes the program binary as a cache entry, atomically (temporary file, then rename). A failure only costs a
    /// rebuild later; an unwritable folder is reported once (`reportUnwritable`).
    private static func save(program: cl_program, to file: URL) {
        var size = 0
        guard clGetProgramInfo(program, cl_program_info(CL_PROGRAM_BINARY_SIZES), MemoryLayout<Int>.size, &size, nil) == CL_SUCCESS,
              size > 0 else { return }
        var bytes = [UInt8](repeating: 0, count: size)
        let ok: Bool = bytes.withUnsafeMutableBufferPointer { buf in
            var ptr: UnsafeMutablePointer<UInt8>? = buf.baseAddress
            return clGetProgramInfo(program, cl_program_info(CL_PROGRAM_BINARIES),
                                    MemoryLayout<UnsafeMutablePointer<UInt8>?>.size, &ptr, nil) == CL_SUCCESS
        }
        guard ok else { return }
        do {
            try AtomicFile.write(encode(bytes), to: file)
        } catch {
            reportUnwritable(file.deletingLastPathComponent(), reason: error)
        }
    }

    private static let lock = NSLock()
    nonisolated(unsafe) private static var unwritableReported: Set<String> = []

    /// Says once per folder on stderr that the cache cannot be written there; true when it said it now.
    @discardableResult
    static func reportUnwritable(_ directory: URL, reason: Error) -> Bool {
        lock.lock()
        let first = unwritableReported.insert(directory.path).inserted
        lock.unlock()
        guard first else { return false }
        let why = folderProblem(directory) ?? ProgramCache.reason(reason)
        warn("myelin: cannot write the kernel cache in \(directory.path) (\(why)); running without a cache, so every "
             + "process compiles the kernels again (set MYELIN_CACHE_DIR to a writable folder to keep them)")
        return true
    }

    /// Whether `reportUnwritable` has spoken for `directory` in this process.
    static func hasReportedUnwritable(_ directory: URL) -> Bool {
        lock.lock(); defer { lock.unlock() }
        return unwritableReported.contains(directory.path)
    }

    /// Why files cannot be written in `directory`, found by walking up to the nearest existing folder: a file in
    /// the way, or a folder without write permission; nil when neither explains it.
    static func folderProblem(_ directory: URL) -> String? {
        var path = directory.standardizedFileURL.path
        while true {
            var isFolder: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) {
                if !isFolder.boolValue { return "\(path) is a file, not a folder" }
                if access(path, W_OK) != 0 { return "\(path): \(String(cString: strerror(errno)))" }
                return nil
            }
            let parent = (path as NSString).deletingLastPathComponent
            if parent == path || parent.isEmpty { return nil }
            path = parent
        }
    }

    /// The operating system's words for a file error (the POSIX reason under a Foundation error when there is one).
    static func reason(_ error: Error) -> String {
        let ns = error as NSError
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        return ns.localizedDescription
    }

    private static func warn(_ message: String) {
        FileHandle.standardError.write(Data((message + "\n").utf8))
    }
}
