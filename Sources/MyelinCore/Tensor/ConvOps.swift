import Foundation

// Patch extraction for convolution and pooling (im2col), with col2im as its backward.

extension Tensor {
    /// Unfolds image patches: self [N, C, H, W] -> [N, C·kh·kw, outH·outW], where column `oh·outW + ow` holds the
    /// patch read at output position (oh, ow), channel-major then kernel row then kernel column (PyTorch's `unfold`).
    /// Positions outside the image read `padValue`. The backward is col2im (the sum of the patch gradients).
    ///
    /// ```swift
    /// let cols = try images.im2col(kernel: (3, 3), padding: (1, 1))   // [N, C·9, H·W]
    /// ```
    public func im2col(kernel: (Int, Int), stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0),
                       padValue: Float = 0) throws -> Tensor {
        let g = try convGeometry(kernel: kernel, stride: stride, padding: padding, op: "im2col")
        let cols = Tensor.empty([g.batch, g.patchSize, g.positions], on: device)
        backend.im2col(x: buffer, cols: cols.buffer, geometry: g, padValue: padValue)
        return cols.recorded("im2col", [self]) { gy in
            let gx = Tensor.empty(self.shape, on: self.device)
            self.backend.col2im(cols: gy.buffer, x: gx.buffer, geometry: g)
            return [gx]
        }
    }

    /// PyTorch's `torch.nn.functional.conv2d`: self [N, C, H, W] convolved with weight [O, C, kh, kw] (+ bias [O])
    /// gives [N, O, outH, outW], outH = (H + 2·padding.0 − kh) / stride.0 + 1 and outW alike.
    ///
    /// One recorded op whose backward gives the input, weight and bias gradients. The batch is processed in
    /// chunks of images: each chunk's patches are unfolded into one pooled column buffer of a few MiB and
    /// multiplied in one GEMM, so no column matrix of the whole batch is ever held.
    ///
    /// ```swift
    /// let y = try images.conv2d(weight: w, bias: nil, padding: (1, 1))   // [N, 1, 28, 28] · [32, 1, 3, 3] -> [N, 32, 28, 28]
    /// ```
    public func conv2d(weight: Tensor, bias: Tensor?, stride: (Int, Int) = (1, 1),
                       padding: (Int, Int) = (0, 0)) throws -> Tensor {
        try checkSameDevice(weight, "conv2d")
        guard rank == 4, weight.rank == 4, weight.shape[1] == shape[1] else {
            throw TensorError.shapeMismatch(op: "conv2d", "do not fit (input [N, C, H, W], weight [O, C, kh, kw])",
                                            shape, weight.shape)
        }
        let o = weight.shape[0]
        let g = try convGeometry(kernel: (weight.shape[2], weight.shape[3]), stride: stride, padding: padding, op: "conv2d")
        if let bias {
            try checkSameDevice(bias, "conv2d")
            guard bias.shape == [o] else {
                throw TensorError.shapeMismatch(op: "conv2d", "do not fit (bias must be [out channels])", bias.shape, [o])
            }
        }
        let y = Tensor.empty([g.batch, o, g.outH, g.outW], on: device)
        backend.conv2dForward(x: buffer, weight: weight.buffer, bias: bias?.buffer, y: y.buffer, geometry: g, outChannels: o)
        let x = self
        let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
        return y.recorded("conv2d", inputs) { gy in
            let gx = x.requiresGrad ? Tensor.empty(x.shape, on: x.device) : nil
            let gw = weight.requiresGrad ? Tensor.empty(weight.shape, on: weight.device) : nil
            x.backend.conv2dBackward(x: x.buffer, weight: weight.buffer, gy: gy.buffer, gx: gx?.buffer, gw: gw?.buffer,
                                     geometry: g, outChannels: o)
            var grads: [Tensor?] = [gx, gw]
            if let bias {
                var gb: Tensor? = nil
                if bias.requiresGrad {
                    // Σ over positions ([N·O, L] -> [N·O]), then over images ([N, O] -> [O]).
                    let perImage = Tensor.empty([g.batch, o], on: x.device)
                    x.backend.reduce(.sum, x: gy.buffer, out: perImage.buffer, outer: g.batch * o, length: g.positions, inner: 1)
                    let total = Tensor.empty([o], on: x.device)
                    x.backend.reduce(.sum, x: perImage.buffer, out: total.buffer, outer: 1, length: g.batch, inner: o)
                    gb = total
                }
                grads.append(gb)
            }
            return grads
        }
    }

    /// The geometry of a window over this [N, C, H, W] tensor; throws when it does not fit.
    package func convGeometry(kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int), op: String) throws -> ConvGeometry {
        guard rank == 4 else { throw TensorError.invalidShape(op: op, shape, "must be [N, C, H, W]") }
        guard kernel.0 > 0, kernel.1 > 0, stride.0 > 0, stride.1 > 0, padding.0 >= 0, padding.1 >= 0 else {
            throw TensorError.invalidShape(op: op, shape,
                "cannot take kernel \(kernel), stride \(stride), padding \(padding) (kernel and stride must be positive, padding not negative)")
        }
        let g = ConvGeometry(batch: shape[0], channels: shape[1], height: shape[2], width: shape[3],
                             kernelH: kernel.0, kernelW: kernel.1, strideH: stride.0, strideW: stride.1,
                             padH: padding.0, padW: padding.1)
        guard shape[2] + 2 * padding.0 >= kernel.0, shape[3] + 2 * padding.1 >= kernel.1 else {
            throw TensorError.invalidShape(op: op, shape, "is smaller than the \(kernel.0)x\(kernel.1) window (padding \(padding))")
        }
        return g
    }
}
