import Foundation

/// How much memory a device can give, in bytes (`Device.memory`).
///
/// For the CPU: the smallest of the host's memory available now (`MemAvailable` of /proc/meminfo), the headroom
/// under this process's cgroup limit (v2 `memory.max`, v1 `memory.limit_in_bytes`) and under its address-space
/// limit (`ulimit -v`, `RLIMIT_AS`, less the process's current virtual size), less a slack. For an OpenCL device:
/// the driver's `CL_DEVICE_MAX_MEM_ALLOC_SIZE` and `CL_DEVICE_GLOBAL_MEM_SIZE` (and the host's available memory, so
/// all of the above, for a device that is not a GPU, such as PoCL, whose buffers live in host memory).
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

/// The host's memory, read from the operating system (Linux: /proc/meminfo, the cgroup files and the address-space
/// limit; elsewhere sysconf).
enum HostMemory {
    /// Physical memory, or the cgroup's or the address-space limit when it is lower.
    static var total: Int { current().total }

    /// Memory that can be allocated now without pushing the machine (or the container) into the
    /// out-of-memory killer, or this process past its address-space limit: the smallest of MemAvailable, the
    /// cgroup's headroom and the address space left under `ulimit -v`, less a slack of 1/32 of the total (at most
    /// 512 MiB) for everything else the process needs.
    static var available: Int { current().available }

    /// `total` and `available` from one reading of /proc/meminfo, the cgroup files and the address-space limit.
    static func current() -> (total: Int, available: Int) {
        let info = readMeminfo()
        return combine(physical: info.total ?? sysconf(Int32(_SC_PHYS_PAGES)) * sysconf(Int32(_SC_PAGESIZE)),
                       free: info.available ?? sysconf(Int32(_SC_AVPHYS_PAGES)) * sysconf(Int32(_SC_PAGESIZE)),
                       cgroup: cgroup(), addressSpace: addressSpace())
    }

    /// `total` and `available` from the host's physical and free memory, the cgroup's limit and usage, and the
    /// address-space limit and use: the smallest of them, less the slack.
    static func combine(physical: Int, free: Int, cgroup group: (limit: Int?, usage: Int?),
                        addressSpace space: (limit: Int?, used: Int)) -> (total: Int, available: Int) {
        var total = physical, available = free
        if let limit = group.limit { total = min(total, limit) }
        if let limit = space.limit { total = min(total, limit) }
        if let limit = group.limit, let usage = group.usage { available = min(available, max(0, limit - usage)) }
        if let limit = space.limit { available = min(available, max(0, limit - space.used)) }
        return (total, max(0, available - min(total / 32, 512 << 20)))
    }

    /// The limits in words, for a message about a refused allocation: `2.1 GiB available, address space 1.2 GiB
    /// used of 4.0 GiB (ulimit -v), cgroup limit 8.0 GiB`.
    static func limitsDescription() -> String {
        let space = addressSpace(), group = cgroup()
        var limits = "\(formatBytes(available)) available"
        if let limit = space.limit { limits += ", address space \(formatBytes(space.used)) used of \(formatBytes(limit)) (ulimit -v)" }
        if let limit = group.limit { limits += ", cgroup limit \(formatBytes(limit))" }
        return limits
    }

    /// The address-space limit of this process (`ulimit -v`: `RLIMIT_AS`, nil when unlimited) and the address space
    /// it uses now (`VmSize` of /proc/self/status, 0 where unknown).
    static func addressSpace() -> (limit: Int?, used: Int) {
        var r = rlimit()
        // RLIM_INFINITY is all ones (glibc), so any value past Int.max means no limit.
        guard getrlimit(__rlimit_resource_t(RLIMIT_AS.rawValue), &r) == 0, r.rlim_cur < UInt64(Int.max) else { return (nil, 0) }
        let text = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        return (Int(clamping: r.rlim_cur), parseVirtualSize(text) ?? 0)
    }

    /// `VmSize` (kB in the file) of a /proc/self/status text, in bytes.
    static func parseVirtualSize(_ text: String) -> Int? {
        for line in text.split(separator: "\n") where line.hasPrefix("VmSize:") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            if parts.count >= 2, let kB = Int(parts[1]) { return kB * 1024 }
        }
        return nil
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
    /// The v2 group is this process's own (the `0::` line of /proc/self/cgroup) where its folder is visible, else the
    /// root of /sys/fs/cgroup (a container's own group, with cgroup namespaces).
    static func cgroup() -> (limit: Int?, usage: Int?) {
        func number(_ path: String) -> Int? {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
            return Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        let own = (try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("0::/") }.map { String($0.dropFirst(3)) } ?? "/"
        for folder in Set(["/sys/fs/cgroup" + (own == "/" ? "" : own), "/sys/fs/cgroup"]).sorted(by: { $0.count > $1.count }) {
            if let limit = number(folder + "/memory.max") { return (limit, number(folder + "/memory.current")) }
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

    /// Throws `DeviceError.outOfMemory` when `bytes` in several buffers (gradients, optimizer state) exceed the
    /// memory available now; unlike `checkAllocation(bytes:for:)`, the largest single buffer does not bound a sum.
    package func checkTotalAllocation(bytes: Int, for what: String) throws {
        let available = memory.available
        if bytes > available {
            throw DeviceError.outOfMemory(what: what, bytes: bytes, device: name, limit: available,
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

    /// `checkAllocation(shape:for:)` with `Tensor.checkedEmpty`'s policy: a shape under 64 MiB is only checked for
    /// overflow, not against the device's memory (reading the host's memory costs a system call: two per training
    /// step when `TextCorpus.batch` checked its small batch). Returns the element count.
    @discardableResult
    package func checkLargeAllocation(shape: [Int], for what: String) throws -> Int {
        guard let count = checkedElementCount(shape), count < Device.requireAllocatableThreshold / 4 else {
            return try checkAllocation(shape: shape, for: what)
        }
        return count
    }

    /// Why `count` elements cannot be allocated on a device with `memory` (the check of `Backend.allocate`, which
    /// cannot throw: it records the refusal as the device's failure, thrown at the next `toArray()`, `item()` or
    /// `Device.check()`; throwing paths check first with `checkAllocation`), or nil when they can. Small requests
    /// skip the check (reading the host's memory costs a system call).
    @inline(__always)
    static func allocationRefusal(_ count: Int, memory: @autoclosure () -> DeviceMemory,
                                  device: @autoclosure () -> String) -> DeviceError? {
        // Fast path (every allocation): small, valid requests need no check.
        if count >= 0 && count < requireAllocatableThreshold / 4 { return nil }
        return allocationRefusalChecked(count, memory: memory(), device: device())
    }

    /// `allocationRefusal` for requests of `requireAllocatableThreshold` bytes or more (or invalid counts).
    static func allocationRefusalChecked(_ count: Int, memory: @autoclosure () -> DeviceMemory,
                                         device: String) -> DeviceError? {
        let what = "\(device): a buffer of \(count) Float elements"
        guard let bytes = checkedFloatBytes(count), count <= Int.max / 16 else {
            return .sizeOverflow(what: what, shape: [count])
        }
        guard bytes >= requireAllocatableThreshold else { return nil }
        let m = memory()
        if bytes > m.largestBuffer || bytes > m.available {
            return .outOfMemory(what: what, bytes: bytes, device: device, limit: min(m.largestBuffer, m.available),
                                limitKind: m.largestBuffer < m.available ? "as its largest single buffer"
                                    : "of memory available")
        }
        return nil
    }

    /// Whether `count` elements are a valid request that `memory` can give (`allocationRefusal`'s test, with no
    /// error made: small requests pass unchecked).
    static func allocationFits(_ count: Int, memory: @autoclosure () -> DeviceMemory) -> Bool {
        allocationRefusal(count, memory: memory(), device: "") == nil
    }

    /// Allocations from this many bytes are checked against the device's memory.
    static let requireAllocatableThreshold = 64 << 20
}
