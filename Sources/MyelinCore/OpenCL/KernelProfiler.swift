import COpenCL
import Foundation

// Per-kernel device times of an OpenCL device, behind `MYELIN_PROFILE_KERNELS`: with it set, the device's queue is
// created with `CL_QUEUE_PROFILING_ENABLE`, every kernel launch (replayed ones included) and device-side copy asks for
// an event, and the events' `CL_PROFILING_COMMAND_START`/`END` are summed per kernel name. Without it the queue is
// the plain one and launches pass no event (nothing changes). The profile is printed to stderr at exit (a table;
// JSON lines too with `MYELIN_PROFILE_KERNELS=json`), or read with `Device.kernelProfile(reset:)`.

/// Per-kernel device times of one OpenCL device: the count, total and mean device time of each kernel launched.
public struct KernelProfile: Sendable {
    /// One kernel's launches.
    public struct Entry: Sendable {
        /// The kernel's name; a parameterised GEMM kernel is followed by its variant (`gemm_tile [tile:64x64:k16:w4x4]`).
        public let kernel: String
        /// Launches whose times were read.
        public let count: Int
        /// The sum of their device times (`CL_PROFILING_COMMAND_END - CL_PROFILING_COMMAND_START`), in seconds.
        public let seconds: Double
        /// Mean device time per launch, in seconds.
        public var meanSeconds: Double { count > 0 ? seconds / Double(count) : 0 }
    }

    /// The device's name (`opencl:N`).
    public let device: String
    /// One entry per kernel, the longest total device time first.
    public let entries: [Entry]

    /// The sum of every kernel's device time, in seconds.
    public var totalSeconds: Double { entries.reduce(0) { $0 + $1.seconds } }

    /// The profile as a table: kernel, count, total ms, mean µs and share of the total.
    public var table: String {
        let total = totalSeconds
        let width = max(6, entries.map(\.kernel.count).max() ?? 0)
        func padded(_ s: String, _ w: Int) -> String { s.count >= w ? s : s + String(repeating: " ", count: w - s.count) }
        var lines = ["Kernel device times on \(device) (MYELIN_PROFILE_KERNELS):",
                     padded("kernel", width) + "      count   total ms    mean µs   share"]
        for e in entries {
            lines.append(padded(e.kernel, width) + String(format: " %10d %10.3f %10.2f %6.1f%%", e.count, e.seconds * 1e3,
                                                          e.meanSeconds * 1e6, total > 0 ? 100 * e.seconds / total : 0))
        }
        lines.append(padded("all", width) + String(format: " %10d %10.3f", entries.reduce(0) { $0 + $1.count }, total * 1e3))
        return lines.joined(separator: "\n")
    }

    /// One JSON object per kernel: `{"profile_device", "kernel", "count", "total_ms", "mean_us"}`.
    public var jsonLines: [String] {
        entries.map { e in
            let object: [String: Any] = ["profile_device": device, "kernel": e.kernel, "count": e.count,
                                         "total_ms": e.seconds * 1e3, "mean_us": e.meanSeconds * 1e6]
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
            return String(decoding: data, as: UTF8.self)
        }
    }
}

extension Device {
    /// Whether this device records per-kernel device times (an OpenCL device made with `MYELIN_PROFILE_KERNELS`
    /// set).
    public var profilesKernels: Bool { (base as? OpenCLBackend)?.profiler != nil }

    /// The per-kernel device times recorded since the device was made (or since the last `reset`), after waiting
    /// for the launches in flight; nil when the device does not profile (`profilesKernels`). `reset` starts a new
    /// profile, e.g. after a warm-up.
    ///
    /// ```swift
    /// // MYELIN_PROFILE_KERNELS=1 myelin ...
    /// if let profile = device.kernelProfile(reset: true) { print(profile.table) }
    /// ```
    public func kernelProfile(reset: Bool = false) -> KernelProfile? {
        guard let cl = base as? OpenCLBackend, let profiler = cl.profiler else { return nil }
        cl.lock.lock(); defer { cl.lock.unlock() }
        return profiler.profile(reset: reset)
    }
}

/// How `MYELIN_PROFILE_KERNELS` asks for the profile.
enum KernelProfileMode: Equatable {
    case table, json

    /// The mode `value` asks for; nil for unset, empty, `0`, `off`, `no`, `false`. A value it does not know is
    /// taken as `1` (a table), with a note on stderr.
    init?(_ value: String?) {
        guard let v = value?.lowercased(), !["", "0", "off", "no", "false"].contains(v) else { return nil }
        switch v {
        case "1", "on", "yes", "true", "table": self = .table
        case "json": self = .json
        default:
            FileHandle.standardError.write(Data("myelin: MYELIN_PROFILE_KERNELS=\(value ?? "") is not 1, table or json; printing a table\n".utf8))
            self = .table
        }
    }
}

/// The launches of one device whose events are not read yet, and the totals per kernel name. Used under the
/// backend's lock.
final class KernelProfiler: @unchecked Sendable {
    let device: String
    let mode: KernelProfileMode
    private var pending: [(name: String, event: cl_event)] = []
    private var totals: [String: (count: Int, nanoseconds: UInt64)] = [:]
    /// When this many events are pending, the older half is waited for and read (the newer half stays in flight).
    static let window = 512

    /// Every profiler made in this process, printed at exit.
    nonisolated(unsafe) private static var all: [KernelProfiler] = []
    private static let registry = NSLock()

    init(device: String, mode: KernelProfileMode) {
        self.device = device
        self.mode = mode
        Self.registry.lock(); defer { Self.registry.unlock() }
        if Self.all.isEmpty { atexit { KernelProfiler.printAll() } }
        Self.all.append(self)
    }

    /// Calls `enqueue` with a place for the event when profiling (nil otherwise) and keeps the event under `name`.
    static func enqueue(_ profiler: KernelProfiler?, _ name: @autoclosure () -> String,
                        _ enqueue: (UnsafeMutablePointer<cl_event?>?) -> cl_int) -> cl_int {
        guard let profiler else { return enqueue(nil) }
        var event: cl_event?
        let status = enqueue(&event)
        if status == CL_SUCCESS, let event { profiler.add(name(), event) }
        return status
    }

    func add(_ name: String, _ event: cl_event) {
        pending.append((name, event))
        if pending.count >= Self.window { resolve(count: Self.window / 2) }
    }

    /// Waits for the first `count` pending events (all of them when nil), adds their times and releases them.
    func resolve(count: Int? = nil) {
        let n = min(count ?? pending.count, pending.count)
        guard n > 0 else { return }
        var events: [cl_event?] = pending.prefix(n).map { $0.event }
        _ = clWaitForEvents(cl_uint(n), &events)  // a failed command still has an event to release
        for (name, event) in pending.prefix(n) {
            var start: cl_ulong = 0, end: cl_ulong = 0
            let a = clGetEventProfilingInfo(event, cl_profiling_info(CL_PROFILING_COMMAND_START), 8, &start, nil)
            let b = clGetEventProfilingInfo(event, cl_profiling_info(CL_PROFILING_COMMAND_END), 8, &end, nil)
            if a == CL_SUCCESS, b == CL_SUCCESS, end >= start {
                var t = totals[name] ?? (0, 0)
                t.count += 1
                t.nanoseconds += end - start
                totals[name] = t
            }
            clReleaseEvent(event)
        }
        pending.removeFirst(n)
    }

    /// The profile so far (every pending event read first); `reset` empties it afterwards.
    func profile(reset: Bool) -> KernelProfile {
        resolve()
        let entries = totals.map { KernelProfile.Entry(kernel: $0.key, count: $0.value.count, seconds: Double($0.value.nanoseconds) / 1e9) }
            .sorted { ($0.seconds, $1.kernel) > ($1.seconds, $0.kernel) }
        if reset { totals.removeAll() }
        return KernelProfile(device: device, entries: entries)
    }

    /// At exit: each profiler's profile, when it has launches, to stderr (a table; JSON lines too in `.json` mode).
    static func printAll() {
        registry.lock(); defer { registry.unlock() }
        for p in all {
            let profile = p.profile(reset: true)
            guard !profile.entries.isEmpty else { continue }
            var text = profile.table + "\n"
            if p.mode == .json { text += profile.jsonLines.joined(separator: "\n") + "\n" }
            FileHandle.standardError.write(Data(text.utf8))
        }
    }
}
