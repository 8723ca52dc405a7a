import Foundation

/// Batch normalization over the feature axis, like PyTorch's `BatchNorm1d` for [N, F] inputs and
/// `BatchNorm2d` for [N, C, H, W] inputs (statistics per channel over N, H and W).
///
/// Train mode normalizes with the batch's mean and biased variance and updates the running statistics:
/// `running = (1 - momentum)·running + momentum·batchStatistic`, with the unbiased variance
/// (·n/(n-1)) for `running_var`. Eval mode uses the running statistics. `y = x̂·weight + bias`.
/// One recorded op with a closed-form backward (per-channel sums, then one pass over the values). State keys are PyTorch's: `weight` (gamma),
/// `bias` (beta), `running_mean`, `running_var` and `num_batches_tracked` (a scalar counting train-mode
/// batches, stored as a float; it does not change the result, as with PyTorch's default momentum).
///
/// ```swift
/// let bn = BatchNorm(features: 128)
/// ```
public final class BatchNorm: Layer {
    /// The size of the normalized axis: F of [N, F], or C of [N, C, H, W].
    public let features: Int
    /// The weight of the new batch statistic in the running statistics' update.
    public let momentum: Float
    /// Added to the variance before its square root, so a constant feature does not divide by zero.
    public let epsilon: Float
    /// Gamma [features], starts at 1.
    public private(set) var weight: Tensor
    /// Beta [features], starts at 0.
    public private(set) var bias: Tensor
    /// [features], starts at 0.
    public private(set) var runningMean: Tensor
    /// [features], starts at 1.
    public private(set) var runningVar: Tensor
    /// A scalar: the train-mode forward passes so far (PyTorch's `num_batches_tracked`).
    public private(set) var numBatchesTracked: Tensor
    public var isTraining = true

    /// A batch normalization of `features` features or channels, with PyTorch's defaults; weight, bias and
    /// running statistics live on `device`.
    public init(features: Int, momentum: Float = 0.1, epsilon: Float = 1e-5, device: Device = .default) {
        precondition(features > 0, "BatchNorm needs a positive feature count, got \(features)")
        self.features = features
        self.momentum = momentum
        self.epsilon = epsilon
        weight = Tensor.ones([features], on: device)
        bias = Tensor.zeros([features], on: device)
        runningMean = Tensor.zeros([features], on: device)
        runningVar = Tensor.ones([features], on: device)
        numBatchesTracked = Tensor.zeros([], on: device)
        weight.requiresGrad = true
        bias.requiresGrad = true
    }

    public func callAsFunction(_ input: Tensor) throws -> Tensor { try callAsFunction(input, residual: nil, relu: false) }

    /// relu(self(input) + residual) in the normalization's own launches (Sequential fuses a following `ReLU` this
    /// way, ResidualBlock its sum and ReLU): the same values as the separate ops, fewer launches. `residual`, when
    /// given, has the input's shape.
    func callAsFunction(_ input: Tensor, residual: Tensor?, relu: Bool) throws -> Tensor {
        guard (input.rank == 2 || input.rank == 4), input.shape[1] == features else {
            throw LayerError.shape(layer: layerDescription, expected: "[batch, \(features)] or [batch, \(features), height, width]",
                                   got: input.shape)
        }
        if !isTraining {
            return try input.batchNorm(weight: weight, bias: bias, statistics: (runningMean, runningVar), epsilon: epsilon,
                                       residual: residual, relu: relu).output
        }
        let n = input.count / features
        guard n > 1 else {
            throw LayerError.shape(layer: layerDescription, expected: "more than one value per feature in train mode", got: input.shape)
        }
        // The running statistics are updated in place in the moments' launch (the same values as
        // `running = running * (1 - m) + statistic * m`), so the tensors keep their buffers: a captured step replays
        // the update into them.
        let m = momentum
        return try input.batchNorm(weight: weight, bias: bias, statistics: nil, epsilon: epsilon,
                                   running: (runningMean, runningVar, numBatchesTracked, 1 - m, m, m * Float(n) / Float(n - 1)),
                                   residual: residual, relu: relu).output
    }

    public var namedTensors: [(String, Tensor)] {
        [("weight", weight), ("bias", bias), ("running_mean", runningMean), ("running_var", runningVar),
         ("num_batches_tracked", numBatchesTracked)]
    }

    public func setTensor(_ name: String, _ value: Tensor) throws {
        switch name {
        case "weight": weight = try replacement(for: weight, name, value, layer: layerDescription)
        case "bias": bias = try replacement(for: bias, name, value, layer: layerDescription)
        case "running_mean": runningMean = try replacement(for: runningMean, name, value, layer: layerDescription)
        case "running_var": runningVar = try replacement(for: runningVar, name, value, layer: layerDescription)
        case "num_batches_tracked":
            numBatchesTracked = try replacement(for: numBatchesTracked, name, value, layer: layerDescription)
        default: throw LayerError.unknownTensor(layer: layerDescription, name: name)
        }
    }

    public var layerDescription: String { "BatchNorm(\(features))" }
}
