import Foundation

// Metrics: no graph, one value read back per call.

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
    return try withNoGrad { try predictions.argmax().equal(labels).mean().item() }
}

/// The fraction of elements on the right side of `threshold`: predicted 1 where the value > threshold
/// (use 0.5 for probabilities, 0 for logits), compared with 0/1 targets of the same shape.
public func binaryAccuracy(predictions: Tensor, targets: Tensor, threshold: Float = 0.5) throws -> Float {
    try checkSameShape("binaryAccuracy", predictions, "predictions", targets, "targets")
    guard predictions.count > 0 else { return 0 }
    return try withNoGrad { try predictions.greater(threshold).equal(targets.greater(0.5)).mean().item() }
}

/// Root mean squared error over every element.
public func rootMeanSquaredError(predictions: Tensor, targets: Tensor) throws -> Float {
    try checkSameShape("rootMeanSquaredError", predictions, "predictions", targets, "targets")
    return try withNoGrad { try (predictions - targets).square().mean().item().squareRoot() }
}

/// Mean absolute error over every element, as a number.
public func meanAbsoluteErrorMetric(predictions: Tensor, targets: Tensor) throws -> Float {
    try checkSameShape("meanAbsoluteError", predictions, "predictions", targets, "targets")
    return try withNoGrad { try (predictions - targets).abs().mean().item() }
}

/// Short names: `rmse` and `mae` as numbers (not differentiable; use the loss functions to train).
public func rmse(predictions: Tensor, targets: Tensor) throws -> Float {
    try rootMeanSquaredError(predictions: predictions, targets: targets)
}

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
