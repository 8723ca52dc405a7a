import Foundation

// Matrix products: plain, batched, and the fused dense layer (GEMM + bias + activation).

extension Tensor {
    /// Matrix product of the last two axes, batched over a leading axis of either operand:
    /// [m, k]·[k, n], [b, m, k]·[k, n], [b, m, k]·[b, k, n]. `transposeA/B` use the operands' transposes.
    public func matmul(_ other: Tensor, transposeA: Bool = false, transposeB: Bool = false,
                       alpha: Float = 1) throws -> Tensor {
        try checkSameDevice(other, "matmul")
        guard rank == 2 || rank == 3, other.rank == 2 || other.rank == 3 else {
            throw TensorError.shapeMismatch(op: "matmul", "must be matrices or batches of matrices", shape, other.shape)
        }
        let (m, k1) = transposeA ? (shape[rank - 1], shape[rank - 2]) : (shape[rank - 2], shape[rank - 1])
        let (k2, n) = transposeB ? (other.shape[other.rank - 1], other.shape[other.rank - 2])
                                 : (other.shape[other.rank - 2], other.shape[other.rank - 1])
        guard k1 == k2 else {
            throw TensorError.shapeMismatch(op: "matmul", "have inner dimensions \(k1) and \(k2) that differ", shape, other.shape)
        }
        let batchA = rank == 3 ? shape[0] : 1, batchB = other.rank == 3 ? other.shape[0] : 1
        guard batchA == batchB || batchA == 1 || batchB == 1 else {
            throw TensorError.shapeMismatch(op: "matmul", "have batch sizes that differ", shape, other.shape)
        }
        let batch = Swift.max(batchA, batchB)
        var g = GemmShape(m: m, n: n, k: k1, transA: transposeA, transB: transposeB, alpha: alpha, batch: batch,
                          strideA: batchA == 1 ? 0 : m * k1, strideB: batchB == 1 ? 0 : k1 * n)
        g.strideC = m * n
        let outShape = (rank == 3 || other.rank == 3) ? [batch, m, n] : [m, n]
        let y = Tensor.empty(outShape, on: device)
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

    /// A dense layer's forward as one fused op: activation(x · weight + bias), x [batch, in],
    /// weight [in, out], bias [out]. One GEMM with the bias and activation in its epilogue.
    /// `linear(weight:bias:activation:)` is the same with PyTorch's [out, in] weight.
    public func dense(weight: Tensor, bias: Tensor?, activation: Activation = .identity) throws -> Tensor {
        try fusedAffine(weight: weight, outByIn: false, bias: bias, activation: activation, op: "dense")
    }

    /// PyTorch's `torch.nn.functional.linear` with a fused activation: activation(x · weightᵀ + bias),
    /// x [batch, in], weight [out, in] (the layout of `nn.Linear.weight` and of `Dense.weight`), bias [out].
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
        guard rank == 2, weight.rank == 2, shape[1] == weight.shape[outByIn ? 1 : 0] else {
            throw TensorError.shapeMismatch(op: op, "do not fit (input [batch, in], \(layout))", shape, weight.shape)
        }
        let m = shape[0], k = shape[1], n = weight.shape[outByIn ? 0 : 1]
        if let bias {
            try checkSameDevice(bias, op)
            guard bias.shape == [n] else {
                throw TensorError.shapeMismatch(op: op, "do not fit (bias must be [out])", bias.shape, [n])
            }
        }
        // Activations whose derivative can be read from the output alone are fused into the GEMM;
        // the others keep the pre-activation for their backward.
        let fused = activation.derivativeFromOutput
        let z = Tensor.empty([m, n], on: device)
        backend.gemm(GemmShape(m: m, n: n, k: k, transB: outByIn), a: buffer, b: weight.buffer, c: z.buffer,
                     bias: bias?.buffer, activation: fused ? activation : .identity)
        let y: Tensor
        if fused || activation == .identity {
            y = z
        } else {
            y = Tensor.empty([m, n], on: device)
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
                gz = (pre ?? yd).activationGradient(activation, y: yd, gy: gy)
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
