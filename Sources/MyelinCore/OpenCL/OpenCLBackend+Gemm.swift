import Foundation

// The GEMM house: which kernel runs a product on an OpenCL device (`gemmKernel(for:)`: `MYELIN_GEMM_KERNEL`, tiny
// and row-poor products, the tuning table, else `GemmDefaults`), the kernels (`GemmKernelChoice.Kernel`, with the
// fixed ones in Kernels/gemm.cl and gemm_direct.cl and the parameterised `GemmVariant`s in Kernels/gemm_tuned.cl), and their launches.
// The tuning table is GemmTuningTable.swift, the measurement that writes it GemmTuner.swift. Every kernel is checked
// against a Double reference on odd shapes by GemmTests and GemmTuningTests.

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
        if s.m < 8 && s.n > 16 && !GemmShapeClass.isDeep(s) { return .direct }
        if let table = gemmTuningTable, let chosen = table.kernel(for: GemmShapeClass(s)), usable(chosen, for: s) {
            return chosen
        }
        return GemmDefaults.kernel(for: s, info: info, limits: limits)
    }

    /// Whether `kernel` runs `s` as itself on this device (the others fall back to another kernel).
    func usable(_ kernel: GemmKernelChoice.Kernel, for s: GemmShape) -> Bool {
        switch kernel {
        case .variant(let v): return variantUsable(v.specialised(transA: s.transA, transB: s.transB))
        case .nt: return s.transB && !s.transA
        case .skinny: return s.n <= 16
        case .block: return !s.transB || (s.ldb == s.k && (s.strideB == 0 || s.strideB == s.k * s.n))
        case .direct: return true
        }
    }

    /// The GEMM with a given kernel (tests use this to check every kernel on every shape). A kernel that does not
    /// cover the product's transposes or does not fit this device runs it through another one (see each case).
    func gemm(_ s: GemmShape, a: DeviceBuffer, b: DeviceBuffer, c: DeviceBuffer,
              bias: DeviceBuffer?, activation: Activation, kernel: GemmKernelChoice.Kernel) {
        guard s.m > 0, s.n > 0, s.batch > 0 else { return }
        switch kernel {
        case .direct:
            launch(.gemmDirect, "gemm_direct", global: [s.n, s.m, s.batch],
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
                launch(.gemm, name, global: global, local: fittingLocal(GemmKernelChoice.blockLocal(global), .gemm, name),
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
                launch(.gemm, "gemm_pack", global: [s.k * 16, 1, batchB],
                       args: [.buffer(b), .int(Int32(clamping: s.ldb)), .int(1), .ulong(UInt64(s.strideB)), .int(Int32(clamping: s.n)),
                              .int(Int32(clamping: s.k)), .int(16), .buffer(bp)])
                ldbp = 16
                strideBp = s.strideB == 0 ? 0 : 16 * s.k
            }
            let global = [(s.m + rows - 1) / rows, s.batch]
            let l0 = global[0] * global[1] >= 32 ? 2 : 1
            launch(.gemm, "gemm_skinny_\(rows)", global: global, local: fittingLocal([l0, 1], .gemm, "gemm_skinny_\(rows)"),
                   args: [.int(Int32(clamping: s.m)), .int(Int32(clamping: s.n)), .int(Int32(clamping: s.k)), .float(s.alpha), .float(s.beta),
                          .buffer(a), .int(Int32(clamping: s.lda)), .ulong(UInt64(s.strideA)), .int(s.transA ? 1 : 0),
                          .buffer(bp), .int(Int32(clamping: ldbp)), .ulong(UInt64(strideBp)),
                          .buffer(c), .int(Int32(clamping: s.ldc)), .ulong(UInt64(s.strideC)),
                          bias.map { .buffer($0) } ?? .null, .int(bias == nil ? 0 : 1),
                          .int(activation.code), .float(activation.parameter)])
        case .skinny:
            // More than 16 columns: the general path.
            gemm(s, a: a, b: b, c: c, bias: bias, activation: activation, kernel: .block(GemmKernelChoice.defaultBlock))
        case .nt(let v) where s.transB && !s.transA:
            let mMain = s.m / v.rows * v.rows, nMain = s.n / v.columns * v.columns
            if mMain > 0 && nMain > 0 {
                let global = [nMain / v.columns, mMain / v.rows, s.batch]
                let name = "gemm_nt_\(v.rows)x\(v.columns)"
                launch(.gemm, name, global: global, local: fittingLocal(GemmKernelChoice.blockLocal(global), .gemm, name),
                       args: gemmArguments(s, a: a, b: b, c: c, bias: bias, activation: activation, m: mMain, n: nMain))
            }
            gemmEdgeStrips(s, a: a, b: b, c: c, bias: bias, activation: activation, mMain: mMain, nMain: nMain)
        case .nt:
            // The dot-product kernel covers A·Bᵀ only; every other case takes the default blocks.
            gemm(s, a: a, b: b, c: c, bias: bias, activation: activation, kernel: .block(GemmKernelChoice.defaultBlock))
        case .variant(let v) where s.k == 0 || !variantUsable(v.specialised(transA: s.transA, transB: s.transB)):
            // Nothing to sum (the direct kernel writes beta * C + bias), or the variant does not fit this device
            // (its work-group exceeds the kernel's CL_KERNEL_WORK_GROUP_SIZE, say): on a GPU a smaller tile that
            // fits, with the same K-split, else the direct kernel; the CPU-device default elsewhere.
            gemm(s, a: a, b: b, c: c, bias: bias, activation: activation, kernel: fallback(for: v, s))
        case .variant(let v):
            gemmParameterised(s, a: a, b: b, c: c, bias: bias, activation: activation, variant: v)
        }
    }

    /// What runs `s` when variant `v` cannot (see `gemm(_:...kernel:)` and `GemmDefaults.fallback`).
    func fallback(for v: GemmVariant, _ s: GemmShape) -> GemmKernelChoice.Kernel {
        GemmDefaults.fallback(for: v, s, info: info) { variantUsable($0) }
    }

    /// The arguments of the kernels with gemm_direct's signature, for the product `s` (or its top-left
    /// `m` x `n` part).
    func gemmArguments(_ s: GemmShape, a: DeviceBuffer, b: DeviceBuffer, c: DeviceBuffer, bias: DeviceBuffer?,
                       activation: Activation, m: Int? = nil, n: Int? = nil) -> [KernelArg] {
        [.int(Int32(clamping: m ?? s.m)), .int(Int32(clamping: n ?? s.n)), .int(Int32(clamping: s.k)), .float(s.alpha), .float(s.beta),
         .buffer(a), .int(Int32(clamping: s.lda)), .ulong(UInt64(s.strideA)), .int(s.transA ? 1 : 0),
         .buffer(b), .int(Int32(clamping: s.ldb)), .ulong(UInt64(s.strideB)), .int(s.transB ? 1 : 0),
         .buffer(c), .int(Int32(clamping: s.ldc)), .ulong(UInt64(s.strideC)),
         bias.map { .buffer($0) } ?? .null, .int(bias == nil ? 0 : 1),
         .int(activation.code), .float(activation.parameter)]
    }

    /// After a kernel of whole blocks covered the top-left `mMain` x `nMain` of C: the right strip (all rows)
    /// and the bottom strip (block columns) with the direct kernel.
    func gemmEdgeStrips(_ s: GemmShape, a: DeviceBuffer, b: DeviceBuffer, c: DeviceBuffer, bias: DeviceBuffer?,
                        activation: Activation, mMain: Int, nMain: Int) {
        let args = gemmArguments(s, a: a, b: b, c: c, bias: bias, activation: activation)
        if nMain < s.n {
            launch(.gemmDirect, "gemm_direct", global: [s.n - nMain, s.m, s.batch], offset: [nMain, 0, 0], args: args)
        }
        if mMain < s.m && nMain > 0 {
            launch(.gemmDirect, "gemm_direct", global: [nMain, s.m - mMain, s.batch], offset: [0, mMain, 0], args: args)
        }
    }

    /// Runs the product with a parameterised kernel of Kernels/gemm_tuned.cl (see `GemmVariant`).
    func gemmParameterised(_ s: GemmShape, a: DeviceBuffer, b: DeviceBuffer, c: DeviceBuffer,
                           bias: DeviceBuffer?, activation: Activation, variant v: GemmVariant) {
        let epilogue: [KernelArg] = [.buffer(c), .int(Int32(clamping: s.ldc)), .ulong(UInt64(s.strideC)),
                                     bias.map { .buffer($0) } ?? .null, .int(bias == nil ? 0 : 1),
                                     .int(activation.code), .float(activation.parameter)]
        switch v {
        case .tile(let tm, let tn, _, let wm, let wn, _) where v.kSlices(k: s.k).count > 1:
            // K-split: each slice's partial product into a workspace, then the slices added in order and the
            // epilogue applied (gemm_split_reduce).
            let (slices, sliceK) = v.kSlices(k: s.k)
            let rtm = tm / wm, rtn = tn / wn
            let workspace = allocate(slices * s.m * s.n * s.batch)
            launch(.gemmVariant(v), "gemm_tile_split",
                   global: [(s.n + tn - 1) / tn * rtn, (s.m + tm - 1) / tm * rtm, s.batch * slices], local: [rtn, rtm, 1],
                   args: [.int(Int32(clamping: s.m)), .int(Int32(clamping: s.n)), .int(Int32(clamping: s.k)), .int(Int32(clamping: slices)), .int(Int32(clamping: sliceK)),
                          .buffer(a), .int(Int32(clamping: s.lda)), .ulong(UInt64(s.strideA)), .int(s.transA ? 1 : 0),
                          .buffer(b), .int(Int32(clamping: s.ldb)), .ulong(UInt64(s.strideB)), .int(s.transB ? 1 : 0),
                          .buffer(workspace)])
            gemmSplitReduce(s, program: .gemmVariant(v), slices: slices, workspace: workspace, epilogue: epilogue)
        case .tile(let tm, let tn, _, let wm, let wn, _):
            let rtm = tm / wm, rtn = tn / wn
            launch(.gemmVariant(v), "gemm_tile", global: [(s.n + tn - 1) / tn * rtn, (s.m + tm - 1) / tm * rtm, s.batch],
                   local: [rtn, rtm, 1], args: gemmArguments(s, a: a, b: b, c: c, bias: bias, activation: activation))
        case .frag(let f):
            // One program per transpose; vector loads cast to aligned ones where an operand's rows and batches start
            // on multiples of the vector width (bit 0: A, bit 1: B).
            let program = KernelProgram.gemmVariant(v.specialised(transA: s.transA, transB: s.transB))
            let rtm = f.tm / f.wm, rtn = f.tn / f.wn
            let aligned = (s.lda % f.vector == 0 && s.strideA % f.vector == 0 ? 1 : 0)
                | (s.ldb % f.vector == 0 && s.strideB % f.vector == 0 ? 2 : 0)
            let operands: [KernelArg] = [.buffer(a), .int(Int32(clamping: s.lda)), .ulong(UInt64(s.strideA)),
                                         .buffer(b), .int(Int32(clamping: s.ldb)), .ulong(UInt64(s.strideB)), .int(Int32(clamping: aligned))]
            let groups = [(s.n + f.tn - 1) / f.tn * rtn, (s.m + f.tm - 1) / f.tm * rtm]
            let (slices, sliceK) = v.kSlices(k: s.k)
            if slices > 1 {
                let workspace = allocate(slices * s.m * s.n * s.batch)
                launch(program, "gemm_frag_split", global: groups + [s.batch * slices], local: [rtn, rtm, 1],
                       args: [.int(Int32(clamping: s.m)), .int(Int32(clamping: s.n)), .int(Int32(clamping: s.k)), .int(Int32(clamping: slices)), .int(Int32(clamping: sliceK))]
                           + operands + [.buffer(workspace)])
                gemmSplitReduce(s, program: program, slices: slices, workspace: workspace, epilogue: epilogue)
            } else {
                launch(program, "gemm_frag", global: groups + [s.batch], local: [rtn, rtm, 1],
                       args: [.int(Int32(clamping: s.m)), .int(Int32(clamping: s.n)), .int(Int32(clamping: s.k)), .float(s.alpha), .float(s.beta)]
                           + operands + epilogue)
            }
        case .panel(let mr, let nv, _, let mb, let nb):
            // op(B) packed into panels of nr columns; op(A) packed into panels of mr rows only for wide products
            // (`GemmDefaults.panelPacksA`), else read in place by gemm_panel.
            let nr = 8 * nv
            let rowPanels = (s.m + mr - 1) / mr, colPanels = (s.n + nr - 1) / nr
            let batchB = s.strideB == 0 ? 1 : s.batch
            // op(A)[i, p] = A[i * sx + p * sp]; op(B)[p, j] = B[j * sx + p * sp].
            let aIn: [KernelArg]
            if GemmDefaults.panelPacksA(s) {
                let batchA = s.strideA == 0 ? 1 : s.batch
                let ap = allocate(rowPanels * mr * s.k * batchA)
                launch(.gemmVariant(v), "gemm_panel_pack_a", global: [rowPanels, (s.k + 63) / 64, batchA],
                       args: [.buffer(a), .int(Int32(clamping: s.transA ? 1 : s.lda)), .int(Int32(clamping: s.transA ? s.lda : 1)),
                              .ulong(UInt64(s.strideA)), .int(Int32(clamping: s.m)), .int(Int32(clamping: s.k)), .int(Int32(clamping: rowPanels)), .buffer(ap)])
                aIn = [.buffer(ap), .ulong(1), .ulong(UInt64(mr)), .int(1), .ulong(UInt64(s.strideA == 0 ? 0 : rowPanels * mr * s.k))]
            } else {
                aIn = [.buffer(a), .ulong(UInt64(s.transA ? 1 : s.lda)), .ulong(UInt64(s.transA ? s.lda : 1)), .int(0),
                       .ulong(UInt64(s.strideA))]
            }
            let bp = allocate(colPanels * nr * s.k * batchB)
            launch(.gemmVariant(v), "gemm_panel_pack_b", global: [colPanels, (s.k + 63) / 64, batchB],
                   args: [.buffer(b), .int(Int32(clamping: s.transB ? s.ldb : 1)), .int(Int32(clamping: s.transB ? 1 : s.ldb)),
                          .ulong(UInt64(s.strideB)), .int(Int32(clamping: s.n)), .int(Int32(clamping: s.k)), .int(Int32(clamping: colPanels)), .buffer(bp)])
            let global = [(colPanels + nb - 1) / nb, (rowPanels + mb - 1) / mb, s.batch]
            // One work-item per work-group: PoCL's threads take work-groups, and an item is a whole block of
            // C, so that larger groups left one thread with more blocks than the other (a 2048² product: 16 groups
            // of 16 items, 4 of them with 12).
            launch(.gemmVariant(v), "gemm_panel", global: global, local: [1, 1, 1],
                   args: [.int(Int32(clamping: s.m)), .int(Int32(clamping: s.n)), .int(Int32(clamping: s.k)), .float(s.alpha), .float(s.beta)]
                       + aIn + [.buffer(bp), .ulong(UInt64(s.strideB == 0 ? 0 : colPanels * nr * s.k))] + epilogue)
        }
    }

    /// Adds the `slices` partial products of a K-split in `workspace` in order and applies the epilogue
    /// (gemm_split_reduce of `program`).
    func gemmSplitReduce(_ s: GemmShape, program: KernelProgram, slices: Int, workspace: DeviceBuffer,
                         epilogue: [KernelArg]) {
        launch(program, "gemm_split_reduce", global: [s.n, s.m, s.batch],
               local: fittingLocal([16, 16, 1], program, "gemm_split_reduce"),
               args: [.int(Int32(clamping: s.m)), .int(Int32(clamping: s.n)), .int(Int32(clamping: slices)), .float(s.alpha), .float(s.beta),
                      .buffer(workspace)] + epilogue)
    }
}

/// Which GEMM kernel runs a product. `MYELIN_GEMM_KERNEL` (a `Kernel.name`: `direct`, `block:8x16`, `nt:4x4`,
/// `skinny:4`, `skinny:8`, or a `GemmVariant` name such as `panel:6x16:kc256:mb8:nb4`) forces one, for measuring.
/// `OpenCLBackend.gemmKernel(for:)` decides: the tuning table, else `GemmDefaults` (of which `choose` is the
/// CPU-device part).
enum GemmKernelChoice {
    /// A register-blocked kernel computing `rows` x `columns` outputs per work-item (see Kernels/gemm.cl, which
    /// has the blocks `defaultBlock` and `ntBlock`).
    struct Block: Equatable, Sendable {
        let rows: Int
        let columns: Int
    }

    /// The kernels `choose` picks are `direct`, `block(defaultBlock)`, `skinny(rows: 4)` and, for A·Bᵀ,
    /// `nt(ntBlock)`; `skinny(rows: 8)` is a tuner candidate. Other register-block sizes, a 32 x 32 local-memory
    /// tile and packed panels without K blocks were measured and lost (README, "GEMM"); their kernels were removed
    /// after commit 9a81123, which still has them (Kernels/gemm_variants.cl).
    enum Kernel: Equatable, Sendable {
        /// One work-item per output.
        case direct
        /// Register blocks, edges by the direct kernel.
        case block(Block)
        /// At most 16 columns: B packed to K x 16, `rows` rows of C per work-item (wider: `block(defaultBlock)`).
        case skinny(rows: Int)
        /// A·Bᵀ as register blocks of dot products along K (other transposes: `block(defaultBlock)`).
        case nt(Block)
        /// A parameterised kernel of Kernels/gemm_tuned.cl (`GemmVariant`, below): K-blocked panels or
        /// local-memory tiles.
        case variant(GemmVariant)
    }

    /// Products of at most this many multiply-adds (m·n·k) run on the direct kernel in one launch.
    static let tinyProduct = 4096

    /// The block the tuned path uses.
    static let defaultBlock = Block(rows: 8, columns: 16)
    /// The dot-product block the tuned path uses for A·Bᵀ.
    static let ntBlock = Block(rows: 4, columns: 4)

    /// The kernel `MYELIN_GEMM_KERNEL` forces (a `Kernel.name`); nil when unset or not one of them.
    static let forced: Kernel? = {
        guard let text = ProcessInfo.processInfo.environment["MYELIN_GEMM_KERNEL"], !text.isEmpty else { return nil }
        return parse(text)
    }()

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

/// The kernel a name in a table or `MYELIN_GEMM_KERNEL` stands for, and back.
extension GemmKernelChoice.Kernel {
    /// `direct`, `skinny:R`, `block:RxC`, `nt:RxC` or a `GemmVariant` name.
    var name: String {
        switch self {
        case .direct: return "direct"
        case .skinny(let rows): return "skinny:\(rows)"
        case .block(let b): return "block:\(b.rows)x\(b.columns)"
        case .nt(let b): return "nt:\(b.rows)x\(b.columns)"
        case .variant(let v): return v.description
        }
    }
}

extension GemmKernelChoice {
    /// The kernel a name stands for (`Kernel.name`), nil for an unknown name.
    static func parse(_ text: String) -> Kernel? {
        if text == "direct" { return .direct }
        if text == "skinny:4" { return .skinny(rows: 4) }
        if text == "skinny:8" { return .skinny(rows: 8) }
        if let v = GemmVariant(name: text) { return .variant(v) }
        if text == Kernel.block(defaultBlock).name { return .block(defaultBlock) }
        if text == Kernel.nt(ntBlock).name { return .nt(ntBlock) }
        return nil
    }
}
