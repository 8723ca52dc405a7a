import CBLAS
internal import CMyelinMath
import Foundation
import Synchronization

/// The CPU device: matrix products on its own AVX2 kernel (the smaller ones) and oneDNN's or OpenBLAS's SGEMM
/// (CPUBackend+Gemm.swift), vectorizable Swift loops for the rest, split across cores when a tensor is large.
final class CPUBackend: Backend, @unchecked Sendable {
    static let shared = CPUBackend()

    let name = "cpu"
    let kind = BackendKind.cpu
    var details: String { "CPU, \(threads) threads, GEMM: \(gemmSummary)" }
    /// Counters kept as relaxed atomics: counting an op takes no lock.
    private let hostReads = Atomic<Int>(0), hostWrites = Atomic<Int>(0), allocations = Atomic<Int>(0),
                launches = Atomic<Int>(0), waits = Atomic<Int>(0)
    var stats: DeviceStats {
        var s = DeviceStats()
        s.hostReads = hostReads.load(ordering: .relaxed)
        s.hostWrites = hostWrites.load(ordering: .relaxed)
        s.allocations = allocations.load(ordering: .relaxed)
        s.launches = launches.load(ordering: .relaxed)
        s.waits = waits.load(ordering: .relaxed)
        return s
    }
    /// Threads for large elementwise loops (and OpenBLAS): `MYELIN_THREADS`, else the core count.
    let threads: Int
    /// Free host buffers by size class.
    private let pool = BufferPool<UnsafeMutablePointer<Float>>()
    /// One recycling closure shared by every buffer (no closure context to allocate per buffer).
    private var recycler: ((Int, UnsafeMutableRawPointer?) -> Void)!
    /// Below this many elements a loop runs on the calling thread.
    static let parallelThreshold = 1 << 16

    /// `MYELIN_THREADS`, else the core count (at least 1).
    static let configuredThreads: Int = {
        let env = ProcessInfo.processInfo.environment["MYELIN_THREADS"].flatMap { Int($0) }
        return max(1, env ?? ProcessInfo.processInfo.activeProcessorCount)
    }()

    /// The case of `T` named (in any letter case) by environment variable `variable`; `fallback` when unset or unknown.
    static func environmentChoice<T: RawRepresentable>(_ variable: String, default fallback: T) -> T where T.RawValue == String {
        ProcessInfo.processInfo.environment[variable].flatMap { T(rawValue: $0.lowercased()) } ?? fallback
    }

    /// A backend of its own, beside the shared one, for tests that read its counters. Kept for the process's
    /// life like the shared one: its buffers recycle through an unowned reference to it.
    static func makePrivate() -> CPUBackend {
        let backend = CPUBackend()
        privateBackends.withLock { $0.append(backend) }
        return backend
    }
    private static let privateBackends = Mutex<[CPUBackend]>([])

    /// OpenBLAS's idle workers otherwise spin for ~0.1 s after every GEMM and take cores from this backend's
    /// own loops (ResNet-8 training 619-667 -> 749-770 samples/s, the cnn 1484 -> 1949 on 2 cores). Done once per
    /// process, however many backends are made; OPENBLAS_THREAD_TIMEOUT, when set, wins.
    private static let quietOpenBLASWorkers: Void = { _ = myelin_openblas_short_spin(4) }()

    private init() {
        threads = Self.configuredThreads
        Self.quietOpenBLASWorkers
        openblas_set_num_threads(Int32(threads))
        // The backend is a process-wide singleton that is never freed: no reference counting on self.
        recycler = { [unowned(unsafe) self] capacity, handle in
            guard let handle else { return }
            self.pool.release(handle.assumingMemoryBound(to: Float.self), size: capacity)
        }
    }

    // MARK: memory

    var memory: DeviceMemory {
        let host = HostMemory.current()
        let available = min(host.available, reportedLimit.load(ordering: .relaxed))
        return DeviceMemory(largestBuffer: available, available: available, total: host.total)
    }

    /// For tests only (`limitMemory`): the memory this backend reports at most, and the request size in bytes from
    /// which the system is made to refuse a host allocation (as it does past `ulimit -v`); Int.max: no limit.
    private let reportedLimit = Atomic<Int>(Int.max), refusedFrom = Atomic<Int>(Int.max)
    /// The first failure since the last `takeFailure()` (a refused allocation, an op skipped for it), and a flag
    /// read without the lock on every check.
    private let failure = Mutex<DeviceError?>(nil)
    private let failurePending = Atomic<Bool>(false)

    /// For tests only: report at most `reported` bytes of memory, and refuse every host allocation of `refused`
    /// bytes or more as the system does when it is out of memory (nil: no limit).
    func limitMemory(reported: Int? = nil, refused: Int? = nil) {
        reportedLimit.store(reported ?? Int.max, ordering: .relaxed)
        refusedFrom.store(refused ?? Int.max, ordering: .relaxed)
    }

    /// A buffer of at least `count` elements. When the device cannot hold it (`Device.allocationRefusal`) or the
    /// system refuses the memory, the refusal is recorded as this device's failure (thrown at the next `toArray()`,
    /// `item()` or `Device.check()`) and the buffer has no memory: the ops that use it are skipped.
    func allocate(_ count: Int) -> DeviceBuffer {
        if let refusal = Device.allocationRefusal(count, memory: memory, device: name) {
            record(refusal)
            return .unallocated
        }
        guard let buffer = hostBuffer(count) else {
            record(.outOfMemory(what: "cpu: a buffer of \(count) Float elements", bytes: count * 4, device: name,
                                limit: memory.available,
                                limitKind: "of memory available, but the system refused the allocation "
                                    + "(\(HostMemory.limitsDescription()))"))
            return .unallocated
        }
        return buffer
    }

    func tryAllocate(_ count: Int) -> DeviceBuffer? {
        Device.allocationFits(count, memory: memory) ? hostBuffer(count) : nil
    }

    /// A pooled buffer of `count`'s size class, else a new one; nil when the system refuses the memory also after
    /// the pool's free buffers are given back. posix_memalign, not UnsafeMutableRawPointer.allocate, whose failure
    /// is a bare "Could not allocate memory" crash: a refusal here (past `ulimit -v`, or the host out of memory
    /// after the size check let the request through) becomes an error on the throwing paths, a message otherwise.
    func hostBuffer(_ count: Int) -> DeviceBuffer? {
        var size = BufferPool<UnsafeMutablePointer<Float>>.sizeClass(count)
        if size >= refusedFrom.load(ordering: .relaxed) / 4 { return nil }
        var ptr = pool.take(size: size)
        if ptr == nil, let larger = pool.takeLarger(than: size) { (ptr, size) = (larger.handle, larger.size) }
        if ptr == nil {
            var raw: UnsafeMutableRawPointer?
            if posix_memalign(&raw, 64, size * 4) != 0 || raw == nil {
                // Out of memory: free the pooled buffers and try once more.
                for (handle, _) in pool.removeAllWithSizes() { free(handle) }
                raw = nil
                guard posix_memalign(&raw, 64, size * 4) == 0, raw != nil else { return nil }
            }
            ptr = raw!.bindMemory(to: Float.self, capacity: size)
            allocations.add(1, ordering: .relaxed)
        }
        return DeviceBuffer(capacity: size, handle: UnsafeMutableRawPointer(ptr), recycle: recycler)
    }

    func write(_ source: UnsafeBufferPointer<Float>, to buffer: DeviceBuffer, offset: Int) {
        guard let base = source.baseAddress, source.count > 0, allocated("write", buffer) else { return }
        (buffer.host! + offset).update(from: base, count: source.count)
        count { $0.hostWrites += 1 }
    }

    func read(_ buffer: DeviceBuffer, offset: Int, count n: Int, into destination: UnsafeMutableBufferPointer<Float>) {
        guard n > 0 else { return }
        // A buffer without memory reads as NaN (as on OpenCL); the failure is thrown by the reader's check.
        guard allocated("read", buffer) else { destination.baseAddress!.update(repeating: .nan, count: n); return }
        destination.baseAddress!.update(from: buffer.host! + offset, count: n)
        count { $0.hostReads += 1 }
    }

    func copy(_ source: DeviceBuffer, sourceOffset: Int, to destination: DeviceBuffer, destinationOffset: Int, count n: Int) {
        guard n > 0, allocated("copy", source, destination) else { return }
        (destination.host! + destinationOffset).update(from: source.host! + sourceOffset, count: n)
        count { $0.launches += 1 }
    }

    func fill(_ buffer: DeviceBuffer, value: Float, offset: Int, count n: Int) {
        guard allocated("fill", buffer) else { return }
        let p = buffer.host! + offset
        parallelFor(n) { lo, hi in for i in lo..<hi { p[i] = value } }
        count { $0.launches += 1 }
    }

    func synchronize() {}

    func flush() {}

    func takeFailure() -> DeviceError? {
        guard failurePending.load(ordering: .relaxed) else { return nil }
        return failure.withLock { kept in
            defer { kept = nil; failurePending.store(false, ordering: .relaxed) }
            return kept
        }
    }

    /// Keeps `error` as the failure to report at the next `takeFailure()` (when none is kept yet), and says so
    /// on stderr: the ops that use a buffer without memory are skipped until then.
    func record(_ error: DeviceError) {
        let first = failure.withLock { kept in
            guard kept == nil else { return false }
            kept = error
            return true
        }
        failurePending.store(true, ordering: .relaxed)
        if first { error.announceRecorded() }
    }

    /// Whether `buffers` all have memory; when one has none (its allocation failed), records that `op` was
    /// skipped (thrown at the next `takeFailure()`) and returns false. Every op checks its buffers with it.
    @inline(__always) func allocated(_ op: @autoclosure () -> String, _ a: DeviceBuffer, _ b: DeviceBuffer? = nil,
                                     _ c: DeviceBuffer? = nil, _ d: DeviceBuffer? = nil, _ e: DeviceBuffer? = nil,
                                     _ f: DeviceBuffer? = nil) -> Bool {
        @inline(__always) func has(_ x: DeviceBuffer?) -> Bool { x == nil || x!.handle != nil }
        if a.handle != nil, has(b), has(c), has(d), has(e), has(f) { return true }
        record(.commandFailed(device: name, detail: "\(op()) skipped: a buffer it uses has no memory (its allocation "
                                  + "failed: out of memory)"))
        return false
    }

    /// Adds to the counters: `update` changes a zeroed `DeviceStats` (inlined, so only the fields it touches cost).
    @inline(__always) func count(_ update: (inout DeviceStats) -> Void) {
        var d = DeviceStats()
        update(&d)
        if d.hostReads != 0 { hostReads.add(d.hostReads, ordering: .relaxed) }
        if d.hostWrites != 0 { hostWrites.add(d.hostWrites, ordering: .relaxed) }
        if d.allocations != 0 { allocations.add(d.allocations, ordering: .relaxed) }
        if d.launches != 0 { launches.add(d.launches, ordering: .relaxed) }
        if d.waits != 0 { waits.add(d.waits, ordering: .relaxed) }
    }

    /// Runs body(lo, hi) over [0, n), split into one chunk per thread when n is large: on the CPU device's thread
    /// pool (`myelin_pool_run`, whose workers spin briefly between jobs, so that the many short loops and products
    /// of a step start without waking a thread), or with GCD's `concurrentPerform` when the pool is busy (a loop
    /// inside a pool job, or another caller's job). `parts` (default: the device's thread count) sets the chunks.
    @inline(__always) func parallelFor(_ n: Int, minimum: Int = CPUBackend.parallelThreshold, parts: Int? = nil,
                                       _ body: (Int, Int) -> Void) {
        let chunks = parts ?? threads
        if n < minimum || chunks <= 1 {
            if n > 0 { body(0, n) }
            return
        }
        let per = (n + chunks - 1) / chunks
        // The chunks write disjoint ranges; the body is only called until the pool or concurrentPerform returns.
        withoutActuallyEscaping(body) { body in
            var loop = PoolLoop(body: body, n: n, per: per)
            let ran = withUnsafeMutablePointer(to: &loop) { loop in
                myelin_pool_run(Int32(clamping: chunks), { context, index, _ in
                    let loop = context!.assumingMemoryBound(to: PoolLoop.self)
                    let lo = index * loop.pointee.per, hi = Swift.min(loop.pointee.n, lo + loop.pointee.per)
                    if lo < hi { loop.pointee.body(lo, hi) }
                }, loop) != 0
            }
            if ran { return }
            nonisolated(unsafe) let chunk = body
            DispatchQueue.concurrentPerform(iterations: chunks) { c in
                let lo = c * per, hi = min(n, lo + per)
                if lo < hi { chunk(lo, hi) }
            }
        }
    }
}

/// A `parallelFor` loop handed to the thread pool: its body and the chunking of [0, n).
private struct PoolLoop {
    let body: (Int, Int) -> Void
    let n: Int
    let per: Int
}

/// Counter-based uniform random numbers, bit-identical to `random_uniform` in Kernels/common.cl.
enum CounterRandom {
    @inline(__always) static func uniform(seed: UInt64, index: UInt64) -> Float {
        var z = seed &+ (index &+ 1) &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z = z ^ (z >> 31)
        return Float(z >> 40) * (1.0 / 16_777_216.0)
    }
}

extension DeviceBuffer {
    /// The CPU device's memory: the buffer's Floats on the host.
    @inline(__always)
    var host: UnsafeMutablePointer<Float>? { handle?.assumingMemoryBound(to: Float.self) }
}
