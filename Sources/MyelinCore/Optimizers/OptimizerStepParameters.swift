// Hyperparameters of one fused optimizer update, as the `Backend` optimizer methods take them.
// Everything that depends on the step number (bias corrections, decayed rates) is computed on the host
// in Double and passed in, so an update never reads from the device.
// `first` says the state buffers are new and uninitialized: the kernel then uses the state's
// initial value instead of reading them (so the first step is still one launch, with no fill).

/// PyTorch `torch.optim.SGD`, plus decoupled weight decay (`θ ← θ·(1 − lr·λ)`) when `decoupled`.
package struct SGDStepParameters: Equatable, Sendable {
    package var learningRate: Float
    package var momentum: Float
    package var dampening: Float
    package var weightDecay: Float
    package var nesterov: Bool
    package var decoupled: Bool
    package var first: Bool

    package init(learningRate: Float, momentum: Float, dampening: Float, weightDecay: Float, nesterov: Bool, decoupled: Bool, first: Bool) {
        self.learningRate = learningRate
        self.momentum = momentum
        self.dampening = dampening
        self.weightDecay = weightDecay
        self.nesterov = nesterov
        self.decoupled = decoupled
        self.first = first
    }
}

/// PyTorch `torch.optim.Adagrad`; `learningRate` is already decayed: lr / (1 + (t − 1)·lrDecay).
package struct AdagradStepParameters: Equatable, Sendable {
    package var learningRate: Float
    package var weightDecay: Float
    package var eps: Float
    package var initialAccumulatorValue: Float
    package var first: Bool

    package init(learningRate: Float, weightDecay: Float, eps: Float, initialAccumulatorValue: Float, first: Bool) {
        self.learningRate = learningRate
        self.weightDecay = weightDecay
        self.eps = eps
        self.initialAccumulatorValue = initialAccumulatorValue
        self.first = first
    }
}

/// PyTorch `torch.optim.RMSprop`.
package struct RMSPropStepParameters: Equatable, Sendable {
    package var learningRate: Float
    package var alpha: Float
    package var eps: Float
    package var weightDecay: Float
    package var momentum: Float
    package var centered: Bool
    package var first: Bool

    package init(learningRate: Float, alpha: Float, eps: Float, weightDecay: Float, momentum: Float, centered: Bool, first: Bool) {
        self.learningRate = learningRate
        self.alpha = alpha
        self.eps = eps
        self.weightDecay = weightDecay
        self.momentum = momentum
        self.centered = centered
        self.first = first
    }
}

/// PyTorch `torch.optim.Adam` / `AdamW`. `stepSize` = lr / (1 − β₁ᵗ) and `biasCorrection2Sqrt` = √(1 − β₂ᵗ)
/// for the parameter's step t; the update is θ ← θ − stepSize · m / (√v / biasCorrection2Sqrt + ε).
package struct AdamStepParameters: Equatable, Sendable {
    package var learningRate: Float
    package var beta1: Float
    package var beta2: Float
    package var eps: Float
    package var weightDecay: Float
    package var stepSize: Float
    package var biasCorrection2Sqrt: Float
    package var decoupled: Bool
    package var amsgrad: Bool
    package var first: Bool

    package init(learningRate: Float, beta1: Float, beta2: Float, eps: Float, weightDecay: Float, stepSize: Float, biasCorrection2Sqrt: Float, decoupled: Bool, amsgrad: Bool, first: Bool) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
        self.stepSize = stepSize
        self.biasCorrection2Sqrt = biasCorrection2Sqrt
        self.decoupled = decoupled
        self.amsgrad = amsgrad
        self.first = first
    }
}

/// One fused optimizer update as `Backend.optimizerStep` takes it: the algorithm, its hyperparameters and its
/// state buffers (those the configuration does not use are nil).
enum OptimizerStep {
    /// SGD (momentum, dampening, Nesterov, L2 or decoupled weight decay); the momentum buffer when momentum > 0.
    case sgd(SGDStepParameters, momentumBuffer: DeviceBuffer?)
    /// Adagrad: `sum` accumulates squared gradients.
    case adagrad(AdagradStepParameters, sum: DeviceBuffer)
    /// RMSProp: running mean of squared gradients, optional mean gradient (centered) and momentum.
    case rmsprop(RMSPropStepParameters, squareAverage: DeviceBuffer, gradientAverage: DeviceBuffer?,
                 momentumBuffer: DeviceBuffer?)
    /// Adam / AdamW: first and second moments, optional AMSGrad maximum.
    case adam(AdamStepParameters, expAvg: DeviceBuffer, expAvgSq: DeviceBuffer, maxExpAvgSq: DeviceBuffer?)
}

/// One parameter's fused update, as `Backend.optimizerSteps` takes a step's updates.
struct OptimizerUpdate {
    let step: OptimizerStep
    let param: DeviceBuffer, grad: DeviceBuffer
    let count: Int
}

/// The four fused updates as a backend implements them (CPU/CPUBackend+Optimizers.swift,
/// OpenCL/OpenCLBackend+Optimizers.swift); `Backend.optimizerStep` dispatches to them in one place, below.
protocol OptimizerUpdates {
    func sgd(param: DeviceBuffer, grad: DeviceBuffer, momentumBuffer: DeviceBuffer?, count: Int, _ h: SGDStepParameters)
    func adagrad(param: DeviceBuffer, grad: DeviceBuffer, sum: DeviceBuffer, count: Int, _ h: AdagradStepParameters)
    func rmsprop(param: DeviceBuffer, grad: DeviceBuffer, squareAverage: DeviceBuffer, gradientAverage: DeviceBuffer?,
                 momentumBuffer: DeviceBuffer?, count: Int, _ h: RMSPropStepParameters)
    func adam(param: DeviceBuffer, grad: DeviceBuffer, expAvg: DeviceBuffer, expAvgSq: DeviceBuffer,
              maxExpAvgSq: DeviceBuffer?, count: Int, _ h: AdamStepParameters)
}

extension OptimizerUpdates {
    /// `Backend.optimizerSteps` for a backend that runs each update on its own (the CPU: one loop each).
    func optimizerStepsOneByOne(_ updates: [OptimizerUpdate]) {
        for u in updates { optimizerStep(u.step, param: u.param, grad: u.grad, count: u.count) }
    }

    /// `Backend.optimizerStep` for a backend that implements the four updates.
    func optimizerStep(_ step: OptimizerStep, param: DeviceBuffer, grad: DeviceBuffer, count: Int) {
        switch step {
        case .sgd(let h, let momentumBuffer):
            sgd(param: param, grad: grad, momentumBuffer: momentumBuffer, count: count, h)
        case .adagrad(let h, let sum):
            adagrad(param: param, grad: grad, sum: sum, count: count, h)
        case .rmsprop(let h, let squareAverage, let gradientAverage, let momentumBuffer):
            rmsprop(param: param, grad: grad, squareAverage: squareAverage, gradientAverage: gradientAverage,
                    momentumBuffer: momentumBuffer, count: count, h)
        case .adam(let h, let expAvg, let expAvgSq, let maxExpAvgSq):
            adam(param: param, grad: grad, expAvg: expAvg, expAvgSq: expAvgSq, maxExpAvgSq: maxExpAvgSq, count: count, h)
        }
    }
}
