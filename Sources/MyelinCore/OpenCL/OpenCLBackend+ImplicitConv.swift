import Foundation

// Convolution as implicit GEMMs on the OpenCL device (Kernels/gemm_tuned_conv.cl, in the program of a GPU-grade
// tile without transposes), each gathering its operands in the tile loads: no column buffer, no chunks, no
// recomputed columns, no scatter or fold (the outputs are written NCHW).
//   forward:         y [O, N·L]        = W [O, C·kh·kw] · cols [C·kh·kw, N·L]          (conv_frag_forward)
//   weight gradient: gw [O, C·kh·kw]   = gY [O, N·L] · colsᵀ, the reduction over N·L cut into K slices where
//                                        the tiles alone would leave compute units idle (conv_frag_weight_grad,
//                                        then gemm_split_reduce)
//   input gradient:  gx [C, N·H·W]     = Wᵀ-gathered [C, O·kh·kw] · gY-gathered [O·kh·kw, N·H·W]: each pixel the
//                                        sum over the output positions and taps that read it (conv_frag_input_grad;
//                                        a gather, so no float atomics and no race)
// They run where the forward's implicit path is chosen (`implicitConvVariant`: GPUs, or MYELIN_GPU_PATHS=1 /
// MYELIN_CONV=implicit); CPU devices (PoCL) keep the chunked im2col path (ChunkedConvolution.swift), which
// measured faster there: PoCL runs these work-groups as loops over their items, and the gathers' index arithmetic
// is not hidden behind memory latency as on a GPU (with MYELIN_GPU_PATHS=1 the gradients took the CNN's kernel
// time per step from 2.1 s to 3.8 s on PoCL, README). Grouped convolutions stay on the layer's im2col + batched GEMM (Convolution.swift).
extension OpenCLBackend {
    /// `MYELIN_CONV=implicit` or `im2col` forces the path of the forward and the gradients (for measuring); anything
    /// else: the default.
    static let forcedConvPath: String? = {
        guard let v = ProcessInfo.processInfo.environment["MYELIN_CONV"]?.lowercased(), ["implicit", "im2col"].contains(v)
        else { return nil }
        return v
    }()

    /// The GPU-grade tile the implicit GEMM uses for a layer, nil for the chunked im2col path: on a GPU the
    /// `GemmDefaults.fragTiles` tile of the product O x N·L x C·kh·kw (the largest that gives every compute unit a
    /// work-group); on a CPU device (PoCL) im2col, which measured faster there (see BENCHMARKS.md), unless
    /// `MYELIN_CONV=implicit`.
    func implicitConvVariant(_ g: ConvGeometry, outChannels o: Int) -> GemmVariant? {
        if Self.forcedConvPath == "im2col" { return nil }
        if !info.isGPU && Self.forcedConvPath != "implicit" { return nil }
        return implicitConvTile(GemmShape(m: o, n: g.batch * g.positions, k: g.patchSize))
    }

    func convForwardImplicit(x: DeviceBuffer, weight: DeviceBuffer, bias: DeviceBuffer?, y: DeviceBuffer,
                             geometry g: ConvGeometry, outChannels o: Int) -> Bool {
        guard let v = implicitConvVariant(g, outChannels: o) else { return false }
        return convForwardImplicit(x: x, weight: weight, bias: bias, y: y, geometry: g, outChannels: o, variant: v)
    }

    /// The implicit-GEMM forward with GPU-grade tile `v` (tests run every tile); false, with nothing done, when `v`
    /// is not a GPU-grade tile without a K-split, does not fit this device, or the product is empty or too large for
    /// the kernel's 32-bit indices.
    func convForwardImplicit(x: DeviceBuffer, weight: DeviceBuffer, bias: DeviceBuffer?, y: DeviceBuffer,
                             geometry g: ConvGeometry, outChannels o: Int, variant v: GemmVariant) -> Bool {
        guard case .frag(let f) = v, f.slices == 1, !f.transA, !f.transB, variantUsable(v) else { return false }
        let n = g.batch * g.positions, k = g.patchSize
        guard n > 0, k > 0, o > 0, n < Int(Int32.max) - f.tn, g.batch * g.channels * g.height * g.width < Int(Int32.max)
        else { return false }
        let rtm = f.tm / f.wm, rtn = f.tn / f.wn
        launch(.gemmVariant(v), "conv_frag_forward", global: [(n + f.tn - 1) / f.tn * rtn, (o + f.tm - 1) / f.tm * rtm, 1],
               local: [rtn, rtm, 1],
               args: [.int(Int32(clamping: o)), .int(Int32(clamping: n)), .int(Int32(clamping: k)), .buffer(weight), .buffer(x),
                      .int(k % f.vector == 0 ? 1 : 0), .buffer(y), bias.map { .buffer($0) } ?? .null,
                      .int(bias == nil ? 0 : 1)] + geometryArgs(g))
        return true
    }

    /// `MYELIN_CONV_BACKWARD=chunked` keeps the gradients on the chunked im2col path where the forward is implicit
    /// (the state before they were implicit GEMMs; for measuring the two with one binary).
    static let chunkedConvBackward = ProcessInfo.processInfo.environment["MYELIN_CONV_BACKWARD"]?.lowercased() == "chunked"

    /// The GPU-grade tile for a product of the implicit convolution kernels: of the `fragTiles` that fit, the
    /// largest that gives every compute unit a work-group, else the smallest.
    func implicitConvTile(_ shape: GemmShape) -> GemmVariant? {
        let usable = GemmDefaults.fragTiles.filter { variantUsable($0) }
        return usable.first { GemmDefaults.tiles(of: $0, shape) >= max(info.computeUnits, 1) } ?? usable.last
    }

    func convBackwardImplicit(x: DeviceBuffer, weight: DeviceBuffer, gy: DeviceBuffer, gx: DeviceBuffer?, gw: DeviceBuffer?,
                              geometry g: ConvGeometry, outChannels o: Int) -> Bool {
        guard !Self.chunkedConvBackward, implicitConvVariant(g, outChannels: o) != nil else { return false }
        let n = g.batch * g.positions, pixels = g.batch * g.height * g.width, taps = o * g.kernelH * g.kernelW
        let wShape = GemmShape(m: o, n: g.patchSize, k: n), xShape = GemmShape(m: g.channels, n: pixels, k: taps)
        guard let wTile = implicitConvTile(wShape), let xTile = implicitConvTile(xShape) else { return false }
        let split = GemmDefaults.split(wTile, for: wShape, computeUnits: info.computeUnits)
        return convBackwardImplicit(x: x, weight: weight, gy: gy, gx: gx, gw: gw, geometry: g, outChannels: o,
                                    weightTile: split, inputTile: xTile)
    }

    /// The implicit-GEMM gradients with GPU-grade tiles `weightTile` (its K-split cuts the weight gradient's
    /// reduction over N·L) and `inputTile` (tests run every tile); false, with nothing done, when a tile is not a
    /// GPU-grade one that fits this device (`inputTile` without a K-split), or a product is empty or too large for
    /// the kernels' 32-bit indices.
    func convBackwardImplicit(x: DeviceBuffer, weight: DeviceBuffer, gy: DeviceBuffer, gx: DeviceBuffer?, gw: DeviceBuffer?,
                              geometry g: ConvGeometry, outChannels o: Int, weightTile: GemmVariant, inputTile: GemmVariant) -> Bool {
        guard case .frag(let fw) = weightTile, case .frag(let fx) = inputTile, fx.slices == 1, !fw.transA, !fw.transB,
              !fx.transA, !fx.transB, variantUsable(weightTile.withoutSplit), variantUsable(inputTile) else { return false }
        let n = g.batch * g.positions, k = g.patchSize, pixels = g.batch * g.height * g.width, taps = o * g.kernelH * g.kernelW
        let largest = max(n, pixels * g.channels, g.batch * o * g.positions, o * k * max(fw.slices, 1)) + max(fw.tn, fx.tn)
        guard n > 0, k > 0, o > 0, pixels > 0, largest < Int(Int32.max) else { return false }
        if let gw {
            let (slices, sliceK) = weightTile.kSlices(k: n)
            let out = slices > 1 ? allocate(slices * o * k) : gw
            launch(.gemmVariant(weightTile), "conv_frag_weight_grad",
                   global: [(k + fw.tn - 1) / fw.tn * (fw.tn / fw.wn), (o + fw.tm - 1) / fw.tm * (fw.tm / fw.wm), slices],
                   local: [fw.tn / fw.wn, fw.tm / fw.wm, 1],
                   args: [.int(Int32(clamping: o)), .int(Int32(clamping: k)), .int(Int32(clamping: n)), .int(Int32(clamping: sliceK)), .buffer(gy), .buffer(x),
                          .buffer(out)] + geometryArgs(g))
            if slices > 1 {
                gemmSplitReduce(GemmShape(m: o, n: k, k: n), program: .gemmVariant(weightTile), slices: slices, workspace: out,
                                epilogue: [.buffer(gw), .int(Int32(clamping: k)), .ulong(0), .null, .int(0),
                                           .int(Activation.identity.code), .float(0)])
            }
        }
        if let gx {
            launch(.gemmVariant(inputTile), "conv_frag_input_grad",
                   global: [(pixels + fx.tn - 1) / fx.tn * (fx.tn / fx.wn), (g.channels + fx.tm - 1) / fx.tm * (fx.tm / fx.wm), 1],
                   local: [fx.tn / fx.wn, fx.tm / fx.wm, 1],
                   args: [.int(Int32(clamping: o)), .int(Int32(clamping: pixels)), .int(Int32(clamping: taps)), .buffer(weight), .buffer(gy), .buffer(gx)]
                       + geometryArgs(g))
        }
        return true
    }
}
