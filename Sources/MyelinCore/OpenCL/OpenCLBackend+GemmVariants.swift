import Foundation

// The GEMM variants that were measured and lost against the default path (README, "GEMM"): the local-memory tiled
// kernel, register blocks of other sizes, packed panels, A·Bᵀ dot products and skinny with 8 rows (their kernels
// are in Kernels/gemm_variants.cl); and the launches of the parameterised kernels of Kernels/gemm_tuned.cl
// (`GemmVariant`, OpenCL/GemmTuning.swift), which the tuning table or `GemmDefaults` pick. `MYELIN_GEMM_KERNEL`
// selects any of them (`myelin bench gemm`), and GemmTuningTests checks every one against a Double reference.

extension GemmKernelChoice.Block {
    /// The register-block sizes measured (`gemm_block_*` and `gemm_packed_*` kernels).
    static let all: [Self] = [Self(rows: 4, columns: 32), Self(rows: 6, columns: 32), Self(rows: 8, columns: 16),
                              Self(rows: 8, columns: 32), Self(rows: 12, columns: 16), Self(rows: 8, columns: 24)]
    /// Blocks of the A·Bᵀ dot-product kernels.
    static let ntAll: [Self] = [Self(rows: 4, columns: 4), Self(rows: 4, columns: 6), Self(rows: 6, columns: 4)]
}

extension GemmKernelChoice {
    /// The kernel `MYELIN_GEMM_KERNEL` forces: `direct`, `tiled`, `skinny:4`, `skinny:8`, `block:RxC`,
    /// `packed:RxC`, `packedr:RxC` (row panels first), `nt:RxC` or a `GemmVariant` name (`panel:...`, `tile:...`);
    /// nil when unset or not one of these.
    static let forced: Kernel? = {
        guard let text = ProcessInfo.processInfo.environment["MYELIN_GEMM_KERNEL"], !text.isEmpty else { return nil }
        return parse(text)
    }()
}

extension OpenCLBackend {
    /// Runs the product with one of the variant kernels (`.tiled`, `.nt`, `.packed`); see `gemm(_:...kernel:)`.
    func gemmVariant(_ s: GemmShape, a: DeviceBuffer, b: DeviceBuffer, c: DeviceBuffer,
                     bias: DeviceBuffer?, activation: Activation, kernel: GemmKernelChoice.Kernel) {
        switch kernel {
        case .tiled where workGroupLimit("gemm_tiled") < 64 || limits.maxWorkItemSizes.prefix(2).contains(where: { $0 < 8 })
                          || limits.localMemorySize < 2 * 16 * 32 * 4:
            // Its 8 x 8 work-groups (or 4 KiB of tiles) do not fit this device: the kernel without local memory.
            gemm(s, a: a, b: b, c: c, bias: bias, activation: activation, kernel: .direct)
        case .tiled:
            launch("gemm_tiled", global: [(s.n + 3) / 4, (s.m + 3) / 4, s.batch], local: [8, 8, 1],
                   args: gemmArguments(s, a: a, b: b, c: c, bias: bias, activation: activation))
        case .nt(let v) where s.transB && !s.transA:
            let mMain = s.m / v.rows * v.rows, nMain = s.n / v.columns * v.columns
            if mMain > 0 && nMain > 0 {
                let global = [nMain / v.columns, mMain / v.rows, s.batch]
                let name = "gemm_nt_\(v.rows)x\(v.columns)"
                launch(name, global: global, local: fittingLocal(GemmKernelChoice.blockLocal(global), kernel: name),
                       args: gemmArguments(s, a: a, b: b, c: c, bias: bias, activation: activation, m: mMain, n: nMain))
            }
            gemmEdgeStrips(s, a: a, b: b, c: c, bias: bias, activation: activation, mMain: mMain, nMain: nMain)
        case .nt:
            // The dot-product kernel covers A·Bᵀ only; every other case takes the default blocks.
            gemm(s, a: a, b: b, c: c, bias: bias, activation: activation, kernel: .block(GemmKernelChoice.defaultBlock))
        case .packed(let v, let rowsFirst):
            let rowPanels = (s.m + v.rows - 1) / v.rows, colPanels = (s.n + v.columns - 1) / v.columns
            let batchA = s.strideA == 0 ? 1 : s.batch, batchB = s.strideB == 0 ? 1 : s.batch
            let ap = allocate(rowPanels * v.rows * s.k * batchA)
            let bp = allocate(colPanels * v.columns * s.k * batchB)
            // op(A)[i, p] = A[i * sx + p * sp]; op(B)[p, j] = B[j * sx + p * sp].
            launch("gemm_pack", global: [s.k * v.rows, rowPanels, batchA],
                   args: [.buffer(a), .int(Int32(s.transA ? 1 : s.lda)), .int(Int32(s.transA ? s.lda : 1)),
                          .ulong(UInt64(s.strideA)), .int(Int32(s.m)), .int(Int32(s.k)), .int(Int32(v.rows)), .buffer(ap)])
            launch("gemm_pack", global: [s.k * v.columns, colPanels, batchB],
                   args: [.buffer(b), .int(Int32(s.transB ? s.ldb : 1)), .int(Int32(s.transB ? 1 : s.ldb)),
                          .ulong(UInt64(s.strideB)), .int(Int32(s.n)), .int(Int32(s.k)), .int(Int32(v.columns)), .buffer(bp)])
            let name = "gemm_packed_\(rowsFirst ? "r_" : "")\(v.rows)x\(v.columns)"
            let global = rowsFirst ? [rowPanels, colPanels, s.batch] : [colPanels, rowPanels, s.batch]
            launch(name, global: global, local: fittingLocal(GemmKernelChoice.blockLocal(global), kernel: name),
                   args: [.int(Int32(s.m)), .int(Int32(s.n)), .int(Int32(s.k)), .float(s.alpha), .float(s.beta),
                          .buffer(ap), .ulong(UInt64(s.strideA == 0 ? 0 : rowPanels * v.rows * s.k)),
                          .buffer(bp), .ulong(UInt64(s.strideB == 0 ? 0 : colPanels * v.columns * s.k)),
                          .buffer(c), .int(Int32(s.ldc)), .ulong(UInt64(s.strideC)),
                          bias.map { .buffer($0) } ?? .null, .int(bias == nil ? 0 : 1),
                          .int(activation.code), .float(activation.parameter)])
        case .variant(let v) where s.k == 0 || !variantUsable(v):
            // Nothing to sum (the direct kernel writes beta * C + bias), or the variant does not fit this device:
            // the direct kernel on a GPU, the CPU-device default elsewhere.
            let fallback: GemmKernelChoice.Kernel = s.k == 0 || info.isGPU ? .direct : GemmKernelChoice.choose(s)
            gemm(s, a: a, b: b, c: c, bias: bias, activation: activation, kernel: fallback)
        case .variant(let v):
            gemmParameterised(s, a: a, b: b, c: c, bias: bias, activation: activation, variant: v)
        case .direct, .block, .skinny:
            // The tuned kernels: the main path.
            gemm(s, a: a, b: b, c: c, bias: bias, activation: activation, kernel: kernel)
        }
    }

    /// Runs the product with a parameterised kernel of Kernels/gemm_tuned.cl (see `GemmVariant`).
    func gemmParameterised(_ s: GemmShape, a: DeviceBuffer, b: DeviceBuffer, c: DeviceBuffer,
                           bias: DeviceBuffer?, activation: Activation, variant v: GemmVariant) {
        let epilogue: [KernelArg] = [.buffer(c), .int(Int32(s.ldc)), .ulong(UInt64(s.strideC)),
                                     bias.map { .buffer($0) } ?? .null, .int(bias == nil ? 0 : 1),
                                     .int(activation.code), .float(activation.parameter)]
        switch v {
        case .tile(let tm, let tn, _, let wm, let wn, _) where v.kSlices(k: s.k).count > 1:
            // K-split: each slice's partial product into a workspace, then the slices added in order and the
            // epilogue applied (gemm_split_reduce).
            let (slices, sliceK) = v.kSlices(k: s.k)
            let rtm = tm / wm, rtn = tn / wn
            let workspace = allocate(slices * s.m * s.n * s.batch)
            launch(v.kernelKey("gemm_tile_split"),
                   global: [(s.n + tn - 1) / tn * rtn, (s.m + tm - 1) / tm * rtm, s.batch * slices], local: [rtn, rtm, 1],
                   args: [.int(Int32(s.m)), .int(Int32(s.n)), .int(Int32(s.k)), .int(Int32(slices)), .int(Int32(sliceK)),
                          .buffer(a), .int(Int32(s.lda)), .ulong(UInt64(s.strideA)), .int(s.transA ? 1 : 0),
                          .buffer(b), .int(Int32(s.ldb)), .ulong(UInt64(s.strideB)), .int(s.transB ? 1 : 0),
                          .buffer(workspace)])
            let reduce = v.kernelKey("gemm_split_reduce")
            launch(reduce, global: [s.n, s.m, s.batch], local: fittingLocal([16, 16, 1], kernel: reduce),
                   args: [.int(Int32(s.m)), .int(Int32(s.n)), .int(Int32(slices)), .float(s.alpha), .float(s.beta),
                          .buffer(workspace)] + epilogue)
        case .tile(let tm, let tn, _, let wm, let wn, _):
            let rtm = tm / wm, rtn = tn / wn
            launch(v.kernelKey("gemm_tile"), global: [(s.n + tn - 1) / tn * rtn, (s.m + tm - 1) / tm * rtm, s.batch],
                   local: [rtn, rtm, 1], args: gemmArguments(s, a: a, b: b, c: c, bias: bias, activation: activation))
        case .panel(let mr, let nv, _, let mb, let nb):
            let nr = 8 * nv
            let rowPanels = (s.m + mr - 1) / mr, colPanels = (s.n + nr - 1) / nr
            let batchA = s.strideA == 0 ? 1 : s.batch, batchB = s.strideB == 0 ? 1 : s.batch
            let ap = allocate(rowPanels * mr * s.k * batchA)
            let bp = allocate(colPanels * nr * s.k * batchB)
            let kBlocks = (s.k + 63) / 64
            // op(A)[i, p] = A[i * sx + p * sp]; op(B)[p, j] = B[j * sx + p * sp].
            launch(v.kernelKey("gemm_panel_pack_a"), global: [rowPanels, kBlocks, batchA],
                   args: [.buffer(a), .int(Int32(s.transA ? 1 : s.lda)), .int(Int32(s.transA ? s.lda : 1)),
                          .ulong(UInt64(s.strideA)), .int(Int32(s.m)), .int(Int32(s.k)), .int(Int32(rowPanels)), .buffer(ap)])
            launch(v.kernelKey("gemm_panel_pack_b"), global: [colPanels, kBlocks, batchB],
                   args: [.buffer(b), .int(Int32(s.transB ? s.ldb : 1)), .int(Int32(s.transB ? 1 : s.ldb)),
                          .ulong(UInt64(s.strideB)), .int(Int32(s.n)), .int(Int32(s.k)), .int(Int32(colPanels)), .buffer(bp)])
            let key = v.kernelKey("gemm_panel")
            let global = [(colPanels + nb - 1) / nb, (rowPanels + mb - 1) / mb, s.batch]
            launch(key, global: global, local: fittingLocal(GemmKernelChoice.blockLocal(global), kernel: key),
                   args: [.int(Int32(s.m)), .int(Int32(s.n)), .int(Int32(s.k)), .float(s.alpha), .float(s.beta),
                          .buffer(ap), .ulong(UInt64(s.strideA == 0 ? 0 : rowPanels * mr * s.k)),
                          .buffer(bp), .ulong(UInt64(s.strideB == 0 ? 0 : colPanels * nr * s.k))] + epilogue)
        }
    }
}
