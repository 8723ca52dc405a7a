import COpenCL
import Foundation

/// What Myelin knows about one OpenCL device.
public struct OpenCLDeviceInfo: @unchecked Sendable {
    /// The platform's name, e.g. "Portable Computing Language".
    public var platformName: String
    /// The platform's version string, e.g. "OpenCL 3.0 PoCL 3.1+debian ...".
    public var platformVersion: String
    /// The device's name (`CL_DEVICE_NAME`).
    public var name: String
    /// The device's vendor (`CL_DEVICE_VENDOR`).
    public var vendor: String
    /// The driver's version (`CL_DRIVER_VERSION`); part of the kernel cache's key.
    public var driverVersion: String
    /// The device's OpenCL C version string, e.g. "OpenCL C 1.2 PoCL".
    public var openCLCVersion: String
    /// Parallel compute units (`CL_DEVICE_MAX_COMPUTE_UNITS`): cores on a CPU device.
    public var computeUnits: Int
    /// Global memory in bytes (`CL_DEVICE_GLOBAL_MEM_SIZE`).
    public var globalMemory: Int
    /// The largest single buffer in bytes (`CL_DEVICE_MAX_MEM_ALLOC_SIZE`).
    public var maxAllocation: Int
    /// The most work-items a work-group may have.
    public var maxWorkGroupSize: Int
    /// Whether the device reports itself as a GPU (`CL_DEVICE_TYPE_GPU`); `auto` picks the first such device.
    public var isGPU: Bool
    /// The device's extensions (`CL_DEVICE_EXTENSIONS`), e.g. `cl_khr_fp64`.
    public var extensions: [String] = []
    /// Whether the driver offers `cl_khr_command_buffer` (a recorded graph of launches replayed with one call).
    public var hasCommandBuffer: Bool { extensions.contains("cl_khr_command_buffer") }
    let platform: cl_platform_id
    let device: cl_device_id

    /// `-cl-std=CLx.y` from the device's OpenCL C version (not the platform's).
    var clStdOption: String {
        // "OpenCL C 1.2 ..." -> "1.2"; 3.0 devices accept CL3.0, but CL1.2 is what our kernels need.
        let parts = openCLCVersion.split(separator: " ")
        guard parts.count >= 3 else { return "" }
        let v = String(parts[2])
        if v.hasPrefix("1.0") { return "" }
        return v.hasPrefix("1.1") ? "-cl-std=CL1.1" : "-cl-std=CL1.2"
    }
}

/// Enumerates every OpenCL platform and numbers all their devices in one list.
public enum OpenCLPlatforms {
    nonisolated(unsafe) private static var cached: [OpenCLDeviceInfo]?
    private static let lock = NSLock()

    /// All OpenCL devices of all platforms; empty when there is no platform (-1001) or no ICD.
    public static func devices() -> [OpenCLDeviceInfo] {
        lock.lock(); defer { lock.unlock() }
        if let c = cached { return c }
        let found = enumerate()
        cached = found
        return found
    }

    private static func enumerate() -> [OpenCLDeviceInfo] {
        var count: cl_uint = 0
        // CL_PLATFORM_NOT_FOUND_KHR (-1001) means "no OpenCL here": a normal case.
        guard clGetPlatformIDs(0, nil, &count) == CL_SUCCESS, count > 0 else { return [] }
        var platforms = [cl_platform_id?](repeating: nil, count: Int(count))
        guard clGetPlatformIDs(count, &platforms, nil) == CL_SUCCESS else { return [] }
        var result: [OpenCLDeviceInfo] = []
        for case let platform? in platforms {
            var n: cl_uint = 0
            guard clGetDeviceIDs(platform, cl_device_type(CL_DEVICE_TYPE_ALL), 0, nil, &n) == CL_SUCCESS, n > 0 else { continue }
            var ids = [cl_device_id?](repeating: nil, count: Int(n))
            guard clGetDeviceIDs(platform, cl_device_type(CL_DEVICE_TYPE_ALL), n, &ids, nil) == CL_SUCCESS else { continue }
            for case let device? in ids {
                var type: cl_device_type = 0
                clGetDeviceInfo(device, cl_device_info(CL_DEVICE_TYPE), MemoryLayout<cl_device_type>.size, &type, nil)
                var info = OpenCLDeviceInfo(
                    platformName: platformString(platform, CL_PLATFORM_NAME),
                    platformVersion: platformString(platform, CL_PLATFORM_VERSION),
                    name: deviceString(device, CL_DEVICE_NAME),
                    vendor: deviceString(device, CL_DEVICE_VENDOR),
                    driverVersion: deviceString(device, CL_DRIVER_VERSION),
                    openCLCVersion: deviceString(device, CL_DEVICE_OPENCL_C_VERSION),
                    computeUnits: Int(deviceValue(device, CL_DEVICE_MAX_COMPUTE_UNITS, cl_uint.self)),
                    globalMemory: Int(clamping: deviceValue(device, CL_DEVICE_GLOBAL_MEM_SIZE, cl_ulong.self)),
                    maxAllocation: Int(clamping: deviceValue(device, CL_DEVICE_MAX_MEM_ALLOC_SIZE, cl_ulong.self)),
                    maxWorkGroupSize: Int(deviceValue(device, CL_DEVICE_MAX_WORK_GROUP_SIZE, Int.self)),
                    isGPU: type & cl_device_type(CL_DEVICE_TYPE_GPU) != 0,
                    platform: platform, device: device)
                info.extensions = deviceString(device, CL_DEVICE_EXTENSIONS).split(separator: " ").map(String.init)
                result.append(info)
            }
        }
        return result
    }

    static func platformString(_ p: cl_platform_id, _ param: Int32) -> String {
        var size = 0
        clGetPlatformInfo(p, cl_platform_info(param), 0, nil, &size)
        var buf = [CChar](repeating: 0, count: size + 1)
        clGetPlatformInfo(p, cl_platform_info(param), size, &buf, nil)
        return String(nulTerminated: buf).trimmingCharacters(in: .whitespaces)
    }

    static func deviceString(_ d: cl_device_id, _ param: Int32) -> String {
        var size = 0
        clGetDeviceInfo(d, cl_device_info(param), 0, nil, &size)
        var buf = [CChar](repeating: 0, count: size + 1)
        clGetDeviceInfo(d, cl_device_info(param), size, &buf, nil)
        return String(nulTerminated: buf).trimmingCharacters(in: .whitespaces)
    }

    static func deviceValue<T: BinaryInteger>(_ d: cl_device_id, _ param: Int32, _: T.Type) -> T {
        var v: T = 0
        withUnsafeMutableBytes(of: &v) { raw in
            _ = clGetDeviceInfo(d, cl_device_info(param), raw.count, raw.baseAddress, nil)
        }
        return v
    }
}

extension String {
    /// The text of a C character buffer up to its first NUL (or the whole buffer when it has none).
    init(nulTerminated buffer: [CChar]) {
        let end = buffer.firstIndex(of: 0) ?? buffer.endIndex
        self = String(decoding: buffer[..<end].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

// MARK: why there is no device

extension OpenCLPlatforms {
    /// Why OpenCL shows no device, when it is a reason Myelin can name; nil otherwise. Today one: PoCL (listed by
    /// the OpenCL loader's vendor files) refuses to start when it cannot create its kernel cache folder, which is
    /// `POCL_CACHE_DIR`, else `$XDG_CACHE_HOME/pocl/kcache`, else `$HOME/.cache/pocl/kcache`, else
    /// `/tmp/pocl/kcache` (a missing or read-only home, as in some containers and batch jobs).
    public static func noDeviceReason(environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        guard poclIsInstalled(environment) else { return nil }
        let (folder, source) = poclCacheFolder(environment)
        guard let problem = uncreatableFolderProblem(folder) else { return nil }
        return "PoCL, the OpenCL driver here, cannot create its kernel cache folder \(folder) (from \(source)): \(problem); "
            + "set POCL_CACHE_DIR to a folder it may create or write (export POCL_CACHE_DIR=/tmp/pocl-cache), or HOME to a writable home"
    }

    /// Whether an OpenCL vendor file (`OCL_ICD_VENDORS`, else /etc/OpenCL/vendors) names PoCL.
    static func poclIsInstalled(_ environment: [String: String]) -> Bool {
        let folder = environment["OCL_ICD_VENDORS"].flatMap { $0.isEmpty ? nil : $0 } ?? "/etc/OpenCL/vendors"
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder) else { return false }
        guard isFolder.boolValue else { return folder.lowercased().contains("pocl") }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return names.contains { name in
            name.lowercased().contains("pocl")
                || ((try? String(contentsOfFile: folder + "/" + name, encoding: .utf8))?.lowercased().contains("pocl") ?? false)
        }
    }

    /// PoCL's kernel cache folder and the variable it comes from (the order of PoCL's `pocl_cache_init_topdir`).
    static func poclCacheFolder(_ environment: [String: String]) -> (folder: String, source: String) {
        func value(_ key: String) -> String? { environment[key].flatMap { $0.isEmpty ? nil : $0 } }
        if let dir = value("POCL_CACHE_DIR") { return (dir, "POCL_CACHE_DIR") }
        if let xdg = value("XDG_CACHE_HOME") { return (xdg + "/pocl/kcache", "XDG_CACHE_HOME") }
        if let home = environment["HOME"] { return (home + "/.cache/pocl/kcache", "HOME=\(home)") }
        return ("/tmp/pocl/kcache", "no HOME set")
    }

    /// Why PoCL's `mkdir -p folder` fails, or nil when the folder exists writable or could be made (this makes it,
    /// as PoCL would have: it is only called once PoCL has shown no device).
    static func uncreatableFolderProblem(_ folder: String) -> String? {
        let parts = folder.split(separator: "/", omittingEmptySubsequences: true)
        var path = folder.hasPrefix("/") ? "" : "."
        for part in parts {
            path += "/" + part
            if mkdir(path, 0o755) != 0 && errno != EEXIST {
                return "creating \(path) fails: \(String(cString: strerror(errno)))"
            }
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue else {
                return "\(path) is not a folder"
            }
        }
        return access(folder, W_OK | X_OK) == 0 ? nil : "\(folder) is not writable"
    }
}
