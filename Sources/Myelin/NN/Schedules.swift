import Foundation

/// A learning rate as a function of the epoch, in closed form (PyTorch's `_get_closed_form_lr`).
/// `epoch` counts completed epochs from 0, so epoch 0 gives `base`. A training loop sets the rate
/// before each epoch:
///
/// ```swift
/// let schedule = try CosineAnnealing(tMax: 50)
/// for epoch in 0..<50 {
///     schedule.apply(to: optimizer, epoch: epoch, base: 0.1)
///     // ... train one epoch ...
/// }
/// ```
public protocol LearningRateSchedule {
    /// The learning rate for `epoch` (0-based) when the initial rate is `base`.
    func learningRate(epoch: Int, base: Float) -> Float
}

extension LearningRateSchedule {
    /// Sets `optimizer.learningRate` to the rate for `epoch`.
    public func apply(to optimizer: Optimizer, epoch: Int, base: Float) {
        optimizer.learningRate = learningRate(epoch: epoch, base: base)
    }
}

/// The rate multiplied by `gamma` every `stepSize` epochs (`torch.optim.lr_scheduler.StepLR`):
/// base · gamma^⌊epoch / stepSize⌋.
public struct StepDecay: LearningRateSchedule, Sendable {
    /// Epochs between two decays.
    public let stepSize: Int
    /// The factor applied at each decay.
    public let gamma: Float

    /// Throws when `stepSize` < 1 or `gamma` < 0.
    public init(stepSize: Int, gamma: Float = 0.1) throws {
        try requireHyperparameter(stepSize >= 1, "StepDecay", "stepSize", stepSize, ">= 1")
        try requireHyperparameter(gamma >= 0, "StepDecay", "gamma", gamma, ">= 0")
        self.stepSize = stepSize
        self.gamma = gamma
    }

    public func learningRate(epoch: Int, base: Float) -> Float {
        Float(Double(base) * Foundation.pow(Double(gamma), Double(Swift.max(epoch, 0) / stepSize)))
    }
}

/// The rate multiplied by `gamma` every epoch (`torch.optim.lr_scheduler.ExponentialLR`): base · gamma^epoch.
public struct ExponentialDecay: LearningRateSchedule, Sendable {
    /// The factor applied every epoch.
    public let gamma: Float

    /// Throws when `gamma` < 0.
    public init(gamma: Float) throws {
        try requireHyperparameter(gamma >= 0, "ExponentialDecay", "gamma", gamma, ">= 0")
        self.gamma = gamma
    }

    public func learningRate(epoch: Int, base: Float) -> Float {
        Float(Double(base) * Foundation.pow(Double(gamma), Double(Swift.max(epoch, 0))))
    }
}

/// Cosine annealing from `base` down to `etaMin` over `tMax` epochs
/// (`torch.optim.lr_scheduler.CosineAnnealingLR`, closed form, no restarts):
/// etaMin + (base − etaMin) · (1 + cos(π · epoch / tMax)) / 2. Past `tMax` the cosine continues
/// (the rate rises again), as PyTorch's closed form does.
public struct CosineAnnealing: LearningRateSchedule, Sendable {
    /// Epochs from `base` down to `etaMin` (half a cosine period).
    public let tMax: Int
    /// The lowest rate, reached at epoch `tMax`.
    public let etaMin: Float

    /// Throws when `tMax` < 1.
    public init(tMax: Int, etaMin: Float = 0) throws {
        try requireHyperparameter(tMax >= 1, "CosineAnnealing", "tMax", tMax, ">= 1")
        self.tMax = tMax
        self.etaMin = etaMin
    }

    public func learningRate(epoch: Int, base: Float) -> Float {
        let e = Double(Swift.max(epoch, 0)), lo = Double(etaMin)
        return Float(lo + (Double(base) - lo) * (1 + Foundation.cos(Double.pi * e / Double(tMax))) / 2)
    }
}
