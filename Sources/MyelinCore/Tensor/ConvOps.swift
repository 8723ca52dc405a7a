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
