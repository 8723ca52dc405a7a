import Foundation

// The tensor ops of sequence models: axis permutations and the masked softmax of attention scores.

extension Tensor {
    // MARK: permute

    /// The axes reordered: result axis j is this tensor's axis `axes[j]` (`torch.permute`). A copy in one launch,
    /// except when only axes of size 1 move, which is a reshape (no copy). Throws unless `axes` is a permutation
    /// of 0..<rank (negative axes count from the end).
    ///
    /// ```swift
    /// let heads = try x.reshaped([2, 7, 3, 5]).permuted([0, 2, 1, 3])   // [B, T, H, D] -> [B, H, T, D]
    /// ```
    public func permuted(_ axes: [Int]) throws -> Tensor {
        let normalized = axes.map { $0 < 0 ? $0 + rank : $0 }
        guard normalized.count == rank, Set(normalized) == Set(0..<rank) else {
            throw TensorError.invalidShape(op: "permuted(\(axes))", shape, "needs a permutation of the \(rank) axes 0..<\(rank)")
        }
        let outShape = normalized.map { shape[$0] }
        // The axes of size > 1 keep their order: the data is already laid out as the result.
        let moving = normalized.filter { shape[$0] != 1 }
        if moving == moving.sorted() { return try reshaped(outShape) }
        guard let layout = PermuteLayout.make(shape: shape, axes: normalized) else {
            throw TensorError.invalidShape(op: "permuted(\(axes))", shape,
                                           "moves more than \(PermuteLayout.maxRank) separate groups of axes, which is not supported")
        }
        let y = try Tensor.checkedEmpty(outShape, on: device, op: "permuted(\(axes)) of \(shape)")
        backend.permute(x: buffer, out: y.buffer, layout: layout)
        var inverse = [Int](repeating: 0, count: rank)
        for (j, a) in normalized.enumerated() { inverse[a] = j }
        return y.recorded("permute", [self]) { g in [try g.permuted(inverse)] }
    }

    /// Axes `a` and `b` swapped (`torch.transpose(x, a, b)`); see `permuted(_:)`.
    ///
    /// ```swift
    /// let kt = try k.transposed(-2, -1)   // [B, H, T, D] -> [B, H, D, T]
    /// ```
    public func transposed(_ a: Int, _ b: Int) throws -> Tensor {
        let i = try normalizedAxis(a, "transposed"), j = try normalizedAxis(b, "transposed")
        var axes = Array(0..<rank)
        axes.swapAt(i, j)
        return try permuted(axes)
    }

    // MARK: masked softmax

    /// Softmax over the last axis with optional masks, as attention applies it to its scores [..., Tq, Tk]:
    /// - `causal`: query i (of the second-last axis, Tq of them) sees keys 0...i + Tk − Tq only (a mask aligned to
    ///   the last key; for Tq = Tk, keys 0...i as `is_causal` in PyTorch). Masked entries are exactly 0, and the
    ///   causal mask costs no extra pass (one kernel). Needs Tq ≤ Tk.
    /// - `mask`: added to the scores first, broadcast to their shape (PyTorch's float `attn_mask`): 0 where a key is
    ///   seen and −∞ where it is not, e.g. [B, 1, 1, Tk] for padded keys. A row with every key masked gives NaN,
    ///   as in PyTorch.
    ///
    /// ```swift
    /// let weights = try scores.softmax(causal: true)   // [B, H, T, T], row i nonzero in columns 0...i
    /// ```
    public func softmax(causal: Bool, mask: Tensor? = nil) throws -> Tensor {
        let x = try mask.map { try self + $0 } ?? self   // the mask may broadcast the scores to a larger shape
        guard causal else { return x.softmax() }
        let r = x.rank
        guard r >= 2, x.shape[r - 2] >= 1, x.shape[r - 2] <= x.shape[r - 1] else {
            throw TensorError.invalidShape(op: "softmax(causal: true)", x.shape,
                                           "needs scores [..., queries, keys] with 1 ≤ queries ≤ keys")
        }
        let cols = x.shape[r - 1], queries = x.shape[r - 2], rows = x.count / cols
        let y = Tensor.empty(x.shape, on: device)
        backend.causalSoftmax(x: x.buffer, out: y.buffer, rows: rows, cols: cols, queries: queries)
        return y.recorded("causalSoftmax", [x]) { [unowned y] g in
            let gx = Tensor.empty(y.shape, on: y.device)
            y.backend.softmaxBackward(y: y.buffer, gy: g.buffer, gx: gx.buffer, rows: rows, cols: cols, log: false)
            return [gx]
        }
    }
}

extension Tensor {
    // MARK: embedding

    /// Rows of this table [rows, dim] picked by whole-number `indices` of any shape: indices.shape + [dim]
    /// (`torch.nn.functional.embedding`). The backward scatter-adds into the picked rows (a repeated index adds
    /// up); the row `paddingIndex`, when given, gets no gradient. Indices are not read back: one outside
    /// 0..<rows gives a row of zeros and no gradient (see `gather(rows:)`).
    ///
    /// ```swift
    /// let vectors = try table.embedding(tokens, paddingIndex: 0)   // table [65, 32], tokens [4, 7] -> [4, 7, 32]
    /// ```
    public func embedding(_ indices: Tensor, paddingIndex: Int? = nil) throws -> Tensor {
        try checkSameDevice(indices, "embedding")
        guard rank == 2 else { throw TensorError.invalidShape(op: "embedding", shape, "is not a table [rows, dim]") }
        let rows = shape[0], dim = shape[1]
        if let p = paddingIndex, !(0..<rows).contains(p) {
            throw TensorError.invalidShape(op: "embedding(paddingIndex: \(p))", shape, "has no row \(p)")
        }
        let y = try Tensor.checkedEmpty(indices.shape + [dim], on: device, op: "embedding of \(indices.shape) indices in \(shape)")
        backend.gatherRows(x: buffer, rows: rows, indices: indices.buffer, out: y.buffer, count: indices.count, rowSize: dim)
        let table = self
        return y.recorded("embedding", [table]) { g in
            let gx = Tensor.zeros(table.shape, on: table.device)
            table.backend.scatterAddRows(gy: g.buffer, indices: indices.buffer, out: gx.buffer, rows: rows,
                                         count: indices.count, rowSize: dim)
            if let p = paddingIndex { table.backend.fill(gx.buffer, value: 0, offset: p * dim, count: dim) }
            return [gx]
        }
    }
}

extension Tensor {
    // MARK: layer normalization

    /// Layer normalization over the last axis (`torch.nn.functional.layer_norm` with `normalized_shape` the last
    /// dimension): (x − mean) / √(variance + epsilon) · weight + bias, with the biased variance of each row.
    /// `weight` and `bias` are [features] or nil. One fused launch forward (it keeps each row's mean and
    /// 1/√(variance + epsilon)); the backward is one launch for x and one for weight and bias.
    ///
    /// ```swift
    /// let y = try x.layerNorm(weight: gamma, bias: beta)   // x [2, 7, 32], gamma and beta [32]
    /// ```
    public func layerNorm(weight: Tensor?, bias: Tensor?, epsilon: Float = 1e-5) throws -> Tensor {
        guard rank >= 1, let features = shape.last, features > 0 else {
            throw TensorError.invalidShape(op: "layerNorm", shape, "has no features (last axis) to normalize over")
        }
        for t in [weight, bias].compactMap({ $0 }) {
            try checkSameDevice(t, "layerNorm")
            guard t.shape == [features] else {
                throw TensorError.shapeMismatch(op: "layerNorm", "do not fit (weight and bias must be [features])", shape, t.shape)
            }
        }
        let rows = count / features
        let y = Tensor.empty(shape, on: device)
        let mean = Tensor.empty([rows], on: device), rstd = Tensor.empty([rows], on: device)
        backend.layerNormForward(x: buffer, y: y.buffer, mean: mean.buffer, rstd: rstd.buffer, weight: weight?.buffer,
                                 bias: bias?.buffer, rows: rows, cols: features, epsilon: epsilon)
        let x = self
        let inputs = [x] + [weight, bias].compactMap { $0 }
        return y.recorded("layerNorm", inputs) { g in
            var grads: [Tensor?] = []
            if x.requiresGrad {
                let gx = Tensor.empty(x.shape, on: x.device)
                x.backend.layerNormBackwardInput(x: x.buffer, gy: g.buffer, mean: mean.buffer, rstd: rstd.buffer,
                                                 weight: weight?.buffer, gx: gx.buffer, rows: rows, cols: features)
                grads.append(gx)
            } else {
                grads.append(nil)
            }
            let gw = weight?.requiresGrad == true ? Tensor.empty([features], on: x.device) : nil
            let gb = bias?.requiresGrad == true ? Tensor.empty([features], on: x.device) : nil
            if gw != nil || gb != nil {
                x.backend.layerNormBackwardParameters(x: x.buffer, gy: g.buffer, mean: mean.buffer, rstd: rstd.buffer,
                                                      gweight: gw?.buffer, gbias: gb?.buffer, rows: rows, cols: features)
            }
            if weight != nil { grads.append(gw) }
            if bias != nil { grads.append(gb) }
            return grads
        }
    }
}
