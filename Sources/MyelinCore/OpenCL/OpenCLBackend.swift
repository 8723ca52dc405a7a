import COpenCL
import Foundation
import Synchronization

/// One argument of a kernel launch.
enum KernelArg {
    case buffer(DeviceBuffer)
    case int(Int32)
    case float(Float)
    case ulong(UInt64)
    /// Local (work-group) memory of this many bytes.
    case local(Int)
    /// A null buffer pointer (an optional input that is absent).
    case null
}

/// The OpenCL device: one context, one in-order queue, one program per kernel file (common.cl and the file, built
/// on the first use of one of its kernels and cached on disk, so a run compiles only the files it uses), and a
/// pool of buffers.
final class OpenCLBackend: Backend, @unchecked Sendable {
    let index: Int
    let info: OpenCLDeviceInfo
    let name: String
    let kind = BackendKind.openCL
    var details: String { "\(info.name) (\(info.platformName))" }
    var stats = DeviceStats()
    let context: cl_context
    let queue: cl_command_queue
    /// common.cl, which every file's program starts with.
    let commonSource: String
    /// The kernel files other than common.cl (gemm_tuned.cl and gemm_tuned_conv.cl are built per variant, `variantProgram`).
    /// (Settable for tests, which add a file that does not build.)
    var programFiles: [(name: String, text: String)]
    /// The programs of the files built so far, and their kernel names.
    var filePrograms: [String: (program: cl_program, kernels: Set<String>)] = [:]
    /// The files whose program did not build (the error is recorded once, `takeFailure`).
    var unbuiltFiles: [String: DeviceError] = [:]
    /// The kernels created so far (each on its first launch).
    var kernels: [KernelReference: cl_kernel] = [:]
    /// Free buffers by size class.
    private let pool = BufferPool<cl_mem>()
    let lock = NSRecursiveLock()

    /// The folder of the on-disk program cache this device uses.
    let cacheDirectory: URL
    /// `MYELIN_KERNELS_DIR` when the kernels came from a folder (named when a kernel is missing).
    let kernelsDirectory: String?
    /// The device's launch limits (work-group size, possibly capped; per-dimension sizes; local memory).
    let limits: LaunchLimits
    /// Whether launches without a work-group size get one of this backend's choosing, with the global size
    /// rounded up to whole work-groups (the kernels' ROUNDED_GUARD then returns past the end): on GPUs, where the
    /// driver's own choice for counts with large odd factors is tiny work-groups. PoCL keeps exact launches.
    let roundsLaunches: Bool
    /// Whether a step's Adam updates go 8 parameters per launch (`optimizerSteps`, adam_multi_step): on GPUs, where
    /// a launch costs 5-10 µs; PoCL runs that kernel about 50 times slower than one exact launch per parameter, so
    /// it keeps those. `MYELIN_MULTI_TENSOR=1` (or 0) forces the choice (counting a GPU's launches on PoCL).
    let groupsOptimizerUpdates: Bool
    /// The most work-groups a rounded launch (one that did not ask for a work-group size) runs along dimension 1
    /// or 2 in one enqueue (NVIDIA's limit; tests lower it).
    var maxGroupsAlongHigherDimensions = 65_535
    /// `CL_KERNEL_WORK_GROUP_SIZE` and `CL_KERNEL_LOCAL_MEM_SIZE` of each kernel, queried once.
    private var kernelLimits: [KernelReference: (workGroupSize: Int, localMemory: Int)] = [:]
    /// The first command that failed and has not been reported yet (`takeFailure`).
    var failure: DeviceError?
    /// The local size of the latest launch of each kernel that set one (tests check that a cap changes them).
    private(set) var lastLocalSize: [KernelReference: [Int]] = [:]
    /// The programs of the parameterised GEMM kernels built so far (by `GemmVariant.withoutSplit`), and the
    /// variants whose program did not build or whose kernels do not fit the device.
    var variantPrograms: [GemmVariant: cl_program] = [:]
    var unusableVariants: [GemmVariant: String] = [:]
    /// The device's GEMM tuning table once read (`gemmTuningTable`); `.some(nil)` when there is none.
    var tuningTable: GemmTuningTable?? = nil
    /// Bytes of the buffers this device created and has not released, pooled ones included.
    private let createdBytes = Atomic<Int>(0)
    /// Times the pool's cached buffers were freed because the device was out of memory.
    private let poolFlushCount = Atomic<Int>(0)
    /// Test-only fault injection (`injectFailures`, FaultInjection.swift).
    let faults = FaultInjection()
    /// Per-kernel device times, when `MYELIN_PROFILE_KERNELS` is set (KernelProfiler.swift); nil otherwise.
    let profiler: KernelProfiler?

    /// Whether `MYELIN_GPU_PATHS=1` asks a device that is not a GPU to take the GPU's paths: the backend then
    /// treats it as a GPU everywhere it decides by device type (convolution chunks of 64 MiB, the implicit-GEMM
    /// convolution forward, the GPU's unfold and fold kernels, GPU GEMM tiles without a table, rounded launches,
    /// grouped optimizer updates, the GPU's reduction sizes, a flush after each replay), so that PoCL launches what
    /// a GPU would: for counting a GPU's launches per step and running its kernels on CI. `OpenCLPlatforms` still
    /// reports the true type (`Device.auto` is unchanged).
    static func takesGPUPaths(_ environment: [String: String]) -> Bool { environment["MYELIN_GPU_PATHS"] == "1" }

    /// Creates the device's context, queue and program. `environment` supplies `MYELIN_KERNELS_DIR` (kernel
    /// sources, checked before anything is built), `MYELIN_CACHE_DIR` (the program cache) and
    /// `MYELIN_MAX_WORK_GROUP_SIZE` (a cap on the work-group size, as on a smaller GPU); `maxWorkGroupSize`, when
    /// given, is that cap. The cap binds the launches that choose their own work-group size (reductions,
    /// transpose, the GEMM kernels); launches that leave it to the driver get the driver's choice.
    /// `MYELIN_PROFILE_KERNELS` makes a profiling queue (KernelProfiler.swift).
    init(index: Int, info: OpenCLDeviceInfo, environment: [String: String] = ProcessInfo.processInfo.environment,
         maxWorkGroupSize: Int? = nil, roundLaunches: Bool? = nil) throws {
        let files = try KernelLibrary.sourceFiles(environment: environment)
        commonSource = files.first { $0.0 == "common.cl" }?.1 ?? ""
        programFiles = files.filter { !KernelLibrary.gemmVariantFiles.contains($0.0) }.map { (name: $0.0, text: $0.1) }
        // `MYELIN_GPU_PATHS=1`: a CPU device (PoCL) takes every choice a GPU takes (takesGPUPaths).
        var info = info
        if Self.takesGPUPaths(environment) { info.isGPU = true }
        let cap = maxWorkGroupSize ?? environment["MYELIN_MAX_WORK_GROUP_SIZE"].flatMap { Int($0) }
        self.limits = LaunchLimits(device: info.device, cap: cap)
        self.roundsLaunches = roundLaunches ?? (environment["MYELIN_ROUND_LAUNCHES"].map { $0 == "1" } ?? info.isGPU)
        groupsOptimizerUpdates = environment["MYELIN_MULTI_TENSOR"].map { $0 == "1" } ?? info.isGPU
        self.cacheDirectory = ProgramCache.directory(environment: environment)
        self.kernelsDirectory = environment["MYELIN_KERNELS_DIR"].flatMap { $0.isEmpty ? nil : $0 }
        self.index = index
        self.info = info
        self.name = "opencl:\(index)"
        let profileMode = KernelProfileMode(environment["MYELIN_PROFILE_KERNELS"])
        self.profiler = profileMode.map { KernelProfiler(device: "opencl:\(index)", mode: $0) }
        var err: cl_int = 0
        var device: cl_device_id? = info.device
        guard let ctx = clCreateContext(nil, 1, &device, nil, nil, &err), err == CL_SUCCESS else {
            throw DeviceError.openCL(call: "clCreateContext", code: err)
        }
        context = ctx
        let properties = cl_command_queue_properties(profileMode == nil ? 0 : CL_QUEUE_PROFILING_ENABLE)
        guard let q = clCreateCommandQueue(ctx, info.device, properties, &err), err == CL_SUCCESS else {
            throw DeviceError.openCL(call: "clCreateCommandQueue", code: err)
        }
        queue = q
        if let folder = kernelsDirectory {
            // Kernels being edited: every file is built now, so that a build error or a missing kernel is an
            // error when the device is created (the build log in `DeviceError.buildFailed`).
            // (Every stored property is set: when this throws, deinit releases what was made.)
            for file in programFiles {
                let built = try ProgramCache.build(context: ctx, info: info, source: programSource(file),
                                                   directory: cacheDirectory).program
                filePrograms[file.name] = (built, ProgramCache.kernelNames(built))
            }
            try checkKernels(from: folder)
        }
    }


    deinit {
        profiler?.resolve()
        for k in kernels.values { clReleaseKernel(k) }
        for m in pool.removeAll() { clReleaseMemObject(m) }
        for p in variantPrograms.values { clReleaseProgram(p) }
        for p in filePrograms.values { clReleaseProgram(p.program) }
        clReleaseCommandQueue(queue)
        clReleaseContext(context)
    }

    // MARK: memory

    /// `CL_DEVICE_MAX_MEM_ALLOC_SIZE` and `CL_DEVICE_GLOBAL_MEM_SIZE`; a device that is not a GPU (PoCL) keeps its
    /// buffers in host memory, so the host's available memory bounds it too.
    var memory: DeviceMemory {
        var available = info.globalMemory
        if !info.isGPU { available = min(available, HostMemory.available) }
        return DeviceMemory(largestBuffer: info.maxAllocation, available: available, total: info.globalMemory)
    }

    /// A buffer of at least `count` elements: a pooled one of its size class, else a new one. When the driver
    /// cannot create it, the pool's cached buffers are freed and it tries once more; when that fails too, or the
    /// device cannot hold the request (`Device.allocationRefusal`), the failure is recorded (thrown at the next
    /// `toArray()`, `item()` or `Device.check()`) and the buffer has no memory: the commands that use it are
    /// skipped, and reads of it give NaN.
    func allocate(_ count: Int) -> DeviceBuffer {
        if let refusal = Device.allocationRefusal(count, memory: memory, device: name) {
            record(refusal)
            return .unallocated
        }
        // The kernels index with 32-bit ints (their counts are clamped: a skipped launch may see a larger one).
        if count > Int(Int32.max) {
            record(.outOfMemory(what: "\(name): a buffer of \(count) Float elements", bytes: count &* 4, device: name,
                                limit: Int(Int32.max) * 4, limitKind: "as the largest buffer its kernels index (2³¹ − 1 elements)"))
            return .unallocated
        }
        var size = BufferPool<cl_mem>.sizeClass(count)
        var mem: cl_mem? = pool.take(size: size)
        if mem == nil, let larger = pool.takeLarger(than: size) { (mem, size) = (larger.handle, larger.size) }
        if mem == nil {
            var err: cl_int = 0
            mem = createBuffer(bytes: size * 4, &err)
            if mem == nil {
                // Out of device memory: give the pooled buffers back and try once more.
                freeCachedBuffers()
                mem = createBuffer(bytes: size * 4, &err)
            }
            guard mem != nil else {
                lock.lock()
                let request = "clCreateBuffer of \(size * 4) bytes (\(count) Float elements) failed with "
                    + "\(openCLErrorName(err)) (\(err))"
                if Self.isOutOfMemory(err) { recordOutOfMemory(request) } else { recordFailure(request) }
                lock.unlock()
                return DeviceBuffer(capacity: size, handle: nil) { _, _ in }
            }
            createdBytes.add(size * 4, ordering: .relaxed)
            lock.lock(); stats.allocations += 1; lock.unlock()
        }
        return DeviceBuffer(capacity: size, handle: UnsafeMutableRawPointer(mem)) { [weak self] capacity, handle in
            guard let mem = handle.map(cl_mem.init) else { return }
            guard let self else { clReleaseMemObject(mem); return }
            // The queue is in order: a later user of this memory runs after every earlier command.
            self.pool.release(mem, size: capacity)
        }
    }

    func write(_ source: UnsafeBufferPointer<Float>, to buffer: DeviceBuffer, offset: Int) {
        guard source.count > 0 else { return }
        // Copy to a staging block that the driver frees when the write completes: no wait here.
        let bytes = source.count * 4
        let staging = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        staging.copyMemory(from: source.baseAddress!, byteCount: bytes)
        lock.lock(); defer { lock.unlock() }
        var event: cl_event?
        guard buffer.mem != nil else {
            staging.deallocate()
            recordUnallocated("clEnqueueWriteBuffer of \(bytes) bytes")
            return
        }
        let status = enqueueRetrying {
            clEnqueueWriteBuffer(queue, buffer.mem, cl_bool(CL_FALSE), offset * 4, bytes, staging, 0, nil, &event)
        }
        guard status == CL_SUCCESS else {
            staging.deallocate()
            recordEnqueueFailure("clEnqueueWriteBuffer of \(bytes) bytes", status: status)
            return
        }
        stats.hostWrites += 1
        let callback = clSetEventCallback(event, CL_COMPLETE, { ev, _, userData in
            userData?.deallocate()
            clReleaseEvent(ev)
        }, staging)
        if callback != CL_SUCCESS {
            // No callback to free the staging block: wait for the write here instead.
            clWaitForEvents(1, &event)
            clReleaseEvent(event)
            staging.deallocate()
            recordFailure("clSetEventCallback failed with \(openCLErrorName(callback)) (\(callback))")
        }
        recordIfFailed(clFlush(queue), "clFlush")
    }

    func read(_ buffer: DeviceBuffer, offset: Int, count: Int, into destination: UnsafeMutableBufferPointer<Float>) {
        guard count > 0 else { return }
        lock.lock(); defer { lock.unlock() }
        guard buffer.mem != nil else {
            destination.update(repeating: .nan)
            recordUnallocated("clEnqueueReadBuffer of \(count * 4) bytes")
            return
        }
        let status = enqueueRetrying {
            clEnqueueReadBuffer(queue, buffer.mem, cl_bool(CL_TRUE), offset * 4, count * 4,
                                destination.baseAddress, 0, nil, nil)
        }
        if status != CL_SUCCESS {
            destination.update(repeating: .nan)
            recordEnqueueFailure("clEnqueueReadBuffer of \(count * 4) bytes", status: status)
        }
        stats.hostReads += 1
        stats.waits += 1
    }

    func copy(_ source: DeviceBuffer, sourceOffset: Int, to destination: DeviceBuffer, destinationOffset: Int, count: Int) {
        guard count > 0 else { return }
        lock.lock(); defer { lock.unlock() }
        guard source.mem != nil, destination.mem != nil else {
            recordUnallocated("clEnqueueCopyBuffer of \(count * 4) bytes")
            return
        }
        let status = enqueueRetrying {
            KernelProfiler.enqueue(profiler, "(clEnqueueCopyBuffer)") { event in
                clEnqueueCopyBuffer(queue, source.mem, destination.mem, sourceOffset * 4, destinationOffset * 4,
                                    count * 4, 0, nil, event)
            }
        }
        if status != CL_SUCCESS { recordEnqueueFailure("clEnqueueCopyBuffer of \(count * 4) bytes", status: status) }
        stats.launches += 1
    }

    func fill(_ buffer: DeviceBuffer, value: Float, offset: Int, count: Int) {
        guard count > 0 else { return }
        launch(.elementwise, "fill", global: [count], args: [.buffer(buffer), .int(Int32(clamping: offset)), .int(Int32(clamping: count)), .float(value)])
    }

    func synchronize() {
        lock.lock(); defer { lock.unlock() }
        recordIfFailed(clFinish(queue), "clFinish")
        stats.waits += 1
    }

    /// `clFlush` on GPUs, whose drivers may hold commands back until then. A CPU-type device (PoCL) runs each
    /// command as it is enqueued, and a flush after every replayed step cost about 5% of the XOR lab's replay there.
    func flush() {
        guard info.isGPU else { return }
        lock.lock(); defer { lock.unlock() }
        recordIfFailed(clFlush(queue), "clFlush")
    }

    func takeFailure() -> DeviceError? {
        lock.lock(); defer { lock.unlock() }
        defer { failure = nil }
        return failure
    }

    /// Keeps `error` as the failure to report (when none is kept yet), and says so on stderr.
    func record(_ error: DeviceError) {
        lock.lock(); defer { lock.unlock() }
        guard failure == nil else { return }
        failure = error
        error.announceRecorded()
    }

    /// Records `call` as failed unless `status` is `CL_SUCCESS`.
    private func recordIfFailed(_ status: cl_int, _ call: String) {
        if status != CL_SUCCESS { recordFailure("\(call) failed with \(openCLErrorName(status)) (\(status))") }
    }

    /// Keeps the first failed command for `takeFailure` (later ones are usually its consequences) and says so
    /// on stderr at once, for programs that never check.
    func recordFailure(_ detail: String) {
        if failure == nil {
            failure = .commandFailed(device: name, detail: detail)
            FileHandle.standardError.write(Data("myelin: \(name): \(detail)\n".utf8))
        }
    }

    // MARK: launching

    /// The most work-items one work-group of kernel `name` of `program` may have: the device's limit (after the
    /// cap) and the kernel's own `CL_KERNEL_WORK_GROUP_SIZE`, whichever is smaller.
    func workGroupLimit(_ program: KernelProgram, _ name: String) -> Int {
        lock.lock(); defer { lock.unlock() }
        return min(limits.maxWorkGroupSize, kernelLimit(KernelReference(program, name)).workGroupSize)
    }

    /// The bytes of local memory kernel `name` of `program` uses (`CL_KERNEL_LOCAL_MEM_SIZE`; some drivers, Oclgrind
    /// among them, count every kernel's local arrays of the program).
    func kernelLocalMemory(_ program: KernelProgram, _ name: String) -> Int {
        lock.lock(); defer { lock.unlock() }
        return kernelLimit(KernelReference(program, name)).localMemory
    }

    /// `wanted` shrunk (halving its largest dimension) until it fits the work-group limit of kernel `name` of
    /// `program` and the device's per-dimension limits.
    func fittingLocal(_ wanted: [Int], _ program: KernelProgram, _ name: String) -> [Int] {
        let limit = workGroupLimit(program, name)
        var l = wanted.map { max($0, 1) }
        func fits() -> Bool {
            l.reduce(1, *) <= limit && l.indices.allSatisfy { $0 >= limits.maxWorkItemSizes.count || l[$0] <= limits.maxWorkItemSizes[$0] }
        }
        while !fits() {
            let i = l.indices.max { l[$0] < l[$1] }!
            if l[i] == 1 { break }
            l[i] = (l[i] + 1) / 2
        }
        return l
    }

    private func kernelLimit(_ name: KernelReference) -> (workGroupSize: Int, localMemory: Int) {
        if let known = kernelLimits[name] { return known }
        // A kernel whose program does not build (recorded): the device's limits, so that callers go on to the
        // launch, which is skipped.
        guard let k = kernel(name) else { return (limits.maxWorkGroupSize, 0) }
        var size = 0
        var localMemory: cl_ulong = 0
        let status = clGetKernelWorkGroupInfo(k, info.device, cl_kernel_work_group_info(CL_KERNEL_WORK_GROUP_SIZE),
                                              MemoryLayout<Int>.size, &size, nil)
        check(status, "clGetKernelWorkGroupInfo(\(name), CL_KERNEL_WORK_GROUP_SIZE)")
        check(clGetKernelWorkGroupInfo(k, info.device, cl_kernel_work_group_info(CL_KERNEL_LOCAL_MEM_SIZE),
                                       MemoryLayout<cl_ulong>.size, &localMemory, nil),
              "clGetKernelWorkGroupInfo(\(name), CL_KERNEL_LOCAL_MEM_SIZE)")
        let known = (workGroupSize: max(size, 1), localMemory: Int(localMemory))
        kernelLimits[name] = known
        return known
    }

    /// What a launch asked for and what the device allows, for error messages.
    private func launchDescription(_ name: KernelReference, global: [Int], local: [Int]?, localBytes: Int) -> String {
        let kl = kernelLimit(name)
        return "kernel \(name), global size \(global), local size \(local.map { "\($0)" } ?? "chosen by the driver")"
            + ", \(localBytes) bytes of local memory arguments; device limits: CL_DEVICE_MAX_WORK_GROUP_SIZE "
            + "\(info.maxWorkGroupSize)\(limits.cap.map { " (capped to \($0))" } ?? ""), CL_KERNEL_WORK_GROUP_SIZE "
            + "\(kl.workGroupSize), CL_DEVICE_MAX_WORK_ITEM_SIZES \(limits.maxWorkItemSizes), CL_DEVICE_LOCAL_MEM_SIZE "
            + "\(limits.localMemorySize) (the kernel itself uses \(kl.localMemory))"
    }

    /// Enqueues a kernel over `global` work-items (rounded up to `local` multiples when given), whose ids start
    /// at `offset` when given. A local size or local memory beyond the device's limits (callers pick local sizes
    /// through `fittingLocal` and `workGroupLimit`), or an enqueue the driver refuses, is recorded with the kernel,
    /// the sizes and the limits, and thrown at the next `item()` or `Device.check()`. An enqueue that fails for want
    /// of memory (`CL_OUT_OF_RESOURCES`, `CL_MEM_OBJECT_ALLOCATION_FAILURE`) is tried once more after the pool's
    /// cached buffers are freed; a second failure is recorded as `DeviceError.deviceOutOfMemory`.
    func launch(_ program: KernelProgram, _ kernelName: String, global: [Int], local: [Int]? = nil,
                offset: [Int]? = nil, args: [KernelArg]) {
        lock.lock(); defer { lock.unlock() }
        let name = KernelReference(program, kernelName)
        guard let k = kernel(name) else { return }  // its program does not build (recorded)
        let rounded = local == nil && roundsLaunches
        let local = local ?? (rounded ? roundedLocal(global, kernel: name) : nil)
        var localBytes = 0
        for (i, arg) in args.enumerated() {
            switch arg {
            case .buffer(let b) where b.mem == nil:
                // A buffer whose allocation failed: the launch would write through a null pointer.
                recordUnallocated("kernel \(name), argument \(i)")
                return
            case .local(let bytes): localBytes += bytes
            default: break
            }
            let status = Self.setArgument(k, cl_uint(i), arg)
            if status != CL_SUCCESS {
                recordFailure("clSetKernelArg(\(name), argument \(i)) failed with \(openCLErrorName(status)) (\(status)); "
                              + "the launch was not enqueued")
                return
            }
        }
        var g = global.map { max($0, 1) }
        var o = offset ?? [Int](repeating: 0, count: g.count)
        if let local {
            let kl = kernelLimit(name)
            let withinDimensions = local.indices.allSatisfy {
                $0 >= limits.maxWorkItemSizes.count || local[$0] <= limits.maxWorkItemSizes[$0]
            }
            if local.reduce(1, *) > min(limits.maxWorkGroupSize, kl.workGroupSize) || !withinDimensions
                || localBytes + kl.localMemory > limits.localMemorySize {
                recordFailure("a launch exceeds the device's limits, not enqueued: "
                              + launchDescription(name, global: global, local: local, localBytes: localBytes))
                return
            }
            for i in 0..<g.count { g[i] = (g[i] + local[i] - 1) / local[i] * local[i] }
            lastLocalSize[name] = local
            if rounded, g.indices.dropFirst().contains(where: { g[$0] > maxGroupsAlongHigherDimensions * local[$0] }) {
                // More work-groups along dimension 1 or 2 than a GPU takes (NVIDIA: 65 535): in pieces, through the
                // global offset (the kernels launched without a work-group size index by get_global_id alone).
                for piece in Self.pieces(size: g, offset: o, local: local, maxGroups: maxGroupsAlongHigherDimensions) {
                    var (po, pg) = piece
                    guard enqueue(k, name, &pg, &po, local, args: args, global: global, localBytes: localBytes) else { return }
                }
                return
            }
        }
        _ = enqueue(k, name, &g, &o, local, args: args, global: global, localBytes: localBytes)
    }

    /// One clEnqueueNDRangeKernel of a prepared kernel; records a refusal (false) or counts and logs the launch.
    private func enqueue(_ k: cl_kernel, _ name: KernelReference, _ g: inout [Int], _ o: inout [Int], _ local: [Int]?,
                         args: [KernelArg], global: [Int], localBytes: Int) -> Bool {
        let status: cl_int
        if var l = local {
            status = enqueueRetrying { KernelProfiler.enqueue(profiler, name.profileLabel) { event in
                clEnqueueNDRangeKernel(queue, k, cl_uint(g.count), &o, &g, &l, 0, nil, event) } }
        } else {
            status = enqueueRetrying { KernelProfiler.enqueue(profiler, name.profileLabel) { event in
                clEnqueueNDRangeKernel(queue, k, cl_uint(g.count), &o, &g, nil, 0, nil, event) } }
        }
        if status != CL_SUCCESS {
            let request = "clEnqueueNDRangeKernel failed with \(openCLErrorName(status)) (\(status)): "
                + launchDescription(name, global: global, local: local, localBytes: localBytes)
            if Self.isOutOfMemory(status) { recordOutOfMemory(request) } else { recordFailure(request) }
            return false
        }
        if CaptureRecorder.logsLaunches {
            logLaunchForCapture(kernel: k, label: name.profileLabel, args: args, global: g, local: local, offset: o)
        }
        stats.launches += 1
        return true
    }

    /// The pieces (offset, size) of a launch of `size` work-items from `offset`, with work-groups of `local`, that
    /// have at most `maxGroups` work-groups along dimensions 1 and 2 (dimension 0 is never cut).
    static func pieces(size: [Int], offset: [Int], local: [Int], maxGroups: Int) -> [(offset: [Int], size: [Int])] {
        var result = [(offset: offset, size: size)]
        for d in size.indices.dropFirst() {
            let chunk = maxGroups * local[d]
            guard size[d] > chunk else { continue }
            result = result.flatMap { piece in
                stride(from: 0, to: size[d], by: chunk).map { start in
                    var o = piece.offset, s = piece.size
                    o[d] += start
                    s[d] = min(chunk, size[d] - start)
                    return (offset: o, size: s)
                }
            }
        }
        return result
    }

    /// The work-group of a launch that did not ask for one on a device that rounds launches: up to 256 work-items
    /// along dimension 0 (a multiple of 32, within the kernel's and the device's limits; fewer when dimension 0 is
    /// short), 1 along the others.
    private func roundedLocal(_ global: [Int], kernel name: KernelReference) -> [Int] {
        let limit = min(limits.maxWorkGroupSize, kernelLimit(name).workGroupSize, limits.maxWorkItemSizes.first ?? 1)
        let wanted = min(256, (max(global[0], 1) + 31) / 32 * 32)
        return [max(1, min(wanted, limit))] + [Int](repeating: 1, count: global.count - 1)
    }

    /// Sets argument `index` of `kernel` to `arg` (used by `launch` and by the captured step's prepared launches).
    static func setArgument(_ kernel: cl_kernel, _ index: cl_uint, _ arg: KernelArg) -> cl_int {
        switch arg {
        case .buffer(let b):
            var m = b.mem
            return clSetKernelArg(kernel, index, MemoryLayout<cl_mem>.size, &m)
        case .int(var v): return clSetKernelArg(kernel, index, 4, &v)
        case .float(var v): return clSetKernelArg(kernel, index, 4, &v)
        case .ulong(var v): return clSetKernelArg(kernel, index, 8, &v)
        case .local(let bytes): return clSetKernelArg(kernel, index, bytes, nil)
        case .null:
            var m: cl_mem? = nil
            return clSetKernelArg(kernel, index, MemoryLayout<cl_mem>.size, &m)
        }
    }

    private func check(_ status: cl_int, _ call: String) {
        precondition(status == CL_SUCCESS, "\(name): \(call) failed with \(openCLErrorName(status)) (\(status))")
    }

    // MARK: out of memory

    /// Whether `status` says the device (or the driver's host side) ran out of memory. Drivers allocate lazily,
    /// so this can come from an enqueue as well as from `clCreateBuffer`.
    static func isOutOfMemory(_ status: cl_int) -> Bool {
        status == CL_OUT_OF_RESOURCES || status == CL_MEM_OBJECT_ALLOCATION_FAILURE || status == CL_OUT_OF_HOST_MEMORY
    }

    /// Bytes held by Myelin's buffers on this device that are not cached in the pool.
    var bytesInUse: Int { createdBytes.load(ordering: .relaxed) - pool.pooledElements * 4 }

    /// Bytes of every buffer this device created and has not released, the pool's cached ones included.
    var bytesCreated: Int { createdBytes.load(ordering: .relaxed) }

    /// Times the pool's cached buffers were freed because the device ran out of memory.
    var poolFlushes: Int { poolFlushCount.load(ordering: .relaxed) }

    /// Releases every buffer cached in the pool, then waits for the queue, so that the driver can reclaim their
    /// memory before a failed command is tried again (only on this failure path: the hot path never waits).
    private func freeCachedBuffers() {
        for (mem, size) in pool.removeAllWithSizes() {
            clReleaseMemObject(mem)
            createdBytes.subtract(size * 4, ordering: .relaxed)
        }
        poolFlushCount.add(1, ordering: .relaxed)
        _ = clFinish(queue)
    }

    /// A new buffer of `bytes`, or nil with the driver's status in `err`.
    private func createBuffer(bytes: Int, _ err: inout cl_int) -> cl_mem? {
        if let injected = faults.take(.bufferCreation) {
            err = injected
            return nil
        }
        let mem = clCreateBuffer(context, cl_mem_flags(CL_MEM_READ_WRITE), bytes, nil, &err)
        if mem != nil, err != CL_SUCCESS { clReleaseMemObject(mem); return nil }
        return mem
    }

    /// Runs one enqueue; when the device is out of memory, frees the pool's cached buffers and runs it once more.
    /// Returns the status of the last try.
    func enqueueRetrying(_ enqueue: () -> cl_int) -> cl_int {
        let status = (faults.skipOne() ? nil : faults.take(.enqueue)) ?? enqueue()
        guard Self.isOutOfMemory(status) else { return status }
        freeCachedBuffers()
        return faults.take(.enqueue) ?? enqueue()
    }

    /// Records a failed transfer or copy: as `DeviceError.deviceOutOfMemory` when the device was out of memory
    /// (after the retry), else as `commandFailed`.
    private func recordEnqueueFailure(_ request: String, status: cl_int) {
        let what = "\(request) failed with \(openCLErrorName(status)) (\(status))"
        if Self.isOutOfMemory(status) { recordOutOfMemory(what) } else { recordFailure(what) }
    }

    /// Records a command skipped because a buffer it uses has no memory (its allocation failed earlier).
    private func recordUnallocated(_ what: String) {
        recordFailure("\(what): not enqueued, a buffer it uses has no memory (its allocation failed: out of memory)")
    }

    /// Keeps `DeviceError.deviceOutOfMemory` for `request` as the failure to report (when none is kept yet), with
    /// the device's memory and the bytes in use, and says so on stderr.
    func recordOutOfMemory(_ request: String) {
        guard failure == nil else { return }
        let error = DeviceError.deviceOutOfMemory(device: name, request: request, deviceMemory: info.globalMemory,
                                                  bytesInUse: bytesInUse)
        failure = error
        FileHandle.standardError.write(Data("myelin: \(error)\n".utf8))
    }
}

extension DeviceBuffer {
    /// The OpenCL device's memory object.
    @inline(__always)
    var mem: cl_mem? { handle.map(cl_mem.init) }
}
