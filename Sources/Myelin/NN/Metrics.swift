import Foundation

// Metrics: the `Metric`s `fit` and `evaluate` accumulate on the device, and the same formulas as functions
// (no graph, one value read back per call).

/// A metric `fit` and `evaluate` accumulate on the device during an epoch and read once at its end.
public enum Metric: String, Equatable, Sendable, CaseIterable {
    /// Fraction of rows whose largest output is at the label (labels [N] or one-hot targets [N, C]).
    case accuracy
    /// Fraction of outputs on the right side of 0.5 against 0/1 targets (sigmoid outputs).
    case binaryAccuracy = "binary_accuracy"
    /// Root mean squared error over every output.
    case rmse
    /// Mean absolute error over every output.
    case mae

    /// The values the metric averages, on the device: per row (accuracy: 1 where the largest output is at the
    /// label) or per output (binary accuracy: 1 where output > `threshold` agrees with target > 0.5; rmse: the
    /// squared error; mae: the absolute error). The metric is their mean (its square root for rmse).
    func values(output: Tensor, target: Tensor, threshold: Float = 0.5) throws -> Tensor {
        switch self {
        case .accuracy:
            let labels = target.rank == 1 ? target : try target.argmax()
            return try output.argmax().equal(labels)
        case .binaryAccuracy:
            return try output.greater(threshold).equal(target.greater(0.5))
        case .rmse:
            return try (output - target).square()
        case .mae:
            return try (output - target).abs()
        }
    }

    /// The sum of the batch's `values` (a device scalar) and the number of items it averages over (rows for
    /// accuracy, outputs for the others).
    func batchSum(output: Tensor, target: Tensor) throws -> (Tensor, Int) {
        try checkShapes(output: output, target: target)
        return (try values(output: output, target: target).sum(), self == .accuracy ? output.shape[0] : output.count)
    }

    /// The metric from the epoch's accumulated sum.
    func finish(_ sum: Double, count: Int) -> Double {
        let mean = sum / Double(Swift.max(count, 1))
        return self == .rmse ? mean.squareRoot() : mean
    }

    /// The metric over one batch as a number: the mean of `values` (one host read).
    func mean(output: Tensor, target: Tensor, threshold: Float = 0.5) throws -> Float {
        let m = try withNoGrad { try values(output: output, target: target, threshold: threshold).mean().item() }
        return self == .rmse ? m.squareRoot() : m
    }
}

/// The fraction of rows whose largest score is at the label: scores [N, C] (logits or probabilities)
/// against whole-number labels [N].
///
/// ```swift
/// let acc = try accuracy(predictions: model(x), labels: y)   // e.g. 0.875
/// ```
public func accuracy(predictions: Tensor, labels: Tensor) throws -> Float {
    try predictions.checkSameDevice(labels, "accuracy")
    guard predictions.rank == 2, labels.shape == [predictions.shape[0]] else {
        throw TensorError.shapeMismatch(op: "accuracy",
            "do not fit (predictions must be [N, classes] and labels [N]; for one output per row use binaryAccuracy)",
            predictions.shape, labels.shape)
    }
    guard predictions.shape[0] > 0 else { return 0 }
    return try Metric.accuracy.mean(output: predictions, target: labels)
}

/// The fraction of elements on the right side of `threshold`: predicted 1 where the value > threshold
/// (use 0.5 for probabilities, 0 for logits), compared with 0/1 targets of the same shape.
public func binaryAccuracy(predictions: Tensor, targets: Tensor, threshold: Float = 0.5) throws -> Float {
    try checkSameShape("binaryAccuracy", predictions, "predictions", targets, "targets")
    guard predictions.count > 0 else { return 0 }
    return try Metric.binaryAccuracy.mean(output: predictions, target: targets, threshold: threshold)
}

/// Root mean squared error over every element.
public func rootMeanSquaredError(predictions: Tensor, targets: Tensor) throws -> Float {
    try checkSameShape("rootMeanSquaredError", predictions, "predictions", targets, "targets")
    return try Metric.rmse.mean(output: predictions, target: targets)
}

/// Mean absolute error over every element, as a number.
public func meanAbsoluteErrorMetric(predictions: Tensor, targets: Tensor) throws -> Float {
    try checkSameShape("meanAbsoluteError", predictions, "predictions", targets, "targets")
    return try Metric.mae.mean(output: predictions, target: targets)
}

/// Short names: `rmse` and `mae` as numbers (not differentiable; use the loss functions to train).
public func rmse(predictions: Tensor, targets: Tensor) throws -> Float {
    try rootMeanSquaredError(predictions: predictions, targets: targets)
}

/// Mean absolute error over every element, as a number (short for `meanAbsoluteErrorMetric(predictions:targets:)`).
public func mae(predictions: Tensor, targets: Tensor) throws -> Float {
    try meanAbsoluteErrorMetric(predictions: predictions, targets: targets)
}

extension Metric {
    /// The shapes `fit` and `evaluate` accept for this metric, as the loss functions do: `accuracy` takes scores
    /// [N, C] against labels [N] or one-hot targets [N, C]; the others take outputs and targets of one shape.
    /// A target [N] against outputs [N, 1] is refused (naming both shapes), never broadcast to [N, N].
    func checkShapes(output: Tensor, target: Tensor) throws {
        switch self {
        case .accuracy:
            guard output.rank == 2, target.shape == [output.shape[0]] || target.shape == output.shape else {
                throw TensorError.shapeMismatch(op: "accuracy",
                    "do not fit (outputs must be [N, classes] and targets labels [N] or one-hot [N, classes]; for one output per row use binaryAccuracy)",
                    output.shape, target.shape)
            }
        case .binaryAccuracy, .rmse, .mae:
            try checkSameShape(rawValue, output, "outputs", target, "targets")
        }
    }
}
