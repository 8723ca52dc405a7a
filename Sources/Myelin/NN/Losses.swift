import Foundation

// Losses: each returns a scalar tensor that records a graph, so `try loss.backward()` trains.
// They average over the batch (over every element for the elementwise ones) unless said otherwise.
// Predictions and targets must have the same shape (no silent broadcasting of [N] against [N, 1]).

func checkSameShape(_ loss: String, _ a: Tensor, _ aName: String, _ b: Tensor, _ bName: String) throws {
    guard a.shape == b.shape else {
        throw TensorError.shapeMismatch(op: loss, "differ (\(aName) and \(bName) must have the same shape)", a.shape, b.shape)
    }
    try a.checkSameDevice(b, loss)
}

/// Mean of (p - t)² over every element.
///
/// ```swift
/// let loss = try meanSquaredError(predictions: model(x), targets: y)
/// try loss.backward()
/// ```
public func meanSquaredError(predictions: Tensor, targets: Tensor) throws -> Tensor {
    try checkSameShape("meanSquaredError", predictions, "predictions", targets, "targets")
    return try squaredError("meanSquaredError", predictions, targets, mean: true)
}

/// E = 1/2 Σ (y - t)², summed over every element and NOT averaged: the loss of hand-derived
/// backpropagation (its gradient is simply y - t).
public func halfSumOfSquares(predictions: Tensor, targets: Tensor) throws -> Tensor {
    try checkSameShape("halfSumOfSquares", predictions, "predictions", targets, "targets")
    return try squaredError("halfSumOfSquares", predictions, targets, mean: false)
}

/// mean((p - t)²) or ½ Σ (p - t)² as one graph node that keeps d = p - t from the forward pass. Its backward is
/// one broadcast product, d·(g·2/n) for the mean and d·g for the half sum (minus that for the targets), where the
/// chain of ops it replaces took five launches (the scale's, the sum's broadcast, the square's two, the
/// difference's). The forward values are those of the chain, op for op.
private func squaredError(_ name: String, _ predictions: Tensor, _ targets: Tensor, mean: Bool) throws -> Tensor {
    let difference = try withNoGrad { try predictions.detach() - targets.detach() }
    let value = withNoGrad { mean ? difference.square().mean() : difference.square().sum() * 0.5 }
    let factor = mean ? 2 / Float(Swift.max(predictions.count, 1)) : 1
    return value.recorded(name, [predictions, targets]) { g in
        let gradient = try difference * (factor == 1 ? g : g * factor)
        return [predictions.requiresGrad ? gradient : nil, targets.requiresGrad ? gradient.negated() : nil]
    }
}

/// Mean of |p - t| over every element.
public func meanAbsoluteError(predictions: Tensor, targets: Tensor) throws -> Tensor {
    try checkSameShape("meanAbsoluteError", predictions, "predictions", targets, "targets")
    return try (predictions - targets).abs().mean()
}

/// Huber loss, mean over every element: ½d² where |d| < delta, delta·(|d| - ½delta) elsewhere (d = p - t).
/// PyTorch's `HuberLoss(delta:)`.
public func huber(predictions: Tensor, targets: Tensor, delta: Float = 1) throws -> Tensor {
    try checkSameShape("huber", predictions, "predictions", targets, "targets")
    guard delta > 0 else { throw TensorError.invalidShape(op: "huber(delta: \(delta))", predictions.shape, "needs delta > 0") }
    let a = try (predictions - targets).abs()
    let q = a.minimum(delta)
    return try (q.square() * 0.5 + (a - q) * delta).mean()
}

/// Binary cross-entropy of probabilities p in [0, 1] against targets t in [0, 1], mean over every element:
/// -[t·log p + (1 - t)·log(1 - p)]. p is clamped to [1e-7, 1 - 1e-7] so log(0) never happens.
/// For raw scores use the stabler `binaryCrossEntropy(logits:targets:)`.
public func binaryCrossEntropy(probabilities: Tensor, targets: Tensor) throws -> Tensor {
    try checkSameShape("binaryCrossEntropy", probabilities, "probabilities", targets, "targets")
    let eps: Float = 1e-7
    let p = probabilities.clamp(min: eps, max: 1 - eps)
    let terms = try targets * p.log() + (1 - targets) * (1 - p).log()
    return terms.mean().negated()
}

/// Binary cross-entropy of logits x (sigmoid applied inside), mean over every element, computed stably as
/// max(x, 0) - x·t + log(1 + e^-|x|). One graph node whose backward is (sigmoid(x) - t) / n.
public func binaryCrossEntropy(logits: Tensor, targets: Tensor) throws -> Tensor {
    try checkSameShape("binaryCrossEntropy", logits, "logits", targets, "targets")
    let n = Float(Swift.max(logits.count, 1))
    let value = try withNoGrad {
        let x = logits.detach(), t = targets.detach()
        return try (x.relu() - x * t + (x.abs().negated().exp() + 1).log()).mean()
    }
    return value.recorded("binaryCrossEntropyWithLogits", [logits, targets]) { g in
        let x = logits.detach()
        return [logits.requiresGrad ? try (x.sigmoid() - targets.detach()) * (g / n) : nil,
                targets.requiresGrad ? try x * (g / (-n)) : nil]
    }
}

/// Softmax cross-entropy of logits [N, C] against whole-number class labels [N] (values 0..<C stored as
/// Float), mean over the batch. One fused graph node (log-softmax, pick, mean) whose backward is
/// (softmax(logits) - onehot(labels)) / N. A label outside 0..<C (or not a whole number) throws
/// `TensorError.indexOutOfRange` naming the label, its position and the class count, on every device, as PyTorch
/// does. Labels checked on the host when they were made cost nothing here: vectors made from host values
/// (`Tensor([...])`, `Tensor(labels:classes:)`), a `Dataset` given `classes:` or made from such vectors, the MNIST
/// loaders, and batches gathered, sliced or copied from them, as `fit` makes them. A label tensor computed on the
/// device or read from a raw file is read back once per call to check it (a host read, which a captured step
/// refuses): call `checkLabels(classes:)` on it once, and its batches need none.
///
/// ```swift
/// let loss = try softmaxCrossEntropy(logits: model(images), labels: labels)
/// ```
public func softmaxCrossEntropy(logits: Tensor, labels: Tensor) throws -> Tensor {
    try logits.checkSameDevice(labels, "softmaxCrossEntropy")
    guard logits.rank == 2, labels.shape == [logits.shape[0]] else {
        throw TensorError.shapeMismatch(op: "softmaxCrossEntropy",
            "do not fit (logits must be [N, classes] and labels [N]; for one-hot targets use softmaxCrossEntropy(logits:targets:))",
            logits.shape, labels.shape)
    }
    let n = logits.shape[0], classes = logits.shape[1]
    try labels.checkLabels(classes: classes, op: "softmaxCrossEntropy")
    let oneHot = try labels.oneHot(classes: classes)
    let logProbabilities = withNoGrad { logits.detach().logSoftmax() }
    let value = try withNoGrad { try (logProbabilities * oneHot).sum() * (-1 / Float(Swift.max(n, 1))) }
    // The gradient in one launch: (exp(logp) - oneHot) · (g / N), the same values as those four ops.
    return value.recorded("softmaxCrossEntropy", [logits]) { g in
        [try logProbabilities.softmaxCrossEntropyGradient(oneHot: oneHot, seed: g, scale: 1 / Float(Swift.max(n, 1)))]
    }
}

/// Softmax cross-entropy of logits [N, C] against one-hot (or probability) targets [N, C], mean over the
/// batch: -Σ t·log softmax(x) / N. One fused graph node whose backward is (softmax·Σt - t) / N
/// (= softmax - t for one-hot rows).
public func softmaxCrossEntropy(logits: Tensor, targets: Tensor) throws -> Tensor {
    try checkSameShape("softmaxCrossEntropy", logits, "logits", targets, "one-hot targets")
    guard logits.rank == 2 else {
        throw TensorError.invalidShape(op: "softmaxCrossEntropy", logits.shape, "must be [N, classes]")
    }
    let n = Float(Swift.max(logits.shape[0], 1))
    let logProbabilities = withNoGrad { logits.detach().logSoftmax() }
    let value = try withNoGrad { try (logProbabilities * targets.detach()).sum() * (-1 / n) }
    return value.recorded("softmaxCrossEntropy", [logits, targets]) { g in
        let t = targets.detach()
        return [logits.requiresGrad ? try (logProbabilities.exp() * t.sum(axis: 1, keepDims: true) - t) * (g / n) : nil,
                targets.requiresGrad ? try logProbabilities * (g / (-n)) : nil]
    }
}

/// Negative log-likelihood of log-probabilities [N, C] (e.g. from `logSoftmax()`) at whole-number labels
/// [N], mean over the batch: -Σ logp[i, label_i] / N.
/// Labels are checked like `softmaxCrossEntropy(logits:labels:)`'s: one outside 0..<C throws, naming it.
public func negativeLogLikelihood(logProbabilities: Tensor, labels: Tensor) throws -> Tensor {
    try logProbabilities.checkSameDevice(labels, "negativeLogLikelihood")
    guard logProbabilities.rank == 2, labels.shape == [logProbabilities.shape[0]] else {
        throw TensorError.shapeMismatch(op: "negativeLogLikelihood",
            "do not fit (log-probabilities must be [N, classes] and labels [N])", logProbabilities.shape, labels.shape)
    }
    let n = Float(Swift.max(logProbabilities.shape[0], 1))
    try labels.checkLabels(classes: logProbabilities.shape[1], op: "negativeLogLikelihood")
    let oneHot = try labels.oneHot(classes: logProbabilities.shape[1])
    return try (logProbabilities * oneHot).sum() * (-1 / n)
}

/// A loss chosen by value (for training loops that take the loss as a parameter).
///
/// ```swift
/// let loss = try Loss.softmaxCrossEntropy(logits, labels)
/// ```
public enum Loss: Equatable, Sendable, CustomStringConvertible {
    /// Mean of (output - target)² over every element (`meanSquaredError(predictions:targets:)`).
    case meanSquaredError
    /// ½ Σ (output - target)², summed, not averaged (`halfSumOfSquares(predictions:targets:)`).
    case halfSumOfSquares
    /// Mean of |output - target| over every element (`meanAbsoluteError(predictions:targets:)`).
    case meanAbsoluteError
    /// Huber loss with threshold `delta` > 0, mean over every element (`huber(predictions:targets:delta:)`).
    case huber(delta: Float)
    /// Targets against probabilities.
    case binaryCrossEntropy
    /// Targets against logits (sigmoid inside).
    case binaryCrossEntropyWithLogits
    /// Logits [N, C] against labels [N] or one-hot targets [N, C] (picked by the target's shape).
    case softmaxCrossEntropy
    /// Log-probabilities [N, C] against labels [N].
    case negativeLogLikelihood

    /// The loss of `output` (the model's output) against `target`.
    public func callAsFunction(_ output: Tensor, _ target: Tensor) throws -> Tensor {
        switch self {
        case .meanSquaredError: return try Myelin.meanSquaredError(predictions: output, targets: target)
        case .halfSumOfSquares: return try Myelin.halfSumOfSquares(predictions: output, targets: target)
        case .meanAbsoluteError: return try Myelin.meanAbsoluteError(predictions: output, targets: target)
        case .huber(let d): return try Myelin.huber(predictions: output, targets: target, delta: d)
        case .binaryCrossEntropy: return try Myelin.binaryCrossEntropy(probabilities: output, targets: target)
        case .binaryCrossEntropyWithLogits: return try Myelin.binaryCrossEntropy(logits: output, targets: target)
        case .softmaxCrossEntropy:
            return target.rank == 1 ? try Myelin.softmaxCrossEntropy(logits: output, labels: target)
                                    : try Myelin.softmaxCrossEntropy(logits: output, targets: target)
        case .negativeLogLikelihood: return try Myelin.negativeLogLikelihood(logProbabilities: output, labels: target)
        }
    }

    public var description: String {
        switch self {
        case .meanSquaredError: return "meanSquaredError"
        case .halfSumOfSquares: return "halfSumOfSquares"
        case .meanAbsoluteError: return "meanAbsoluteError"
        case .huber(let d): return "huber(delta: \(d))"
        case .binaryCrossEntropy: return "binaryCrossEntropy"
        case .binaryCrossEntropyWithLogits: return "binaryCrossEntropy(logits)"
        case .softmaxCrossEntropy: return "softmaxCrossEntropy"
        case .negativeLogLikelihood: return "negativeLogLikelihood"
        }
    }
}
