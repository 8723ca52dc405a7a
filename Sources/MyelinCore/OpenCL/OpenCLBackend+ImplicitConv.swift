import Foundation

// Convolution forward as an implicit GEMM on the OpenCL device: conv_frag_forward (Kernels/gemm_tuned.cl, in the
// program of a GPU-grade tile without transposes) multiplies the weight [O, C·kh·kw] by the column matrix
// [C·kh·kw, N·L] of the whole batch, gathering each column entry from the image in its B-tile loads: no column
// buffer, no chunks, no scatter of the output (it writes NCHW). The backward passes keep the chunked im2col path
// (ChunkedConvolution.swift).
extension OpenCLBackend {
    /// `MYELIN_CONV=implicit` or `im2col` forces the forward path (for measuring); anything else: the default.
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
        let shape = GemmShape(m: o, n: g.batch * g.positions, k: g.patchSize)
        let usable = GemmDefaults.fragTiles.filter { variantUsable($0) }
        return usable.first { GemmDefaults.tiles(of: $0, shape) >= max(info.computeUnits, 1) } ?? usable.last
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
}
