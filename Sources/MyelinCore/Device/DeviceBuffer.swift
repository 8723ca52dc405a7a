/// Memory that lives on a device, behind one opaque handle that only its backend reads: a host pointer to
/// Floats for the CPU (`host`, CPU/CPUBackend.swift), a `cl_mem` for OpenCL (`mem`, OpenCL/OpenCLBackend.swift).
/// A nil handle is a buffer without memory (an allocation that failed: `unallocated`). When the buffer is freed, its
/// backend's `recycle` takes the memory back (into the device's pool).
final class DeviceBuffer {
    /// Capacity in elements (at least the count asked for; pools round sizes up).
    let capacity: Int
    /// The backend's handle of the memory.
    let handle: UnsafeMutableRawPointer?
    private let recycle: (Int, UnsafeMutableRawPointer?) -> Void

    init(capacity: Int, handle: UnsafeMutableRawPointer?, recycle: @escaping (Int, UnsafeMutableRawPointer?) -> Void) {
        self.capacity = capacity
        self.handle = handle
        self.recycle = recycle
    }

    deinit { recycle(capacity, handle) }

    /// A buffer without memory: what `Backend.allocate` gives when the device cannot hold a request (the refusal is
    /// recorded as the device's failure, and the ops that use the buffer are skipped).
    static var unallocated: DeviceBuffer { DeviceBuffer(capacity: 0, handle: nil) { _, _ in } }
}
