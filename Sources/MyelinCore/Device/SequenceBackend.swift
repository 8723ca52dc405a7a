// The device calls of the sequence ops (attention's permutes and masked softmax), as a part of `Backend`.

/// An axis permutation of a row-major tensor, collapsed to at most `PermuteLayout.maxRank` axes: the output's
/// dimensions and, for each, the input's element stride along it.
struct PermuteLayout: Equatable, Sendable {
    /// The most axes a permutation keeps after collapsing (the kernel's argument count).
    static let maxRank = 6
    /// The output's dimensions (at most `maxRank`).
    var dims: [Int]
    /// The input's element stride along each output dimension.
    var inputStrides: [Int]
    /// The number of elements.
    var count: Int { dims.reduce(1, *) }

    /// The layout of `shape` permuted by `axes` (out[i0, i1, ...] = x[..] with out axis j = input axis axes[j]),
    /// with axes of size 1 dropped and neighbouring output axes that stay neighbours in the input merged; nil when
    /// more than `maxRank` axes remain.
    static func make(shape: [Int], axes: [Int]) -> PermuteLayout? {
        var strides = [Int](repeating: 1, count: shape.count)
        var acc = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) { strides[i] = acc; acc *= shape[i] }
        var dims: [Int] = [], input: [Int] = []
        for a in axes where shape[a] != 1 {
            if let last = dims.last, input.last! == strides[a] * shape[a] {
                dims[dims.count - 1] = last * shape[a]
                input[input.count - 1] = strides[a]
            } else {
                dims.append(shape[a]); input.append(strides[a])
            }
        }
        if dims.isEmpty { dims = [1]; input = [1] }
        return dims.count <= maxRank ? PermuteLayout(dims: dims, inputStrides: input) : nil
    }
}

/// The sizes of one fused scaled dot-product attention call (`attentionForward`, `attentionBackward`): q [batch,
/// heads, queries, headSize], k and v [batch, heads, keys, headSize], all row-major, and an optional additive mask
/// read at `maskStrides` along [batch, heads, queries, keys] (0 where the mask broadcasts).
struct AttentionShape: Equatable, Sendable {
    var batch: Int, heads: Int, queries: Int, keys: Int, headSize: Int
    /// The factor of q·kᵀ (1/√headSize by default).
    var scale: Float
    /// Query i sees keys 0..<i + keys − queries + 1 only (aligned to the last key; needs queries ≤ keys).
    var causal: Bool
    /// The mask's element strides along [batch, heads, queries, keys]; ignored without a mask.
    var maskStrides: [Int] = [0, 0, 0, 0]
    /// The packed layout of `Tensor.scaledDotProductAttention(packed:heads:)` (the CPU device only): q, k and v are
    /// one buffer [batch, T, 3, heads, headSize] (a fused projection's output, queries = keys = T), and out and
    /// gOut are [batch, T, heads, headSize] (the heads merged); the gradients gq, gk, gv are then one buffer of the
    /// input's layout. Otherwise (false) every tensor is [batch, heads, T, headSize].
    var packed = false
    /// Sequences of different lengths stored back to back (`Tensor.scaledDotProductAttention(packedRows:lengths:
    /// heads:)`, the CPU forward only): q, k and v are one buffer [N, 3, heads, headSize] whose rows are the
    /// sequences' tokens, out is [N, heads, headSize] and the log-sum-exp [N, heads]; `batch` is the number of
    /// sequences and queries = keys the longest. Every token sees its own sequence's tokens (no mask, not causal).
    var sequenceLengths: [Int]? = nil
    /// batch · heads: the number of independent (q, k, v) triples.
    var groups: Int { batch * heads }
    /// The number of keys query i sees (all of them unless causal).
    func visibleKeys(_ i: Int) -> Int { causal ? Swift.min(keys, i + keys - queries + 1) : keys }
    /// The elements between the rows of consecutive positions in q, k and v, and in out.
    var rowStride: Int { packed ? 3 * heads * headSize : headSize }
    var outRowStride: Int { packed ? heads * headSize : headSize }
    /// Where group g's (= b·heads + h) rows start: in q (part 0), k (part 1) or v (part 2), and in out.
    func inputBase(group g: Int, part: Int, positions: Int) -> Int {
        packed ? ((g / heads) * positions * 3 + part) * heads * headSize + (g % heads) * headSize : g * positions * headSize
    }
    func outBase(group g: Int) -> Int {
        packed ? ((g / heads) * queries * heads + g % heads) * headSize : g * queries * headSize
    }
    /// The offset of query i's mask row (its key 0) in group g (= b·heads + h).
    func maskRow(group g: Int, query i: Int) -> Int {
        (g / heads) * maskStrides[0] + (g % heads) * maskStrides[1] + i * maskStrides[2]
    }
}

/// The sequence ops: an axis permutation, the causal softmax of attention scores, layer normalization and the
/// fused attention (Kernels/layout.cl, reduce.cl, normalization.cl and attention.cl on OpenCL).
protocol SequenceBackend: AnyObject {
    /// out = x permuted as `layout` says: out is row-major over layout.dims, and its element (i0, i1, ...) is
    /// x[Σ i_j · layout.inputStrides[j]].
    func permute(x: DeviceBuffer, out: DeviceBuffer, layout: PermuteLayout)
    /// The softmax of each row of x [rows, cols] over its first `q + cols − queries + 1` entries, where
    /// q = row mod queries is the row's query position (a causal mask aligned to the last key, as a decoder with
    /// a cache of earlier keys needs; for queries = cols it keeps keys 0...q). The masked entries of out are 0,
    /// so `softmaxBackward` is its backward. Needs 1 ≤ queries ≤ cols.
    func causalSoftmax(x: DeviceBuffer, out: DeviceBuffer, rows: Int, cols: Int, queries: Int)

    // Layer normalization of each row of x [rows, cols]: x̂ = (x − mean[r]) · rstd[r], rstd = 1/√(variance + ε)
    // with the biased variance. `weight` and `bias` are [cols], or nil for 1 and 0.

    /// y = x̂·weight + bias, and each row's mean and rstd for the backward.
    func layerNormForward(x: DeviceBuffer, y: DeviceBuffer, mean: DeviceBuffer, rstd: DeviceBuffer, weight: DeviceBuffer?,
                          bias: DeviceBuffer?, rows: Int, cols: Int, epsilon: Float)
    /// gx = rstd·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)) per row, with ĝ = gy·weight.
    func layerNormBackwardInput(x: DeviceBuffer, gy: DeviceBuffer, mean: DeviceBuffer, rstd: DeviceBuffer,
                                weight: DeviceBuffer?, gx: DeviceBuffer, rows: Int, cols: Int)
    /// gweight[c] = Σ over rows of gy·x̂ and gbias[c] = Σ of gy (each skipped when nil); overwrites them.
    func layerNormBackwardParameters(x: DeviceBuffer, gy: DeviceBuffer, mean: DeviceBuffer, rstd: DeviceBuffer,
                                     gweight: DeviceBuffer?, gbias: DeviceBuffer?, rows: Int, cols: Int)

    // Fused scaled dot-product attention (FlashAttention's online softmax; no [queries, keys] matrix is stored).

    /// out [B, H, Tq, D] = softmax(scale · q·kᵀ + mask, causal) · v, and lse [B, H, Tq] = each row's log-sum-exp
    /// of its (scaled, masked) scores: all the backward keeps. A row whose keys are all masked gives NaN.
    func attentionForward(_ shape: AttentionShape, q: DeviceBuffer, k: DeviceBuffer, v: DeviceBuffer, mask: DeviceBuffer?,
                          out: DeviceBuffer, lse: DeviceBuffer)
    /// gq, gk, gv (overwritten) from the output gradient gOut, recomputing the probabilities from q, k and lse;
    /// delta [B, H, Tq] is scratch that receives rowsum(gOut ∘ out).
    func attentionBackward(_ shape: AttentionShape, q: DeviceBuffer, k: DeviceBuffer, v: DeviceBuffer, mask: DeviceBuffer?,
                           out: DeviceBuffer, lse: DeviceBuffer, gOut: DeviceBuffer, delta: DeviceBuffer,
                           gq: DeviceBuffer, gk: DeviceBuffer, gv: DeviceBuffer)
}
