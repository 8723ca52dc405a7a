/// `fit`'s per-batch bookkeeping as launches of the kernels at the end of Kernels/optimizers.cl: the finiteness
/// scan of the parameters (8 tensors per launch), the batch's note (loss sum and first bad batch, one work-item)
/// and the accuracy metric's sum (one work-group); and the fused backward of softmax cross-entropy (Kernels/reduce.cl).
extension OpenCLBackend {
    func softmaxCrossEntropyBackward(logProbabilities: DeviceBuffer, oneHot: DeviceBuffer, seed: DeviceBuffer,
                                     gx: DeviceBuffer, count: Int, scale: Float) {
        guard count > 0 else { return }
        launch(.reduce, "softmax_xent_backward", global: [count], args: [
            .buffer(logProbabilities), .buffer(oneHot), .buffer(seed), .buffer(gx), .int(Int32(clamping: count)), .float(scale),
        ])
    }

    /// The tensors `nonfinite_flag8` scans per launch.
    static let nonFiniteTensorsPerLaunch = 8
    /// The most work-items a `nonfinite_flag8` launch uses on a GPU (each walks the tensors with that stride);
    /// elsewhere (PoCL) one per element of the largest tensor, which PoCL runs faster than longer walks.
    static let nonFiniteMaximumItems = 16_384

    func flagNonFinite(_ tensors: [(buffer: DeviceBuffer, count: Int)], flag: DeviceBuffer) {
        let nonEmpty = tensors.filter { $0.count > 0 }
        for start in stride(from: 0, to: nonEmpty.count, by: Self.nonFiniteTensorsPerLaunch) {
            let chunk = nonEmpty[start..<min(start + Self.nonFiniteTensorsPerLaunch, nonEmpty.count)]
            var args: [KernelArg] = []
            for k in 0..<Self.nonFiniteTensorsPerLaunch {
                if k < chunk.count {
                    let t = chunk[chunk.startIndex + k]
                    args += [.buffer(t.buffer), .int(Int32(clamping: t.count))]
                } else {
                    args += [.null, .int(0)]
                }
            }
            let largest = chunk.map(\.count).max()!
            let items = info.isGPU ? min(largest, Self.nonFiniteMaximumItems) : largest
            launch(.optimizers, "nonfinite_flag8", global: [items], args: args + [.buffer(flag)])
        }
    }

    func fitNote(firstBad: DeviceBuffer, parametersBad: DeviceBuffer, loss: DeviceBuffer, lossSum: DeviceBuffer,
                 count: Float, batch: Int, none: Float) {
        launch(.optimizers, "fit_note", global: [1], local: [1], args: [
            .buffer(firstBad), .buffer(parametersBad), .buffer(loss), .buffer(lossSum), .float(count),
            .float(Float(2 * batch)), .float(none),
        ])
    }

    func accuracyAdd(x: DeviceBuffer, labels: DeviceBuffer, rows: Int, cols: Int, sum: DeviceBuffer) {
        guard rows > 0, cols > 0 else { return }
        let items = min(64, workGroupLimit(.optimizers, "accuracy_add"))
        launch(.optimizers, "accuracy_add", global: [items], local: [items], args: [
            .buffer(x), .buffer(labels), .int(Int32(clamping: rows)), .int(Int32(clamping: cols)), .buffer(sum), .local(items * 4),
        ])
    }
}
