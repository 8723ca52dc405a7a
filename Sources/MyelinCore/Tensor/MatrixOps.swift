import Foundation

// Matrix products: plain, batched, and the fused dense layer (GEMM + bias + activation).

extension Tensor {
    /// Matrix product of the last two axes, batched over the leading axes (`torch.matmul` for rank ≥ 2):
    /// [m, k]·[k, n], [b, m, k]·[k, n], [B, H, T, D]·[B, H, D, T], ... The leading axes of the two operands
    /// are equal, or one operand has none (or only 1s) and is used for every product. `transposeA/B` use the
    /// operands' transposes (of the last two axes, without a copy). One strided-batched GEMM for the whole batch.
    ///
    /// ```swift
    /// let scores = try q.matmul(k, transposeB: true, alpha: 1 / Float(5).squareRoot())  // [2, 3, 7, 5] -> [2, 3, 7, 7]
    /// ```
    public func matmul(_ other: Tensor, transposeA: Bool = false, transposeB: Bool = false,
                       alpha: Float = 1) throws -> Tensor {
        try checkSameDevice(other, "matmul")
        guard rank >= 2, other.rank >= 2 else {
            throw TensorError.shapeMismatch(op: "matmul", "must be matrices or batches of matrices", shape, other.shape)
        }
        let (m, k1) = transposeA ? (shape[rank - 1], shape[rank - 2]) : (shape[rank - 2], shape[rank - 1])
        let (k2, n) = transposeB ? (other.shape[other.rank - 1], other.shape[other.rank - 2])
                                 : (other.shape[other.rank - 2], other.shape[other.rank - 1])
        guard k1 == k2 else {
            throw TensorError.shapeMismatch(op: "matmul", "have inner dimensions \(k1) and \(k2) that differ", shape, other.shape)
        }
        let leadA = Array(shape.dropLast(2)), leadB = Array(other.shape.dropLast(2))
        let batchA = leadA.reduce(1, *), batchB = leadB.reduce(1, *)
        let lead: [Int]
        if leadA == leadB { lead = leadA }
        else if batchA == 1 && leadA.count <= leadB.count { lead = leadB }
        else if batchB == 1 && leadB.count <= leadA.count { lead = leadA }
        else {
            throw TensorError.shapeMismatch(op: "matmul", "have leading (batch) axes that differ: they must be equal, or one operand must have none", shape, other.shape)
        }
        let batch = lead.reduce(1, *)
        var g = GemmShape(m: m, n: n, k: k1, transA: transposeA, transB: transposeB, alpha: alpha, batch: batch,
                          strideA: batchA == 1 ? 0 : m * k1, strideB: batchB == 1 ? 0 : k1 * n)
        g.strideC = m * n
        let y = try Tensor.checkedEmpty(lead + [m, n], on: device, op: "matmul of \(shape) and \(other.shape)")
        backend.gemm(g, a: buffer, b: other.buffer, c: y.buffer, bias: nil, activation: .identity)
        let a = self, b = other
        return y.recorded("matmul", [a, b]) { gy in
            // C = α·op(A)·op(B): dop(A) = α·gy·op(B)ᵀ, dop(B) = α·op(A)ᵀ·gy.
            var ga: Tensor? = nil, gb: Tensor? = nil
            if a.requiresGrad {
                let d = transposeA ? try b.detach().matmul(gy, transposeA: transposeB, transposeB: true, alpha: alpha)
                                   : try gy.matmul(b.detach(), transposeB: !transposeB, alpha: alpha)
                ga = try d.sumToShape(a.shape)
            }
            if b.requiresGrad {
                let d = transposeB ? try gy.matmul(a.detach(), transposeA: true, transposeB: transposeA, alpha: alpha)
                                   : try a.detach().matmul(gy, transposeA: !transposeA, alpha: alpha)
                gb = try d.sumToShape(b.shape)
            }
            return [ga, gb]
        }
    }

    /// A dense layer's forward as one fused op: activation(x · weight + bias), x [..., in] (any rank ≥ 1),
    /// weight [in, out], bias [out]. One GEMM with the bias and activation in its epilogue.
    /// `linear(weight:bias:activation:)` is the same with PyTorch's [out, in] weight.
    public func dense(weight: Tensor, bias: Tensor?, activation: Activation = .identity) throws -> Tensor {
        try fusedAffine(weight: weight, outByIn: false, bias: bias, activation: activation, op: "dense")
    }

    /// PyTorch's `torch.nn.functional.linear` with a fused activation: activation(x · weightᵀ + bias),
    /// x [..., in] (any rank ≥ 1: the last axis is the features), weight [out, in] (the layout of `nn.Linear.weight` and of `Dense.weight`), bias [out].
    /// One GEMM with B transposed (no copy of the weight) and the bias and activation in its epilogue.
    ///
    /// ```swift
    /// let y = try x.linear(weight: w, bias: b, activation: .relu)   // x [32, 784], w [128, 784] -> y [32, 128]
    /// ```
    public func linear(weight: Tensor, bias: Tensor?, activation: Activation = .identity) throws -> Tensor {
        try fusedAffine(weight: weight, outByIn: true, bias: bias, activation: activation, op: "linear")
    }

    /// activation(x · op(weight) + bias) with op the transpose when `outByIn` (weight [out, in]).
    private func fusedAffine(weight: Tensor, outByIn: Bool, bias: Tensor?, activation: Activation,
                             op: String) throws -> Tensor {
        try checkSameDevice(weight, op)
        let layout = outByIn ? "weight [out, in]" : "weight [in, out]"
        guard rank >= 1, weight.rank == 2, shape[rank - 1] == weight.shape[outByIn ? 1 : 0] else {
            throw TensorError.shapeMismatch(op: op, "do not fit (input [..., in], \(layout))", shape, weight.shape)
        }
        if rank != 2 {
            // Any rank, as nn.Linear: the leading axes are rows of one product (reshapes, no copies).
            let flat = try reshaped([count / Swift.max(shape[rank - 1], 1), shape[rank - 1]])
            let y = try flat.fusedAffine(weight: weight, outByIn: outByIn, bias: bias, activation: activation, op: op)
            return try y.reshaped(Array(shape.dropLast()) + [y.shape[1]])
        }
        let m = shape[0], k = shape[1], n = weight.shape[outByIn ? 0 : 1]
        if let bias {
            try checkSameDevice(bias, op)
            guard bias.shape == [n] else {
                throw TensorError.shapeMismatch(op: op, "do not fit (bias must be [out])", bias.shape, [n])
            }
        }
        // Activations whose derivative can be read from the output alone are fused into the GEMM; the others keep
        // the pre-activation for their backward, unless no gradient is recorded on the CPU (inference: BERT's GELU,
        // applied to each row of C as it is finished). On PoCL an erf in the panel kernel's epilogue doubled that
        // GEMM's time, where the separate activation launch is vectorized: OpenCL keeps the launch.
        let recordsGradient = Tensor.recordsGradient([self, weight] + (bias.map { [$0] } ?? []))
        let fused = activation.derivativeFromOutput || (!recordsGradient && backend.kind != .openCL)
        let z = try Tensor.checkedEmpty([m, n], on: device, op: op)
        backend.gemm(GemmShape(m: m, n: n, k: k, transB: outByIn), a: buffer, b: weight.buffer, c: z.buffer,
                     bias: bias?.buffer, activation: fused ? activation : .identity)
        let y: Tensor
        if fused || activation == .identity {
            y = z
        } else {
            y = try Tensor.checkedEmpty([m, n], on: device, op: op)
            backend.unary(.activation(activation), x: z.buffer, out: y.buffer, count: m * n)
        }
        let x = self
        let pre: Tensor? = y === z ? nil : z  // never capture y itself: its node owns this closure
        let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
        return y.recorded(op, inputs) { [unowned y] gy in
            if let error = activation.missingGradientError { throw error }
            let gz: Tensor
            if activation == .identity {
                gz = gy
            } else {
                let yd = y.detach()
                gz = try (pre ?? yd).checkedActivationGradient(activation, y: yd, gy: gy)
            }
            // [in, out]: gx = gz·Wᵀ, gW = xᵀ·gz.  [out, in]: gx = gz·W, gW = gzᵀ·x.
            let gx = x.requiresGrad ? try gz.matmul(weight.detach(), transposeB: !outByIn) : nil
            let gw = weight.requiresGrad ? (outByIn ? try gz.matmul(x.detach(), transposeA: true)
                                                    : try x.detach().matmul(gz, transposeA: true)) : nil
            var grads: [Tensor?] = [gx, gw]
            if let bias { grads.append(bias.requiresGrad ? try gz.sum(axis: 0) : nil) }
            return grads
        }
    }
}
