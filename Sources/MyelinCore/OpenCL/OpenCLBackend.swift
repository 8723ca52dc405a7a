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
    private let commonSource: String
    /// The kernel files other than common.cl (gemm_tuned.cl is built per variant, `variantProgram`).
    /// (Settable for tests, which add a file that does not build.)
    var programFiles: [(name: String, text: String)]
    /// The programs of the files built so far, and their kernel names.
    private var filePrograms: [String: (program: cl_program, kernels: Set<String>)] = [:]
    /// The files whose program did not build (the error is recorded once, `takeFailure`).
    private var unbuiltFiles: [String: DeviceError] = [:]
    /// The kernels created so far (each on its first launch), by name.
    private(set) var kernels: [String: cl_kernel] = [:]
    /// Free buffers by size class.
    private let pool = BufferPool<cl_mem>()
    let lock = NSRecursiveLock()

    /// The folder of the on-disk program cache this device uses.
    let cacheDirectory: URL
    /// `MYELIN_KERNELS_DIR` when the kernels came from a folder (named when a kernel is missing).
    let kernelsDirectory: String?
    /// The device's launch limits (work-group size, possibly capped; per-dimension sizes; local memory).
    let limits: LaunchLimits
    /// `CL_KERNEL_WORK_GROUP_SIZE` and `CL_KERNEL_LOCAL_MEM_SIZE` of each kernel, queried once.
    private var kernelLimits: [String: (workGroupSize: Int, localMemory: Int)] = [:]
    /// The first command that failed and has not been reported yet (`takeFailure`).
    private var failure: DeviceError?
    /// The local size of the latest launch of each kernel that set one (tests check that a cap changes them).
    private(set) var lastLocalSize: [String: [Int]] = [:]
    /// The programs of the parameterised GEMM kernels built so far, by their defines (`GemmVariant.defines`),
    /// and the variants whose program did not build or whose kernels do not fit the device.
    private var variantPrograms: [String: cl_program] = [:]
    private var unusableVariants: [GemmVariant: String] = [:]
    /// The device's GEMM tuning table once read (`gemmTuningTable`); `.some(nil)` when there is none.
    private var tuningTable: GemmTuningTable?? = nil
    /// Bytes of the buffers this device created and has not released, pooled ones included.
    private let createdBytes = Atomic<Int>(0)
    /// Times the pool's cached buffers were freed because the device was out of memory.
    private let poolFlushCount = Atomic<Int>(0)
    /// Test-only fault injection (`injectFailures`): how many of the next enqueues and buffer creations fail,
    /// and with which status.
    private let injectedEnqueueFailures = Atomic<Int>(0)
    private let injectedBufferFailures = Atomic<Int>(0)
    private let injectedStatus = Atomic<Int32>(0)
    private let injectedEnqueueSkips = Atomic<Int>(0)

    /// Creates the device's context, queue and program. `environment` supplies `MYELIN_KERNELS_DIR` (kernel
    /// sources, checked before anything is built), `MYELIN_CACHE_DIR` (the program cache) and
    /// `MYELIN_MAX_WORK_GROUP_SIZE` (a cap on the work-group size, as on a smaller GPU); `maxWorkGroupSize`, when
    /// given, is that cap. The cap binds the launches that choose their own work-group size (reductions,
    /// transpose, the GEMM kernels); launches that leave it to the driver get the driver's choice.
    init(index: Int, info: OpenCLDeviceInfo, environment: [String: String] = ProcessInfo.processInfo.environment,
         maxWorkGroupSize: Int? = nil) throws {
        let files = try KernelLibrary.sourceFiles(environment: environment)
        commonSource = files.first { $0.0 == "common.cl" }?.1 ?? ""
        programFiles = files.filter { $0.0 != "common.cl" && $0.0 != "gemm_tuned.cl" }.map { (name: $0.0, text: $0.1) }
        let cap = maxWorkGroupSize ?? environment["MYELIN_MAX_WORK_GROUP_SIZE"].flatMap { Int($0) }
        self.limits = LaunchLimits(device: info.device, cap: cap)
        self.cacheDirectory = ProgramCache.directory(environment: environment)
        self.kernelsDirectory = environment["MYELIN_KERNELS_DIR"].flatMap { $0.isEmpty ? nil : $0 }
        self.index = index
        self.info = info
        self.name = "opencl:\(index)"
        var err: cl_int = 0
        var device: cl_device_id? = info.device
        guard let ctx = clCreateContext(nil, 1, &device, nil, nil, &err), err == CL_SUCCESS else {
            throw DeviceError.openCL(call: "clCreateContext", code: err)
        }
        context = ctx
        guard let q = clCreateCommandQueue(ctx, info.device, 0, &err), err == CL_SUCCESS else {
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

    /// The program source of one kernel file: common.cl, the files it names on a `// requires: a.cl, b.cl` line
    /// (whose helpers it uses), then the file.
    func programSource(_ file: (name: String, text: String)) -> String {
        let required = KernelLibrary.requirements(of: file.text).compactMap { name in
            programFiles.first { $0.name == name }.map { ($0.name, $0.text) }
        }
        return KernelLibrary.join([("common.cl", commonSource)] + required + [(file.name, file.text)])
    }

    /// Throws `DeviceError.kernelsDirectory` when the programs built from `folder` lack a kernel that the built-in
    /// kernels define (a file edited so that a kernel is gone would otherwise trap at the kernel's first use).
    private func checkKernels(from folder: String) throws {
        let reference = try ProgramCache.build(context: context, info: info, source: KernelLibrary.join(KernelLibrary.embedded),
                                               directory: cacheDirectory).program
        let expected = ProgramCache.kernelNames(reference)
        clReleaseProgram(reference)
        let missing = expected.subtracting(filePrograms.values.reduce(into: Set<String>()) { $0.formUnion($1.kernels) }).sorted()
        guard missing.isEmpty else {
            throw DeviceError.kernelsDirectory(folder, problem: "its kernels lack \(missing.joined(separator: ", ")) (the built-in kernels define them)")
        }
    }

    /// Builds `source` for this device through the program cache, then releases the program; tells whether
    /// it came from the cache. Throws `DeviceError.buildFailed` with the build log when the source does not compile.
    func buildProgram(source: String) throws -> Bool {
        let built = try ProgramCache.build(context: context, info: info, source: source, directory: cacheDirectory)
        clReleaseProgram(built.program)
        return built.fromCache
    }

    /// Releases a program (tests build programs through `ProgramCache.build` and give them back here).
    static func releaseProgram(_ program: cl_program) { clReleaseProgram(program) }

    deinit {
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
    /// cannot create it, the pool's cached buffers are freed and it tries once more; when that fails too, the
    /// failure is recorded (`DeviceError.deviceOutOfMemory`, thrown at the next `item()` or `Device.check()`) and
    /// the buffer has no memory: the commands that use it are skipped, and reads of it give NaN.
    func allocate(_ count: Int) -> DeviceBuffer {
        Device.requireAllocatable(count, memory: memory, device: name)
        let size = BufferPool<cl_mem>.sizeClass(count)
        var mem: cl_mem? = pool.take(size: size)
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
                return DeviceBuffer(capacity: size, host: nil, mem: nil) { _, _, _ in }
            }
            createdBytes.add(size * 4, ordering: .relaxed)
            lock.lock(); stats.allocations += 1; lock.unlock()
        }
        return DeviceBuffer(capacity: size, host: nil, mem: mem) { [weak self] capacity, _, mem in
            guard let mem else { return }
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
            clEnqueueCopyBuffer(queue, source.mem, destination.mem, sourceOffset * 4, destinationOffset * 4,
                                count * 4, 0, nil, nil)
        }
        if status != CL_SUCCESS { recordEnqueueFailure("clEnqueueCopyBuffer of \(count * 4) bytes", status: status) }
        stats.launches += 1
    }

    func fill(_ buffer: DeviceBuffer, value: Float, offset: Int, count: Int) {
        guard count > 0 else { return }
        launch("fill", global: [count], args: [.buffer(buffer), .int(Int32(offset)), .int(Int32(count)), .float(value)])
    }

    func synchronize() {
        lock.lock(); defer { lock.unlock() }
        recordIfFailed(clFinish(queue), "clFinish")
        stats.waits += 1
    }

    func takeFailure() -> DeviceError? {
        lock.lock(); defer { lock.unlock() }
        defer { failure = nil }
        return failure
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

    /// The kernel `name`, from the program of the file that defines it (built on first use); `kernel|defines`
    /// names a kernel of a parameterised GEMM program (`GemmVariant.kernelKey`), built on first use. Nil when the
    /// file's program does not build on this device: that is recorded (`DeviceError.buildFailed` with the build
    /// log, thrown at the next `item()` or `Device.check()`).
    func kernel(_ name: String) -> cl_kernel? {
        if let k = kernels[name] { return k }
        var err: cl_int = 0
        if let bar = name.firstIndex(of: "|") {
            let defines = String(name[name.index(after: bar)...])
            let built: cl_program
            do {
                built = try variantProgram(defines: defines)
            } catch {
                fatalError("\(self.name): the GEMM variant program \(defines) does not build: \(error)")
            }
            guard let k = clCreateKernel(built, String(name[..<bar]), &err), err == CL_SUCCESS else {
                fatalError("\(self.name): kernel '\(name)' is missing from its program: \(openCLErrorName(err))")
            }
            kernels[name] = k
            return k
        }
        // The file that most likely defines it first; the others after it when it does not.
        var unbuilt = false
        for file in KernelLibrary.filesLikelyDefining(name, in: programFiles) {
            guard let built = fileProgram(file) else { unbuilt = true; continue }
            guard built.kernels.contains(name) else { continue }
            guard let k = clCreateKernel(built.program, name, &err), err == CL_SUCCESS else { break }
            kernels[name] = k
            return k
        }
        if unbuilt { return nil }
        let origin = kernelsDirectory.map { "built from MYELIN_KERNELS_DIR=\($0)" } ?? "built into Myelin"
        fatalError("\(self.name): kernel '\(name)' is missing from the programs \(origin): \(openCLErrorName(err))")
    }

    /// The program of kernel file `name` (built through the program cache on first use), or nil when it does not
    /// build on this device (recorded once).
    private func fileProgram(_ name: String) -> (program: cl_program, kernels: Set<String>)? {
        lock.lock(); defer { lock.unlock() }
        if let built = filePrograms[name] { return built }
        if unbuiltFiles[name] != nil { return nil }
        guard let file = programFiles.first(where: { $0.name == name }) else { return nil }
        do {
            let program = try ProgramCache.build(context: context, info: info, source: programSource(file),
                                                 directory: cacheDirectory).program
            let built = (program: program, kernels: ProgramCache.kernelNames(program))
            filePrograms[name] = built
            return built
        } catch {
            let failed = error as? DeviceError ?? .commandFailed(device: self.name, detail: "\(name) does not build: \(error)")
            unbuiltFiles[name] = failed
            if failure == nil {
                failure = failed
                FileHandle.standardError.write(Data("myelin: \(self.name): the kernels of \(name) do not build: \(failed)\n".utf8))
            }
            return nil
        }
    }

    /// The kernel names of every file's program, building those not built yet (tests check that every kernel
    /// runs).
    func allKernelNames() -> Set<String> {
        programFiles.reduce(into: Set<String>()) { names, file in
            if let built = fileProgram(file.name) { names.formUnion(built.kernels) }
        }
    }

    /// The kernel files whose programs have been built so far.
    var builtProgramFiles: [String] {
        lock.lock(); defer { lock.unlock() }
        return filePrograms.keys.sorted()
    }

    /// The program of the parameterised GEMM kernels built with `defines`, through the program cache.
    func variantProgram(defines: String) throws -> cl_program {
        lock.lock(); defer { lock.unlock() }
        if let p = variantPrograms[defines] { return p }
        let source = try KernelLibrary.gemmVariantSource(kernelsDirectory: kernelsDirectory)
        let built = try ProgramCache.build(context: context, info: info, source: source, directory: cacheDirectory,
                                           defines: defines).program
        variantPrograms[defines] = built
        return built
    }

    /// Whether the GEMM variant builds on this device and its kernels fit the device's limits (checked once).
    func variantUsable(_ v: GemmVariant) -> Bool {
        lock.lock(); defer { lock.unlock() }
        if unusableVariants[v] != nil { return false }
        if variantPrograms[v.defines] != nil { return true }
        guard v.fits(limits) else {
            unusableVariants[v] = "its work-group or local memory exceeds the device's limits"
            return false
        }
        do {
            _ = try variantProgram(defines: v.defines)
        } catch {
            unusableVariants[v] = "\(error)"
            return false
        }
        if let wg = v.workGroup, wg.reduce(1, *) > workGroupLimit(v.kernelKey(v.mainKernel)) {
            unusableVariants[v] = "its work-group exceeds the kernel's CL_KERNEL_WORK_GROUP_SIZE"
            return false
        }
        return true
    }

    /// The device's current GEMM tuning table (read once; nil when there is none, it is stale, or
    /// `MYELIN_TUNING=off`).
    var gemmTuningTable: GemmTuningTable? {
        lock.lock(); defer { lock.unlock() }
        if let known = tuningTable { return known }
        var table: GemmTuningTable? = nil
        let env = ProcessInfo.processInfo.environment
        if !GemmTuner.tableDisabled(env), let files = try? KernelLibrary.sourceFiles(kernelsDirectory: kernelsDirectory),
           case .current(let t) = GemmTuningTable.lookup(for: info, directory: cacheDirectory,
                                                         sourceHash: GemmTuningTable.sourceHash(files)) {
            table = t
        }
        tuningTable = .some(table)
        return table
    }

    /// Forgets the table read, so that the next product reads it again (after `myelin tune` wrote it).
    func reloadTuningTable() {
        lock.lock(); defer { lock.unlock() }
        tuningTable = nil
    }

    /// The most work-items one work-group of kernel `name` may have: the device's limit (after the cap) and
    /// the kernel's own `CL_KERNEL_WORK_GROUP_SIZE`, whichever is smaller.
    func workGroupLimit(_ name: String) -> Int {
        lock.lock(); defer { lock.unlock() }
        return min(limits.maxWorkGroupSize, kernelLimit(name).workGroupSize)
    }

    /// `wanted` shrunk (halving its largest dimension) until it fits kernel `name`'s work-group limit and the
    /// device's per-dimension limits.
    func fittingLocal(_ wanted: [Int], kernel name: String) -> [Int] {
        let limit = workGroupLimit(name)
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

    private func kernelLimit(_ name: String) -> (workGroupSize: Int, localMemory: Int) {
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
    private func launchDescription(_ name: String, global: [Int], local: [Int]?, localBytes: Int) -> String {
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
    func launch(_ name: String, global: [Int], local: [Int]? = nil, offset: [Int]? = nil, args: [KernelArg]) {
        lock.lock(); defer { lock.unlock() }
        guard let k = kernel(name) else { return }  // its program does not build (recorded)
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
        let status: cl_int
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
            var l = local
            status = enqueueRetrying { clEnqueueNDRangeKernel(queue, k, cl_uint(g.count), &o, &g, &l, 0, nil, nil) }
            lastLocalSize[name] = local
        } else {
            status = enqueueRetrying { clEnqueueNDRangeKernel(queue, k, cl_uint(g.count), &o, &g, nil, 0, nil, nil) }
        }
        if status != CL_SUCCESS {
            let request = "clEnqueueNDRangeKernel failed with \(openCLErrorName(status)) (\(status)): "
                + launchDescription(name, global: global, local: local, localBytes: localBytes)
            if Self.isOutOfMemory(status) { recordOutOfMemory(request) } else { recordFailure(request) }
            return
        }
        if CaptureRecorder.logsLaunches { logLaunchForCapture(kernel: k, args: args, global: g, local: local, offset: o) }
        stats.launches += 1
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
        if let injected = takeInjectedFailure(injectedBufferFailures) {
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
        let skip = injectedEnqueueSkips.load(ordering: .relaxed) > 0
        if skip { injectedEnqueueSkips.subtract(1, ordering: .relaxed) }
        let status = (skip ? nil : takeInjectedFailure(injectedEnqueueFailures)) ?? enqueue()
        guard Self.isOutOfMemory(status) else { return status }
        freeCachedBuffers()
        return takeInjectedFailure(injectedEnqueueFailures) ?? enqueue()
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

    /// Where `injectFailures` makes commands fail.
    enum FaultPoint { case enqueue, bufferCreation }

    /// For tests only: the next `count` enqueues (kernel launches, writes, reads, copies) or buffer creations
    /// report `status` without reaching the driver; with `skipped`, the enqueues fail after that many have gone through.
    func injectFailures(_ count: Int, status: cl_int, at point: FaultPoint, after skipped: Int = 0) {
        injectedStatus.store(status, ordering: .relaxed)
        switch point {
        case .enqueue:
            injectedEnqueueSkips.store(skipped, ordering: .relaxed)
            injectedEnqueueFailures.store(count, ordering: .relaxed)
        case .bufferCreation: injectedBufferFailures.store(count, ordering: .relaxed)
        }
    }

    /// The injected status when `counter` still has failures to give (one is used), else nil.
    @inline(__always)
    private func takeInjectedFailure(_ counter: borrowing Atomic<Int>) -> cl_int? {
        var left = counter.load(ordering: .relaxed)
        while left > 0 {
            let (done, original) = counter.compareExchange(expected: left, desired: left - 1, ordering: .relaxed)
            if done { return injectedStatus.load(ordering: .relaxed) }
            left = original
        }
        return nil
    }
}

/// The limits a launch must respect: `CL_DEVICE_MAX_WORK_GROUP_SIZE` (lowered to a cap when one is given),
/// `CL_DEVICE_MAX_WORK_ITEM_SIZES` and `CL_DEVICE_LOCAL_MEM_SIZE`.
struct LaunchLimits: Sendable {
    /// The most work-items in one work-group (after the cap).
    let maxWorkGroupSize: Int
    /// The most work-items along each dimension of a work-group.
    let maxWorkItemSizes: [Int]
    /// Bytes of local memory a work-group may use.
    let localMemorySize: Int
    /// The cap asked for (`MYELIN_MAX_WORK_GROUP_SIZE` or `OpenCLBackend(maxWorkGroupSize:)`), if any.
    let cap: Int?

    init(device: cl_device_id, cap: Int?) {
        let deviceMax = Int(OpenCLPlatforms.deviceValue(device, CL_DEVICE_MAX_WORK_GROUP_SIZE, Int.self))
        self.cap = cap.map { max($0, 1) }
        maxWorkGroupSize = max(1, min(deviceMax, self.cap ?? deviceMax))
        let dimensions = Int(OpenCLPlatforms.deviceValue(device, CL_DEVICE_MAX_WORK_ITEM_DIMENSIONS, cl_uint.self))
        var sizes = [Int](repeating: 0, count: max(dimensions, 1))
        sizes.withUnsafeMutableBytes { raw in
            _ = clGetDeviceInfo(device, cl_device_info(CL_DEVICE_MAX_WORK_ITEM_SIZES), raw.count, raw.baseAddress, nil)
        }
        maxWorkItemSizes = sizes.map { $0 > 0 ? $0 : deviceMax }
        localMemorySize = Int(clamping: OpenCLPlatforms.deviceValue(device, CL_DEVICE_LOCAL_MEM_SIZE, cl_ulong.self))
    }
}

/// Builds the kernel program for a device, or loads its binary from the on-disk cache.
///
/// A cache entry is the driver's program binary behind a 32-byte header: the magic `MYELINCL`, the entry format
/// version, the payload's length and a 64-bit checksum of the payload (`checksum(_:)`). An entry is handed to the
/// driver only when all four match, so a truncated, garbled or foreign file never reaches
/// `clCreateProgramWithBinary` (some drivers crash on one). A bad entry is rebuilt from source and replaced. When the
/// cache folder cannot be written, Myelin runs without a cache and says so once per folder on stderr.
enum ProgramCache {
    /// `MYELIN_CACHE_DIR`, else `$XDG_CACHE_HOME/myelin`, else `~/.cache/myelin`.
    static var directory: URL { directory(environment: ProcessInfo.processInfo.environment) }

    /// The cache folder that `environment` names (see `directory`).
    static func directory(environment env: [String: String]) -> URL {
        if let d = env["MYELIN_CACHE_DIR"], !d.isEmpty { return URL(fileURLWithPath: d) }
        if let x = env["XDG_CACHE_HOME"], !x.isEmpty { return URL(fileURLWithPath: x).appendingPathComponent("myelin") }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/myelin")
    }

    static func options(for info: OpenCLDeviceInfo) -> String {
        [info.clStdOption, "-cl-mad-enable", "-cl-no-signed-zeros"].filter { !$0.isEmpty }.joined(separator: " ")
    }

    /// The cache key: kernel source + build options + device name + driver version.
    static func key(source: String, options: String, info: OpenCLDeviceInfo) -> String {
        var h1: UInt64 = 0xcbf2_9ce4_8422_2325
        var h2: UInt64 = 0x8422_2325_cbf2_9ce4
        for part in [source, options, info.name, info.driverVersion, info.platformVersion] {
            for byte in part.utf8 {
                h1 = (h1 ^ UInt64(byte)) &* 0x100_0000_01b3
                h2 = (h2 &+ UInt64(byte)) &* 0x9e37_79b9_7f4a_7c15
                h2 ^= h2 >> 29
            }
            h1 = (h1 ^ 0xff) &* 0x100_0000_01b3
        }
        return String(format: "%016llx%016llx", h1, h2)
    }

    /// Where the binary of `source` built for the device `info` is cached (in `directory`, by default the one the
    /// process environment names). The name carries the entry format, so Myelin versions that write other
    /// formats never read each other's entries.
    static func file(source: String, info: OpenCLDeviceInfo, directory: URL = ProgramCache.directory,
                     defines: String = "") -> URL {
        let opts = defines.isEmpty ? options(for: info) : options(for: info) + " " + defines
        return directory.appendingPathComponent("\(key(source: source, options: opts, info: info)).v\(formatVersion).bin")
    }

    /// The kernel names of a built program (`CL_PROGRAM_KERNEL_NAMES`); empty when the driver does not say.
    static func kernelNames(_ program: cl_program) -> Set<String> {
        var size = 0
        guard clGetProgramInfo(program, cl_program_info(CL_PROGRAM_KERNEL_NAMES), 0, nil, &size) == CL_SUCCESS, size > 0 else {
            return []
        }
        var buffer = [CChar](repeating: 0, count: size + 1)
        guard clGetProgramInfo(program, cl_program_info(CL_PROGRAM_KERNEL_NAMES), size, &buffer, nil) == CL_SUCCESS else { return [] }
        return Set(String(nulTerminated: buffer).split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty })
    }

    // MARK: entry format

    /// The first 8 bytes of every entry.
    static let magic: [UInt8] = Array("MYELINCL".utf8)
    /// The entry format; an entry of another version is rebuilt.
    static let formatVersion: UInt32 = 1
    /// Magic (8), format version (4), reserved (4), payload length (8), payload checksum (8); little-endian.
    static let headerSize = 32

    /// Why a cache entry was not handed to the driver.
    enum EntryProblem: Error, Equatable, CustomStringConvertible {
        case tooShort(bytes: Int)
        case wrongMagic
        case wrongVersion(UInt32)
        case wrongLength(declared: UInt64, actual: Int)
        case wrongChecksum

        var description: String {
            switch self {
            case .tooShort(let n): return "it has \(n) bytes, shorter than the \(ProgramCache.headerSize)-byte header"
            case .wrongMagic: return "it does not start with MYELINCL (not a Myelin cache entry)"
            case .wrongVersion(let v): return "its format version is \(v), this build writes \(ProgramCache.formatVersion)"
            case .wrongLength(let declared, let actual):
                return "its header declares \(declared) bytes of program, the file holds \(actual) (truncated or padded)"
            case .wrongChecksum: return "its checksum does not match its contents (damaged)"
            }
        }
    }

    /// A cache entry holding `binary`.
    static func encode(_ binary: [UInt8]) -> Data {
        var out = Data(capacity: headerSize + binary.count)
        out.append(contentsOf: magic)
        func append<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        append(formatVersion)
        append(UInt32(0))
        append(UInt64(binary.count))
        append(binary.withUnsafeBytes { checksum($0) })
        out.append(contentsOf: binary)
        return out
    }

    /// The program binary of a cache entry, after checking its header, length and checksum.
    static func decode(_ data: Data) -> Result<Data, EntryProblem> {
        data.withUnsafeBytes { raw -> Result<Data, EntryProblem> in
            guard raw.count >= headerSize else { return .failure(.tooShort(bytes: raw.count)) }
            guard Array(raw[0..<8]) == magic else { return .failure(.wrongMagic) }
            let version = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
            guard version == formatVersion else { return .failure(.wrongVersion(version)) }
            let length = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
            let actual = raw.count - headerSize
            guard length == UInt64(actual), actual > 0 else { return .failure(.wrongLength(declared: length, actual: actual)) }
            let stored = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 24, as: UInt64.self))
            let payload = UnsafeRawBufferPointer(rebasing: raw[headerSize...])
            guard checksum(payload) == stored else { return .failure(.wrongChecksum) }
            return .success(Data(payload))
        }
    }

    /// A 64-bit checksum of `bytes` (8 bytes per round, multiply-rotate mixing, the length folded in): any change
    /// of a byte, any truncation or extension gives another value except with a chance of about 2⁻⁶⁴.
    static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0x9e37_79b9_7f4a_7c15 ^ UInt64(bytes.count)
        let words = bytes.count / 8
        for i in 0..<words {
            let w = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self))
            h ^= w &* 0x87c3_7b91_1142_53d5
            h = ((h << 27) | (h >> 37)) &* 0x4cf5_ad43_2745_937f &+ 0x52dc_e729
        }
        var tail: UInt64 = 0
        for i in (words * 8)..<bytes.count { tail = (tail << 8) | UInt64(bytes[i]) }
        h ^= tail &* 0x87c3_7b91_1142_53d5
        // Final avalanche (SplitMix64).
        h = (h ^ (h >> 30)) &* 0xbf58_476d_1ce4_e5b9
        h = (h ^ (h >> 27)) &* 0x94d0_49bb_1331_11eb
        return h ^ (h >> 31)
    }

    // MARK: building

    /// Builds `source` (by default the kernel library the process environment names) for the device `info`,
    /// through the cache in `directory`; tells whether the program came from the cache.
    static func build(context: cl_context, info: OpenCLDeviceInfo, source: String? = nil,
                      directory: URL = ProgramCache.directory, defines: String = "") throws -> (program: cl_program, fromCache: Bool) {
        let source = try source ?? KernelLibrary.source()
        let opts = defines.isEmpty ? options(for: info) : options(for: info) + " " + defines
        let file = file(source: source, info: info, directory: directory, defines: defines)
        var device: cl_device_id? = info.device

        if let data = try? Data(contentsOf: file) {
            switch decode(data) {
            case .success(let binary):
                var err: cl_int = 0
                var status: cl_int = 0
                let program: cl_program? = binary.withUnsafeBytes { raw in
                    var length = raw.count
                    var ptr: UnsafePointer<UInt8>? = raw.bindMemory(to: UInt8.self).baseAddress
                    return clCreateProgramWithBinary(context, 1, &device, &length, &ptr, &status, &err)
                }
                if let program, err == CL_SUCCESS, status == CL_SUCCESS,
                   clBuildProgram(program, 1, &device, opts, nil, nil) == CL_SUCCESS {
                    return (program, true)
                }
                if let program { clReleaseProgram(program) }
                warn("myelin: the kernel cache entry \(file.path) was refused by the OpenCL driver; rebuilding it")
            case .failure(let problem):
                warn("myelin: ignoring the kernel cache entry \(file.path): \(problem); rebuilding it")
            }
        }

        var err: cl_int = 0
        let program: cl_program? = source.withCString { cstr in
            var p: UnsafePointer<CChar>? = cstr
            return clCreateProgramWithSource(context, 1, &p, nil, &err)
        }
        guard let program, err == CL_SUCCESS else { throw DeviceError.openCL(call: "clCreateProgramWithSource", code: err) }
        let status = clBuildProgram(program, 1, &device, opts, nil, nil)
        if status != CL_SUCCESS {
            var size = 0
            clGetProgramBuildInfo(program, info.device, cl_program_build_info(CL_PROGRAM_BUILD_LOG), 0, nil, &size)
            var log = [CChar](repeating: 0, count: size + 1)
            clGetProgramBuildInfo(program, info.device, cl_program_build_info(CL_PROGRAM_BUILD_LOG), size, &log, nil)
            clReleaseProgram(program)
            throw DeviceError.buildFailed(device: info.name, log: String(nulTerminated: log))
        }
        save(program: program, to: file)
        return (program, false)
    }

    /// Writes the program binary as a cache entry, atomically (temporary file, then rename). A failure only costs a
    /// rebuild later; an unwritable folder is reported once (`reportUnwritable`).
    private static func save(program: cl_program, to file: URL) {
        var size = 0
        guard clGetProgramInfo(program, cl_program_info(CL_PROGRAM_BINARY_SIZES), MemoryLayout<Int>.size, &size, nil) == CL_SUCCESS,
              size > 0 else { return }
        var bytes = [UInt8](repeating: 0, count: size)
        let ok: Bool = bytes.withUnsafeMutableBufferPointer { buf in
            var ptr: UnsafeMutablePointer<UInt8>? = buf.baseAddress
            return clGetProgramInfo(program, cl_program_info(CL_PROGRAM_BINARIES),
                                    MemoryLayout<UnsafeMutablePointer<UInt8>?>.size, &ptr, nil) == CL_SUCCESS
        }
        guard ok else { return }
        do {
            try AtomicFile.write(encode(bytes), to: file)
        } catch {
            reportUnwritable(file.deletingLastPathComponent(), reason: error)
        }
    }

    private static let lock = NSLock()
    nonisolated(unsafe) private static var unwritableReported: Set<String> = []

    /// Says once per folder on stderr that the cache cannot be written there; true when it said it now.
    @discardableResult
    static func reportUnwritable(_ directory: URL, reason: Error) -> Bool {
        lock.lock()
        let first = unwritableReported.insert(directory.path).inserted
        lock.unlock()
        guard first else { return false }
        let why = folderProblem(directory) ?? ProgramCache.reason(reason)
        warn("myelin: cannot write the kernel cache in \(directory.path) (\(why)); running without a cache, so every "
             + "process compiles the kernels again (set MYELIN_CACHE_DIR to a writable folder to keep them)")
        return true
    }

    /// Whether `reportUnwritable` has spoken for `directory` in this process.
    static func hasReportedUnwritable(_ directory: URL) -> Bool {
        lock.lock(); defer { lock.unlock() }
        return unwritableReported.contains(directory.path)
    }

    /// Why files cannot be written in `directory`, found by walking up to the nearest existing folder: a file in
    /// the way, or a folder without write permission; nil when neither explains it.
    static func folderProblem(_ directory: URL) -> String? {
        var path = directory.standardizedFileURL.path
        while true {
            var isFolder: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) {
                if !isFolder.boolValue { return "\(path) is a file, not a folder" }
                if access(path, W_OK) != 0 { return "\(path): \(String(cString: strerror(errno)))" }
                return nil
            }
            let parent = (path as NSString).deletingLastPathComponent
            if parent == path || parent.isEmpty { return nil }
            path = parent
        }
    }

    /// The operating system's words for a file error (the POSIX reason under a Foundation error when there is one).
    static func reason(_ error: Error) -> String {
        let ns = error as NSError
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        return ns.localizedDescription
    }

    private static func warn(_ message: String) {
        FileHandle.standardError.write(Data((message + "\n").utf8))
    }
}

/// The kernel sources: embedded at build time, or read from `MYELIN_KERNELS_DIR` when it is set
/// (for editing `.cl` files without rebuilding). That folder must hold every kernel file Myelin embeds (extra
/// `.cl` files are compiled too); a folder that does not exist, lacks one of them or has one that cannot be read
/// as UTF-8 text is a `DeviceError.kernelsDirectory` when the device is created.
enum KernelLibrary {
    /// The program source the process environment names (see `source(environment:)`).
    static func source() throws -> String { try source(environment: ProcessInfo.processInfo.environment) }

    /// The embedded kernels, or every `.cl` file of `MYELIN_KERNELS_DIR` in `environment` when it is set.
    static func source(environment: [String: String]) throws -> String {
        guard let dir = environment["MYELIN_KERNELS_DIR"], !dir.isEmpty else { return join(embedded) }
        return join(try files(inDirectory: dir))
    }

    /// The `.cl` files of `directory`, checked against the embedded list.
    static func files(inDirectory directory: String) throws -> [(String, String)] {
        func fail(_ problem: String) -> DeviceError { .kernelsDirectory(directory, problem: problem) }
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isFolder) else {
            throw fail("the folder does not exist")
        }
        guard isFolder.boolValue else { throw fail("is a file, not a folder of .cl files") }
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".cl") }.sorted()
        } catch {
            throw fail("the folder cannot be listed (\(ProgramCache.reason(error)))")
        }
        let missing = embedded.map(\.0).filter { !names.contains($0) }
        guard missing.isEmpty else {
            throw fail("missing \(missing.joined(separator: ", ")) (the folder must hold every kernel file: "
                       + "\(embedded.map(\.0).joined(separator: ", ")))")
        }
        var files: [(String, String)] = []
        var unreadable: [String] = []
        for name in names {
            let path = directory + "/" + name
            guard let data = FileManager.default.contents(atPath: path) else {
                unreadable.append("\(name) (cannot be read)")
                continue
            }
            guard let text = String(data: data, encoding: .utf8) else {
                unreadable.append("\(name) (not UTF-8 text)")
                continue
            }
            files.append((name, text))
        }
        guard unreadable.isEmpty else { throw fail("unreadable kernel files: \(unreadable.joined(separator: ", "))") }
        return files
    }

    /// The `.cl` files compiled into the binary by SwiftPM (`.embedInCode` resources of MyelinCore).
    static var embedded: [(String, String)] {
        [("augment.cl", PackageResources.augment_cl), ("common.cl", PackageResources.common_cl), ("conv.cl", PackageResources.conv_cl),
         ("elementwise.cl", PackageResources.elementwise_cl), ("gemm.cl", PackageResources.gemm_cl),
         ("gemm_tuned.cl", PackageResources.gemm_tuned_cl),
         ("gemm_variants.cl", PackageResources.gemm_variants_cl), ("layout.cl", PackageResources.layout_cl),
         ("normalization.cl", PackageResources.normalization_cl), ("optimizers.cl", PackageResources.optimizers_cl),
         ("reduce.cl", PackageResources.reduce_cl)].map { ($0.0, String(decoding: $0.1, as: UTF8.self)) }
    }

    /// The names of `files`, those that most likely define kernel `name` first: a `void name(` definition, then
    /// `name` as the first argument of a macro, then a `void prefix##` macro definition that, with one of the
    /// file's macro arguments, makes `name`; the other files after them. (Only an order to try: the programs'
    /// kernel names decide.)
    static func filesLikelyDefining(_ name: String, in files: [(name: String, text: String)]) -> [String] {
        func rank(_ text: String) -> Int {
            if text.range(of: "void\\s+\(name)\\s*\\(", options: .regularExpression) != nil { return 0 }
            if text.range(of: "\\w\\(\\s*\(name)\\s*[,)]", options: .regularExpression) != nil { return 1 }
            var search = text.startIndex..<text.endIndex
            while let r = text.range(of: "void\\s+\\w+##", options: .regularExpression, range: search) {
                let prefix = text[r].dropFirst(4).trimmingCharacters(in: .whitespaces).dropLast(2)
                if !prefix.isEmpty, name.hasPrefix(prefix) {
                    let rest = name.dropFirst(prefix.count)
                    if text.range(of: "\\w\\(\\s*\(rest)\\s*[,)]", options: .regularExpression) != nil { return 2 }
                }
                search = r.upperBound..<text.endIndex
            }
            return 3
        }
        return files.map { ($0.name, rank($0.text)) }.enumerated()
            .sorted { ($0.element.1, $0.offset) < ($1.element.1, $1.offset) }.map(\.element.0)
    }

    /// The files a kernel file names on its `// requires: a.cl, b.cl` lines (it uses their helpers or macros).
    static func requirements(of text: String) -> [String] {
        text.split(separator: "\n").compactMap { line -> [String]? in
            guard line.hasPrefix("// requires:") else { return nil }
            return line.dropFirst("// requires:".count).split(separator: ",")
                .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }.flatMap { $0 }
    }

    /// common.cl first (shared helpers), then the rest in name order.
    static func join(_ files: [(String, String)]) -> String {
        let ordered = files.sorted { a, b in
            if a.0 == "common.cl" { return b.0 != "common.cl" }
            if b.0 == "common.cl" { return false }
            return a.0 < b.0
        }
        return ordered.map { "// ---- \($0.0)\n\($0.1)" }.joined(separator: "\n")
    }
}
