import Foundation
import COpenCL

/// Each op of the device interface as launches of the kernels in Kernels/*.cl.
extension OpenCLBackend {
    func gemm(_ s: GemmShape, a: DeviceBuffer, b: DeviceBuffer, c: DeviceBuffer,
              bias: DeviceBuffer?, activation: Activation) {
        gemm(s, a: a, b: b, c: c, bias: bias, activation: activation, kernel: gemmKernel(for: s))
    }

    /// The kernel for a product on this device: `MYELIN_GEMM_KERNEL` when set, else direct for tiny products
    /// (`GemmKernelChoice.tinyProduct` multiply-adds at most) and below 8 rows (more than 16 columns), else the
    /// tuning table's choice for the product's shape class (`GemmShapeClass`), else the built-in default for the
    /// device's type and vendor (`GemmDefaults`).
    func gemmKernel(for s: GemmShape) -> GemmKernelChoice.Kernel {
        if let forced = GemmKernelChoice.forced { return forced }
        // A tiny product (the XOR lab's 4×2·2×3) costs its launches, not its arithmetic: one direct launch, where
        // the skinny kernel would first pack a transposed B in a launch of its own.
        if s.m * s.n * s.k <= GemmKernelChoice.tinyProduct { return .direct }
        if s.m < 8 && s.n > 16 { return .direct }
        if let table = gemmTuningTable, let chosen = table.kernel(for: GemmShapeClass(s)), usable(chosen, for: s) {
            return chosen
        }
        return GemmDefaults.kernel(for: s, info: info, limits: limits)
    }

    /// Whether `kernel` runs `s` as itself on this device (the others fall back to another kernel).
    func usable(_ kernel: GemmKernelChoice.Kernel, for s: GemmShape) -> Bool {
        switch kernel {
        case .variant(let v): return variantUsable(v)
        case .nt: return s.transB && !s.transA
        case .skinny: return s.n <= 16
        case .block: return !s.transB || (s.ldb == s.k && (s.strideB == 0 || s.strideB == s.k * s.n))
        case .direct, .tiled, .packed: return true
        }
    }

    /// The GEMM with a given kernel (tests use this to check every variant on every shape). The older variants
    /// and the parameterised ones (`GemmVariant`) are in OpenCLBackend+GemmVariants.swift.
    func gemm(_ s: GemmShape, a: DeviceBuffer, b: DeviceBuffer, c: DeviceBuffer,
              bias: DeviceBuffer?, activation: Activation, kernel: GemmKernelChoice.Kernel) {
        guard s.m > 0, s.n > 0, s.batch > 0 else { return }
        switch kernel {
        case .direct:
            launch("gemm_direct", global: [s.n, s.m, s.batch],
                   args: gemmArguments(s, a: a, b: b, c: c, bias: bias, activation: activation))
        case .block(let v):
            var s = s
            var b = b
            var scratch: DeviceBuffer? = nil
            if s.transB {
                // The block kernels stream rows of B: transpose B (stored [n, k]) into scratch first.
                let batchB = s.strideB == 0 ? 1 : s.batch
                let t = allocate(s.k * s.n * batchB)
                transpose(x: b, out: t, batch: batchB, rows: s.n, cols: s.k)
                scratch = t
                b = t
                s.transB = false
                s.ldb = s.n
                s.strideB = s.strideB == 0 ? 0 : s.k * s.n
            }
            let mMain = s.m / v.rows * v.rows, nMain = s.n / v.columns * v.columns
            if mMain > 0 && nMain > 0 {
                let name = "gemm_block_\(s.transA ? "tn" : "nn")_\(v.rows)x\(v.columns)"
                let global = [nMain / v.columns, mMain / v.rows, s.batch]
                launch(name, global: global, local: fittingLocal(GemmKernelChoice.blockLocal(global), kernel: name),
                       args: gemmArguments(s, a: a, b: b, c: c, bias: bias, activation: activation, m: mMain, n: nMain))
            }
            gemmEdgeStrips(s, a: a, b: b, c: c, bias: bias, activation: activation, mMain: mMain, nMain: nMain)
            _ = scratch  // returns to the pool here; the in-order queue runs later users after these launches
        case .skinny(let rows) where s.n <= 16:
            // A transposed B is packed into K x 16 rows; a plain one is read in place.
            var bp = b, ldbp = s.ldb, strideBp = s.strideB
            if s.transB {
                let batchB = s.strideB == 0 ? 1 : s.batch
                bp = allocate(16 * s.k * batchB)
                launch("gemm_pack", global: [s.k * 16, 1, batchB],
                       args: [.buffer(b), .int(Int32(s.ldb)), .int(1), .ulong(UInt64(s.strideB)), .int(Int32(s.n)),
                              .int(Int32(s.k)), .int(16), .buffer(bp)])
                ldbp = 16
                strideBp = s.strideB == 0 ? 0 : 16 * s.k
            }
            let global = [(s.m + rows - 1) / rows, s.batch]
            let l0 = global[0] * global[1] >= 32 ? 2 : 1
            launch("gemm_skinny_\(rows)", global: global, local: fittingLocal([l0, 1], kernel: "gemm_skinny_\(rows)"),
                   args: [.int(Int32(s.m)), .int(Int32(s.n)), .int(Int32(s.k)), .float(s.alpha), .float(s.beta),
                          .buffer(a), .int(Int32(s.lda)), .ulong(UInt64(s.strideA)), .int(s.transA ? 1 : 0),
                          .buffer(bp), .int(Int32(ldbp)), .ulong(UInt64(strideBp)),
                          .buffer(c), .int(Int32(s.ldc)), .ulong(UInt64(s.strideC)),
                          bias.map { .buffer($0) } ?? .null, .int(bias == nil ? 0 : 1),
                          .int(activation.code), .float(activation.parameter)])
        case .skinny:
            // More than 16 columns: the general path.
            gemm(s, a: a, b: b, c: c, bias: bias, activation: activation, kernel: .block(GemmKernelChoice.defaultBlock))
        case .tiled, .nt, .packed, .variant:
            gemmVariant(s, a: a, b: b, c: c, bias: bias, activation: activation, kernel: kernel)
        }
    }

    /// The arguments of the kernels with gemm_direct's signature, for the product `s` (or its top-left
    /// `m` x `n` part).
    func gemmArguments(_ s: GemmShape, a: DeviceBuffer, b: DeviceBuffer, c: DeviceBuffer, bias: DeviceBuffer?,
                       activation: Activation, m: Int? = nil, n: Int? = nil) -> [KernelArg] {
        [.int(Int32(m ?? s.m)), .int(Int32(n ?? s.n)), .int(Int32(s.k)), .float(s.alpha), .float(s.beta),
         .buffer(a), .int(Int32(s.lda)), .ulong(UInt64(s.strideA)), .int(s.transA ? 1 : 0),
         .buffer(b), .int(Int32(s.ldb)), .ulong(UInt64(s.strideB)), .int(s.transB ? 1 : 0),
         .buffer(c), .int(Int32(s.ldc)), .ulong(UInt64(s.strideC)),
         bias.map { .buffer($0) } ?? .null, .int(bias == nil ? 0 : 1),
         .int(activation.code), .float(activation.parameter)]
    }

    /// After a kernel of whole blocks covered the top-left `mMain` x `nMain` of C: the right strip (all rows)
    /// and the bottom strip (block columns) with the direct kernel.
    func gemmEdgeStrips(_ s: GemmShape, a: DeviceBuffer, b: DeviceBuffer, c: DeviceBuffer, bias: DeviceBuffer?,
                        activation: Activation, mMain: Int, nMain: Int) {
        let args = gemmArguments(s, a: a, b: b, c: c, bias: bias, activation: activation)
        if nMain < s.n {
            launch("gemm_direct", global: [s.n - nMain, s.m, s.batch], offset: [nMain, 0, 0], args: args)
        }
        if mMain < s.m && nMain > 0 {
            launch("gemm_direct", global: [nMain, s.m - mMain, s.batch], offset: [0, mMain, 0], args: args)
        }
    }

    func unary(_ op: UnaryOp, x: DeviceBuffer, out: DeviceBuffer, count: Int) {
        guard count > 0 else { return }
        let n = Int32(count)
        switch op {
        case .activation(let act):
            launch("act_\(act.kernelName)", global: [count], args: [.buffer(x), .buffer(out), .int(n), .float(act.parameter)])
        case .clamp(let lo, let hi):
            launch("unary_clamp", global: [count], args: [.buffer(x), .buffer(out), .int(n), .float(lo), .float(hi)])
        case .scalar(let bop, let v, let first):
            launch("scalar_\(bop.kernelName)", global: [count],
                   args: [.buffer(x), .buffer(out), .int(n), .float(v), .int(first ? 1 : 0)])
        case .negate: launch("unary_neg", global: [count], args: [.buffer(x), .buffer(out), .int(n)])
        case .exp: launch("unary_exp", global: [count], args: [.buffer(x), .buffer(out), .int(n)])
        case .log: launch("unary_log", global: [count], args: [.buffer(x), .buffer(out), .int(n)])
        case .sqrt: launch("unary_sqrt", global: [count], args: [.buffer(x), .buffer(out), .int(n)])
        case .abs: launch("unary_abs", global: [count], args: [.buffer(x), .buffer(out), .int(n)])
        case .square: launch("unary_square", global: [count], args: [.buffer(x), .buffer(out), .int(n)])
        case .reciprocal: launch("unary_reciprocal", global: [count], args: [.buffer(x), .buffer(out), .int(n)])
        case .sign: launch("unary_sign", global: [count], args: [.buffer(x), .buffer(out), .int(n)])
        }
    }

    func activationBackward(_ activation: Activation, x: DeviceBuffer, y: DeviceBuffer, gy: DeviceBuffer,
                            gx: DeviceBuffer, count: Int) {
        guard count > 0 else { return }
        launch("actgrad_\(activation.kernelName)", global: [count],
               args: [.buffer(x), .buffer(y), .buffer(gy), .buffer(gx), .int(Int32(count)), .float(activation.parameter)])
    }

    func binary(_ op: BinaryOp, a: DeviceBuffer, b: DeviceBuffer, out: DeviceBuffer, layout: BroadcastLayout) {
        let count = layout.count
        guard count > 0 else { return }
        if layout.isElementwise {
            launch("binary_\(op.kernelName)", global: [count], args: [.buffer(a), .buffer(b), .buffer(out), .int(Int32(count))])
            return
        }
        precondition(layout.dims.count <= 4, "broadcasting needs at most 4 dimensions after collapsing, got \(layout.dims)")
        let pad = 4 - layout.dims.count
        let d = [Int](repeating: 1, count: pad) + layout.dims
        let sa = [Int](repeating: 0, count: pad) + layout.stridesA
        let sb = [Int](repeating: 0, count: pad) + layout.stridesB
        var args: [KernelArg] = [.buffer(a), .buffer(b), .buffer(out), .int(Int32(d[1])), .int(Int32(d[2])),
                                 .int(Int32(d[3])), .int(Int32(count))]
        args += sa.map { .int(Int32($0)) } + sb.map { .int(Int32($0)) }
        launch("bcast_\(op.kernelName)", global: [count], args: args)
    }

    func reduce(_ op: ReduceOp, x: DeviceBuffer, out: DeviceBuffer, outer: Int, length: Int, inner: Int) {
        guard outer > 0, inner > 0 else { return }
        if inner == 1 {
            // A power of two (the tree halves it) within the kernel's work-group limit.
            func groupSize(_ length: Int) -> Int {
                var wg = length >= 256 ? 256 : (length >= 64 ? 64 : 16)
                while wg > workGroupLimit("reduce_rows") || wg > limits.maxWorkItemSizes[0] { wg /= 2 }
                return max(wg, 1)
            }
            let wg = groupSize(length)
            // Few long rows (a whole tensor's sum): split each row over several work-groups, at least
            // `Self.reduceItemsPerWorkItem` elements per work-item and about `Self.reduceGroups` groups in all, then
            // reduce the partial results in a second launch.
            let parts = min(length / (wg * Self.reduceItemsPerWorkItem), max(1, Self.reduceGroups / outer))
            if parts > 1 {
                let partials = allocate(outer * parts)
                launch("reduce_rows", global: [outer * parts * wg], local: [wg],
                       args: [.buffer(x), .buffer(partials), .int(Int32(length)), .int(op.rawValue), .int(Int32(parts)),
                              .int(Int32(length)), .local(wg * 4)])
                let wg2 = groupSize(parts)
                launch("reduce_rows", global: [outer * wg2], local: [wg2],
                       args: [.buffer(partials), .buffer(out), .int(Int32(parts)), .int(op.rawValue), .int(1),
                              .int(Int32(length)), .local(wg2 * 4)])
            } else {
                launch("reduce_rows", global: [outer * wg], local: [wg],
                       args: [.buffer(x), .buffer(out), .int(Int32(length)), .int(op.rawValue), .int(1),
                              .int(Int32(length)), .local(wg * 4)])
            }
        } else {
            launch("reduce_strided", global: [inner, outer],
                   args: [.buffer(x), .buffer(out), .int(Int32(outer)), .int(Int32(length)), .int(Int32(inner)), .int(op.rawValue)])
        }
    }

    /// Elements per work-item below which `reduce` keeps a row in one work-group.
    static let reduceItemsPerWorkItem = 16
    /// About how many work-groups `reduce` spreads few long rows over.
    static let reduceGroups = 256

    func argmax(x: DeviceBuffer, out: DeviceBuffer, rows: Int, cols: Int) {
        guard rows > 0 else { return }
        launch("argmax_rows", global: [rows], args: [.buffer(x), .buffer(out), .int(Int32(rows)), .int(Int32(cols))])
    }

    func softmax(x: DeviceBuffer, out: DeviceBuffer, rows: Int, cols: Int, log: Bool) {
        guard rows > 0 else { return }
        launch("softmax_rows", global: [rows],
               args: [.buffer(x), .buffer(out), .int(Int32(rows)), .int(Int32(cols)), .int(log ? 1 : 0)])
    }

    func softmaxBackward(y: DeviceBuffer, gy: DeviceBuffer, gx: DeviceBuffer, rows: Int, cols: Int, log: Bool) {
        guard rows > 0 else { return }
        launch("softmax_rows_backward", global: [rows],
               args: [.buffer(y), .buffer(gy), .buffer(gx), .int(Int32(rows)), .int(Int32(cols)), .int(log ? 1 : 0)])
    }

    func transpose(x: DeviceBuffer, out: DeviceBuffer, batch: Int, rows: Int, cols: Int) {
        guard batch > 0, rows > 0, cols > 0 else { return }
        // Square tiles of 16 x 16 where the device allows, else the largest power of two that fits.
        var tile = 16
        let limit = workGroupLimit("transpose_batched")
        while tile > 1 && (tile * tile > limit || tile > limits.maxWorkItemSizes[0]
                           || tile > limits.maxWorkItemSizes[min(1, limits.maxWorkItemSizes.count - 1)]) { tile /= 2 }
        launch("transpose_batched", global: [cols, rows, batch], local: [tile, tile, 1],
               args: [.buffer(x), .buffer(out), .int(Int32(rows)), .int(Int32(cols)), .local(tile * (tile + 1) * 4)])
    }

    func gatherRows(x: DeviceBuffer, rows: Int, indices: DeviceBuffer, out: DeviceBuffer, count: Int, rowSize: Int) {
        guard count > 0, rowSize > 0 else { return }
        launch("gather_rows", global: [rowSize, count],
               args: [.buffer(x), .buffer(indices), .buffer(out), .int(Int32(count)), .int(Int32(rowSize)), .int(Int32(rows))])
    }

    func scatterAddRows(gy: DeviceBuffer, indices: DeviceBuffer, out: DeviceBuffer, rows: Int, count: Int, rowSize: Int) {
        guard count > 0, rowSize > 0 else { return }
        launch("scatter_add_rows", global: [rowSize, count],
               args: [.buffer(gy), .buffer(indices), .buffer(out), .int(Int32(count)), .int(Int32(rowSize)), .int(Int32(rows))])
    }

    func oneHot(indices: DeviceBuffer, out: DeviceBuffer, count: Int, classes: Int) {
        guard count > 0, classes > 0 else { return }
        launch("one_hot", global: [classes, count],
               args: [.buffer(indices), .buffer(out), .int(Int32(count)), .int(Int32(classes))])
    }

    func randomUniform(out: DeviceBuffer, count: Int, seed: UInt64) {
        guard count > 0 else { return }
        launch("random_uniform_fill", global: [count], args: [.buffer(out), .int(Int32(count)), .ulong(seed)])
    }
}

/// Which GEMM kernel runs a product. `MYELIN_GEMM_KERNEL` (`direct`, `tiled`, `block:RxC`, a `GemmVariant` name
/// such as `panel:6x16:kc256:mb8:nb4`) forces one, for benchmarking the variants. `OpenCLBackend.gemmKernel(for:)`
/// decides: the tuning table, else `GemmDefaults` (of which `choose` is the CPU-device part).
enum GemmKernelChoice {
    /// A register-blocked kernel computing `rows` x `columns` outputs per work-item (see Kernels/gemm.cl; the
    /// sizes measured are `Block.all`, in OpenCLBackend+GemmVariants.swift).
    struct Block: Equatable, Sendable {
        let rows: Int
        let columns: Int
    }

    /// The kernels `choose` picks are `direct`, `block(defaultBlock)`, `skinny(rows: 4)` and, for A·Bᵀ,
    /// `nt(ntBlock)` (its code is with the variants, in OpenCLBackend+GemmVariants.swift and
    /// Kernels/gemm_variants.cl); `tiled`, `packed`, the other blocks and `skinny(rows: 8)` lost the measurements.
    enum Kernel: Equatable, Sendable {
        /// One work-item per output.
        case direct
        /// Local-memory tiles of 32 x 32, 4 x 4 outputs per work-item.
        case tiled
        /// Register blocks, edges by the direct kernel.
        case block(Block)
        /// Both operands packed into panels first, then register blocks; `rowsFirst` orders work-items by row panel.
        case packed(Block, rowsFirst: Bool)
        /// At most 16 columns: B packed to K x 16, `rows` rows of C per work-item (wider: `block(defaultBlock)`).
        case skinny(rows: Int)
        /// A·Bᵀ as register blocks of dot products along K (other transposes: `block(defaultBlock)`).
        case nt(Block)
        /// A parameterised kernel of Kernels/gemm_tuned.cl (OpenCL/GemmTuning.swift): K-blocked panels or
        /// local-memory tiles.
        case variant(GemmVariant)
    }

    /// Products of at most this many multiply-adds (m·n·k) run on the direct kernel in one launch.
    static let tinyProduct = 4096

    /// The block the tuned path uses.
    static let defaultBlock = Block(rows: 8, columns: 16)
    /// The dot-product block the tuned path uses for A·Bᵀ.
    static let ntBlock = Block(rows: 4, columns: 4)

    /// `MYELIN_GEMM_LOCAL=AxB` forces the block kernels' work-group shape (for tuning).
    static let forcedLocal: [Int]? = {
        guard let text = ProcessInfo.processInfo.environment["MYELIN_GEMM_LOCAL"], !text.isEmpty else { return nil }
        let d = text.split(separator: "x").compactMap { Int($0) }
        return d.count == 2 ? [d[0], d[1], 1] : nil
    }()

    /// Work-group shape of the block kernels for a grid of `global` work-items. PoCL runs a work-group on one
    /// thread, so groups must be small enough that there are several per core (left to itself PoCL picks
    /// groups of up to 256 items, one or two groups for a 256 x 256 product); a few items per group still
    /// cut the per-group scheduling cost.
    static func blockLocal(_ global: [Int]) -> [Int] {
        if let forcedLocal { return forcedLocal }
        let groupsWanted = 16
        for l in [[4, 4], [4, 2], [2, 2], [2, 1], [1, 1]] {
            let groups = ((global[0] + l[0] - 1) / l[0]) * ((global[1] + l[1] - 1) / l[1]) * global[2]
            if groups >= groupsWanted { return [l[0], l[1], 1] }
        }
        return [1, 1, 1]
    }

    /// The built-in kernel for a product on a CPU-type device: skinny up to 16 columns, direct below 8 rows,
    /// 4 x 4 dot-product blocks for A·Bᵀ, and 8 x 16 register blocks otherwise (`GemmDefaults` takes the
    /// K-blocked panels instead for large products).
    static func choose(_ s: GemmShape) -> Kernel {
        if s.n <= 16 { return .skinny(rows: 4) }
        if s.m < 8 { return .direct }
        // A·Bᵀ (a Dense layer's forward pass, its weight stored [out, in]): dot products along K read B in place.
        // On PoCL it beat transpose-into-scratch + 8 x 16 blocks by about 20% at the MLP's shapes (128×784×512:
        // 93 against 77 GFLOP/s; 128×512×256: 82 against 71) and tied at 1024³ (`myelin bench gemm --opencl-only`).
        if s.transB && !s.transA { return .nt(ntBlock) }
        // The transpose into scratch assumes packed B (Tensor ops always pass packed operands).
        if s.transB && (s.ldb != s.k || (s.strideB != 0 && s.strideB != s.k * s.n)) { return .direct }
        return .block(defaultBlock)
    }
}
