import Foundation

// Allocation that throws: the results of the ops that throw, and tensors made from a shape read from data or a
// command line. A request the device cannot hold, or one the system refuses, is an error naming the op and the
// shape, never a stop of the program.

extension Tensor {
    /// A new tensor of `shape` with uninitialized contents, for an op that throws: an element count that overflows
    /// is `DeviceError.sizeOverflow`, a large request (64 MiB or more) is checked against the device's memory (and
    /// this process's limits) and a request the system still refuses is `DeviceError.outOfMemory`, each naming `op`
    /// and the shape. Small requests cost what `empty` costs.
    package static func checkedEmpty(_ shape: [Int], on device: Device, op: @autoclosure () -> String) throws -> Tensor {
        guard let n = checkedElementCount(shape) else { throw DeviceError.sizeOverflow(what: op(), shape: shape) }
        if n < Device.requireAllocatableThreshold / 4 {
            return Tensor(shape: shape, device: device, buffer: device.backend.allocate(n))
        }
        let what = "\(op()): a result of shape \(shape)"
        try device.checkAllocation(shape: shape, for: what)
        guard let buffer = device.backend.tryAllocate(n) else {
            let bytes = checkedFloatBytes(n) ?? Int.max
            throw DeviceError.outOfMemory(what: what, bytes: bytes, device: device.name, limit: device.memory.available,
                                          limitKind: "of memory available, but the system refused the allocation "
                                              + "(\(HostMemory.limitsDescription()))")
        }
        return Tensor(shape: shape, device: device, buffer: buffer)
    }

    /// A tensor of `shape` filled with `value` (0 by default), for a shape read from data or a command line: where
    /// `Tensor.full`, `zeros` and `ones` stop the program, this throws `DeviceError.sizeOverflow` for a negative size
    /// or an element count no `Int` holds, and `DeviceError.outOfMemory` naming the shape and the bytes when the
    /// device (for the CPU: the host's free memory, the cgroup and `ulimit -v`) cannot hold it.
    ///
    /// ```swift
    /// let x = try Tensor(shape: [2, 3], repeating: 1)      // [[1, 1, 1], [1, 1, 1]]
    /// try Tensor(shape: [1 << 40], on: .cpu)   // throws: ... a result of shape [1099511627776] needs 4.0 TiB, ...
    /// ```
    public convenience init(shape: [Int], repeating value: Float = 0, on device: Device = .default) throws {
        let t = try Tensor.checkedEmpty(shape, on: device, op: "Tensor(shape:repeating:)")
        device.backend.fill(t.buffer, value: value, offset: 0, count: t.count)
        self.init(shape: shape, device: device, buffer: t.buffer)
    }
}
