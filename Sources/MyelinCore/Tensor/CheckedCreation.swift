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
        // Small requests skip the check of the device's memory (a system call), not the system's answer.
        if n < Device.requireAllocatableThreshold / 4, let buffer = device.backend.tryAllocate(n) {
            return Tensor(shape: shape, device: device, buffer: buffer)
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

extension Tensor {
    /// `toArray()`, with `op` (saving a checkpoint, exporting a model) naming the request: a copy of 64 MiB or more
    /// that the host cannot hold now (its free memory, the cgroup, `ulimit -v`), or that the system refuses, is
    /// `DeviceError.outOfMemory` naming `op`, the shape and the bytes, never a crash; the device's failure since the
    /// last check is thrown after the read.
    package func checkedArray(op: @autoclosure () -> String) throws -> [Float] {
        if let refusal = hostCopyRefusal(what: "\(op()): a host copy of shape \(shape)") { throw refusal }
        let values = hostValues()
        if let failure = backend.takeFailure() { throw failure }
        return values
    }

    /// Why a host copy of this tensor's values cannot be made (too large for the host's limits, or refused by the
    /// system when tried), or nil when it can; small tensors are not checked.
    func hostCopyRefusal(what: @autoclosure () -> String) -> DeviceError? {
        let n = count
        guard n >= Device.requireAllocatableThreshold / 4 else { return nil }
        let bytes = n &* MemoryLayout<Float>.size, available = HostMemory.available
        if bytes > available {
            return DeviceError.outOfMemory(what: what(), bytes: bytes, device: "host", limit: available,
                                           limitKind: "of memory available (\(HostMemory.limitsDescription()))")
        }
        // Ask the system once (glibc serves a request this large with mmap, given back at once by free).
        guard let probe = malloc(bytes) else {
            return DeviceError.outOfMemory(what: what(), bytes: bytes, device: "host", limit: available,
                                           limitKind: "of memory available, but the system refused the allocation "
                                               + "(\(HostMemory.limitsDescription()))")
        }
        free(probe)
        return nil
    }
}

extension Tensor {
    /// `copy()` allocated through the check, for a path that throws: a copy the device cannot hold, or that the
    /// system refuses, is `DeviceError.outOfMemory` naming `op` and the shape.
    package func checkedCopy(op: @autoclosure () -> String) throws -> Tensor {
        let out = try Tensor.checkedEmpty(shape, on: device, op: op())
        backend.copy(buffer, sourceOffset: 0, to: out.buffer, destinationOffset: 0, count: count)
        out.labelClasses = labelClasses
        return out
    }
}
