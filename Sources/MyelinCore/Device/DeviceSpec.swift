import Foundation

/// Which device to run on, as written on a command line (`--device`) or in `MYELIN_DEVICE`.
/// The string forms are `auto`, `cpu` and `opencl:N`; `opencl` alone means `opencl:0`.
///
/// ```swift
/// let spec = try DeviceSpec(parsing: "opencl:1")   // .opencl(index: 1)
/// let device = try Device.make(spec)
/// ```
public enum DeviceSpec: Equatable, Sendable, CustomStringConvertible {
    /// The first OpenCL GPU if there is one, else the CPU.
    case auto
    /// The CPU: CBLAS for matrix products, vectorized Swift for the rest.
    case cpu
    /// An OpenCL device by its number in the list of all platforms' devices (`myelin devices` lists them).
    case opencl(index: Int)

    /// Parses `auto`, `cpu`, `opencl:N` or `opencl` (= `opencl:0`), case-insensitive, surrounding blanks ignored.
    public init(parsing text: String) throws {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        switch t {
        case "auto", "": self = .auto
        case "cpu": self = .cpu
        case "opencl": self = .opencl(index: 0)
        default:
            let parts = t.split(separator: ":", omittingEmptySubsequences: false)
            if parts.count == 2, parts[0] == "opencl", let n = Int(parts[1]), n >= 0 {
                self = .opencl(index: n)
            } else {
                throw DeviceError.badSpec(text)
            }
        }
    }

    /// The spec named by `MYELIN_DEVICE`, or `.auto` when it is unset or empty.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> DeviceSpec {
        guard let value = environment["MYELIN_DEVICE"], !value.isEmpty else { return .auto }
        return try DeviceSpec(parsing: value)
    }

    public var description: String {
        switch self {
        case .auto: return "auto"
        case .cpu: return "cpu"
        case .opencl(let i): return "opencl:\(i)"
        }
    }
}

/// Errors raised while choosing or setting up a device.
public enum DeviceError: Error, CustomStringConvertible, Equatable {
    /// The text is not `auto`, `cpu`, `opencl` or `opencl:N`.
    case badSpec(String)
    /// An OpenCL device was asked for but there is no OpenCL platform; `available` lists the devices there are.
    case noOpenCL(available: [String])
    /// No OpenCL device, for a reason `OpenCLPlatforms.noDeviceReason` could name (PoCL without a writable
    /// cache folder); the message says what to set.
    case noOpenCLBecause(String, available: [String])
    /// There is no OpenCL device with this number; `available` lists the devices there are.
    case indexOutOfRange(Int, available: [String])
    /// An OpenCL call failed with an error code (its name is in the description).
    case openCL(call: String, code: Int32)
    /// The kernels did not compile on the named device; `log` is the OpenCL build log.
    case buildFailed(device: String, log: String)
    /// Two tensors that must share a device are on the two named devices.
    case mismatchedDevices(String, String)
    /// `MYELIN_KERNELS_DIR` names this folder, which cannot supply the kernels (`problem` says why: it does not
    /// exist, lacks kernel files, or has files that cannot be read).
    case kernelsDirectory(String, problem: String)
    /// A buffer of `bytes` for `what` does not fit on `device`, which can give `limit` bytes (`limitKind` says
    /// which limit: the largest single buffer, or the memory available).
    case outOfMemory(what: String, bytes: Int, device: String, limit: Int, limitKind: String)
    /// The element count (or byte count) of `shape` for `what` overflows `Int`, or a size is negative.
    case sizeOverflow(what: String, shape: [Int])
    /// A command on `device` failed when it was enqueued (`detail` names the call, the error, and for a kernel
    /// launch the kernel, its global and local sizes and the device's limits). Later results on the device are
    /// not to be trusted; the error is thrown at the next `item()` or `Device.check()`.
    case commandFailed(device: String, detail: String)
    /// `device` ran out of memory for `request` (a kernel launch with its sizes, or a buffer or transfer of so many
    /// bytes, with the driver's error) twice: the second time after the buffers cached in its pool were freed.
    /// `deviceMemory` is the device's memory (`CL_DEVICE_GLOBAL_MEM_SIZE`), `bytesInUse` what Myelin's buffers
    /// on it held then. Thrown at the next `item()` or `Device.check()`, like `commandFailed`.
    case deviceOutOfMemory(device: String, request: String, deviceMemory: Int, bytesInUse: Int)

    /// Says on stderr that this error was recorded as a device's failure (`Backend.record(_:)`), and what follows.
    func announceRecorded() {
        FileHandle.standardError.write(Data(("myelin: \(self); the ops that use it are skipped, and the error is "
            + "thrown at the next toArray(), item() or Device.check()\n").utf8))
    }

    /// This error with `owner` (a layer, an op) put before what it names, for an error raised below the owner.
    package func naming(_ owner: String) -> DeviceError {
        switch self {
        case .outOfMemory(let what, let bytes, let device, let limit, let limitKind):
            return .outOfMemory(what: "\(owner): \(what)", bytes: bytes, device: device, limit: limit, limitKind: limitKind)
        case .sizeOverflow(let what, let shape):
            return .sizeOverflow(what: "\(owner): \(what)", shape: shape)
        default:
            return self
        }
    }

    public var description: String {
        switch self {
        case .badSpec(let s):
            return "unknown device '\(s)': expected auto, cpu, opencl or opencl:N"
        case .noOpenCL(let available):
            return "no OpenCL device found; available devices: \(available.joined(separator: ", "))"
        case .noOpenCLBecause(let reason, let available):
            return "no OpenCL device found: \(reason); available devices: \(available.joined(separator: ", "))"
        case .indexOutOfRange(let i, let available):
            return "there is no OpenCL device \(i); available devices: \(available.joined(separator: ", "))"
        case .openCL(let call, let code):
            return "\(call) failed with \(openCLErrorName(code)) (\(code))"
        case .buildFailed(let device, let log):
            return "OpenCL program build failed on \(device):\n\(log)"
        case .mismatchedDevices(let a, let b):
            return "tensors are on different devices: \(a) and \(b); move one with to(_:)"
        case .kernelsDirectory(let folder, let problem):
            return "MYELIN_KERNELS_DIR=\(folder): \(problem); unset MYELIN_KERNELS_DIR to use the kernels built into Myelin"
        case .outOfMemory(let what, let bytes, let device, let limit, let limitKind):
            return "\(what) needs \(formatBytes(bytes)), the device \(device) has \(formatBytes(limit)) \(limitKind)"
        case .commandFailed(let device, let detail):
            return "\(device): \(detail)"
        case .deviceOutOfMemory(let device, let request, let deviceMemory, let bytesInUse):
            func bytes(_ n: Int) -> String { n < 1024 ? formatBytes(n) : "\(formatBytes(n)) (\(n) bytes)" }
            return "\(device) is out of memory: \(request), also after freeing the buffers cached in its pool and "
                + "trying once more; the device has \(bytes(deviceMemory)) of memory, Myelin's buffers on it hold "
                + "\(bytes(bytesInUse)); free tensors you no longer need or use smaller batches"
        case .sizeOverflow(let what, let shape):
            return shape.contains(where: { $0 < 0 })
                ? "\(what): the shape \(shape) has a negative size"
                : "\(what): the shape \(shape) has more elements than a 64-bit count can hold"
        }
    }
}
