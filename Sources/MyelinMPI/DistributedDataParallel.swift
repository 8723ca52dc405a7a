import CMPI
import Foundation
import Myelin

/// An MPI call that failed, or MPI used where it cannot be.
public enum MPIError: Error, CustomStringConvertible, Equatable {
    /// An MPI function returned an error code.
    case callFailed(function: String, code: Int32, message: String)
    /// Distributed training was asked for in a process that no MPI launcher started.
    case notLaunchedByMPI
    /// Open MPI's library could not be loaded (dlopen's or dlsym's message): it is not installed, or not found.
    case libraryNotFound(String)
    /// An argument out of range (the message says which and why).
    case invalidArgument(String)

    /// The error in words, naming the MPI function or what to do.
    public var description: String {
        switch self {
        case .callFailed(let function, let code, let message):
            return "\(function) failed with MPI error \(code): \(message)"
        case .notLaunchedByMPI:
            return "distributed training needs an MPI launcher: start the program with mpirun (for example `mpirun -np 2 myelin train fashion-mnist --distributed`); no OMPI_COMM_WORLD_SIZE, PMIX_RANK or PMI_RANK is set in this process's environment"
        case .invalidArgument(let why):
            return why
        case .libraryNotFound(let why):
            return "distributed training needs Open MPI, which could not be loaded (\(why)): install it (Debian or Ubuntu: `apt-get install openmpi-bin`; `scripts/setup --test` does it), or set MYELIN_MPI_LIBRARY to the path of its libmpi.so"
        }
    }
}

/// What the MPI launcher (`mpirun`, `srun`, ...) tells a process through its environment, read without calling MPI.
///
/// ```swift
/// guard MPILaunch.isLaunched else { throw MPIError.notLaunchedByMPI }
/// let device = try Device.make(MPILaunch.deviceSpec(parsing: "opencl:local"))   // opencl:<local rank>
/// ```
public enum MPILaunch {
    /// True when an MPI launcher started this process (Open MPI's `OMPI_COMM_WORLD_SIZE`, PMIx's `PMIX_RANK`, or
    /// `PMI_RANK` is set).
    public static var isLaunched: Bool { isLaunched(environment: ProcessInfo.processInfo.environment) }

    /// True when `environment` shows an MPI launcher.
    public static func isLaunched(environment: [String: String]) -> Bool {
        ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"].contains { environment[$0] != nil }
    }

    /// This process's rank among those on its machine (`OMPI_COMM_WORLD_LOCAL_RANK`, `MPI_LOCALRANKID` or
    /// `SLURM_LOCALID`), 0 when none is set.
    public static var localRank: Int { localRank(environment: ProcessInfo.processInfo.environment) }

    /// The local rank `environment` names, 0 when none.
    public static func localRank(environment: [String: String]) -> Int {
        for key in ["OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"] {
            if let v = environment[key], let r = Int(v), r >= 0 { return r }
        }
        return 0
    }

    /// A device spec where `opencl:local` means `opencl:<local rank>` (one GPU per process on a machine with
    /// several); anything else is `DeviceSpec(parsing:)`'s.
    ///
    /// ```swift
    /// let spec = try MPILaunch.deviceSpec(parsing: "opencl:local", localRank: 1)   // .opencl(index: 1)
    /// ```
    public static func deviceSpec(parsing text: String, localRank: Int = MPILaunch.localRank) throws -> DeviceSpec {
        if text.trimmingCharacters(in: .whitespaces).lowercased() == "opencl:local" { return .opencl(index: localRank) }
        return try DeviceSpec(parsing: text)
    }
}

/// Data-parallel training on MPI, in the spirit of PyTorch's `DistributedDataParallel`: give it to `fit`.
///
/// Every rank builds the same model and optimizer; `fit` then makes rank 0's parameters and buffers everyone's,
/// trains each rank on its share of each global batch on its own device, and before every optimizer step replaces
/// each gradient by the global batch's (each rank's gradient weighted by its share of the batch, summed with
/// `MPI_Allreduce`). Gradients travel in buckets of `bucketBytes` (DDP's 25 MB by default), in reverse parameter
/// order as the backward pass produces them; each bucket is one device read (gradients gathered on the device)
/// and one device write. The reductions do not overlap the backward pass (they start after `backward()` returns):
/// Open MPI's non-blocking `MPI_Iallreduce` progresses only inside MPI calls without a progress thread, and
/// measured slower than the blocking call here (5 ms against 3.3 ms for 2 MB between two processes).
///
/// ```swift
/// import MyelinMPI
/// let ddp = try DistributedDataParallel()     // under `mpirun -np 2 ...`
/// let device = try Device.make(MPILaunch.deviceSpec(parsing: "opencl:local"))
/// try model.fit(train, epochs: 10, batchSize: 256, loss: .softmaxCrossEntropy, optimizer: adam, distributed: ddp)
/// if ddp.isMainRank { try TrainingCheckpoint.save(...) }
/// ```
public final class DistributedDataParallel: DataParallel {
    /// This process's rank in `MPI_COMM_WORLD`.
    public let rank: Int
    /// The number of processes in `MPI_COMM_WORLD`.
    public let worldSize: Int
    /// The largest bucket of gradients reduced in one call, in bytes (a larger tensor gets a bucket of its own).
    public let bucketBytes: Int
    /// Seconds spent in `reduceGradients` (device reads and writes included), and the bytes it reduced (this
    /// rank's share, counted once per call), since the start or `resetCounters()`.
    public private(set) var reduceSeconds: Double = 0
    /// Seconds of `reduceSeconds` spent in MPI calls (starting and waiting for the reductions, which includes waiting
    /// for the slowest rank), since the start or `resetCounters()`.
    public private(set) var communicationSeconds: Double = 0
    /// Gradient bytes reduced since the start or `resetCounters()` (4 per value per step).
    public private(set) var reducedBytes: Int = 0
    /// Calls of `reduceGradients` since the start or `resetCounters()`.
    public private(set) var reduceCalls: Int = 0

    private var layout: BucketLayout?

    /// Loads Open MPI (at run time: nothing links libmpi), initializes it (once per process; `MPI_Finalize` runs
    /// at exit) and joins `MPI_COMM_WORLD`.
    ///
    /// - Parameter bucketBytes: the gradient bytes per reduction. Default 25 MiB.
    /// - Throws: `MPIError.libraryNotFound` when Open MPI is not installed (or `MYELIN_MPI_LIBRARY` names no
    ///   library), `MPIError.notLaunchedByMPI` when no MPI launcher started the process, `MPIError.callFailed`
    ///   when MPI cannot start.
    public init(bucketBytes: Int = 25 << 20) throws {
        try MPIRuntime.load()
        guard MPILaunch.isLaunched else { throw MPIError.notLaunchedByMPI }
        guard bucketBytes > 0 else { throw MPIError.invalidArgument("DistributedDataParallel: bucketBytes must be positive, got \(bucketBytes)") }
        try MPIRuntime.start()
        var r: Int32 = 0, n: Int32 = 0
        try mpiCheck(myelin_mpi_world_rank(&r), "MPI_Comm_rank")
        try mpiCheck(myelin_mpi_world_size(&n), "MPI_Comm_size")
        rank = Int(r)
        worldSize = Int(n)
        self.bucketBytes = bucketBytes
    }

    /// Zeroes `reduceSeconds`, `communicationSeconds`, `reducedBytes` and `reduceCalls`.
    public func resetCounters() { reduceSeconds = 0; communicationSeconds = 0; reducedBytes = 0; reduceCalls = 0 }

    /// Waits until every rank has called it (`MPI_Barrier`).
    public func barrier() throws { try mpiCheck(myelin_mpi_world_barrier(), "MPI_Barrier") }

    /// Overwrites `tensors` with rank 0's values (`MPI_Bcast`, in buckets: one device read on rank 0 and one
    /// write per tensor on the others).
    public func broadcast(_ tensors: [Tensor]) throws {
        for bucket in BucketLayout.buckets(of: tensors, bytes: bucketBytes) {
            var host = rank == 0 ? try BucketLayout.read(bucket) : [Float](repeating: 0, count: bucket.reduce(0) { $0 + $1.count })
            try host.withUnsafeMutableBufferPointer { b in
                try mpiCheck(myelin_mpi_world_bcast_float(b.baseAddress, Int32(b.count), 0), "MPI_Bcast")
            }
            guard rank != 0 else { continue }
            var offset = 0
            for t in bucket {
                t.assign(Array(host[offset..<offset + t.count]))
                offset += t.count
            }
        }
    }

    /// Replaces every gradient of `parameters` by Σ over ranks of `weight` × the rank's gradient, in buckets
    /// reduced with `MPI_Allreduce` (see the type's description).
    public func reduceGradients(of parameters: [Tensor], weight: Float) throws {
        let start = Date()
        if layout == nil || !layout!.matches(parameters) { layout = BucketLayout(parameters, bytes: bucketBytes) }
        let layout = layout!
        for (i, bucket) in layout.buckets.enumerated() {
            let values = try BucketLayout.read(bucket.tensors.map { $0.grad ?? Tensor.zeros($0.shape, on: $0.device) })
            let host = layout.host[i]
            values.withUnsafeBufferPointer { v in for j in 0..<v.count { host[j] = v[j] * weight } }
            let mpiStart = Date()
            try mpiCheck(myelin_mpi_world_allreduce_float_sum(host.baseAddress, Int32(host.count)), "MPI_Allreduce")
            communicationSeconds += Date().timeIntervalSince(mpiStart)
            let device = bucket.tensors[0].device
            let flat = Tensor.zeros([layout.host[i].count], on: device)
            flat.upload(UnsafeBufferPointer(layout.host[i]), at: 0)   // one write
            var offset = 0
            for p in bucket.tensors {
                let part = try flat.slice(offset..<offset + p.count).reshaped(p.shape)
                if let g = p.grad { g.assign(from: part) } else { p.grad = part }
                offset += p.count
            }
            reducedBytes += 4 * layout.host[i].count
        }
        reduceCalls += 1
        reduceSeconds += Date().timeIntervalSince(start)
    }

    /// The element-wise sum or minimum of every rank's `values` (`MPI_Allreduce` on doubles).
    public func allReduce(_ values: [Double], _ operation: DataParallelReduction) throws -> [Double] {
        var v = values
        let op = Int32(operation == .sum ? MYELIN_MPI_OP_SUM : MYELIN_MPI_OP_MIN)
        try v.withUnsafeMutableBufferPointer { b in
            try mpiCheck(myelin_mpi_world_allreduce_double(b.baseAddress, Int32(b.count), op), "MPI_Allreduce")
        }
        return v
    }
}

/// Gradients grouped into buckets of at most `bytes` (a larger tensor alone), in reverse order (the order the
/// backward pass produces them), each bucket on one device, with a host buffer per bucket kept across steps.
final class BucketLayout {
    struct Bucket { let tensors: [Tensor] }
    let buckets: [Bucket]
    let host: [UnsafeMutableBufferPointer<Float>]
    private let identities: [ObjectIdentifier]

    init(_ parameters: [Tensor], bytes: Int) {
        identities = parameters.map(ObjectIdentifier.init)
        buckets = BucketLayout.buckets(of: parameters.reversed(), bytes: bytes).map(Bucket.init)
        host = buckets.map { b in
            let n = b.tensors.reduce(0) { $0 + $1.count }
            let p = UnsafeMutableBufferPointer<Float>.allocate(capacity: n)
            p.initialize(repeating: 0)
            return p
        }
    }

    deinit { for h in host { h.deallocate() } }

    /// True when `parameters` are the tensors this layout was made for, in the same order.
    func matches(_ parameters: [Tensor]) -> Bool { parameters.map(ObjectIdentifier.init) == identities }

    /// `tensors` in order, cut into groups of at most `bytes` bytes (4 per value) on one device each.
    static func buckets(of tensors: [Tensor], bytes: Int) -> [[Tensor]] {
        var result: [[Tensor]] = []
        var current: [Tensor] = []
        var size = 0
        for t in tensors {
            if !current.isEmpty && (size + 4 * t.count > bytes || t.device !== current[0].device) {
                result.append(current); current = []; size = 0
            }
            current.append(t); size += 4 * t.count
        }
        if !current.isEmpty { result.append(current) }
        return result
    }

    /// The values of `tensors`, one after the other, in one device read (gathered on the device first).
    static func read(_ tensors: [Tensor]) throws -> [Float] {
        if tensors.count == 1 { return try tensors[0].toArray() }
        return try withNoGrad { try Tensor.concat(tensors.map { try $0.reshaped([$0.count]) }).toArray() }
    }
}

/// MPI's loading, start and end in this process.
enum MPIRuntime {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var started = false

    /// Loads Open MPI's library (`MYELIN_MPI_LIBRARY`, else `libmpi.so.40`, else `libmpi.so`) once.
    static func load() throws {
        var error = [CChar](repeating: 0, count: 512)
        guard myelin_mpi_load(nil, &error, error.count) != 0 else { return }
        throw MPIError.libraryNotFound(String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }

    /// Calls `MPI_Init_thread` once (funneled: only the thread that trains calls MPI), makes errors return codes
    /// instead of aborting, and registers `MPI_Finalize` for exit.
    static func start() throws {
        lock.lock(); defer { lock.unlock() }
        guard !started else { return }
        try load()
        var initialized: Int32 = 0
        try mpiCheck(myelin_mpi_initialized(&initialized), "MPI_Initialized")
        if initialized == 0 {
            var provided: Int32 = 0
            try mpiCheck(myelin_mpi_init_thread_funneled(&provided), "MPI_Init_thread")
            atexit {
                var finalized: Int32 = 0
                myelin_mpi_finalized(&finalized)
                if finalized == 0 { myelin_mpi_finalize() }
            }
        }
        try mpiCheck(myelin_mpi_world_errors_return(), "MPI_Comm_set_errhandler")
        started = true
    }
}

/// Throws `MPIError.callFailed` with MPI's message when `code` is not `MPI_SUCCESS`.
func mpiCheck(_ code: Int32, _ function: String) throws {
    guard code != 0 else { return }
    var text = [CChar](repeating: 0, count: Int(MYELIN_MPI_MAX_ERROR_STRING) + 1)
    var length: Int32 = 0
    myelin_mpi_error_string(code, &text, &length)
    throw MPIError.callFailed(function: function, code: code, message: String(decoding: text.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self))
}
