import Foundation

// Fused scaled dot-product attention (`torch.nn.functional.scaled_dot_product_attention` without dropout): one
// launch forward, two backward, and no [queries, keys] matrix kept between them.

extension Tensor {
    /// softmax(scale · q·kᵀ + mask, causal) · v for q [B, H, Tq, D] and k, v [B, H, Tk, D], as one fused op
    /// (FlashAttention's online softmax: the scores are never stored; the forward keeps only each row's log-sum-exp
    /// [B, H, Tq], and the backward recomputes the probabilities from it). The same result as the three-op path
    /// `q.matmul(k, transposeB: true, alpha: scale).softmax(causal:mask:).matmul(v)`, with memory O(T·D) instead
    /// of O(T²).
    /// - `causal`: query i sees keys 0...i + Tk − Tq (aligned to the last key, as with a key/value cache; Tq = Tk
    ///   gives keys 0...i). Needs Tq ≤ Tk.
    /// - `mask`: additive, broadcast to [B, H, Tq, Tk] as PyTorch broadcasts (right-aligned): 0 where a key is
    ///   seen and −∞ where not; a padding mask of keys is [B, 1, 1, Tk]. It gets no gradient. A row with every key
    ///   masked gives NaN, as the softmax does.
    /// - `scale`: the factor of q·kᵀ, 1/√D when nil.
    ///
    /// ```swift
    /// let y = try Tensor.scaledDotProductAttention(q, k, v, causal: true)   // [2, 4, 64, 32] each -> [2, 4, 64, 32]
    /// ```
    public static func scaledDotProductAttention(_ q: Tensor, _ k: Tensor, _ v: Tensor, causal: Bool = false,
                                                 mask: Tensor? = nil, scale: Float? = nil) throws -> Tensor {
        let op = "scaledDotProductAttention"
        for t in [k, v] + (mask.map { [$0] } ?? []) { try q.checkSameDevice(t, op) }
        guard q.rank == 4, q.shape.allSatisfy({ $0 > 0 }) else {
            throw TensorError.invalidShape(op: op, q.shape, "is not queries [batch, heads, T, headSize] with every size ≥ 1")
        }
        let b = q.shape[0], h = q.shape[1], tq = q.shape[2], d = q.shape[3]
        guard k.rank == 4, k.shape[0] == b, k.shape[1] == h, k.shape[3] == d, k.shape[2] > 0 else {
            throw TensorError.shapeMismatch(op: op, "do not fit (keys must be [\(b), \(h), Tk, \(d)] for these queries)", q.shape, k.shape)
        }
        let tk = k.shape[2]
        guard v.shape == k.shape else {
            throw TensorError.shapeMismatch(op: op, "do not fit (values must have the keys' shape)", k.shape, v.shape)
        }
        if causal && tq > tk {
            throw TensorError.invalidShape(op: op + "(causal: true)", q.shape, "has more queries than the \(tk) keys")
        }
        var shape = AttentionShape(batch: b, heads: h, queries: tq, keys: tk, headSize: d,
                                   scale: scale ?? 1 / Float(d).squareRoot(), causal: causal)
        if let mask { shape.maskStrides = try maskStrides(mask.shape, to: [b, h, tq, tk], op: op) }
        let out = Tensor.empty([b, h, tq, d], on: q.device), lse = Tensor.empty([b, h, tq], on: q.device)
        q.backend.attentionForward(shape, q: q.buffer, k: k.buffer, v: v.buffer, mask: mask?.buffer, out: out.buffer,
                                   lse: lse.buffer)
        return out.recorded(op, [q, k, v]) { [unowned out] g in
            let gq = Tensor.empty(q.shape, on: q.device), gk = Tensor.empty(k.shape, on: q.device)
            let gv = Tensor.empty(v.shape, on: q.device), delta = Tensor.empty([b, h, tq], on: q.device)
            q.backend.attentionBackward(shape, q: q.buffer, k: k.buffer, v: v.buffer, mask: mask?.buffer, out: out.buffer,
                                        lse: lse.buffer, gOut: g.buffer, delta: delta.buffer, gq: gq.buffer,
                                        gk: gk.buffer, gv: gv.buffer)
            return [gq, gk, gv]
        }
    }

    /// The fused attention of a fused q/k/v projection's output (GPT-2's `c_attn`): `qkv` [B, T, 3·C] holds each
    /// position's query, key and value side by side, each [heads, C / heads], and the result is [B, T, C] with the
    /// heads merged. The same values and gradient as splitting `qkv` into q, k, v [B, heads, T, C / heads],
    /// `scaledDotProductAttention(_:_:_:causal:mask:scale:)` and merging the heads back
    /// (`permuted([0, 2, 1, 3])`), which is what other devices run; the CPU device's kernel reads and writes
    /// these layouts in place, so there are no copies around it, and its gradient is one [B, T, 3·C] tensor
    /// (not three summed products). `mask` broadcasts to [B, heads, T, T] as there.
    ///
    /// ```swift
    /// let y = try Tensor.scaledDotProductAttention(packed: cAttn(x), heads: 4, causal: true)   // [12, 64, 384] -> [12, 64, 128]
    /// ```
    public static func scaledDotProductAttention(packed qkv: Tensor, heads: Int, causal: Bool = false, mask: Tensor? = nil,
                                                 scale: Float? = nil) throws -> Tensor {
        let op = "scaledDotProductAttention(packed:)"
        if let mask { try qkv.checkSameDevice(mask, op) }
        guard heads > 0, qkv.rank == 3, qkv.shape.allSatisfy({ $0 > 0 }), qkv.shape[2] % (3 * heads) == 0 else {
            throw TensorError.invalidShape(op: op, qkv.shape, "is not [batch, T, 3 · \(heads) heads · headSize] with every size ≥ 1")
        }
        let b = qkv.shape[0], t = qkv.shape[1], c = qkv.shape[2] / 3, d = c / heads
        guard qkv.backend.kind == .cpu else {
            let parts = try qkv.reshaped([b, t, 3, heads, d]).permuted([2, 0, 3, 1, 4])
            let q = try parts.slice(0..<1).reshaped([b, heads, t, d]), k = try parts.slice(1..<2).reshaped([b, heads, t, d])
            let v = try parts.slice(2..<3).reshaped([b, heads, t, d])
            return try scaledDotProductAttention(q, k, v, causal: causal, mask: mask, scale: scale)
                .permuted([0, 2, 1, 3]).reshaped([b, t, c])
        }
        var shape = AttentionShape(batch: b, heads: heads, queries: t, keys: t, headSize: d,
                                   scale: scale ?? 1 / Float(d).squareRoot(), causal: causal)
        shape.packed = true
        if let mask { shape.maskStrides = try maskStrides(mask.shape, to: [b, heads, t, t], op: op) }
        let out = try Tensor.checkedEmpty([b, t, c], on: qkv.device, op: op)
        let lse = try Tensor.checkedEmpty([b, heads, t], on: qkv.device, op: op)
        let x = qkv.buffer
        qkv.backend.attentionForward(shape, q: x, k: x, v: x, mask: mask?.buffer, out: out.buffer, lse: lse.buffer)
        return out.recorded(op, [qkv]) { [unowned out] g in
            let gx = Tensor.empty(qkv.shape, on: qkv.device), delta = Tensor.empty([b, heads, t], on: qkv.device)
            qkv.backend.attentionBackward(shape, q: x, k: x, v: x, mask: mask?.buffer, out: out.buffer, lse: lse.buffer,
                                          gOut: g.buffer, delta: delta.buffer, gq: gx.buffer, gk: gx.buffer, gv: gx.buffer)
            return [gx]
        }
    }

    /// Self-attention over sequences of different lengths stored back to back, without padding: `qkv` [N, 3·C]
    /// holds the tokens of every sequence as rows (sequence s is the `lengths[s]` rows after those of the sequences
    /// before it), each row q, k and v with the heads side by side as `scaledDotProductAttention(packed:heads:)`
    /// reads them, and every token sees all the tokens of its own sequence. Returns [N, C] with the heads merged:
    /// the packed op's output on the padded batch, at the tokens' rows. A BERT batch of sentences sorted by length
    /// then computes no padded row in its linear layers.
    ///
    /// Without gradients on the CPU device (head size a multiple of 8, AVX2) it runs on the row kernel in place;
    /// otherwise it gathers the rows into a padded [sequences, longest, 3·C] batch, runs the packed op with a
    /// padding mask, and gathers the tokens' rows back (so the gradient is the packed op's).
    public static func scaledDotProductAttention(packedRows qkv: Tensor, lengths: [Int], heads: Int,
                                                 scale: Float? = nil) throws -> Tensor {
        let op = "scaledDotProductAttention(packedRows:lengths:heads:)"
        guard heads > 0, qkv.rank == 2, qkv.shape[1] > 0, qkv.shape[1] % (3 * heads) == 0 else {
            throw TensorError.invalidShape(op: op, qkv.shape, "is not [tokens, 3 · \(heads) heads · headSize] with a headSize ≥ 1")
        }
        guard !lengths.isEmpty, lengths.allSatisfy({ $0 > 0 }), lengths.reduce(0, +) == qkv.shape[0] else {
            throw TensorError.invalidShape(op: op, qkv.shape, "needs sequence lengths of at least 1 adding up to its \(qkv.shape[0]) rows, got \(lengths)")
        }
        let n = qkv.shape[0], c = qkv.shape[1] / 3, d = c / heads, longest = lengths.max()!
        var shape = AttentionShape(batch: lengths.count, heads: heads, queries: longest, keys: longest, headSize: d,
                                   scale: scale ?? 1 / Float(d).squareRoot(), causal: false)
        shape.sequenceLengths = lengths
        if qkv.backend.kind == .cpu && CPUBackend.rowAttentionApplies(shape) && !Tensor.recordsGradient([qkv]) {
            let out = try Tensor.checkedEmpty([n, c], on: qkv.device, op: op)
            let lse = try Tensor.checkedEmpty([n, heads], on: qkv.device, op: op)
            qkv.backend.attentionForward(shape, q: qkv.buffer, k: qkv.buffer, v: qkv.buffer, mask: nil, out: out.buffer,
                                         lse: lse.buffer)
            return out
        }
        // Row of each padded position (n, past the end, gathers zeros) and padded position of each row.
        var padded: [Float] = [], rows: [Float] = [], keep: [Float] = [], first = 0
        for (s, length) in lengths.enumerated() {
            for t in 0..<longest {
                padded.append(Float(t < length ? first + t : n))
                keep.append(t < length ? 0 : -.infinity)
            }
            rows += (0..<length).map { Float(s * longest + $0) }
            first += length
        }
        let batch = try qkv.gather(rows: Tensor(padded, on: qkv.device)).reshaped([lengths.count, longest, 3 * c])
        let mask = try Tensor(keep, shape: [lengths.count, 1, 1, longest], on: qkv.device)
        let y = try scaledDotProductAttention(packed: batch, heads: heads, mask: mask, scale: scale)
        return try y.reshaped([lengths.count * longest, c]).gather(rows: Tensor(rows, on: qkv.device))
    }

    /// The element strides of a mask of shape `mask` read as `target` (PyTorch's right-aligned broadcasting: each
    /// mask axis is 1, stride 0, or the target's size); throws when it does not broadcast.
    static func maskStrides(_ mask: [Int], to target: [Int], op: String) throws -> [Int] {
        guard mask.count <= target.count else {
            throw TensorError.shapeMismatch(op: op, "do not fit (the mask must broadcast to the scores [B, H, Tq, Tk])", mask, target)
        }
        let padded = [Int](repeating: 1, count: target.count - mask.count) + mask
        var strides = [Int](repeating: 0, count: target.count), acc = 1
        for axis in stride(from: target.count - 1, through: 0, by: -1) {
            guard padded[axis] == target[axis] || padded[axis] == 1 else {
                throw TensorError.shapeMismatch(op: op, "do not fit (the mask must broadcast to the scores [B, H, Tq, Tk]; a padding mask is [B, 1, 1, Tk])", mask, target)
            }
            strides[axis] = padded[axis] == 1 ? 0 : acc
            acc *= padded[axis]
        }
        return strides
    }
}
