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
///
/// A schedule whose `perBatch` is true (``WarmupCosine``) changes the rate within an epoch too: `fit` then sets it
/// before every batch from `learningRate(progress:base:)`, where progress counts epochs as a fraction
/// (`epoch + batch / batchesPerEpoch`).
public protocol LearningRateSchedule {
    /// The learning rate for `epoch` (0-based) when the initial rate is `base`.
    func learningRate(epoch: Int, base: Float) -> Float
    /// The learning rate after `progress` epochs of training (fractional: 2.5 is half-way through the third
    /// epoch). Default: the rate of epoch ⌊progress⌋, for schedules that change once per epoch.
    func learningRate(progress: Double, base: Float) -> Float
    /// Whether the rate changes every batch: `fit` then sets it before each batch from
    /// `learningRate(progress:base:)` instead of once per epoch. Default false.
    var perBatch: Bool { get }
}

extension LearningRateSchedule {
    /// The rate of epoch ⌊progress⌋ (a per-epoch schedule).
    public func learningRate(progress: Double, base: Float) -> Float {
        learningRate(epoch: Int(Swift.max(0, progress).rounded(.down)), base: base)
    }

    /// False: the rate is set once per epoch.
    public var perBatch: Bool { false }

    /// Sets `optimizer.learningRate` to the rate for `epoch`.
    public func apply(to optimizer: Optimizer, epoch: Int, base: Float) {
        optimizer.learningRate = learningRate(epoch: epoch, base: base)
    }

    /// Sets `optimizer.learningRate` to the rate after `progress` (fractional) epochs.
    public func apply(to optimizer: Optimizer, progress: Double, base: Float) {
        optimizer.learningRate = learningRate(progress: progress, base: base)
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

/// A linear warm-up followed by cosine annealing, set every batch (PyTorch's `LinearLR` then `CosineAnnealingLR`
/// chained by `SequentialLR` and stepped per batch). Over the first `warmupEpochs` the rate rises linearly from
/// `warmupStartFactor` · base to base; from there to `totalEpochs` it follows half a cosine down to `etaMin`,
/// and stays at `etaMin` after. Progress is counted in epochs as a fraction (`epoch + batch / batchesPerEpoch`),
/// so the schedule does not depend on the batch count and a resumed run continues it exactly.
///
/// ```swift
/// let schedule = try WarmupCosine(warmupEpochs: 1, totalEpochs: 15)
/// try model.fit(train, epochs: 15, batchSize: 128, loss: .softmaxCrossEntropy, optimizer: sgd, schedule: schedule)
/// ```
public struct WarmupCosine: LearningRateSchedule, Sendable {
    /// Epochs (fractional) of linear warm-up; 0 starts at `base`.
    public let warmupEpochs: Double
    /// The epoch (fractional) at which the rate reaches `etaMin`.
    public let totalEpochs: Double
    /// The lowest rate, reached at `totalEpochs`.
    public let etaMin: Float
    /// The first rate of the warm-up as a fraction of `base`.
    public let warmupStartFactor: Float

    /// Throws when `warmupEpochs` < 0, `totalEpochs` ≤ `warmupEpochs`, `etaMin` < 0 or `warmupStartFactor` is
    /// outside (0, 1].
    public init(warmupEpochs: Double = 1, totalEpochs: Double, etaMin: Float = 0, warmupStartFactor: Float = 0.01) throws {
        try requireHyperparameter(warmupEpochs >= 0 && warmupEpochs.isFinite, "WarmupCosine", "warmupEpochs", warmupEpochs, ">= 0")
        try requireHyperparameter(totalEpochs > warmupEpochs && totalEpochs.isFinite, "WarmupCosine", "totalEpochs",
                                  totalEpochs, "> warmupEpochs (\(warmupEpochs))")
        try requireHyperparameter(etaMin >= 0 && etaMin.isFinite, "WarmupCosine", "etaMin", etaMin, ">= 0")
        try requireHyperparameter(warmupStartFactor > 0 && warmupStartFactor <= 1, "WarmupCosine", "warmupStartFactor",
                                  warmupStartFactor, "in (0, 1]")
        self.warmupEpochs = warmupEpochs
        self.totalEpochs = totalEpochs
        self.etaMin = etaMin
        self.warmupStartFactor = warmupStartFactor
    }

    /// True: `fit` sets the rate before every batch.
    public var perBatch: Bool { true }

    public func learningRate(epoch: Int, base: Float) -> Float {
        learningRate(progress: Double(epoch), base: base)
    }

    public func learningRate(progress: Double, base: Float) -> Float {
        let p = Swift.max(0, progress), b = Double(base)
        if p < warmupEpochs {
            let f = Double(warmupStartFactor)
            return Float(b * (f + (1 - f) * p / warmupEpochs))
        }
        let t = Swift.min(1, (p - warmupEpochs) / (totalEpochs - warmupEpochs)), lo = Double(etaMin)
        return Float(lo + (b - lo) * (1 + Foundation.cos(Double.pi * t)) / 2)
    }
}
