import Foundation
import COpenCL

/// Each op of the device interface as launches of the kernels in Kernels/*.cl.
extension OpenCLBackend {
    func unary(_ op: UnaryOp, x: DeviceBuffer, out: DeviceBuffer, count: Int) {
        guard count > 0 else { return }
        let n = Int32(clamping: count)
        // The kernel is `op.kernelName`; its arguments are x, out, the count, then the op's parameters.
        let args: [KernelArg]
        switch op {
        case .activation(let act): args = [.buffer(x), .buffer(out), .int(n), .float(act.parameter)]
        case .clamp(let lo, let hi): args = [.buffer(x), .buffer(out), .int(n), .float(lo), .float(hi)]
        case .scalar(_, let v, let first): args = [.buffer(x), .buffer(out), .int(n), .float(v), .int(first ? 1 : 0)]
        default: args = [.buffer(x), .buffer(out), .int(n)]  // the ops without parameters
        }
        launch(.elementwise, op.kernelName, global: [count], args: args)
    }

    func activationBackward(_ activation: Activation, x: DeviceBuffer, y: DeviceBuffer, gy: DeviceBuffer,
                            gx: DeviceBuffer, count: Int) {
        guard count > 0 else { return }
        launch(.elementwise, "actgrad_\(activation.kernelName)", global: [count],
               args: [.buffer(x), .buffer(y), .buffer(gy), .buffer(gx), .int(Int32(clamping: count)), .float(activation.parameter)])
    }

    func binary(_ op: BinaryOp, a: DeviceBuffer, b: DeviceBuffer, out: DeviceBuffer, layout: BroadcastLayout) {
        let count = layout.count
        guard count > 0 else { return }
        if layout.isElementwise {
            launch(.elementwise, "binary_\(op.kernelName)", global: [count], args: [.buffer(a), .buffer(b), .buffer(out), .int(Int32(clamping: count))])
            return
        }
        precondition(layout.dims.count <= 4, "broadcasting needs at most 4 dimensions after collapsing, got \(layout.dims)")
        let pad = 4 - layout.dims.count
        let d = [Int](repeating: 1, count: pad) + layout.dims
        let sa = [Int](repeating: 0, count: pad) + layout.stridesA
        let sb = [Int](repeating: 0, count: pad) + layout.stridesB
        var args: [KernelArg] = [.buffer(a), .buffer(b), .buffer(out), .int(Int32(clamping: d[1])), .int(Int32(clamping: d[2])),
                                 .int(Int32(clamping: d[3])), .int(Int32(clamping: count))]
        args += sa.map { .int(Int32(clamping: $0)) } + sb.map { .int(Int32(clamping: $0)) }
        launch(.elementwise, "bcast_\(op.kernelName)", global: [count], args: args)
    }

    func reduce(_ op: ReduceOp, x: DeviceBuffer, out: DeviceBuffer, outer: Int, length: Int, inner: Int) {
        guard outer > 0, inner > 0 else { return }
        if inner == 1 {
            // A power of two (the tree halves it) within the kernel's work-group limit.
            func groupSize(_ length: Int) -> Int {
                var wg = length >= 256 ? 256 : (length >= 64 ? 64 : 16)
                while wg > workGroupLimit(.reduce, "reduce_rows") || wg > limits.maxWorkItemSizes[0] { wg /= 2 }
                return max(wg, 1)
            }
            let wg = groupSize(length)
            // Few long rows (a whole tensor's sum): split each row over several work-groups, at least
            // `Self.reduceItemsPerWorkItem` elements per work-item and about `Self.reduceGroups` groups in all, then
            // reduce the partial results in a second launch.
            let parts = min(length / (wg * Self.reduceItemsPerWorkItem), max(1, Self.reduceGroups / outer))
            if parts > 1 {
                let partials = allocate(outer * parts)
                launch(.reduce, "reduce_rows", global: [outer * parts * wg], local: [wg],
                       args: [.buffer(x), .buffer(partials), .int(Int32(clamping: length)), .int(op.rawValue), .int(Int32(clamping: parts)),
                              .int(Int32(clamping: length)), .local(wg * 4)])
                let wg2 = groupSize(parts)
                launch(.reduce, "reduce_rows", global: [outer * wg2], local: [wg2],
                       args: [.buffer(partials), .buffer(out), .int(Int32(clamping: parts)), .int(op.rawValue), .int(1),
                              .int(Int32(clamping: length)), .local(wg2 * 4)])
            } else {
                launch(.reduce, "reduce_rows", global: [outer * wg], local: [wg],
                       args: [.buffer(x), .buffer(out), .int(Int32(clamping: length)), .int(op.rawValue), .int(1),
                              .int(Int32(clamping: length)), .local(wg * 4)])
            }
        } else {
            reduceStrided(op, x: x, out: out, outer: outer, length: length, inner: inner, parts: nil)
        }
    }

    /// The reduction over the middle axis of [outer, length, inner] with inner > 1 (reduce_strided): the length
    /// split into `parts` slices, or the device's choice when nil (tests force several). Few outputs over a long
    /// axis get up to `reduceGroups` work-groups of 256 work-items on a GPU (one item per slice and output), each
    /// slice at least 256 long, so that the short axes of bias gradients (a batch) stay one launch; other devices
    /// (PoCL: one thread per core) get up to `reduceGroups` items, with slices of at least 4096.
    func reduceStrided(_ op: ReduceOp, x: DeviceBuffer, out: DeviceBuffer, outer: Int, length: Int, inner: Int, parts: Int?) {
        let outputs = outer * inner
        let wantedItems = Self.reduceGroups * (info.isGPU ? 256 : 1)
        let shortest = info.isGPU ? 256 : 4096
        let automatic = min((wantedItems + outputs - 1) / outputs, length / shortest)
        let p = min(max(parts ?? automatic, 1), max(length, 1))
        if p > 1 {
            let partials = allocate(outer * p * inner)
            launch(.reduce, "reduce_strided", global: [inner, outer * p],
                   args: [.buffer(x), .buffer(partials), .int(Int32(clamping: outer)), .int(Int32(clamping: length)), .int(Int32(clamping: inner)),
                          .int(op.rawValue), .int(Int32(clamping: p)), .int(Int32(clamping: length))])
            launch(.reduce, "reduce_strided", global: [inner, outer],
                   args: [.buffer(partials), .buffer(out), .int(Int32(clamping: outer)), .int(Int32(clamping: p)), .int(Int32(clamping: inner)),
                          .int(op.rawValue), .int(1), .int(Int32(clamping: length))])
        } else {
            launch(.reduce, "reduce_strided", global: [inner, outer],
                   args: [.buffer(x), .buffer(out), .int(Int32(clamping: outer)), .int(Int32(clamping: length)), .int(Int32(clamping: inner)),
                          .int(op.rawValue), .int(1), .int(Int32(clamping: length))])
        }
    }

    /// Elements per work-item below which `reduce` keeps a row in one work-group.
    static let reduceItemsPerWorkItem = 16
    /// About how many work-groups `reduce` spreads few long rows over.
    static let reduceGroups = 256

    func argmax(x: DeviceBuffer, out: DeviceBuffer, rows: Int, cols: Int) {
        guard rows > 0 else { return }
        launch(.reduce, "argmax_rows", global: [rows], args: [.buffer(x), .buffer(out), .int(Int32(clamping: rows)), .int(Int32(clamping: cols))])
    }

    func softmax(x: DeviceBuffer, out: DeviceBuffer, rows: Int, cols: Int, log: Bool) {
        guard rows > 0 else { return }
        launch(.reduce, "softmax_rows", global: [rows],
               args: [.buffer(x), .buffer(out), .int(Int32(clamping: rows)), .int(Int32(clamping: cols)), .int(log ? 1 : 0)])
    }

    func softmaxBackward(y: DeviceBuffer, gy: DeviceBuffer, gx: DeviceBuffer, rows: Int, cols: Int, log: Bool) {
        guard rows > 0 else { return }
        launch(.reduce, "softmax_rows_backward", global: [rows],
               args: [.buffer(y), .buffer(gy), .buffer(gx), .int(Int32(clamping: rows)), .int(Int32(clamping: cols)), .int(log ? 1 : 0)])
    }

    func transpose(x: DeviceBuffer, out: DeviceBuffer, batch: Int, rows: Int, cols: Int) {
        guard batch > 0, rows > 0, cols > 0 else { return }
        // Square tiles of 16 x 16 where the device allows, else the largest power of two that fits.
        var tile = 16
        let limit = workGroupLimit(.layout, "transpose_batched")
        while tile > 1 && (tile * tile > limit || tile > limits.maxWorkItemSizes[0]
                           || tile > limits.maxWorkItemSizes[min(1, limits.maxWorkItemSizes.count - 1)]) { tile /= 2 }
        launch(.layout, "transpose_batched", global: [cols, rows, batch], local: [tile, tile, 1],
               args: [.buffer(x), .buffer(out), .int(Int32(clamping: rows)), .int(Int32(clamping: cols)), .local(tile * (tile + 1) * 4)])
    }

    func gatherRows(x: DeviceBuffer, rows: Int, indices: DeviceBuffer, out: DeviceBuffer, count: Int, rowSize: Int) {
        guard count > 0, rowSize > 0 else { return }
        launch(.layout, "gather_rows", global: [rowSize, count],
               args: [.buffer(x), .buffer(indices), .buffer(out), .int(Int32(clamping: count)), .int(Int32(clamping: rowSize)), .int(Int32(clamping: rows))])
    }

    func scatterAddRows(gy: DeviceBuffer, indices: DeviceBuffer, out: DeviceBuffer, rows: Int, count: Int, rowSize: Int) {
        guard count > 0, rowSize > 0 else { return }
        launch(.layout, "scatter_add_rows", global: [rowSize, count],
               args: [.buffer(gy), .buffer(indices), .buffer(out), .int(Int32(clamping: count)), .int(Int32(clamping: rowSize)), .int(Int32(clamping: rows))])
    }

    func oneHot(indices: DeviceBuffer, out: DeviceBuffer, count: Int, classes: Int) {
        guard count > 0, classes > 0 else { return }
        launch(.layout, "one_hot", global: [classes, count],
               args: [.buffer(indices), .buffer(out), .int(Int32(clamping: count)), .int(Int32(clamping: classes))])
    }

    func randomUniform(out: DeviceBuffer, count: Int, seed: UInt64) {
        guard count > 0 else { return }
        launch(.elementwise, "random_uniform_fill", global: [count], args: [.buffer(out), .int(Int32(clamping: count)), .ulong(seed)])
    }
}
