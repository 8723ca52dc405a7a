import COpenCL
import Foundation
import Synchronization

// Building kernel programs ahead of their first launch, several at once: each program goes through the program
// cache (ProgramCache.build: the on-disk binary when there is one, else clBuildProgram and a new entry) on a thread
// of its own, outside the device's lock, and is kept as if a launch had built it. OpenCL lets clBuildProgram run
// from several threads on different programs; `MYELIN_BUILD_THREADS=1` builds one at a time (a driver that
// serialises or misbehaves). A program that does not build is left to its first launch, which records the error.

/// One program to build at warm-up: a kernel file (its name and full source) or a GEMM variant (and the source).
enum WarmUpJob: Sendable {
    case file(String, String)
    case variant(GemmVariant, String)
}

/// What `Device.warmUpKernels` built.
public struct KernelWarmUp: Sendable {
    /// The programs built or loaded now (kernel files, and GEMM variants as `gemm_tuned.cl tile:...`).
    public let programs: [String]
    /// How many of them came from the on-disk program cache.
    public let fromCache: Int
    /// The programs that did not build, with the error (their first launch records it again).
    public let failed: [String]
    /// The threads that built them.
    public let threads: Int
    /// Wall-clock seconds of the whole warm-up.
    public let seconds: Double
}

extension Device {
    /// Builds the kernel programs of this OpenCL device that are not built yet, on up to `threads` threads
    /// (default: `MYELIN_BUILD_THREADS`, else one per processor, at most one per program), through the on-disk
    /// program cache; nil on the CPU device. `files` names the kernel files (default: all of them, e.g. `conv.cl`),
    /// less those `excluding` names (a GPU needs no `gemm.cl`, the CPU-style GEMM kernels); `gemmVariants` adds the parameterised GEMM programs the built-in defaults choose for this device.
    ///
    /// ```swift
    /// let report = try Device.make(.opencl(index: 0)).warmUpKernels()
    /// print(report?.seconds ?? 0)
    /// ```
    public func warmUpKernels(files: [String]? = nil, excluding: [String] = [], gemmVariants: Bool = true,
                              threads: Int? = nil) -> KernelWarmUp? {
        guard let cl = base as? OpenCLBackend else { return nil }
        let variants = gemmVariants ? cl.defaultGemmVariants : []
        let env = ProcessInfo.processInfo.environment["MYELIN_BUILD_THREADS"].flatMap { Int($0) }
        return cl.warmUp(files: files, excluding: excluding, variants: variants,
                         threads: max(1, threads ?? env ?? ProcessInfo.processInfo.activeProcessorCount))
    }
}

extension OpenCLBackend {
    /// The GEMM variant programs the built-in defaults choose for this device's representative products (a
    /// GPU-grade tile's for every transpose).
    var defaultGemmVariants: [GemmVariant] {
        GemmShapeClass.representatives.flatMap { _, shape -> [GemmVariant] in
            if case .variant(let v) = GemmDefaults.kernel(for: shape, info: info, limits: limits) { return v.programs }
            return []
        }
    }

    /// Builds the programs of `names` (nil: every kernel file) less `excluded`, and of `variants`, not built yet, on
    /// up to `threads` threads, the longest sources first.
    func warmUp(files names: [String]?, excluding excluded: [String], variants: [GemmVariant], threads: Int) -> KernelWarmUp {
        let start = Date()
        lock.lock()
        var jobs: [(label: String, job: WarmUpJob, size: Int)] = programFiles
            .filter { (names?.contains($0.name) ?? true) && !excluded.contains($0.name) }
            .filter { filePrograms[$0.name] == nil && unbuiltFiles[$0.name] == nil }
            .map { file in let source = programSource(file); return (file.name, .file(file.name, source), source.utf8.count) }
        let unknown = ((names ?? []) + excluded).filter { name in !programFiles.contains { $0.name == name } }.map {
            "\($0): no such kernel file (there are \(programFiles.map(\.name).joined(separator: ", ")))"
        }
        let wanted = Set(variants.map(\.withoutSplit)).filter { variantPrograms[$0] == nil && unusableVariants[$0] == nil && $0.fits(limits) }
        lock.unlock()
        if let source = try? KernelLibrary.gemmVariantSource(kernelsDirectory: kernelsDirectory) {
            jobs += wanted.map { ("gemm_tuned.cl \($0)", .variant($0, source), source.utf8.count) }
        }
        let queue = jobs.sorted { ($0.size, $1.label) > ($1.size, $0.label) }.map { (label: $0.label, job: $0.job) }
        let next = Atomic<Int>(0)
        let outcomes = Mutex<[(label: String, fromCache: Bool?, error: String?)]>([])
        let workers = min(threads, max(queue.count, 1))
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            while true {
                let i = next.add(1, ordering: .relaxed).oldValue
                guard i < queue.count else { return }
                let (label, job) = queue[i]
                do {
                    let fromCache = try warmUpBuild(job)
                    outcomes.withLock { $0.append((label, fromCache, nil)) }
                } catch {
                    outcomes.withLock { $0.append((label, nil, "\(label): \(error)")) }
                }
            }
        }
        let done = outcomes.withLock { $0 }
        return KernelWarmUp(programs: done.filter { $0.error == nil }.map(\.label).sorted(),
                            fromCache: done.filter { $0.fromCache == true }.count,
                            failed: unknown + done.compactMap(\.error).sorted(), threads: workers,
                            seconds: Date().timeIntervalSince(start))
    }

    /// Builds one job through the program cache and keeps its program (unless a launch built it meanwhile).
    func warmUpBuild(_ job: WarmUpJob) throws -> Bool {
        switch job {
        case .file(let name, let source):
            let built = try ProgramCache.build(context: context, info: info, source: source, directory: cacheDirectory)
            let kernels = ProgramCache.kernelNames(built.program)
            lock.lock(); defer { lock.unlock() }
            if filePrograms[name] == nil { filePrograms[name] = (built.program, kernels) } else { clReleaseProgram(built.program) }
            return built.fromCache
        case .variant(let variant, let source):
            let built = try ProgramCache.build(context: context, info: info, source: source, directory: cacheDirectory,
                                               defines: variant.defines)
            lock.lock(); defer { lock.unlock() }
            if variantPrograms[variant] == nil { variantPrograms[variant] = built.program } else { clReleaseProgram(built.program) }
            return built.fromCache
        }
    }
}
