import Foundation

// Batch normalization as one recorded op: per-channel statistics, the normalization and its closed-form backward.

extension Tensor {
    /// Batch normalization of self [N, C] or [N, C, ...] per channel (axis 1): y = x̂·weight[c] + bias[c] with
    /// x̂ = (x − mean[c]) / √(variance[c] + epsilon). With `statistics` nil, mean and the biased variance are the
    /// batch's (over N and the trailing axes) and the gradient flows through them; otherwise they are the given
    /// constants (eval mode). Returns the output and the statistics used ([C] each). One recorded op: the backward
    /// is dX = weight·invstd·(dY − (ΣdY + x̂·Σ(dY·x̂)) / m), dweight = Σ(dY·x̂), dbias = ΣdY.
    ///
    /// Fused into the same launches: `running` (batch statistics only) updates running statistics in place from
    /// the batch's, as `running = running·keep + statistic·factor` (`BatchNormRunning`; not recorded); `residual`
    /// (self's shape) is added to y and `relu` takes max(y, 0) afterwards, so that y = relu(bn(x) + residual) and
    /// the backward masks dY by y > 0 (the ReLU's backward) and gives the residual the masked dY.
    package func batchNorm(weight: Tensor, bias: Tensor, statistics: (mean: Tensor, variance: Tensor)?,
                           epsilon: Float,
                           running: (mean: Tensor, variance: Tensor, tracked: Tensor, keep: Float, momentum: Float,
                                     varianceFactor: Float)? = nil,
                           residual: Tensor? = nil, relu: Bool = false) throws -> (output: Tensor, mean: Tensor, variance: Tensor) {
        guard rank >= 2 else { throw TensorError.invalidShape(op: "batchNorm", shape, "must be [N, C] or [N, C, ...]") }
        let outer = shape[0], channels = shape[1], inner = shape.dropFirst(2).reduce(1, *)
        for (name, t) in [("weight", weight), ("bias", bias)] + (statistics.map { [("mean", $0.mean), ("variance", $0.variance)] } ?? [])
            + (running.map { [("running mean", $0.mean), ("running variance", $0.variance)] } ?? []) {
            try checkSameDevice(t, "batchNorm")
            guard t.shape == [channels] else {
                throw TensorError.shapeMismatch(op: "batchNorm", "do not fit (\(name) must be [channels])", t.shape, [channels])
            }
        }
        if let residual {
            try checkSameDevice(residual, "batchNorm")
            guard residual.shape == shape else {
                throw TensorError.shapeMismatch(op: "batchNorm", "do not fit (the residual must have the input's shape)", shape, residual.shape)
            }
        }
        if let running {
            try checkSameDevice(running.tracked, "batchNorm")
            guard statistics == nil, running.tracked.count == 1 else {
                throw TensorError.invalidShape(op: "batchNorm", running.tracked.shape,
                                               "running statistics need batch statistics and a one-value batch count")
            }
        }
        let mean: Tensor, variance: Tensor
        if let statistics {
            (mean, variance) = (statistics.mean.detach(), statistics.variance.detach())
        } else {
            mean = Tensor.empty([channels], on: device)
            variance = Tensor.empty([channels], on: device)
            let update = running.map {
                BatchNormRunning(mean: $0.mean.buffer, variance: $0.variance.buffer, tracked: $0.tracked.buffer,
                                 keep: $0.keep, momentum: $0.momentum, varianceFactor: $0.varianceFactor)
            }
            backend.batchNormMoments(x: buffer, mean: mean.buffer, variance: variance.buffer, running: update,
                                     outer: outer, channels: channels, inner: inner)
        }
        let y = Tensor.empty(shape, on: device)
        backend.batchNormApply(x: buffer, y: y.buffer, mean: mean.buffer, variance: variance.buffer, weight: weight.buffer,
                               bias: bias.buffer, residual: residual?.buffer, relu: relu, epsilon: epsilon,
                               outer: outer, channels: channels, inner: inner)
        let x = self, batchStatistics = statistics == nil, mask = relu ? y.detach() : nil
        y.recorded("batchNorm", [x, weight, bias] + (residual.map { [$0] } ?? [])) { gy in
            let gw = Tensor.empty([channels], on: x.device), gb = Tensor.empty([channels], on: x.device)
            x.backend.batchNormBackwardSums(x: x.buffer, gy: gy.buffer, mask: mask?.buffer, mean: mean.buffer,
                                            variance: variance.buffer, gweight: gw.buffer, gbias: gb.buffer,
                                            epsilon: epsilon, outer: outer, channels: channels, inner: inner)
            let residualGrad = residual?.requiresGrad == true
            var gx: Tensor? = nil, gr: Tensor? = nil
            if x.requiresGrad || residualGrad {
                let g = Tensor.empty(x.shape, on: x.device)
                gr = residualGrad ? Tensor.empty(x.shape, on: x.device) : nil
                x.backend.batchNormBackwardInput(x: x.buffer, gy: gy.buffer, mask: mask?.buffer, mean: mean.buffer,
                                                 variance: variance.buffer, weight: weight.buffer, gweight: gw.buffer,
                                                 gbias: gb.buffer, gx: g.buffer, gresidual: gr?.buffer, epsilon: epsilon,
                                                 batchStatistics: batchStatistics, outer: outer, channels: channels,
                                                 inner: inner)
                gx = x.requiresGrad ? g : nil
            }
            return [gx, weight.requiresGrad ? gw : nil, bias.requiresGrad ? gb : nil] + (residual.map { _ in [gr] } ?? [])
        }
        return (y, mean, variance)
    }
}

extension Tensor {
    /// Max pooling of self [N, C, H, W] over kh x kw windows (padding reads -infinity): [N, C, outH, outW]. One
    /// recorded op: the gradient of a window goes to its maximum, all of it to the first one in window order on ties
    /// (as PyTorch's `max_pool2d`).
    package func maxPool2d(kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int)) throws -> Tensor {
        let g = try convGeometry(kernel: kernel, stride: stride, padding: padding, op: "maxPool2d")
        let y = Tensor.empty([g.batch, g.channels, g.outH, g.outW], on: device)
        let argmax = Tensor.empty(y.shape, on: device)
        backend.maxPoolForward(x: buffer, y: y.buffer, argmax: argmax.buffer, geometry: g)
        let x = self, output = y.detach()
        return y.recorded("maxPool2d", [x]) { gy in
            let gx = Tensor.empty(x.shape, on: x.device)
            x.backend.maxPoolBackward(x: x.buffer, y: output.buffer, argmax: argmax.buffer, gy: gy.buffer, gx: gx.buffer, geometry: g)
            return [gx]
        }
    }
}
