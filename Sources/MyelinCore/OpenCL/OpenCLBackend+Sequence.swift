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
        let args: [KernelArg] = [.buffer(x), .buffer(out), .int(Int32(count))]
            + dims.dropFirst().map { .int(Int32($0)) } + strides.map { .int(Int32($0)) }
        launch(.layout, "permute_axes", global: [count], args: args)
    }

    func causalSoftmax(x: DeviceBuffer, out: DeviceBuffer, rows: Int, cols: Int, queries: Int) {
        guard rows > 0, cols > 0 else { return }
        launch(.reduce, "softmax_rows_causal", global: [rows],
               args: [.buffer(x), .buffer(out), .int(Int32(rows)), .int(Int32(cols)), .int(Int32(queries))])
    }
}
