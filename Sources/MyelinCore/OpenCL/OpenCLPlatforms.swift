import COpenCL
import Foundation

/// What Myelin knows about one OpenCL device.
public struct OpenCLDeviceInfo: @unchecked Sendable {
    public var platformName: String
    public var platformVersion: String
    public var name: String
    public var vendor: String
    public var driverVersion: String
    /// The device's OpenCL C version string, e.g. "OpenCL C 1.2 PoCL".
    public var openCLCVersion: String
    public var computeUnits: Int
    public var globalMemory: Int
    public var maxWorkGroupSize: Int
    public var isGPU: Bool
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
                result.append(OpenCLDeviceInfo(
                    platformName: platformString(platform, CL_PLATFORM_NAME),
                    platformVersion: platformString(platform, CL_PLATFORM_VERSION),
                    name: deviceString(device, CL_DEVICE_NAME),
                    vendor: deviceString(device, CL_DEVICE_VENDOR),
                    driverVersion: deviceString(device, CL_DRIVER_VERSION),
                    openCLCVersion: deviceString(device, CL_DEVICE_OPENCL_C_VERSION),
                    computeUnits: Int(deviceValue(device, CL_DEVICE_MAX_COMPUTE_UNITS, cl_uint.self)),
                    globalMemory: Int(deviceValue(device, CL_DEVICE_GLOBAL_MEM_SIZE, cl_ulong.self)),
                    maxWorkGroupSize: Int(deviceValue(device, CL_DEVICE_MAX_WORK_GROUP_SIZE, Int.self)),
                    isGPU: type & cl_device_type(CL_DEVICE_TYPE_GPU) != 0,
                    platform: platform, device: device))
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

/// The symbolic name of an OpenCL error code, e.g. `CL_OUT_OF_RESOURCES`.
public func openCLErrorName(_ code: Int32) -> String {
    let names: [Int32: String] = [
        0: "CL_SUCCESS", -1: "CL_DEVICE_NOT_FOUND", -2: "CL_DEVICE_NOT_AVAILABLE",
        -3: "CL_COMPILER_NOT_AVAILABLE", -4: "CL_MEM_OBJECT_ALLOCATION_FAILURE",
        -5: "CL_OUT_OF_RESOURCES", -6: "CL_OUT_OF_HOST_MEMORY", -7: "CL_PROFILING_INFO_NOT_AVAILABLE",
        -8: "CL_MEM_COPY_OVERLAP", -9: "CL_IMAGE_FORMAT_MISMATCH", -10: "CL_IMAGE_FORMAT_NOT_SUPPORTED",
        -11: "CL_BUILD_PROGRAM_FAILURE", -12: "CL_MAP_FAILURE", -13: "CL_MISALIGNED_SUB_BUFFER_OFFSET",
        -14: "CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST", -15: "CL_COMPILE_PROGRAM_FAILURE",
        -16: "CL_LINKER_NOT_AVAILABLE", -17: "CL_LINK_PROGRAM_FAILURE", -18: "CL_DEVICE_PARTITION_FAILED",
        -19: "CL_KERNEL_ARG_INFO_NOT_AVAILABLE", -30: "CL_INVALID_VALUE", -31: "CL_INVALID_DEVICE_TYPE",
        -32: "CL_INVALID_PLATFORM", -33: "CL_INVALID_DEVICE", -34: "CL_INVALID_CONTEXT",
        -35: "CL_INVALID_QUEUE_PROPERTIES", -36: "CL_INVALID_COMMAND_QUEUE", -37: "CL_INVALID_HOST_PTR",
        -38: "CL_INVALID_MEM_OBJECT", -39: "CL_INVALID_IMAGE_FORMAT_DESCRIPTOR", -40: "CL_INVALID_IMAGE_SIZE",
        -41: "CL_INVALID_SAMPLER", -42: "CL_INVALID_BINARY", -43: "CL_INVALID_BUILD_OPTIONS",
        -44: "CL_INVALID_PROGRAM", -45: "CL_INVALID_PROGRAM_EXECUTABLE", -46: "CL_INVALID_KERNEL_NAME",
        -47: "CL_INVALID_KERNEL_DEFINITION", -48: "CL_INVALID_KERNEL", -49: "CL_INVALID_ARG_INDEX",
        -50: "CL_INVALID_ARG_VALUE", -51: "CL_INVALID_ARG_SIZE", -52: "CL_INVALID_KERNEL_ARGS",
        -53: "CL_INVALID_WORK_DIMENSION", -54: "CL_INVALID_WORK_GROUP_SIZE", -55: "CL_INVALID_WORK_ITEM_SIZE",
        -56: "CL_INVALID_GLOBAL_OFFSET", -57: "CL_INVALID_EVENT_WAIT_LIST", -58: "CL_INVALID_EVENT",
        -59: "CL_INVALID_OPERATION", -60: "CL_INVALID_GL_OBJECT", -61: "CL_INVALID_BUFFER_SIZE",
        -62: "CL_INVALID_MIP_LEVEL", -63: "CL_INVALID_GLOBAL_WORK_SIZE", -64: "CL_INVALID_PROPERTY",
        -1001: "CL_PLATFORM_NOT_FOUND_KHR",
    ]
    return names[code] ?? "CL error"
}

extension String {
    /// The text of a C character buffer up to its first NUL (or the whole buffer when it has none).
    init(nulTerminated buffer: [CChar]) {
        let end = buffer.firstIndex(of: 0) ?? buffer.endIndex
        self = String(decoding: buffer[..<end].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
