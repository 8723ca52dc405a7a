/// Memory that lives on a device, behind one opaque handle that only its backend reads: a host pointer to
/// Floats for the CPU (`host`, CPU/CPUBackend.swift), a `cl_mem` for OpenCL (`mem`, OpenCL/OpenCLBackend.swift).
/// A nil handle is a buffer without memory (an OpenCL allocation that failed). When the buffer is freed, its
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
}
