// Raw handles for benchmarks and interop with other OpenCL libraries (e.g. calling CLBlast on Myelin's own
// queue and buffers). Not for layers or models: they use Tensor ops.

/// The OpenCL objects behind a device, for benchmarks and interop. Myelin keeps ownership: do not release them.
public struct OpenCLHandles {
    /// The device's `cl_context`.
    public let context: OpaquePointer
    /// The device's in-order `cl_command_queue`; work enqueued here is ordered with Myelin's own.
    public let queue: OpaquePointer
}

extension Device {
    /// The context and queue of an OpenCL device, nil on the CPU. For benchmarks and interop only.
    ///
    /// ```swift
    /// let gpu = try Device.opencl(0)
    /// if let h = gpu.openCLHandles { /* pass h.queue to another OpenCL library */ }
    /// ```
    public var openCLHandles: OpenCLHandles? {
        guard let cl = backend as? OpenCLBackend else { return nil }
        return OpenCLHandles(context: cl.context, queue: cl.queue)
    }
}

extension Tensor {
    /// The `cl_mem` holding this tensor's elements (row-major, from offset 0) on an OpenCL device, nil on the CPU.
    /// For benchmarks and interop only; the memory stays owned by the tensor and lives as long as it does.
    public var openCLMemory: OpaquePointer? { buffer.mem }
}
