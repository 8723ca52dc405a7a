/// The narrow interface every device implements. `Tensor` ops call it; nothing above `Tensor`
/// (layers, losses, optimizers) sees it. Sizes are element counts of `Float`.
/// Every call only enqueues work: nothing waits on the device except `read` and `synchronize`.
protocol Backend: AnyObject, Sendable {
    /// A short name: `cpu` or `opencl:N`.
    var name: String { get }
    /// The kind of backend.
    var kind: BackendKind { get }
    /// A longer description: the OpenCL device's name and platform, or the CPU's thread count.
    var details: String { get }
    /// Transfer, allocation and launch counters.
    var stats: DeviceStats { get }

    // MARK: memory
    /// The device's memory limits now (see `DeviceMemory`).
    var memory: DeviceMemory { get }
    /// A buffer of at least `count` elements; stops the program with a clear message when the device cannot hold
    /// it (callers that can throw check with `Device.checkAllocation` first).
    func allocate(_ count: Int) -> DeviceBuffer
    /// Copies `source` into `buffer` starting at element `offset` (host to device).
    func write(_ source: UnsafeBufferPointer<Float>, to buffer: DeviceBuffer, offset: Int)
    /// Copies `count` elements from `buffer` at `offset` into `destination` (device to host; waits).
    func read(_ buffer: DeviceBuffer, offset: Int, count: Int, into destination: UnsafeMutableBufferPointer<Float>)
    /// Device-side copy of `count` elements.
    func copy(_ source: DeviceBuffer, sourceOffset: Int, to destination: DeviceBuffer, destinationOffset: Int, count: Int)
    /// Sets `count` elements from `offset` to `value`.
    func fill(_ buffer: DeviceBuffer, value: Float, offset: Int, count: Int)
    /// Waits until every enqueued command has finished.
    func synchronize()
    /// The first command that failed since the last call, if any (an OpenCL enqueue that the driver refused),
    /// and forgets it. The CPU never fails a command.
    func takeFailure() -> DeviceError?

    // MARK: compute
    /// C = act(alpha · op(A) · op(B) + beta · C + bias), batched; see `GemmShape`.
    func gemm(_ shape: GemmShape, a: DeviceBuffer, b: DeviceBuffer, c: DeviceBuffer,
              bias: DeviceBuffer?, activation: Activation)
    /// out[i] = op(x[i]) for i < count.
    func unary(_ op: UnaryOp, x: DeviceBuffer, out: DeviceBuffer, count: Int)
    /// gx[i] = gy[i] · f'(x[i]) for the activation f, using x or y = f(x) as the formula needs.
    func activationBackward(_ activation: Activation, x: DeviceBuffer, y: DeviceBuffer, gy: DeviceBuffer,
                            gx: DeviceBuffer, count: Int)
    /// out = a op b with broadcasting described by `layout`.
    func binary(_ op: BinaryOp, a: DeviceBuffer, b: DeviceBuffer, out: DeviceBuffer, layout: BroadcastLayout)
    /// Reduces x viewed as [outer, length, inner] over the middle axis into out [outer, inner].
    func reduce(_ op: ReduceOp, x: DeviceBuffer, out: DeviceBuffer, outer: Int, length: Int, inner: Int)
    /// out[r] = index of the largest x[r, c] (first one on ties), as a Float.
    func argmax(x: DeviceBuffer, out: DeviceBuffer, rows: Int, cols: Int)
    /// Row-wise softmax (or log-softmax) of x [rows, cols], stable (row max subtracted).
    func softmax(x: DeviceBuffer, out: DeviceBuffer, rows: Int, cols: Int, log: Bool)
    /// Backward of `softmax` from its output y and the output gradient gy.
    func softmaxBackward(y: DeviceBuffer, gy: DeviceBuffer, gx: DeviceBuffer, rows: Int, cols: Int, log: Bool)
    /// out[b, c, r] = x[b, r, c] for x [batch, rows, cols].
    func transpose(x: DeviceBuffer, out: DeviceBuffer, batch: Int, rows: Int, cols: Int)
    /// out[i, :] = x[indices[i], :] for x [rows, rowSize]; indices are whole numbers stored as Float. An index
    /// outside 0..<rows (or NaN) gives a row of zeros: never a read outside x.
    func gatherRows(x: DeviceBuffer, rows: Int, indices: DeviceBuffer, out: DeviceBuffer, count: Int, rowSize: Int)
    /// out[i, :] += gy[i, :] scattered to rows indices[i] of out [rows, rowSize] (the backward of gatherRows; out
    /// must start zeroed). An index outside 0..<rows (or NaN) is skipped: never a write outside out.
    func scatterAddRows(gy: DeviceBuffer, indices: DeviceBuffer, out: DeviceBuffer, rows: Int, count: Int, rowSize: Int)
    /// out [count, classes] = one-hot rows of the whole-number labels in `indices`; a label that is not a whole
    /// number in 0..<classes gives a row of zeros.
    func oneHot(indices: DeviceBuffer, out: DeviceBuffer, count: Int, classes: Int)
    /// out[i] = uniform in [0, 1) from a counter-based hash of (seed, i): identical on every device.
    func randomUniform(out: DeviceBuffer, count: Int, seed: UInt64)

    // MARK: optimizer updates (Sources/Myelin/NN/Optimizers.swift; kernels in Kernels/optimizers.cl)
    // Each call is one launch that updates `param` and its state buffers in place from `grad`, for
    // `count` elements. State buffers that the configuration does not use are nil. Hyperparameters and
    // step-dependent factors come from the host (no device reads); see `OptimizerStepParameters.swift`.

    /// One SGD step (momentum, dampening, Nesterov, L2 or decoupled weight decay).
    func sgdStep(param: DeviceBuffer, grad: DeviceBuffer, momentumBuffer: DeviceBuffer?, count: Int,
                 _ hyper: SGDStepParameters)
    /// One Adagrad step: `sum` accumulates squared gradients.
    func adagradStep(param: DeviceBuffer, grad: DeviceBuffer, sum: DeviceBuffer, count: Int,
                     _ hyper: AdagradStepParameters)
    /// One RMSProp step: running mean of squared gradients, optional mean gradient (centered) and momentum.
    func rmspropStep(param: DeviceBuffer, grad: DeviceBuffer, squareAverage: DeviceBuffer,
                     gradientAverage: DeviceBuffer?, momentumBuffer: DeviceBuffer?, count: Int,
                     _ hyper: RMSPropStepParameters)
    /// One Adam / AdamW step (first and second moments, optional AMSGrad maximum).
    func adamStep(param: DeviceBuffer, grad: DeviceBuffer, expAvg: DeviceBuffer, expAvgSq: DeviceBuffer,
                  maxExpAvgSq: DeviceBuffer?, count: Int, _ hyper: AdamStepParameters)

    // MARK: convolution
    /// Unfolds image patches: x [N, C, H, W] -> cols [N, C·kh·kw, outH·outW] with
    /// cols[n, (c·kh + i)·kw + j, oh·outW + ow] = x[n, c, oh·sh - ph + i, ow·sw - pw + j], or `padValue`
    /// where that position lies outside the image.
    func im2col(x: DeviceBuffer, cols: DeviceBuffer, geometry: ConvGeometry, padValue: Float)
    /// The adjoint of `im2col`: x[n, c, h, w] = the sum of every cols entry that im2col read from (n, c, h, w).
    /// Overwrites x (no zeroing needed).
    func col2im(cols: DeviceBuffer, x: DeviceBuffer, geometry: ConvGeometry)

    // MARK: augmentation (Kernels/augment.cl)
    /// Random crop with zero padding and random horizontal flip of images x [N, C, H, W] into out (same shape), in
    /// one launch: image n's draws come from `AugmentDraw(seed:image:)` (a counter-based hash, the same on every
    /// device), and out[n, c, y, x] = x[n, c, y + dy − padding, x' + dx − padding] with x' = W − 1 − x when flipped
    /// (else x), or 0 where that lies outside the image.
    func randomCropFlip(x: DeviceBuffer, out: DeviceBuffer, batch: Int, channels: Int, height: Int, width: Int,
                        padding: Int, flip: Bool, seed: UInt64)

    // Batch normalization over x [outer, channels, inner]: channel c holds the m = outer·inner values x[n, c, i].
    // x̂ = (x − mean[c]) / √(variance[c] + epsilon).

    /// mean[c] and the biased variance[c] of each channel's m values.
    func batchNormMoments(x: DeviceBuffer, mean: DeviceBuffer, variance: DeviceBuffer, outer: Int, channels: Int, inner: Int)
    /// y = x̂·weight[c] + bias[c].
    func batchNormApply(x: DeviceBuffer, y: DeviceBuffer, mean: DeviceBuffer, variance: DeviceBuffer, weight: DeviceBuffer,
                        bias: DeviceBuffer, epsilon: Float, outer: Int, channels: Int, inner: Int)
    /// gweight[c] = Σ gy·x̂ and gbias[c] = Σ gy over each channel's m values.
    func batchNormBackwardSums(x: DeviceBuffer, gy: DeviceBuffer, mean: DeviceBuffer, variance: DeviceBuffer,
                               gweight: DeviceBuffer, gbias: DeviceBuffer, epsilon: Float, outer: Int, channels: Int, inner: Int)
    /// gx = weight[c]/√(variance[c] + epsilon) · (gy − (gbias[c] + x̂·gweight[c]) / m) when the statistics were
    /// the batch's (`batchStatistics`), weight[c]/√(variance[c] + epsilon) · gy when they were constants.
    func batchNormBackwardInput(x: DeviceBuffer, gy: DeviceBuffer, mean: DeviceBuffer, variance: DeviceBuffer,
                                weight: DeviceBuffer, gweight: DeviceBuffer, gbias: DeviceBuffer, gx: DeviceBuffer,
                                epsilon: Float, batchStatistics: Bool, outer: Int, channels: Int, inner: Int)

    // Max pooling of the N·C planes of x [N, C, H, W] (geometry with any channel count); padding reads -infinity.

    /// y[plane, oh, ow] = the window's maximum; ties[plane, oh, ow] = how many window positions equal it.
    func maxPoolForward(x: DeviceBuffer, y: DeviceBuffer, ties: DeviceBuffer, geometry: ConvGeometry)
    /// Overwrites gx with Σ over the windows holding each input at their maximum of gy / ties.
    func maxPoolBackward(x: DeviceBuffer, y: DeviceBuffer, ties: DeviceBuffer, gy: DeviceBuffer, gx: DeviceBuffer,
                         geometry: ConvGeometry)

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
}

/// The shapes of a 2-D convolution or pooling window over NCHW images.
public struct ConvGeometry: Equatable, Sendable {
    /// The input's dimensions N, C, H, W: images, channels, rows and columns of each image.
    public var batch: Int, channels: Int, height: Int, width: Int
    /// The window's rows and columns.
    public var kernelH: Int, kernelW: Int
    /// The step between neighbouring windows, in rows and in columns.
    public var strideH: Int, strideW: Int
    /// Rows added above and below, and columns added left and right, of each image (zeros, or the pad value).
    public var padH: Int, padW: Int

    /// The geometry of a `kernelH`×`kernelW` window sliding over `batch` images of `channels`×`height`×`width`.
    public init(batch: Int, channels: Int, height: Int, width: Int, kernelH: Int, kernelW: Int,
                strideH: Int = 1, strideW: Int = 1, padH: Int = 0, padW: Int = 0) {
        self.batch = batch; self.channels = channels; self.height = height; self.width = width
        self.kernelH = kernelH; self.kernelW = kernelW
        self.strideH = strideH; self.strideW = strideW; self.padH = padH; self.padW = padW
    }

    /// Output rows: (height + 2·padH − kernelH) / strideH + 1.
    public var outH: Int { (height + 2 * padH - kernelH) / strideH + 1 }
    /// Output columns: (width + 2·padW − kernelW) / strideW + 1.
    public var outW: Int { (width + 2 * padW - kernelW) / strideW + 1 }
    /// Rows of one image's column matrix: C·kh·kw.
    public var patchSize: Int { channels * kernelH * kernelW }
    /// Columns of one image's column matrix: outH·outW.
    public var positions: Int { outH * outW }
}

/// Counters a device keeps, used by tests to prove the hot path stays on the device.
public struct DeviceStats: Sendable, Equatable {
    /// Device-to-host reads (`toArray()`, `item()`).
    public var hostReads = 0
    /// Host-to-device writes (tensor creation, `to(_:)`).
    public var hostWrites = 0
    /// New device allocations (a pooled buffer that is reused does not count).
    public var allocations = 0
    /// Kernel launches (OpenCL) or op calls (CPU).
    public var launches = 0
    /// Times the host waited for the queue to drain.
    public var waits = 0
    /// All counters at zero.
    public init() {}
}

/// The shape of one (batched) matrix product C[m, n] = op(A)[m, k] · op(B)[k, n].
/// Matrices are row-major; `lda`, `ldb`, `ldc` are the row strides of A, B, C as stored;
/// `strideA/B/C` are the element distance between consecutive batch items (0 repeats the same matrix).
public struct GemmShape: Equatable, Sendable {
    /// Whether A is stored transposed: op(A) = Aᵀ, stored [k, m].
    public var transA = false
    /// Whether B is stored transposed: op(B) = Bᵀ, stored [n, k].
    public var transB = false
    /// Rows of C and of op(A).
    public var m: Int
    /// Columns of C and of op(B).
    public var n: Int
    /// The inner dimension: columns of op(A), rows of op(B).
    public var k: Int
    /// The factor of the product: C = alpha · op(A) · op(B) + beta · C.
    public var alpha: Float = 1
    /// The factor of C's previous value; 0 overwrites C without reading it.
    public var beta: Float = 0
    /// The row stride of A as stored (elements from one row to the next).
    public var lda: Int
    /// The row stride of B as stored.
    public var ldb: Int
    /// The row stride of C.
    public var ldc: Int
    /// The number of products in the batch.
    public var batch = 1
    /// Elements between consecutive A matrices of the batch (0: every product uses the same A).
    public var strideA = 0
    /// Elements between consecutive B matrices of the batch (0: every product uses the same B).
    public var strideB = 0
    /// Elements between consecutive C matrices of the batch.
    public var strideC = 0

    /// A packed product: rows of A, B and C stored without padding.
    public init(m: Int, n: Int, k: Int, transA: Bool = false, transB: Bool = false,
                alpha: Float = 1, beta: Float = 0, batch: Int = 1,
                strideA: Int? = nil, strideB: Int? = nil) {
        self.m = m; self.n = n; self.k = k
        self.transA = transA; self.transB = transB
        self.alpha = alpha; self.beta = beta
        self.lda = transA ? m : k
        self.ldb = transB ? k : n
        self.ldc = n
        self.batch = batch
        self.strideA = strideA ?? m * k
        self.strideB = strideB ?? k * n
        self.strideC = m * n
    }
}

/// Elementwise one-input operations (the activations are `.activation`).
public enum UnaryOp: Equatable, Sendable {
    /// −x.
    case negate
    /// eˣ.
    case exp
    /// The natural logarithm.
    case log
    /// The square root.
    case sqrt
    /// |x|.
    case abs
    /// x².
    case square
    /// 1 / x.
    case reciprocal
    /// −1, 0 or 1.
    case sign
    /// An activation function.
    case activation(Activation)
    /// x limited to [min, max].
    case clamp(min: Float, max: Float)
    /// x op s (or s op x when `scalarFirst`), for any binary op.
    case scalar(BinaryOp, Float, scalarFirst: Bool)
}

/// Elementwise two-input operations; comparisons give 1 where true and 0 elsewhere.
public enum BinaryOp: Int32, Equatable, Sendable, CaseIterable {
    /// Arithmetic: a + b, a − b, a · b, a / b, aᵇ, max(a, b) and min(a, b).
    case add = 0, subtract, multiply, divide, power, maximum, minimum
    /// Comparisons: 1 where a = b, a ≠ b, a < b, a ≤ b, a > b or a ≥ b holds, else 0.
    case equal, notEqual, less, lessEqual, greater, greaterEqual

    var kernelName: String {
        switch self {
        case .add: return "add"
        case .subtract: return "sub"
        case .multiply: return "mul"
        case .divide: return "div"
        case .power: return "pow"
        case .maximum: return "max"
        case .minimum: return "min"
        case .equal: return "eq"
        case .notEqual: return "ne"
        case .less: return "lt"
        case .lessEqual: return "le"
        case .greater: return "gt"
        case .greaterEqual: return "ge"
        }
    }
}

/// Reductions over one axis.
public enum ReduceOp: Int32, Equatable, Sendable {
    /// The sum, the mean, the largest or the smallest element along the axis.
    case sum = 0, mean, max, min
}

/// How two operands broadcast into an output, after collapsing to at most 4 dimensions.
/// `dims` is the output shape (leading 1s padded); `stridesA/B` give 0 on broadcast dimensions.
public struct BroadcastLayout: Equatable, Sendable {
    /// The output's dimensions after collapsing (at most 4).
    public var dims: [Int]
    /// The first operand's element stride along each of `dims`; 0 where it is broadcast.
    public var stridesA: [Int]
    /// The second operand's element stride along each of `dims`; 0 where it is broadcast.
    public var stridesB: [Int]
    /// The number of output elements.
    public var count: Int { dims.reduce(1, *) }
    /// Both operands have the output's shape: a plain elementwise loop.
    public var isElementwise: Bool {
        if dims.count == 1 { return stridesA[0] == 1 && stridesB[0] == 1 }
        let contiguous = BroadcastLayout.contiguousStrides(dims)
        return stridesA == contiguous && stridesB == contiguous
    }

    static func contiguousStrides(_ dims: [Int]) -> [Int] {
        var s = [Int](repeating: 1, count: dims.count)
        var acc = 1
        for i in stride(from: dims.count - 1, through: 0, by: -1) { s[i] = acc; acc *= dims[i] }
        return s
    }

    private static let unitStride = [1]

    /// The layout of two operands of the same shape with `count` elements: one contiguous dimension.
    static func flat(_ count: Int) -> BroadcastLayout {
        BroadcastLayout(dims: [count], stridesA: unitStride, stridesB: unitStride)
    }

    /// Numpy-style broadcasting of shapes `a` and `b`; nil when they do not broadcast.
    static func make(_ a: [Int], _ b: [Int]) -> (out: [Int], layout: BroadcastLayout)? {
        let rank = max(a.count, b.count)
        let pa = [Int](repeating: 1, count: rank - a.count) + a
        let pb = [Int](repeating: 1, count: rank - b.count) + b
        var out = [Int](repeating: 1, count: rank)
        for i in 0..<rank {
            if pa[i] == pb[i] || pb[i] == 1 { out[i] = pa[i] }
            else if pa[i] == 1 { out[i] = pb[i] }
            else { return nil }
        }
        let sa = contiguousStrides(pa).enumerated().map { pa[$0.offset] == 1 ? 0 : $0.element }
        let sb = contiguousStrides(pb).enumerated().map { pb[$0.offset] == 1 ? 0 : $0.element }
        // Collapse neighbouring dimensions that both operands walk the same way.
        var dims: [Int] = [], ra: [Int] = [], rb: [Int] = []
        for i in 0..<rank where out[i] != 1 {
            if let last = dims.last,
               ra.last! == sa[i] * out[i], rb.last! == sb[i] * out[i] {
                dims[dims.count - 1] = last * out[i]
                ra[ra.count - 1] = sa[i]
                rb[rb.count - 1] = sb[i]
            } else {
                dims.append(out[i]); ra.append(sa[i]); rb.append(sb[i])
            }
        }
        if dims.isEmpty { dims = [1]; ra = [0]; rb = [0] }
        return (out, BroadcastLayout(dims: dims, stridesA: ra, stridesB: rb))
    }
}

extension ConvGeometry {
    /// A 2x2 window with stride 2 and no padding (every window inside the image): pooling's common case, which
    /// both backends run without the general loop's bounds checks and integer divisions.
    var isPlainTwoByTwo: Bool {
        kernelH == 2 && kernelW == 2 && strideH == 2 && strideW == 2 && padH == 0 && padW == 0
    }
}
