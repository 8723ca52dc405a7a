// The values the device interface (`Backend`) takes and reports: product shapes, convolution geometry,
// elementwise and reduction ops, broadcast layouts, counters.

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
    /// 1 / √x.
    case rsqrt
    /// −1, 0 or 1.
    case sign
    /// An activation function.
    case activation(Activation)
    /// x limited to [min, max].
    case clamp(min: Float, max: Float)
    /// x op s (or s op x when `scalarFirst`), for any binary op.
    case scalar(BinaryOp, Float, scalarFirst: Bool)

    /// The OpenCL kernel of the op (Kernels/elementwise.cl).
    var kernelName: String {
        switch self {
        case .negate: return "unary_neg"
        case .exp: return "unary_exp"
        case .log: return "unary_log"
        case .sqrt: return "unary_sqrt"
        case .abs: return "unary_abs"
        case .square: return "unary_square"
        case .reciprocal: return "unary_reciprocal"
        case .rsqrt: return "unary_rsqrt"
        case .sign: return "unary_sign"
        case .clamp: return "unary_clamp"
        case .activation(let act): return "act_\(act.kernelName)"
        case .scalar(let op, _, _): return "scalar_\(op.kernelName)"
        }
    }
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
