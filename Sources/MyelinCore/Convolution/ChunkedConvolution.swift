import Foundation

// The 2-D convolution of `Tensor.conv2d`, written once over four data-movement primitives that every backend
// implements (`convUnfold`, `convFold`, `convGatherOutput`, `convScatterOutput`) and its GEMM.
//
// The batch is cut into chunks of B images whose column buffer [K = C·kh·kw, B·L] (L = outH·outW) stays within
// `convChunkElements`; one pooled buffer is reused for every chunk, so the memory is that of a few images, not
// of the whole batch (the old im2col path held [N, K, L] plus an [N, O, K] weight-gradient temporary). Each chunk
// is one large GEMM with the B images side by side (N = B·L columns), which suits BLAS far better than one small
// product per image, then a scatter back to NCHW (with the bias added on the way).
//
//   forward:         Yc [O, B·L]  = W [O, K] · cols [K, B·L]                 -> scatter into y (+ bias)
//   backward data:   dcols [K, B·L] = Wᵀ · dYc [O, B·L]  (dYc gathered from gy) -> fold (col2im) into gx
//   backward weight: dW [O, K] += dYc · colsᵀ                                (beta 0 on the first chunk)

/// How a convolution's batch is cut into chunks of images.
struct ConvChunking: Equatable {
    /// Images per chunk (at least 1).
    var images: Int
    /// The column buffer's elements for one full chunk: K·images·L.
    var columnElements: Int

    /// The largest chunk whose column buffer stays within `budget` elements (at least one image, at most the batch).
    init(_ g: ConvGeometry, budget: Int) {
        let perImage = max(1, g.patchSize * g.positions)
        images = max(1, min(g.batch, budget / perImage))
        columnElements = perImage * images
    }

    /// The chunk budget from `MYELIN_CONV_CHUNK` (elements of the column buffer; for re-measuring), else `fallback`.
    static func budget(default fallback: Int) -> Int { forcedBudget ?? fallback }

    /// `MYELIN_CONV_CHUNK` when it is a positive whole number, read once.
    static let forcedBudget: Int? = {
        guard let text = ProcessInfo.processInfo.environment["MYELIN_CONV_CHUNK"], let v = Int(text), v > 0 else {
            return nil
        }
        return v
    }()
}

extension Backend {
    // `chunkBudget` replaces `convChunkElements` (tests use it to cut a small batch into several chunks).

    /// y [N, O, outH, outW] = conv(x [N, C, H, W], weight [O, C, kh, kw]) + bias [O] (bias optional): on the
    /// backend's library when it has one for this shape (and no `chunkBudget` asks for the chunks), else chunked.
    func conv2dForward(x: DeviceBuffer, weight: DeviceBuffer, bias: DeviceBuffer?, y: DeviceBuffer,
                       geometry g: ConvGeometry, outChannels o: Int, chunkBudget: Int? = nil) {
        guard g.batch > 0, o > 0, g.positions > 0 else { return }
        // An implicit GEMM where the device chooses one (OpenCL, OpenCLBackend+ImplicitConv.swift); a chunk budget
        // (tests) asks for the chunked path.
        if chunkBudget == nil,
           convForwardImplicit(x: x, weight: weight, bias: bias, y: y, geometry: g, outChannels: o) { return }
        if chunkBudget == nil, usesLibraryConvolution(g, outChannels: o) {
            libraryConv2dForward(x: x, weight: weight, bias: bias, y: y, geometry: g, outChannels: o)
            return
        }
        chunkedConv2dForward(x: x, weight: weight, bias: bias, y: y, geometry: g, outChannels: o, chunkBudget: chunkBudget)
    }

    /// `conv2dForward` by the chunked algorithm.
    func chunkedConv2dForward(x: DeviceBuffer, weight: DeviceBuffer, bias: DeviceBuffer?, y: DeviceBuffer,
                              geometry g: ConvGeometry, outChannels o: Int, chunkBudget: Int? = nil) {
        guard g.batch > 0, o > 0, g.positions > 0 else { return }
        let k = g.patchSize, l = g.positions
        let chunking = ConvChunking(g, budget: chunkBudget ?? convChunkElements)
        let cols = allocate(chunking.columnElements)
        let yc = allocate(o * chunking.images * l)
        var n0 = 0
        while n0 < g.batch {
            let b = min(chunking.images, g.batch - n0)
            convUnfold(x: x, cols: cols, geometry: g, firstImage: n0, images: b)
            gemm(GemmShape(m: o, n: b * l, k: k), a: weight, b: cols, c: yc, bias: nil, activation: .identity)
            convScatterOutput(chunk: yc, y: y, bias: bias, outChannels: o, positions: l, firstImage: n0, images: b)
            n0 += b
        }
    }

    /// The gradients of `conv2dForward` from the output gradient gy [N, O, outH, outW]: gx [N, C, H, W] and
    /// gw [O, C, kh, kw], each overwritten when given (the bias gradient is a plain sum of gy, done by the caller).
    func conv2dBackward(x: DeviceBuffer, weight: DeviceBuffer, gy: DeviceBuffer, gx: DeviceBuffer?, gw: DeviceBuffer?,
                        geometry g: ConvGeometry, outChannels o: Int, chunkBudget: Int? = nil) {
        guard gx != nil || gw != nil, g.batch > 0, o > 0 else { return }
        // Implicit GEMMs where the device chooses its implicit forward (OpenCL GPUs, OpenCLBackend+ImplicitConv.swift).
        if chunkBudget == nil,
           convBackwardImplicit(x: x, weight: weight, gy: gy, gx: gx, gw: gw, geometry: g, outChannels: o) { return }
        if chunkBudget == nil, usesLibraryConvolution(g, outChannels: o) {
            libraryConv2dBackward(x: x, weight: weight, gy: gy, gx: gx, gw: gw, geometry: g, outChannels: o)
            return
        }
        chunkedConv2dBackward(x: x, weight: weight, gy: gy, gx: gx, gw: gw, geometry: g, outChannels: o, chunkBudget: chunkBudget)
    }

    /// `conv2dBackward` by the chunked algorithm.
    func chunkedConv2dBackward(x: DeviceBuffer, weight: DeviceBuffer, gy: DeviceBuffer, gx: DeviceBuffer?, gw: DeviceBuffer?,
                               geometry g: ConvGeometry, outChannels o: Int, chunkBudget: Int? = nil) {
        guard gx != nil || gw != nil, g.batch > 0, o > 0 else { return }
        let k = g.patchSize, l = g.positions
        if l == 0 || k == 0 {
            if let gx { fill(gx, value: 0, offset: 0, count: g.batch * g.channels * g.height * g.width) }
            if let gw { fill(gw, value: 0, offset: 0, count: o * k) }
            return
        }
        let chunking = ConvChunking(g, budget: chunkBudget ?? convChunkElements)
        let cols = allocate(chunking.columnElements)
        let gyc = allocate(o * chunking.images * l)
        var n0 = 0
        while n0 < g.batch {
            let b = min(chunking.images, g.batch - n0)
            convGatherOutput(y: gy, chunk: gyc, outChannels: o, positions: l, firstImage: n0, images: b)
            if let gw {
                convUnfold(x: x, cols: cols, geometry: g, firstImage: n0, images: b)
                gemm(GemmShape(m: o, n: k, k: b * l, transB: true, beta: n0 == 0 ? 0 : 1),
                     a: gyc, b: cols, c: gw, bias: nil, activation: .identity)
            }
            if let gx {
                gemm(GemmShape(m: k, n: b * l, k: o, transA: true), a: weight, b: gyc, c: cols, bias: nil, activation: .identity)
                convFold(cols: cols, x: gx, geometry: g, firstImage: n0, images: b)
            }
            n0 += b
        }
    }
}

// The defaults of the library convolution (LayerBackends.swift): none, so the chunked algorithm runs.
extension Backend {
    func usesLibraryConvolution(_ geometry: ConvGeometry, outChannels: Int) -> Bool { false }

    func libraryConv2dForward(x: DeviceBuffer, weight: DeviceBuffer, bias: DeviceBuffer?, y: DeviceBuffer,
                              geometry: ConvGeometry, outChannels: Int) {
        chunkedConv2dForward(x: x, weight: weight, bias: bias, y: y, geometry: geometry, outChannels: outChannels)
    }

    func libraryConv2dBackward(x: DeviceBuffer, weight: DeviceBuffer, gy: DeviceBuffer, gx: DeviceBuffer?, gw: DeviceBuffer?,
                               geometry: ConvGeometry, outChannels: Int) {
        chunkedConv2dBackward(x: x, weight: weight, gy: gy, gx: gx, gw: gw, geometry: geometry, outChannels: outChannels)
    }
}
