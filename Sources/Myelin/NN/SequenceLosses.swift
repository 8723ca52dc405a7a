import Foundation

// The loss of a language model: cross-entropy over every position of a batch of sequences, with positions to skip.

/// Softmax cross-entropy of logits [..., C] at whole-number labels [...] (the logits' shape without its last
/// axis, as `logits.view(-1, C)` and `labels.view(-1)` in PyTorch), skipping the positions whose label is
/// `ignoreIndex` (PyTorch's `F.cross_entropy(..., ignore_index=)`): the mean of −log softmax(x)[label] over the
/// other positions. Their count stays on the device (no read back); when every label is ignored the loss is NaN,
/// as in PyTorch. One graph node whose backward is (softmax(x) − onehot(label)) / count on the kept rows, 0 on
/// the ignored ones.
///
/// ```swift
/// let loss = try softmaxCrossEntropy(logits: model(tokens), labels: next, ignoreIndex: -1)   // [B, T, V], [B, T]
/// ```
public func softmaxCrossEntropy(logits: Tensor, labels: Tensor, ignoreIndex: Int) throws -> Tensor {
    try logits.checkSameDevice(labels, "softmaxCrossEntropy")
    guard logits.rank >= 1, let classes = logits.shape.last, classes > 0, labels.shape == Array(logits.shape.dropLast()) else {
        throw TensorError.shapeMismatch(op: "softmaxCrossEntropy(ignoreIndex:)",
                                        "do not fit (logits must be [..., classes] and labels the same without the last axis)",
                                        logits.shape, labels.shape)
    }
    let rows = labels.count
    let flatLogits = try logits.reshaped([rows, classes]), flatLabels = try labels.reshaped([rows, 1])
    let (logProbabilities, keep, picked, kept) = try withNoGrad {
        let keep = 1 - flatLabels.equal(Float(ignoreIndex))                                // [N, 1]: 1 where it counts
        let picked = try flatLabels.reshaped([rows]).oneHot(classes: classes) * keep     // [N, C]
        return (flatLogits.detach().logSoftmax(), keep, picked, keep.sum())
    }
    let value = try withNoGrad { try -(logProbabilities * picked).sum() / kept }
    return value.recorded("softmaxCrossEntropy", [logits]) { g in
        let gx = try (logProbabilities.exp() * keep - picked) * (g / kept)
        return [try gx.reshaped(logits.shape)]
    }
}
