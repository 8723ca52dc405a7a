import Foundation

extension Device {
    /// Measures the GEMM kernel variants that fit this OpenCL device on one product per shape class, within
    /// `budget` seconds, and writes the fastest per class to the device's tuning table (after each class, atomically:
    /// a run cut short keeps the classes measured) in the program cache folder (`MYELIN_CACHE_DIR`, else `~/.cache/myelin`); later processes use it. `progress` gets one line per
    /// measurement. Throws `GemmTuningError.notOpenCL` on the CPU device.
    ///
    /// ```swift
    /// let report = try Device.make(.opencl(index: 0)).tuneGEMM(budget: 60)
    /// for r in report.results { print(r.shapeClass, r.kernel, r.gflops) }
    /// ```
    public func tuneGEMM(budget: Double = 60, progress: ((String) -> Void)? = nil) throws -> GemmTuningReport {
        guard let cl = backend as? OpenCLBackend else {
            throw GemmTuningError.notOpenCL(name)
        }
        return try GemmTuner(backend: cl, budget: budget, progress: progress ?? { _ in }).run()
    }
}

/// Why `Device.tuneGEMM` could not run.
public enum GemmTuningError: Error, CustomStringConvertible {
    /// The device is not an OpenCL device (the CPU device runs OpenBLAS, which tunes itself).
    case notOpenCL(String)

    /// What went wrong, for people.
    public var description: String {
        switch self {
        case .notOpenCL(let name): return "GEMM tuning needs an OpenCL device; \(name) is the CPU device (OpenBLAS)"
        }
    }
}

// MARK: - measuring

/// Measures the candidates per shape class on one device (`Device.tuneGEMM`).
struct GemmTuner {
    let backend: OpenCLBackend
    let budget: Double
    let progress: (String) -> Void
    /// The classes measured and their products (tests measure smaller ones).
    var classes: [(GemmShapeClass, GemmShape)] = GemmShapeClass.representatives

    /// `MYELIN_TUNING=off` (or `0`, `no`, `false`): the runtime ignores tables.
    static func tableDisabled(_ env: [String: String]) -> Bool {
        guard let v = env["MYELIN_TUNING"]?.lowercased() else { return false }
        return ["off", "0", "no", "false"].contains(v)
    }

    /// The kernels measured for `shapeClass` on this device (the default first).
    func candidates(for shapeClass: GemmShapeClass, shape: GemmShape) -> [GemmKernelChoice.Kernel] {
        let b = backend
        var list: [GemmKernelChoice.Kernel] = [GemmDefaults.kernel(for: shape, info: b.info, limits: b.limits)]
        if shapeClass.name == "deep" {
            // The GPU-grade tiles only on GPUs: on PoCL they ran at 1-2 GFLOP/s (BENCHMARKS.md section 9).
            list += GemmVariant.splitCandidates.filter { v in
                guard v.fits(b.limits) else { return false }
                if case .frag = v { return b.info.isGPU }
                return true
            }.map { .variant($0) }
        }
        if b.info.isGPU {
            if shapeClass.name == "narrow" { list += [.direct, .skinny(rows: 4)] }
            list += GemmVariant.tileCandidates.filter { $0.fits(b.limits) }.map { .variant($0) }
        } else if shapeClass.name == "narrow" {
            list += [.skinny(rows: 4), .skinny(rows: 8), .direct, .variant(.panel(mr: 6, nv: 2, kc: 0, mb: 4, nb: 1))]
        } else {
            list.append(.block(GemmKernelChoice.defaultBlock))
            if shape.transB && !shape.transA { list.append(.nt(GemmKernelChoice.ntBlock)) }
            list += GemmVariant.panelCandidates.map { .variant($0) }
        }
        var seen = Set<String>()
        return list.filter { seen.insert($0.name).inserted }
    }

    func run() throws -> GemmTuningReport {
        let start = Date()
        func elapsed() -> Double { Date().timeIntervalSince(start) }
        let b = backend
        var results: [GemmTuningResult] = []
        var skipped: [String] = []
        var entries: [String: GemmTuningTable.Entry] = [:]
        // The table is written (atomically) after each class, so a run stopped by a timeout keeps what it measured.
        let file = GemmTuningTable.file(for: b.info, directory: b.cacheDirectory)
        let files = try KernelLibrary.sourceFiles(kernelsDirectory: b.kernelsDirectory)
        let created = ISO8601DateFormatter().string(from: Date())
        func save(_ entries: [String: GemmTuningTable.Entry]) throws {
            try GemmTuningTable(format: GemmTuningTable.format, device: b.info.name, driver: b.info.driverVersion,
                                platform: b.info.platformVersion, kernelSourceHash: GemmTuningTable.sourceHash(files),
                                created: created, budgetSeconds: budget, classes: entries).save(to: file)
        }
        /// Half the best rate of the class measured last (GFLOP/s): the estimate of what the next one costs.
        var estimate: Double? = nil
        /// The longest first (untimed) run so far, which builds the kernel: what a new kernel may cost on top.
        var firstRunCost = 0.0
        for (shapeClass, shape) in classes {
            let flops = 2.0 * Double(shape.m) * Double(shape.n) * Double(shape.k)
            // Three runs at the estimated rate must fit in what is left.
            if elapsed() + firstRunCost >= budget || estimate.map({ elapsed() + 3 * flops / ($0 * 1e9) > budget }) == true {
                skipped.append(shapeClass.name)
                progress("\(shapeClass): skipped (\(Self.label(shape)) would not fit the budget)")
                continue
            }
            let operands = Operands(backend: b, shape: shape)
            var reference: [Float]? = nil
            var best: (kernel: GemmKernelChoice.Kernel, gflops: Double)? = nil
            var defaultRate = 0.0
            var measured = 0
            var notes: [String] = []
            let list = candidates(for: shapeClass, shape: shape)
            for (index, kernel) in list.enumerated() {
                if index > 0, let rate = best?.gflops, elapsed() + firstRunCost + 3 * flops / (0.5 * rate * 1e9) > budget {
                    notes.append("\(list.count - index) kernels not measured (budget)")
                    break
                }
                if case .variant(let v) = kernel, !b.variantUsable(v) {
                    notes.append("\(v): does not build or fit this device")
                    continue
                }
                // First run (untimed): builds the kernel and checks its result against the default's.
                let firstStart = Date()
                b.gemm(shape, a: operands.a, b: operands.b, c: operands.c, bias: nil, activation: .identity, kernel: kernel)
                b.synchronize()
                if let failure = b.takeFailure() {
                    notes.append("\(kernel.name): \(failure)")
                    continue
                }
                let values = operands.result()
                firstRunCost = max(firstRunCost, Date().timeIntervalSince(firstStart))
                if let reference {
                    if let problem = Self.compare(values, reference) {
                        notes.append("\(kernel.name): wrong results (\(problem)); left out")
                        continue
                    }
                } else {
                    reference = values
                }
                // Timed runs: the best of up to 5, fewer when they are long (at most about a second in all).
                var fastest = Double.infinity, spent = 0.0, runs = 0
                repeat {
                    let t = Date()
                    b.gemm(shape, a: operands.a, b: operands.b, c: operands.c, bias: nil, activation: .identity, kernel: kernel)
                    b.synchronize()
                    let seconds = Date().timeIntervalSince(t)
                    fastest = min(fastest, seconds)
                    spent += seconds
                    runs += 1
                } while runs < 5 && spent < 0.6 && !(runs >= 2 && spent > 0.3)
                if let failure = b.takeFailure() {
                    notes.append("\(kernel.name): \(failure)")
                    continue
                }
                let rate = flops / max(fastest, 1e-9) / 1e9
                measured += 1
                if index == 0 { defaultRate = rate }
                progress(String(format: "%@ %@: %@ %.1f GFLOP/s", shapeClass.name, Self.label(shape), kernel.name, rate))
                if best == nil || rate > best!.gflops { best = (kernel, rate) }
            }
            guard let best else {
                notes.append("nothing ran")
                skipped.append(shapeClass.name)
                continue
            }
            estimate = 0.5 * best.gflops
            let defaultName = list[0].name
            entries[shapeClass.name] = GemmTuningTable.Entry(kernel: best.kernel.name, gflops: best.gflops,
                                                             shape: Self.label(shape), defaultKernel: defaultName,
                                                             defaultGflops: defaultRate)
            results.append(GemmTuningResult(shapeClass: shapeClass.name, shape: Self.label(shape), kernel: best.kernel.name,
                                            gflops: best.gflops, defaultKernel: defaultName, defaultGflops: defaultRate,
                                            measured: measured, notes: notes))
            try save(entries)
            progress("\(shapeClass.name): \(best.kernel.name) saved to \(file.path)")
        }
        try save(entries)
        b.reloadTuningTable()
        return GemmTuningReport(device: "\(b.name): \(b.details)", results: results, file: file, seconds: elapsed(),
                                skippedClasses: skipped)
    }

    /// `MxKxN` with `:tA` / `:tB`.
    static func label(_ s: GemmShape) -> String {
        "\(s.m)x\(s.k)x\(s.n)" + (s.transA ? ":tA" : "") + (s.transB ? ":tB" : "")
    }

    /// Nil when `values` matches `reference` to within float rounding of a K-long sum, else what differs.
    static func compare(_ values: [Float], _ reference: [Float]) -> String? {
        var scale: Float = 1e-20
        for r in reference { scale = max(scale, abs(r)) }
        for (i, (v, r)) in zip(values, reference).enumerated() where !(abs(v - r) <= 1e-3 * scale) {
            return "element \(i): \(v), expected \(r)"
        }
        return nil
    }

    /// A, B and C of one product, filled with uniform random values on the device.
    struct Operands {
        let backend: OpenCLBackend
        let a: DeviceBuffer, b: DeviceBuffer, c: DeviceBuffer
        let count: Int

        init(backend: OpenCLBackend, shape s: GemmShape) {
            self.backend = backend
            a = backend.allocate(s.m * s.k)
            b = backend.allocate(s.k * s.n)
            c = backend.allocate(s.m * s.n)
            count = s.m * s.n
            backend.randomUniform(out: a, count: s.m * s.k, seed: 1)
            backend.randomUniform(out: b, count: s.k * s.n, seed: 2)
        }

        func result() -> [Float] {
            var out = [Float](repeating: 0, count: count)
            out.withUnsafeMutableBufferPointer { backend.read(c, offset: 0, count: count, into: $0) }
            return out
        }
    }
}
