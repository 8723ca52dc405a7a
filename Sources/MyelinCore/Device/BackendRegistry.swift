/// The kinds of backend Myelin has.
enum BackendKind: Sendable {
    case cpu
    case openCL
}

/// One device a backend kind offers on this machine.
struct AvailableDevice: Sendable {
    /// The device's own name (the OpenCL device name).
    let name: String
    /// True for a GPU (what `DeviceSpec.auto` looks for).
    let isGPU: Bool
}

/// How `Device` makes backends without naming any backend type: Device/ knows only the `Backend` protocol, and
/// the one registry, `BackendRegistry.shared`, is filled in Backends.swift (outside Device/), the single place
/// that names every backend. A new kind of backend adds its entry there.
struct BackendRegistry: Sendable {
    /// The CPU backend (one per process).
    let cpu: @Sendable () -> any Backend
    /// The OpenCL devices of this machine, in index order (enumerated once, then cached).
    let openCLDevices: @Sendable () -> [AvailableDevice]
    /// A new backend for OpenCL device `index` (< `openCLDevices().count`).
    let makeOpenCL: @Sendable (_ index: Int) throws -> any Backend
}
