import COpenCL
import Foundation

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

/// The OpenCL device: one context, one in-order queue, one program of all of Myelin's kernels
/// (built once per device and cached on disk), and a pool of buffers.
final class OpenCLBackend: Backend, @unchecked Sendable {
    let index: Int
    let info: OpenCLDeviceInfo
    let name: String
    let kind = BackendKind.openCL
    var details: String { "\(info.name) (\(info.platformName))" }
    private(set) var stats = DeviceStats()
    let context: cl_context
    let queue: cl_command_queue
    let program: cl_program
    private var kernels: [String: cl_kernel] = [:]
    /// Free buffers by size class.
    private let pool = BufferPool<cl_mem>()
    private let lock = NSRecursiveLock()

    init(index: Int, info: OpenCLDeviceInfo) throws {
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
        program = try ProgramCache.build(context: ctx, info: info).program
    }

    /// Builds `source` for this device through the program cache, then releases the program; tells whether
    /// it came from the cache. Throws `DeviceError.buildFailed` with the build log when the source does not compile.
    func buildProgram(source: String) throws -> Bool {
        let built = try ProgramCache.build(context: context, info: info, source: source)
        clReleaseProgram(built.program)
        return built.fromCache
    }

    deinit {
        for k in kernels.values { clReleaseKernel(k) }
        for m in pool.removeAll() { clReleaseMemObject(m) }
        clReleaseProgram(program)
        clReleaseCommandQueue(queue)
        clReleaseContext(context)
    }

    // MARK: memory

    func allocate(_ count: Int) -> DeviceBuffer {
        let size = BufferPool<cl_mem>.sizeClass(count)
        var mem: cl_mem? = pool.take(size: size)
        if mem == nil {
            var err: cl_int = 0
            mem = clCreateBuffer(context, cl_mem_flags(CL_MEM_READ_WRITE), size * 4, nil, &err)
            if mem == nil || err != CL_SUCCESS {
                // Out of device memory: give the pooled buffers back and try once more.
                for m in pool.removeAll() { clReleaseMemObject(m) }
                mem = clCreateBuffer(context, cl_mem_flags(CL_MEM_READ_WRITE), size * 4, nil, &err)
                precondition(mem != nil && err == CL_SUCCESS,
                             "\(name): clCreateBuffer of \(size * 4) bytes failed with \(openCLErrorName(err))")
            }
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
        check(clEnqueueWriteBuffer(queue, buffer.mem, cl_bool(CL_FALSE), offset * 4, bytes, staging, 0, nil, &event),
              "clEnqueueWriteBuffer")
        stats.hostWrites += 1
        clSetEventCallback(event, CL_COMPLETE, { ev, _, userData in
            userData?.deallocate()
            clReleaseEvent(ev)
        }, staging)
        clFlush(queue)
    }

    func read(_ buffer: DeviceBuffer, offset: Int, count: Int, into destination: UnsafeMutableBufferPointer<Float>) {
        guard count > 0 else { return }
        lock.lock(); defer { lock.unlock() }
        check(clEnqueueReadBuffer(queue, buffer.mem, cl_bool(CL_TRUE), offset * 4, count * 4,
                                  destination.baseAddress, 0, nil, nil), "clEnqueueReadBuffer")
        stats.hostReads += 1
        stats.waits += 1
    }

    func copy(_ source: DeviceBuffer, sourceOffset: Int, to destination: DeviceBuffer, destinationOffset: Int, count: Int) {
        guard count > 0 else { return }
        lock.lock(); defer { lock.unlock() }
        check(clEnqueueCopyBuffer(queue, source.mem, destination.mem, sourceOffset * 4, destinationOffset * 4,
                                  count * 4, 0, nil, nil), "clEnqueueCopyBuffer")
        stats.launches += 1
    }

    func fill(_ buffer: DeviceBuffer, value: Float, offset: Int, count: Int) {
        guard count > 0 else { return }
        launch("fill", global: [count], args: [.buffer(buffer), .int(Int32(offset)), .int(Int32(count)), .float(value)])
    }

    func synchronize() {
        lock.lock(); defer { lock.unlock() }
        check(clFinish(queue), "clFinish")
        stats.waits += 1
    }

    // MARK: launching

    func kernel(_ name: String) -> cl_kernel {
        if let k = kernels[name] { return k }
        var err: cl_int = 0
        guard let k = clCreateKernel(program, name, &err), err == CL_SUCCESS else {
            fatalError("\(self.name): kernel '\(name)' is missing from the program: \(openCLErrorName(err))")
        }
        kernels[name] = k
        return k
    }

    /// Enqueues a kernel over `global` work-items (rounded up to `local` multiples when given), whose ids start
    /// at `offset` when given.
    func launch(_ name: String, global: [Int], local: [Int]? = nil, offset: [Int]? = nil, args: [KernelArg]) {
        lock.lock(); defer { lock.unlock() }
        let k = kernel(name)
        for (i, arg) in args.enumerated() {
            let idx = cl_uint(i)
            var status: cl_int
            switch arg {
            case .buffer(let b):
                var m = b.mem
                status = clSetKernelArg(k, idx, MemoryLayout<cl_mem>.size, &m)
            case .int(var v): status = clSetKernelArg(k, idx, 4, &v)
            case .float(var v): status = clSetKernelArg(k, idx, 4, &v)
            case .ulong(var v): status = clSetKernelArg(k, idx, 8, &v)
            case .local(let bytes): status = clSetKernelArg(k, idx, bytes, nil)
            case .null:
                var m: cl_mem? = nil
                status = clSetKernelArg(k, idx, MemoryLayout<cl_mem>.size, &m)
            }
            check(status, "clSetKernelArg(\(name), \(i))")
        }
        var g = global.map { max($0, 1) }
        var o = offset ?? [Int](repeating: 0, count: g.count)
        if let local {
            for i in 0..<g.count { g[i] = (g[i] + local[i] - 1) / local[i] * local[i] }
            var l = local
            check(clEnqueueNDRangeKernel(queue, k, cl_uint(g.count), &o, &g, &l, 0, nil, nil),
                  "clEnqueueNDRangeKernel(\(name))")
        } else {
            check(clEnqueueNDRangeKernel(queue, k, cl_uint(g.count), &o, &g, nil, 0, nil, nil),
                  "clEnqueueNDRangeKernel(\(name))")
        }
        stats.launches += 1
    }

    private func check(_ status: cl_int, _ call: String) {
        precondition(status == CL_SUCCESS, "\(name): \(call) failed with \(openCLErrorName(status)) (\(status))")
    }
}

/// Builds the kernel program for a device, or loads its binary from the on-disk cache.
enum ProgramCache {
    /// `MYELIN_CACHE_DIR`, else `$XDG_CACHE_HOME/myelin`, else `~/.cache/myelin`.
    static var directory: URL {
        let env = ProcessInfo.processInfo.environment
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

    /// Where the binary of `source` built for the device `info` is cached.
    static func file(source: String, info: OpenCLDeviceInfo) -> URL {
        directory.appendingPathComponent("\(key(source: source, options: options(for: info), info: info)).bin")
    }

    static func build(context: cl_context, info: OpenCLDeviceInfo,
                      source: String = KernelLibrary.source()) throws -> (program: cl_program, fromCache: Bool) {
        let opts = options(for: info)
        let file = file(source: source, info: info)
        var device: cl_device_id? = info.device

        if let data = try? Data(contentsOf: file), !data.isEmpty {
            var err: cl_int = 0
            var status: cl_int = 0
            let program: cl_program? = data.withUnsafeBytes { raw in
                var length = raw.count
                var ptr: UnsafePointer<UInt8>? = raw.bindMemory(to: UInt8.self).baseAddress
                return clCreateProgramWithBinary(context, 1, &device, &length, &ptr, &status, &err)
            }
            if let program, err == CL_SUCCESS, status == CL_SUCCESS,
               clBuildProgram(program, 1, &device, opts, nil, nil) == CL_SUCCESS {
                return (program, true)
            }
            if let program { clReleaseProgram(program) }
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

    /// Writes the program binary atomically (temporary file, then rename); a failure only costs a rebuild later.
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
        try? AtomicFile.write(Data(bytes), to: file)
    }
}

/// The kernel sources: embedded at build time, or read from `MYELIN_KERNELS_DIR` when it is set
/// (for editing `.cl` files without rebuilding).
enum KernelLibrary {
    static func source() -> String {
        if let dir = ProcessInfo.processInfo.environment["MYELIN_KERNELS_DIR"], !dir.isEmpty,
           let files = try? FileManager.default.contentsOfDirectory(atPath: dir) {
            let named = files.filter { $0.hasSuffix(".cl") }.sorted().compactMap { name -> (String, String)? in
                guard let text = try? String(contentsOfFile: dir + "/" + name, encoding: .utf8) else { return nil }
                return (name, text)
            }
            return join(named)
        }
        return join(embedded)
    }

    /// The `.cl` files compiled into the binary by SwiftPM (`.embedInCode` resources of MyelinCore).
    static var embedded: [(String, String)] {
        [("common.cl", PackageResources.common_cl), ("conv.cl", PackageResources.conv_cl),
         ("elementwise.cl", PackageResources.elementwise_cl), ("gemm.cl", PackageResources.gemm_cl),
         ("gemm_variants.cl", PackageResources.gemm_variants_cl), ("layout.cl", PackageResources.layout_cl), ("optimizers.cl", PackageResources.optimizers_cl),
         ("reduce.cl", PackageResources.reduce_cl)].map { ($0.0, String(decoding: $0.1, as: UTF8.self)) }
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
