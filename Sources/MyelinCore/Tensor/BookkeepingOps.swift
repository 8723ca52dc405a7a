// `fit`'s per-batch bookkeeping on device scalars, in place (Sources/Myelin/Training/Fit.swift and
// EpochAccumulator.swift): a few launches per batch instead of an op per parameter; and the fused backward of
// softmax cross-entropy against labels (Sources/Myelin/NN/Losses.swift).

extension Tensor {
    /// (exp(self) − oneHot) · (seed · scale) in one launch, self being log-probabilities [N, C]: the gradient of
    /// softmax cross-entropy for the seed gradient `seed` (a scalar) and scale 1/N, the same values as those ops.
    package func softmaxCrossEntropyGradient(oneHot: Tensor, seed: Tensor, scale: Float) throws -> Tensor {
        guard oneHot.shape == shape else {
            throw TensorError.shapeMismatch(op: "softmaxCrossEntropy backward", "differ (log-probabilities and one-hot labels)", shape, oneHot.shape)
        }
        try checkSameDevice(oneHot, "softmaxCrossEntropy backward")
        try checkSameDevice(seed, "softmaxCrossEntropy backward")
        precondition(seed.count == 1, "softmaxCrossEntropyGradient: the seed must be one value, it has shape \(seed.shape)")
        let out = Tensor.empty(shape, on: device)
        backend.softmaxCrossEntropyBackward(logProbabilities: buffer, oneHot: oneHot.buffer, seed: seed.buffer,
                                            gx: out.buffer, count: count, scale: scale)
        return out
    }

    /// Sets this device scalar to 1 when one of `tensors` (on its device) holds a NaN or an infinity, else leaves
    /// it alone: one launch per 8 tensors on OpenCL, no host read.
    package func flagNonFinite(in tensors: [Tensor]) {
        precondition(count == 1, "flagNonFinite: the flag must be one value, it has shape \(shape)")
        let own = tensors.filter { $0.device === device }
        guard !own.isEmpty else { return }
        backend.flagNonFinite(own.map { ($0.buffer, $0.count) }, flag: buffer)
    }

    /// One batch of `fit` in one launch, this device scalar being the first bad batch's code: `lossSum` +=
    /// `loss` · `count`; self = min(self, code), the code being `none` when `loss` is finite and
    /// `parametersBad` is 0, 2·`batch` + 1 when only the parameters are bad, 2·`batch` when the loss is not
    /// finite; then `parametersBad` = 0.
    package func noteFitBatch(parametersBad: Tensor, loss: Tensor, lossSum: Tensor, count n: Int, batch: Int, none: Float) throws {
        for t in [parametersBad, loss, lossSum] {
            try checkSameDevice(t, "fit")
            precondition(t.count == 1, "noteFitBatch: scalars expected, got shape \(t.shape)")
        }
        backend.fitNote(firstBad: buffer, parametersBad: parametersBad.buffer, loss: loss.buffer, lossSum: lossSum.buffer,
                        count: Float(n), batch: batch, none: none)
    }

    /// Adds to this device scalar the number of rows of `output` [N, classes] whose first largest value is at the
    /// column `labels` [N] names (the accuracy metric's batch sum), in one launch.
    package func addAccuracyHits(output: Tensor, labels: Tensor) throws {
        try checkSameDevice(output, "accuracy")
        try checkSameDevice(labels, "accuracy")
        precondition(count == 1 && output.rank == 2 && labels.shape == [output.shape[0]],
                     "addAccuracyHits: shapes \(shape), \(output.shape), \(labels.shape)")
        backend.accuracyAdd(x: output.buffer, labels: labels.buffer, rows: output.shape[0], cols: output.shape[1], sum: buffer)
    }
}
