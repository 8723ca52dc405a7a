// The device calls of the convolution, pooling and batch-normalization layers, as parts of `Backend`.

/// Convolution: the column transforms (im2col/col2im for the general window) and the chunked algorithm's calls
/// (`conv2dForward` / `conv2dBackward` in Convolution/ChunkedConvolution.swift; kernels in Kernels/conv.cl).
protocol ConvolutionBackend: AnyObject {
    /// Unfolds image patches: x [N, C, H, W] -> cols [N, C·kh·kw, outH·outW] with
    /// cols[n, (c·kh + i)·kw + j, oh·outW + ow] = x[n, c, oh·sh - ph + i, ow·sw - pw + j], or `padValue`
    /// where that position lies outside the image.
    func im2col(x: DeviceBuffer, cols: DeviceBuffer, geometry: ConvGeometry, padValue: Float)
    /// The adjoint of `im2col`: x[n, c, h, w] = the sum of every cols entry that im2col read from (n, c, h, w).
    /// Overwrites x (no zeroing needed).
    func col2im(cols: DeviceBuffer, x: DeviceBuffer, geometry: ConvGeometry)

    // Chunked convolution (the algorithm is `conv2dForward` / `conv2dBackward` in ChunkedConvolution.swift).
    // A chunk is the images firstImage..<firstImage+images of the batch; L = outH·outW; its column matrix is
    // [C·kh·kw, images·L] with image b's patches in columns b·L..<(b+1)·L.

    /// The largest column buffer (elements) one convolution chunk may use.
    var convChunkElements: Int { get }
    /// cols[(c·kh + i)·kw + j, b·L + oh·outW + ow] = x[firstImage + b, c, oh·sh − ph + i, ow·sw − pw + j], or 0
    /// outside the image.
    func convUnfold(x: DeviceBuffer, cols: DeviceBuffer, geometry: ConvGeometry, firstImage: Int, images: Int)
    /// The adjoint of `convUnfold` for the chunk's images: overwrites x[firstImage..<firstImage+images] with the
    /// sum of the column entries read from each pixel.
    func convFold(cols: DeviceBuffer, x: DeviceBuffer, geometry: ConvGeometry, firstImage: Int, images: Int)
    /// chunk[o, b·L + p] = y[firstImage + b, o, p] for y [N, O, L].
    func convGatherOutput(y: DeviceBuffer, chunk: DeviceBuffer, outChannels: Int, positions: Int,
                          firstImage: Int, images: Int)
    /// y[firstImage + b, o, p] = chunk[o, b·L + p] (+ bias[o]) for y [N, O, L].
    func convScatterOutput(chunk: DeviceBuffer, y: DeviceBuffer, bias: DeviceBuffer?, outChannels: Int, positions: Int,
                           firstImage: Int, images: Int)

    // A whole convolution in a library of the backend (the CPU device's oneDNN, CPU/CPUBackend+OneDNN.swift), in
    // place of the chunked algorithm. The defaults (ChunkedConvolution.swift) say no and run the chunked algorithm.

    /// Whether `conv2dForward` / `conv2dBackward` go to `libraryConv2dForward` / `libraryConv2dBackward` for x
    /// [N, C, H, W] (the geometry's) convolved with a weight [outChannels, C, kh, kw].
    func usesLibraryConvolution(_ geometry: ConvGeometry, outChannels: Int) -> Bool
    /// What `conv2dForward` computes, on the library.
    func libraryConv2dForward(x: DeviceBuffer, weight: DeviceBuffer, bias: DeviceBuffer?, y: DeviceBuffer,
                              geometry: ConvGeometry, outChannels: Int)
    /// What `conv2dBackward` computes, on the library.
    func libraryConv2dBackward(x: DeviceBuffer, weight: DeviceBuffer, gy: DeviceBuffer, gx: DeviceBuffer?, gw: DeviceBuffer?,
                               geometry: ConvGeometry, outChannels: Int)
    /// The whole of `conv2dForward` as one implicit GEMM (the patches gathered in the GEMM's tile loads, no column
    /// matrix), where the device has one and it is chosen for this layer shape; false, with nothing done, otherwise
    /// (the default: the chunked im2col path runs).
    func convForwardImplicit(x: DeviceBuffer, weight: DeviceBuffer, bias: DeviceBuffer?, y: DeviceBuffer,
                             geometry: ConvGeometry, outChannels: Int) -> Bool
    /// The whole of `conv2dBackward` as implicit GEMMs (the gradients' operands gathered in the tile loads), where
    /// the device chooses its implicit forward for this layer shape; false, with nothing done, otherwise.
    func convBackwardImplicit(x: DeviceBuffer, weight: DeviceBuffer, gy: DeviceBuffer, gx: DeviceBuffer?, gw: DeviceBuffer?,
                              geometry: ConvGeometry, outChannels: Int) -> Bool
}

extension ConvolutionBackend {
    func convForwardImplicit(x: DeviceBuffer, weight: DeviceBuffer, bias: DeviceBuffer?, y: DeviceBuffer,
                             geometry: ConvGeometry, outChannels: Int) -> Bool { false }
    func convBackwardImplicit(x: DeviceBuffer, weight: DeviceBuffer, gy: DeviceBuffer, gx: DeviceBuffer?, gw: DeviceBuffer?,
                              geometry: ConvGeometry, outChannels: Int) -> Bool { false }
}

/// Max pooling (Kernels/normalization.cl on OpenCL).
protocol PoolingBackend: AnyObject {
    // Max pooling of the N·C planes of x [N, C, H, W] (geometry with any channel count); padding reads -infinity.

    /// y[plane, oh, ow] = the window's maximum; argmax[plane, oh, ow] = the window position (i·kernelW + j) of its
    /// first maximum in window order, as PyTorch picks it (a Float; -1 when no position holds it: an all-NaN window).
    func maxPoolForward(x: DeviceBuffer, y: DeviceBuffer, argmax: DeviceBuffer, geometry: ConvGeometry)
    /// Overwrites gx with Σ of gy over the windows whose `argmax` is that input (ties: the first maximum takes it all).
    func maxPoolBackward(x: DeviceBuffer, y: DeviceBuffer, argmax: DeviceBuffer, gy: DeviceBuffer, gx: DeviceBuffer,
                         geometry: ConvGeometry)
}

/// Batch normalization (Kernels/normalization.cl on OpenCL).
protocol NormalizationBackend: AnyObject {
    // Batch normalization over x [outer, channels, inner]: channel c holds the m = outer·inner values x[n, c, i].
    // x̂ = (x − mean[c]) / √(variance[c] + epsilon).

    /// mean[c] and the biased variance[c] of each channel's m values; with `running`, the running statistics are
    /// updated from them in the same launch (`BatchNormRunning`).
    func batchNormMoments(x: DeviceBuffer, mean: DeviceBuffer, variance: DeviceBuffer, running: BatchNormRunning?,
                          outer: Int, channels: Int, inner: Int)
    /// y = x̂·weight[c] + bias[c], then `+ residual` (same shape as x) when given, then max(·, 0) when `relu`.
    func batchNormApply(x: DeviceBuffer, y: DeviceBuffer, mean: DeviceBuffer, variance: DeviceBuffer, weight: DeviceBuffer,
                        bias: DeviceBuffer, residual: DeviceBuffer?, relu: Bool, epsilon: Float, outer: Int, channels: Int,
                        inner: Int)
    /// gweight[c] = Σ gy·x̂ and gbias[c] = Σ gy over each channel's m values. With `mask` (the output of an apply
    /// with `relu`, same shape as x) every gy counts as gy·(mask > 0 ? 1 : 0): the ReLU's backward, fused.
    func batchNormBackwardSums(x: DeviceBuffer, gy: DeviceBuffer, mask: DeviceBuffer?, mean: DeviceBuffer,
                               variance: DeviceBuffer, gweight: DeviceBuffer, gbias: DeviceBuffer, epsilon: Float,
                               outer: Int, channels: Int, inner: Int)
    /// gx = weight[c]/√(variance[c] + epsilon) · (gy − (gbias[c] + x̂·gweight[c]) / m) when the statistics were
    /// the batch's (`batchStatistics`), weight[c]/√(variance[c] + epsilon) · gy when they were constants; gy masked
    /// by `mask` as in `batchNormBackwardSums`. `gresidual`, when given, gets the (masked) gy: the gradient of an
    /// apply's residual.
    func batchNormBackwardInput(x: DeviceBuffer, gy: DeviceBuffer, mask: DeviceBuffer?, mean: DeviceBuffer,
                                variance: DeviceBuffer, weight: DeviceBuffer, gweight: DeviceBuffer, gbias: DeviceBuffer,
                                gx: DeviceBuffer, gresidual: DeviceBuffer?, epsilon: Float, batchStatistics: Bool,
                                outer: Int, channels: Int, inner: Int)
}

/// The running statistics a train-mode batch normalization updates from the batch's mean and biased variance, as
/// PyTorch does (and as the separate launches `running·keep`, `+ mean·momentum` did, bit for bit):
/// mean[c] = mean[c]·keep + batchMean[c]·momentum, variance[c] = variance[c]·keep + batchVariance[c]·varianceFactor
/// (keep = 1 − momentum, varianceFactor = momentum·m/(m − 1) for the unbiased variance), tracked[0] += 1.
struct BatchNormRunning {
    /// The running mean [channels], updated in place.
    let mean: DeviceBuffer
    /// The running variance [channels], updated in place.
    let variance: DeviceBuffer
    /// The count of train-mode batches (one value), incremented.
    let tracked: DeviceBuffer
    /// 1 − momentum.
    let keep: Float
    /// The weight of the batch's mean.
    let momentum: Float
    /// The weight of the batch's biased variance: momentum·m/(m − 1).
    let varianceFactor: Float
}

// The plain forms (no running update, no fusion), which tests and layers without a fusion call.
extension NormalizationBackend {
    func batchNormMoments(x: DeviceBuffer, mean: DeviceBuffer, variance: DeviceBuffer, outer: Int, channels: Int, inner: Int) {
        batchNormMoments(x: x, mean: mean, variance: variance, running: nil, outer: outer, channels: channels, inner: inner)
    }
    func batchNormApply(x: DeviceBuffer, y: DeviceBuffer, mean: DeviceBuffer, variance: DeviceBuffer, weight: DeviceBuffer,
                        bias: DeviceBuffer, epsilon: Float, outer: Int, channels: Int, inner: Int) {
        batchNormApply(x: x, y: y, mean: mean, variance: variance, weight: weight, bias: bias, residual: nil, relu: false,
                       epsilon: epsilon, outer: outer, channels: channels, inner: inner)
    }
    func batchNormBackwardSums(x: DeviceBuffer, gy: DeviceBuffer, mean: DeviceBuffer, variance: DeviceBuffer,
                               gweight: DeviceBuffer, gbias: DeviceBuffer, epsilon: Float, outer: Int, channels: Int, inner: Int) {
        batchNormBackwardSums(x: x, gy: gy, mask: nil, mean: mean, variance: variance, gweight: gweight, gbias: gbias,
                              epsilon: epsilon, outer: outer, channels: channels, inner: inner)
    }
    func batchNormBackwardInput(x: DeviceBuffer, gy: DeviceBuffer, mean: DeviceBuffer, variance: DeviceBuffer,
                                weight: DeviceBuffer, gweight: DeviceBuffer, gbias: DeviceBuffer, gx: DeviceBuffer,
                                epsilon: Float, batchStatistics: Bool, outer: Int, channels: Int, inner: Int) {
        batchNormBackwardInput(x: x, gy: gy, mask: nil, mean: mean, variance: variance, weight: weight, gweight: gweight,
                               gbias: gbias, gx: gx, gresidual: nil, epsilon: epsilon, batchStatistics: batchStatistics,
                               outer: outer, channels: channels, inner: inner)
    }
}
