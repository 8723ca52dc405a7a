import Foundation

/// How much memory a device can give, in bytes (`Device.memory`).
///
/// For the CPU: the host's memory available now (`MemAvailable` of /proc/meminfo, and the container's cgroup
/// limit when there is one), less a slack. For an OpenCL device: the driver's `CL_DEVICE_MAX_MEM_ALLOC_SIZE` and
/// `CL_DEVICE_GLOBAL_MEM_SIZE` (and the host's available memory for a device that is not a GPU, such as PoCL,
/// whose buffers live in host memory).
///
/// ```swift
/// let memory = Device.cpu.memory
/// print(formatBytes(memory.available))   // e.g. "20.1 GiB"
/// ```
public struct DeviceMemory: Sendable, Equatable {
    /// The largest single buffer the device can allocate.
    public var largestBuffer: Int
    /// What new buffers can take now, all together.
    public var available: Int
    /// The device's whole memory.
    public var total: Int
    /// The limits as they are.
    public init(largestBuffer: Int, available: Int, total: Int) {
        self.largestBuffer = largestBuffer
        self.available = available
        self.total = total
    }
}

/// The host's memory, read from the operating system (Linux: /proc/meminfo and the cgroup files; elsewhere
/// sysconf).
enum HostMemory {
    /// Physical memory, or the cgroup's limit when it is lower.
    static var total: Int { current().total }

    /// Memory that can be allocated now without pushing the machine (or the container) into the
    /// out-of-memory killer: the smaller of MemAvailable and the cgroup's headroom, less a slack of 1/32 of the
    /// total (at most 512 MiB) for everything else the process needs.
    static var available: Int { current().available }

    /// `total` and `available` from one reading of /proc/meminfo and the cgroup files.
    static func current() -> (total: Int, available: Int) {
        let info = readMeminfo(), group = cgroup()
        var total = info.total ?? sysconf(Int32(_SC_PHYS_PAGES)) * sysconf(Int32(_SC_PAGESIZE))
        if let limit = group.limit { total = min(total, limit) }
        var available = info.available ?? sysconf(Int32(_SC_AVPHYS_PAGES)) * sysconf(Int32(_SC_PAGESIZE))
        if let limit = group.limit, let usage = group.usage { available = min(available, max(0, limit - usage)) }
        return (total, max(0, available - min(total / 32, 512 << 20)))
    }

    /// MemTotal and MemAvailable of /proc/meminfo, in bytes.
    static func readMeminfo() -> (total: Int?, available: Int?) {
        guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return (nil, nil) }
        return parseMeminfo(text)
    }

    /// MemTotal and MemAvailable (kB in the file) of a /proc/meminfo text, in bytes.
    static func parseMeminfo(_ text: String) -> (total: Int?, available: Int?) {
        var total: Int?, available: Int?
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            guard parts.count >= 2, let kB = Int(parts[1]) else { continue }
            if parts[0] == "MemTotal:" { total = kB * 1024 }
            if parts[0] == "MemAvailable:" { available = kB * 1024 }
        }
        return (total, available)
    }

    /// The memory limit and usage of this process's cgroup (v2 `memory.max`/`memory.current`, or v1
    /// `memory.limit_in_bytes`/`memory.usage_in_bytes`); nil where there is no limit.
    static func cgroup() -> (limit: Int?, usage: Int?) {
        func number(_ path: String) -> Int? {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
            return Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        if let limit = number("/sys/fs/cgroup/memory.max") {
            return (limit, number("/sys/fs/cgroup/memory.current"))
        }
        // cgroup v1 reports "no limit" as a huge number.
        if let limit = number("/sys/fs/cgroup/memory/memory.limit_in_bytes"), limit < (1 << 60) {
            return (limit, number("/sys/fs/cgroup/memory/memory.usage_in_bytes"))
        }
        return (nil, nil)
    }
}

/// A byte count for people: `512 bytes`, `3.4 KiB`, `6.0 GiB`, `5.7 TiB` (binary units).
///
/// ```swift
/// formatBytes(6_271_999_999_999)   // "5.7 TiB"
/// ```
public func formatBytes(_ bytes: Int) -> String {
    if bytes < 1024 { return "\(bytes) bytes" }
    let units = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
    var value = Double(bytes) / 1024
    var unit = 0
    while value >= 1024, unit < units.count - 1 { value /= 1024; unit += 1 }
    return String(format: value < 10 ? "%.1f %@" : "%.0f %@", value, units[unit] as NSString)
}

/// The number of elements of `shape`, or nil when a size is negative or the product overflows `Int`.
package func checkedElementCount(_ shape: [Int]) -> Int? {
    var n = 1
    for d in shape {
        guard d >= 0 else { return nil }
        let (p, overflow) = n.multipliedReportingOverflow(by: d)
        if overflow { return nil }
        n = p
    }
    return n
}

/// The bytes of `count` Float elements, or nil on overflow.
package func checkedFloatBytes(_ count: Int) -> Int? {
    let (bytes, overflow) = count.multipliedReportingOverflow(by: MemoryLayout<Float>.size)
    return overflow || count < 0 ? nil : bytes
}

extension Device {
    /// How much memory this device can give now (see `DeviceMemory`).
    public var memory: DeviceMemory { base.memory }

    /// Throws `DeviceError.outOfMemory` when a buffer of `bytes` cannot be allocated on this device: larger than its
    /// largest buffer, or than the memory available. `what` names the tensor in the message (e.g.
    /// "Dense(784 -> 128): the weight [128, 784]").
    ///
    /// ```swift
    /// try Device.cpu.checkAllocation(bytes: 784 * 2_000_000_000 * 4, for: "the weight")   // throws
    /// ```
    public func checkAllocation(bytes: Int, for what: String) throws {
        let m = memory
        if bytes > m.largestBuffer, m.largestBuffer < m.available {
            throw DeviceError.outOfMemory(what: what, bytes: bytes, device: name,
                                          limit: m.largestBuffer, limitKind: "as its largest single buffer")
        }
        if bytes > m.available {
            throw DeviceError.outOfMemory(what: what, bytes: bytes, device: name, limit: m.available,
                                          limitKind: "of memory available")
        }
    }

    /// Throws `DeviceError.sizeOverflow` when the element count of `shape` overflows (or a size is negative), and
    /// `DeviceError.outOfMemory` when its Float32 values do not fit on this device (`checkAllocation(bytes:for:)`).
    /// Returns the element count.
    ///
    /// ```swift
    /// try Device.cpu.checkAllocation(shape: [784, 2_000_000_000], for: "the weight")   // throws: needs 5.7 TiB
    /// ```
    @discardableResult
    public func checkAllocation(shape: [Int], for what: String) throws -> Int {
        guard let count = checkedElementCount(shape), let bytes = checkedFloatBytes(count) else {
            throw DeviceError.sizeOverflow(what: what, shape: shape)
        }
        try checkAllocation(bytes: bytes, for: what)
        return count
    }

    /// Stops the program with a clear message when `count` elements cannot be allocated (the last line of
    /// defence of `Backend.allocate`, which cannot throw; throwing paths check first with `checkAllocation`).
    /// Small requests skip the check (reading the host's memory costs a system call).
    @inline(__always)
    static func requireAllocatable(_ count: Int, memory: @autoclosure () -> DeviceMemory, device: @autoclosure () -> String) {
        // Fast path (every allocation): small, valid requests need no check.
        if count >= 0 && count < requireAllocatableThreshold / 4 { return }
        requireAllocatableChecked(count, memory: memory(), device: device())
    }

    /// `requireAllocatable` for requests of `requireAllocatableThreshold` bytes or more (or invalid counts).
    static func requireAllocatableChecked(_ count: Int, memory: @autoclosure () -> DeviceMemory, device: String) {
        guard let bytes = checkedFloatBytes(count), count <= Int.max / 16 else {
            fatalError("\(device): cannot allocate \(count) Float elements: the byte count overflows")
        }
        guard bytes >= requireAllocatableThreshold else { return }
        let m = memory()
        if bytes > m.largestBuffer || bytes > m.available {
            let limit = min(m.largestBuffer, m.available)
            fatalError("\(device): cannot allocate \(formatBytes(bytes)) (\(count) elements): the device can give "
                       + "\(formatBytes(limit)) now; check sizes from data or a command line with "
                       + "Device.checkAllocation(shape:for:) before creating tensors or layers")
        }
    }

    /// Allocations from this many bytes are checked against the device's memory.
    static let requireAllocatableThreshold = 64 << 20
}
