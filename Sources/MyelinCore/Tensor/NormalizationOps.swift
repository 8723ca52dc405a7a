import Foundation

// Batch normalization as one recorded op: per-channel statistics, the normalization and its closed-form backward.

extension Tensor {
    /// Batch normalization of self [N, C] or [N, C, ...] per channel (axis 1): y = x̂·weight[c] + bias[c] with
    /// x̂ = (x − mean[c]) / √(variance[c] + epsilon). With `statistics` nil, mean and the biased variance are the
    /// batch's (over N and the trailing axes) and the gradient flows through them; otherwise they are the given
    /// constants (eval mode). Returns the output and the statistics used ([C] each). One recorded op: the backward
    /// is dX = weight·invstd·(dY − (ΣdY + x̂·Σ(dY·x̂)) / m), dweight = Σ(dY·x̂), dbias = ΣdY.
    package func batchNorm(weight: Tensor, bias: Tensor, statistics: (mean: Tensor, variance: Tensor)?,
                           epsilon: Float) throws -> (output: Tensor, mean: Tensor, variance: Tensor) {
        guard rank >= 2 else { throw TensorError.invalidShape(op: "batchNorm", shape, "must be [N, C] or [N, C, ...]") }
        let outer = shape[0], channels = shape[1], inner = shape.dropFirst(2).reduce(1, *)
        for (name, t) in [("weight", weight), ("bias", bias)] + (statistics.map { [("mean", $0.mean), ("variance", $0.variance)] } ?? []) {
            try checkSameDevice(t, "batchNorm")
            guard t.shape == [channels] else {
                throw TensorError.shapeMismatch(op: "batchNorm", "do not fit (\(name) must be [channels])", t.shape, [channels])
            }
        }
        let mean: Tensor, variance: Tensor
        if let statistics {
            (mean, variance) = (statistics.mean.detach(), statistics.variance.detach())
        } else {
            mean = Tensor.empty([channels], on: device)
            variance = Tensor.empty([channels], on: device)
            backend.batchNormMoments(x: buffer, mean: mean.buffer, variance: variance.buffer,
                                     outer: outer, channels: channels, inner: inner)
        }
        let y = Tensor.empty(shape, on: device)
        backend.batchNormApply(x: buffer, y: y.buffer, mean: mean.buffer, variance: variance.buffer, weight: weight.buffer,
                               bias: bias.buffer, epsilon: epsilon, outer: outer, channels: channels, inner: inner)
        let x = self, batchStatistics = statistics == nil
        y.recorded("batchNorm", [x, weight, bias]) { gy in
            let gw = Tensor.empty([channels], on: x.device), gb = Tensor.empty([channels], on: x.device)
            x.backend.batchNormBackwardSums(x: x.buffer, gy: gy.buffer, mean: mean.buffer, variance: variance.buffer,
                                            gweight: gw.buffer, gbias: gb.buffer, epsilon: epsilon,
                                            outer: outer, channels: channels, inner: inner)
            var gx: Tensor? = nil
            if x.requiresGrad {
                let g = Tensor.empty(x.shape, on: x.device)
                x.backend.batchNormBackwardInput(x: x.buffer, gy: gy.buffer, mean: mean.buffer, variance: variance.buffer,
                                                 weight: weight.buffer, gweight: gw.buffer, gbias: gb.buffer, gx: g.buffer,
                                                 epsilon: epsilon, batchStatistics: batchStatistics,
                                                 outer: outer, channels: channels, inner: inner)
                gx = g
            }
            return [gx, weight.requiresGrad ? gw : nil, bias.requiresGrad ? gb : nil]
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
