import Foundation
import Synchronization

/// A device that tensors live on and ops run on.
///
/// One way to name each device: `Device.cpu`, and `try Device.make(_:)` for everything else, from a
/// `DeviceSpec` (`.auto`, `.cpu`, `.opencl(index: N)`) or from its one string form parsed by
/// `DeviceSpec(parsing:)`: `auto`, `cpu`, `opencl:N` (`opencl` alone means `opencl:0`), which is also the
/// device's `name`. `Device.default` is what tensor creation uses when no device is given; nothing sets it
/// but your own code (or `MYELIN_DEVICE` at the first use).
///
/// ```swift
/// let gpu = try Device.make(.opencl(index: 0))
/// let chosen = try Device.make(DeviceSpec(parsing: "opencl:1"))
/// let auto = try Device.make(.auto)          // the first OpenCL GPU, else the CPU
/// Device.default = gpu                       // only when you want it
/// let x = Tensor.ones([2, 3], on: gpu)
/// ```
public final class Device: CustomStringConvertible, Hashable, @unchecked Sendable {
    /// The device's own backend (what `backend` gives outside a step capture).
    let base: Backend
    /// How many step captures are recording now, anywhere in the process (see Capture/CaptureRecorder.swift). While it is 0,
    /// `backend` is `base` after one relaxed load and a branch.
    let activeCaptures = Atomic<Int>(0)

    init(backend: Backend) { self.base = backend }

    /// The backend every op calls: `base`, or the recording proxy of a step capture running in this task.
    @inline(__always) var backend: Backend {
        if activeCaptures.load(ordering: .relaxed) == 0 { return base }
        return CaptureRecorder.backend(for: self)
    }

    /// `cpu` or `opencl:N`: the string `DeviceSpec(parsing:)` reads back to this device.
    public var name: String { base.name }
    public var description: String { name }
    /// True for an OpenCL device.
    public var isOpenCL: Bool { base.kind == .openCL }
    /// A longer description: the OpenCL device's name and platform, or the CPU's thread count.
    public var details: String { base.details }

    /// Transfer, allocation and launch counters since the device was created.
    public var stats: DeviceStats { base.stats }

    /// Waits for every queued command on the device to finish (benchmarks use this).
    public func synchronize() { base.synchronize() }

    /// Waits for the device, then throws the first command that failed since the last check (an OpenCL launch
    /// the driver refused, naming the kernel, its sizes and the device's limits), so results computed after it
    /// are not trusted. `Tensor.item()` checks the same way.
    ///
    /// ```swift
    /// let loss = model(x).mean()
    /// try loss.device.check()
    /// ```
    public func check() throws {
        base.synchronize()
        if let failure = base.takeFailure() { throw failure }
    }

    /// Keeps `error` as this device's failure, thrown at the next `check()`, `toArray()` or `item()` (unless one is
    /// kept already): for what cannot throw, such as a layer's initializer given a size the device cannot hold.
    package func recordFailure(_ error: DeviceError) { base.record(error) }

    /// Throws the failure recorded since the last check without waiting for the device (a refused allocation or
    /// launch is recorded when it is made): the optimizers call it before they change any parameter.
    package func throwRecordedFailure() throws {
        if let failure = base.takeFailure() { throw failure }
    }

    public static func == (a: Device, b: Device) -> Bool { a === b }
    public func hash(into h: inout Hasher) { h.combine(ObjectIdentifier(self)) }

    // MARK: choosing a device

    /// The CPU device.
    public static let cpu = Device(backend: BackendRegistry.shared.cpu())

    private static let lock = NSLock()
    nonisolated(unsafe) private static var openCLDevices: [Int: Device] = [:]
    nonisolated(unsafe) private static var defaultDevice: Device?

    /// The OpenCL device numbered `index` in the list of all platforms' devices.
    @available(*, deprecated, message: "use try Device.make(.opencl(index: N)), the one way to name a device")
    public static func opencl(_ index: Int = 0) throws -> Device {
        try openCLDevice(index)
    }

    /// Every device made so far: the CPU and each OpenCL device created (a step capture watches them all).
    static func created() -> [Device] {
        lock.lock(); defer { lock.unlock() }
        return [cpu] + openCLDevices.keys.sorted().map { openCLDevices[$0]! }
    }

    /// The OpenCL device numbered `index`, made once and then shared.
    private static func openCLDevice(_ index: Int) throws -> Device {
        lock.lock(); defer { lock.unlock() }
        if let d = openCLDevices[index] { return d }
        let all = BackendRegistry.shared.openCLDevices()
        // Asked for the first device where there is none: no OpenCL at all. Any other index names itself.
        guard !all.isEmpty || index != 0 else {
            if let reason = OpenCLPlatforms.noDeviceReason() { throw DeviceError.noOpenCLBecause(reason, available: availableNames()) }
            throw DeviceError.noOpenCL(available: availableNames())
        }
        guard index >= 0, index < all.count else { throw DeviceError.indexOutOfRange(index, available: availableNames()) }
        let d = Device(backend: try BackendRegistry.shared.makeOpenCL(index))
        openCLDevices[index] = d
        return d
    }

    /// The device a spec names (the one way to get an OpenCL device). `auto` picks the first OpenCL GPU,
    /// else the CPU. Throws when there is no such device, listing the devices there are.
    ///
    /// ```swift
    /// let gpu = try Device.make(.opencl(index: 0))
    /// ```
    public static func make(_ spec: DeviceSpec) throws -> Device {
        switch spec {
        case .cpu: return .cpu
        case .opencl(let i): return try openCLDevice(i)
        case .auto:
            return try make(autoChoice(isGPU: BackendRegistry.shared.openCLDevices().map(\.isGPU)))
        }
    }

    /// What `auto` means among OpenCL devices whose GPU flags are `isGPU` (in device-list order):
    /// the first GPU, else the CPU (a CPU OpenCL driver such as PoCL is slower than OpenBLAS).
    static func autoChoice(isGPU: [Bool]) -> DeviceSpec {
        isGPU.firstIndex(of: true).map { .opencl(index: $0) } ?? .cpu
    }

    /// The device `Tensor` creation (and layers) use when none is given: what your code set, else
    /// `MYELIN_DEVICE` read at the first use, else `auto`. Nothing in the library sets it. When the device named by
    /// the environment cannot be created, the CPU is used and stderr says why.
    public static var `default`: Device {
        get {
            lock.lock()
            if let d = defaultDevice { lock.unlock(); return d }
            lock.unlock()
            let d: Device
            do { d = try make(DeviceSpec.fromEnvironment()) } catch {
                // Never silently: a broken MYELIN_DEVICE or MYELIN_KERNELS_DIR says why the CPU is used.
                FileHandle.standardError.write(Data("myelin: the default device could not be created (\(error)); using the CPU\n".utf8))
                d = .cpu
            }
            lock.lock(); defaultDevice = d; lock.unlock()
            return d
        }
        set { lock.lock(); defaultDevice = newValue; lock.unlock() }
    }

    /// Names of every device that can be chosen: `cpu` and `opencl:N (name)`.
    public static func availableNames() -> [String] {
        ["cpu"] + BackendRegistry.shared.openCLDevices().enumerated().map { "opencl:\($0.offset) (\($0.element.name))" }
    }
}
