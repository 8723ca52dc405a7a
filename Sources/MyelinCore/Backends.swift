// The backends this build has: the one place that names them (Device/ reaches them only through
// `BackendRegistry`, so it depends on no backend folder).

extension BackendRegistry {
    static let shared = BackendRegistry(
        cpu: { CPUBackend.shared },
        openCLDevices: { OpenCLPlatforms.devices().map { AvailableDevice(name: $0.name, isGPU: $0.isGPU) } },
        makeOpenCL: { index in try OpenCLBackend(index: index, info: OpenCLPlatforms.devices()[index]) }
    )
}
