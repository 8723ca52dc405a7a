import Foundation

/// The sequence ops as launches of Kernels/layout.cl (`permute_axes`) and Kernels/reduce.cl
/// (`softmax_rows_causal`); see `SequenceBackend`.
extension OpenCLBackend {
    func permute(x: DeviceBuffer, out: DeviceBuffer, layout: PermuteLayout) {
        let count = layout.count
        guard count > 0 else { return }
        let pad = PermuteLayout.maxRank - layout.dims.count
        let dims = [Int](repeating: 1, count: pad) + layout.dims
        let strides = [Int](repeating: 0, count: pad) + layout.inputStrides
        if let inner = dims.last, strides.last == 1, inner >= Self.permuteRowsMinimum {
            // The last axis is contiguous in x too: one row of work-items per run (permute_rows).
            let rows = count / inner
            let args: [KernelArg] = [.buffer(x), .buffer(out), .int(Int32(clamping: rows))]
                + dims.dropFirst().map { .int(Int32(clamping: $0)) } + strides.dropLast().map { .int(Int32(clamping: $0)) }
            launch(.layout, "permute_rows", global: [inner, rows], args: args)
            return
        }
        let args: [KernelArg] = [.buffer(x), .buffer(out), .int(Int32(clamping: count))]
            + dims.dropFirst().map { .int(Int32(clamping: $0)) } + strides.map { .int(Int32(clamping: $0)) }
        launch(.layout, "permute_axes", global: [count], args: args)
    }

    /// The shortest contiguous last axis `permute` copies by rows (`permute_rows`); shorter ones go element by element.
    static let permuteRowsMinimum = 4

    func causalSoftmax(x: DeviceBuffer, out: DeviceBuffer, rows: Int, cols: Int, queries: Int) {
        guard rows > 0, cols > 0 else { return }
        launch(.reduce, "softmax_rows_causal", global: [rows],
               args: [.buffer(x), .buffer(out), .int(Int32(clamping: rows)), .int(Int32(clamping: cols)), .int(Int32(clamping: queries))])
    }

    func layerNormForward(x: DeviceBuffer, y: DeviceBuffer, mean: DeviceBuffer, rstd: DeviceBuffer, weight: DeviceBuffer?,
                          bias: DeviceBuffer?, rows: Int, cols: Int, epsilon: Float) {
        guard rows > 0, cols > 0 else { return }
        launch(.normalization, "layer_norm_forward", global: [rows],
               args: [.buffer(x), .buffer(y), .buffer(mean), .buffer(rstd), weight.map { .buffer($0) } ?? .null,
                      bias.map { .buffer($0) } ?? .null, .int(Int32(clamping: rows)), .int(Int32(clamping: cols)), .float(epsilon)])
    }

    func layerNormBackwardInput(x: DeviceBuffer, gy: DeviceBuffer, mean: DeviceBuffer, rstd: DeviceBuffer,
                                weight: DeviceBuffer?, gx: DeviceBuffer, rows: Int, cols: Int) {
        guard rows > 0, cols > 0 else { return }
        launch(.normalization, "layer_norm_backward_input", global: [rows],
               args: [.buffer(x), .buffer(gy), .buffer(mean), .buffer(rstd), weight.map { .buffer($0) } ?? .null,
                      .buffer(gx), .int(Int32(clamping: rows)), .int(Int32(clamping: cols))])
    }

    func layerNormBackwardParameters(x: DeviceBuffer, gy: DeviceBuffer, mean: DeviceBuffer, rstd: DeviceBuffer,
                                     gweight: DeviceBuffer?, gbias: DeviceBuffer?, rows: Int, cols: Int) {
        guard cols > 0, gweight != nil || gbias != nil else { return }
        launch(.normalization, "layer_norm_backward_parameters", global: [cols],
               args: [.buffer(x), .buffer(gy), .buffer(mean), .buffer(rstd), gweight.map { .buffer($0) } ?? .null,
                      gbias.map { .buffer($0) } ?? .null, .int(Int32(clamping: rows)), .int(Int32(clamping: cols))])
    }
}
