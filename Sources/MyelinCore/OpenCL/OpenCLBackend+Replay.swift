import Foundation
import COpenCL

// The OpenCL side of step capture (Capture/CaptureRecorder.swift): while a capture records, `launch` logs each kernel
// launch it enqueues; the recorder turns the launches of each recorded call into `PreparedLaunch`es, each with a
// kernel object of its own whose arguments are set once. A replay of such a call is then a loop of
// `clEnqueueNDRangeKernel`s: no argument list is built, no kernel is looked up by name, no argument is set again
// (except a seed that changes every step).

/// A kernel launch as `OpenCLBackend.launch` enqueued it: the kernel, its arguments and the final sizes.
struct LoggedLaunch {
    let kernel: cl_kernel
    /// The kernel's name in profiles (`KernelReference.profileLabel`).
    let label: String
    let args: [KernelArg]
    let global: [Int]
    let local: [Int]?
    let offset: [Int]
}

/// A recorded launch ready to enqueue again: its own kernel object with the arguments set.
final class PreparedLaunch {
    let kernel: cl_kernel
    /// The kernel's name in profiles.
    let label: String
    /// The arguments, kept for their buffers (the kernel refers to them).
    let args: [KernelArg]
    let dimensions: cl_uint
    let global: UnsafeMutablePointer<Int>
    let local: UnsafeMutablePointer<Int>?
    let offset: UnsafeMutablePointer<Int>
    /// The argument that takes a seed drawn again at each replay, and where the replay finds it.
    let seed: (index: cl_uint, slots: SeedSlots, slot: Int)?

    init(kernel: cl_kernel, args: [KernelArg], launch: LoggedLaunch, seed: (index: cl_uint, slots: SeedSlots, slot: Int)?) {
        self.kernel = kernel
        self.label = launch.label
        self.args = args
        dimensions = cl_uint(launch.global.count)
        func copied(_ values: [Int]) -> UnsafeMutablePointer<Int> {
            let p = UnsafeMutablePointer<Int>.allocate(capacity: max(values.count, 1))
            p.initialize(from: values, count: values.count)
            return p
        }
        global = copied(launch.global)
        local = launch.local.map(copied)
        offset = copied(launch.offset)
        self.seed = seed
    }

    deinit {
        clReleaseKernel(kernel)
        global.deallocate()
        local?.deallocate()
        offset.deallocate()
    }
}

extension OpenCLBackend: CaptureReplayPreparing {
    func preparedReplay(of launches: [Any], seed: (value: UInt64, slots: SeedSlots, slot: Int)?) -> ((Backend) -> Void)? {
        let logged = launches.compactMap { $0 as? LoggedLaunch }
        guard logged.count == launches.count, let prepared = prepare(logged, seed: seed) else { return nil }
        return { [unowned self] _ in enqueue(prepared) }
    }

    /// Called by `launch` while some capture records: hands the launch to the capturing task's recorder.
    func logLaunchForCapture(kernel: cl_kernel, label: String, args: [KernelArg], global: [Int], local: [Int]?, offset: [Int]) {
        CaptureRecorder.current?.logLaunch(from: self, LoggedLaunch(kernel: kernel, label: label, args: args, global: global,
                                                                    local: local, offset: offset))
    }

    /// `launches` with kernels of their own and their arguments set, or nil when one cannot be prepared (the
    /// recorder then keeps the generic replay). A `.ulong` argument equal to `seed.value` is set at each replay.
    func prepare(_ launches: [LoggedLaunch], seed: (value: UInt64, slots: SeedSlots, slot: Int)?) -> [PreparedLaunch]? {
        var prepared: [PreparedLaunch] = []
        for launch in launches {
            var program: cl_program?
            var nameLength = 0
            guard clGetKernelInfo(launch.kernel, cl_kernel_info(CL_KERNEL_PROGRAM), MemoryLayout<cl_program?>.size,
                                  &program, nil) == CL_SUCCESS, let program,
                  clGetKernelInfo(launch.kernel, cl_kernel_info(CL_KERNEL_FUNCTION_NAME), 0, nil, &nameLength) == CL_SUCCESS,
                  nameLength > 0 else { return nil }
            var name = [CChar](repeating: 0, count: nameLength)
            guard clGetKernelInfo(launch.kernel, cl_kernel_info(CL_KERNEL_FUNCTION_NAME), nameLength, &name, nil) == CL_SUCCESS
            else { return nil }
            var err: cl_int = 0
            guard let kernel = clCreateKernel(program, name, &err), err == CL_SUCCESS else { return nil }
            var seedArgument: (index: cl_uint, slots: SeedSlots, slot: Int)?
            for (i, arg) in launch.args.enumerated() {
                let idx = cl_uint(i)
                if case .ulong(let v) = arg, let seed, v == seed.value, seedArgument == nil {
                    seedArgument = (idx, seed.slots, seed.slot)
                }
                guard Self.setArgument(kernel, idx, arg) == CL_SUCCESS else { clReleaseKernel(kernel); return nil }
            }
            if seed != nil && seedArgument == nil { clReleaseKernel(kernel); return nil }
            prepared.append(PreparedLaunch(kernel: kernel, args: launch.args, launch: launch, seed: seedArgument))
        }
        return prepared
    }

    /// Enqueues prepared launches (a replayed call); a refused enqueue is recorded like a failed launch.
    func enqueue(_ launches: [PreparedLaunch]) {
        lock.lock(); defer { lock.unlock() }
        for p in launches {
            if let seed = p.seed {
                var value = seed.slots.values[seed.slot]
                let status = clSetKernelArg(p.kernel, seed.index, 8, &value)
                if status != CL_SUCCESS {
                    recordFailure("clSetKernelArg (the seed of a replayed launch) failed with \(openCLErrorName(status)) (\(status))")
                    return
                }
            }
            // Out of memory: the pool's cached buffers are freed and the launch tried once more, as in `launch`.
            let status = enqueueRetrying {
                KernelProfiler.enqueue(profiler, p.label) { event in
                    clEnqueueNDRangeKernel(queue, p.kernel, p.dimensions, p.offset, p.global, p.local, 0, nil, event)
                }
            }
            if status != CL_SUCCESS {
                let request = "clEnqueueNDRangeKernel of a replayed launch failed with \(openCLErrorName(status)) (\(status)): global size \(Array(UnsafeBufferPointer(start: p.global, count: Int(p.dimensions)))), local size \(p.local.map { Array(UnsafeBufferPointer(start: $0, count: Int(p.dimensions))) }.map { "\($0)" } ?? "chosen by the driver")"
                if Self.isOutOfMemory(status) { recordOutOfMemory(request) } else { recordFailure(request) }
                return
            }
            stats.launches += 1
        }
    }
}
