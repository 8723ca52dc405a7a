// Hyperparameters of one fused optimizer update, as the `Backend` optimizer methods take them.
// Everything that depends on the step number (bias corrections, decayed rates) is computed on the host
// in Double and passed in, so an update never reads from the device.
// `first` says the state buffers are new and uninitialized: the kernel then uses the state's
// initial value instead of reading them (so the first step is still one launch, with no fill).

/// PyTorch `torch.optim.SGD`, plus decoupled weight decay (`θ ← θ·(1 − lr·λ)`) when `decoupled`.
struct SGDStepParameters: Equatable {
    var learningRate: Float
    var momentum: Float
    var dampening: Float
    var weightDecay: Float
    var nesterov: Bool
    var decoupled: Bool
    var first: Bool
}

/// PyTorch `torch.optim.Adagrad`; `learningRate` is already decayed: lr / (1 + (t − 1)·lrDecay).
struct AdagradStepParameters: Equatable {
    var learningRate: Float
    var weightDecay: Float
    var eps: Float
    var initialAccumulatorValue: Float
    var first: Bool
}

/// PyTorch `torch.optim.RMSprop`.
struct RMSPropStepParameters: Equatable {
    var learningRate: Float
    var alpha: Float
    var eps: Float
    var weightDecay: Float
    var momentum: Float
    var centered: Bool
    var first: Bool
}

/// PyTorch `torch.optim.Adam` / `AdamW`. `stepSize` = lr / (1 − β₁ᵗ) and `biasCorrection2Sqrt` = √(1 − β₂ᵗ)
/// for the parameter's step t; the update is θ ← θ − stepSize · m / (√v / biasCorrection2Sqrt + ε).
struct AdamStepParameters: Equatable {
    var learningRate: Float
    var beta1: Float
    var beta2: Float
    var eps: Float
    var weightDecay: Float
    var stepSize: Float
    var biasCorrection2Sqrt: Float
    var decoupled: Bool
    var amsgrad: Bool
    var first: Bool
}
