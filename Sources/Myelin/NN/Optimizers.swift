import Foundation

// The optimizers of torch.optim, with PyTorch's formulas and defaults. Each `step()` is one fused
// kernel per parameter (see the optimizer methods of `Backend` and Kernels/optimizers.cl); the shell they
// share (parameters, step counts, state tensors) is `StatefulOptimizer` in Optimizer.swift.
// Notation: θ parameter, g gradient, lr learning rate, λ weight decay, t the parameter's step (from 1).

/// Stochastic gradient descent with optional momentum, dampening, Nesterov momentum and weight decay
/// (`torch.optim.SGD`):
///
///     g ← g + λθ                       (weight decay, unless decoupled)
///     b ← g at t = 1, else μb + (1 − dampening)g     (when μ ≠ 0)
///     g ← g + μb if nesterov, else b
///     θ ← θ − lr·g
///
/// With `decoupledWeightDecay: true` the decay is applied to the weights instead of the gradient,
/// θ ← θ·(1 − lr·λ), as in AdamW (SGDW).
///
/// ```swift
/// let sgd = try SGD(parameters: model.parameters, learningRate: 0.1, momentum: 0.9, nesterov: true)
/// ```
public final class SGD: StatefulOptimizer {
    /// The momentum factor μ (0: plain SGD, no momentum buffer).
    public let momentum: Float
    /// The dampening of the momentum: the gradient enters the buffer scaled by 1 − dampening.
    public let dampening: Float
    /// Whether Nesterov momentum is used (needs momentum > 0 and dampening 0).
    public let nesterov: Bool
    /// The weight decay λ (L2 penalty).
    public let weightDecay: Float
    /// Whether the weight decay shrinks the weights directly (SGDW) instead of being added to the gradient.
    public let decoupledWeightDecay: Bool

    /// Creates the optimizer with `torch.optim.SGD`'s defaults.
    ///
    /// - Parameters:
    ///   - parameters: the tensors to update (usually `model.parameters`), leaf tensors, each listed once.
    ///   - learningRate: lr, >= 0. Default 1e-3.
    ///   - momentum: μ, >= 0. Default 0.
    ///   - dampening: finite. Default 0.
    ///   - nesterov: use Nesterov momentum. Default false.
    ///   - weightDecay: λ, >= 0. Default 0.
    ///   - decoupledWeightDecay: apply λ to the weights (θ ← θ·(1 − lr·λ)) instead of the gradient. Default false.
    /// - Throws: `OptimizerError.invalidHyperparameter` for a value out of range, naming it and its bounds;
    ///   `OptimizerError.invalidParameter` for a parameter that is not a leaf tensor or is listed twice.
    public init(parameters: [Tensor], learningRate: Float = 1e-3, momentum: Float = 0, dampening: Float = 0,
                nesterov: Bool = false, weightDecay: Float = 0, decoupledWeightDecay: Bool = false) throws {
        let name = "SGD"
        try requireHyperparameter(learningRate >= 0, name, "learningRate", learningRate, ">= 0")
        try requireHyperparameter(momentum >= 0, name, "momentum", momentum, ">= 0")
        try requireHyperparameter(dampening.isFinite, name, "dampening", dampening, "finite")
        try requireHyperparameter(weightDecay >= 0, name, "weightDecay", weightDecay, ">= 0")
        if nesterov {
            try requireHyperparameter(momentum > 0 && dampening == 0, name, "nesterov", nesterov,
                                      "false unless momentum > 0 and dampening = 0 (Nesterov momentum needs them)")
        }
        self.momentum = momentum
        self.dampening = dampening
        self.nesterov = nesterov
        self.weightDecay = weightDecay
        self.decoupledWeightDecay = decoupledWeightDecay
        try super.init(name: name, parameters: parameters, learningRate: learningRate,
                       slotNames: momentum != 0 ? ["momentum_buffer"] : [])
    }

    override func update(_ parameter: Tensor, gradient: Tensor, slots: [Tensor], first: Bool, step: Int) {
        let hyper = SGDStepParameters(learningRate: learningRate, momentum: momentum, dampening: dampening,
                                      weightDecay: weightDecay, nesterov: nesterov,
                                      decoupled: decoupledWeightDecay, first: first)
        parameter.sgdStep(grad: gradient, momentumBuffer: slots.first, hyper)
    }
}

/// Adagrad (`torch.optim.Adagrad`): per-element rates from the sum of squared gradients.
///
///     clr ← lr / (1 + (t − 1)·lrDecay)
///     g ← g + λθ
///     s ← s + g²                       (s starts at initialAccumulatorValue)
///     θ ← θ − clr·g / (√s + ε)
///
/// ```swift
/// let adagrad = try Adagrad(parameters: model.parameters, learningRate: 0.01)
/// ```
public final class Adagrad: StatefulOptimizer {
    /// lrDecay: the rate at step t is lr / (1 + (t − 1)·lrDecay).
    public let learningRateDecay: Float
    /// The weight decay λ (added to the gradient).
    public let weightDecay: Float
    /// The starting value of the sum of squared gradients.
    public let initialAccumulatorValue: Float
    /// ε, added to √s for numerical stability.
    public let eps: Float

    /// Creates the optimizer with `torch.optim.Adagrad`'s defaults.
    ///
    /// - Parameters:
    ///   - parameters: the tensors to update (usually `model.parameters`), leaf tensors, each listed once.
    ///   - learningRate: lr, >= 0. Default 0.01.
    ///   - learningRateDecay: >= 0. Default 0.
    ///   - weightDecay: λ, >= 0. Default 0.
    ///   - initialAccumulatorValue: >= 0. Default 0.
    ///   - eps: ε, >= 0. Default 1e-10.
    /// - Throws: `OptimizerError.invalidHyperparameter` for a value out of range, naming it and its bounds;
    ///   `OptimizerError.invalidParameter` for a parameter that is not a leaf tensor or is listed twice.
    public init(parameters: [Tensor], learningRate: Float = 0.01, learningRateDecay: Float = 0, weightDecay: Float = 0,
                initialAccumulatorValue: Float = 0, eps: Float = 1e-10) throws {
        let name = "Adagrad"
        try requireHyperparameter(learningRate >= 0, name, "learningRate", learningRate, ">= 0")
        try requireHyperparameter(learningRateDecay >= 0, name, "learningRateDecay", learningRateDecay, ">= 0")
        try requireHyperparameter(weightDecay >= 0, name, "weightDecay", weightDecay, ">= 0")
        try requireHyperparameter(initialAccumulatorValue >= 0, name, "initialAccumulatorValue", initialAccumulatorValue, ">= 0")
        try requireHyperparameter(eps >= 0, name, "eps", eps, ">= 0")
        self.learningRateDecay = learningRateDecay
        self.weightDecay = weightDecay
        self.initialAccumulatorValue = initialAccumulatorValue
        self.eps = eps
        try super.init(name: name, parameters: parameters, learningRate: learningRate, slotNames: ["sum"])
    }

    override func update(_ parameter: Tensor, gradient: Tensor, slots: [Tensor], first: Bool, step t: Int) {
        let clr = Double(learningRate) / (1 + Double(t - 1) * Double(learningRateDecay))
        let hyper = AdagradStepParameters(learningRate: Float(clr), weightDecay: weightDecay, eps: eps,
                                          initialAccumulatorValue: initialAccumulatorValue, first: first)
        parameter.adagradStep(grad: gradient, sum: slots[0], hyper)
    }
}

/// RMSProp (`torch.optim.RMSprop`): rates from a running mean of squared gradients.
///
///     g ← g + λθ
///     v ← αv + (1 − α)g²                   (v starts at 0)
///     centered: ḡ ← αḡ + (1 − α)g;  ṽ = v − ḡ², else ṽ = v
///     momentum μ > 0: b ← μb + g / (√ṽ + ε);  θ ← θ − lr·b
///     else:            θ ← θ − lr·g / (√ṽ + ε)
///
/// ```swift
/// let rmsprop = try RMSProp(parameters: model.parameters, learningRate: 1e-3)
/// ```
public final class RMSProp: StatefulOptimizer {
    /// α, the smoothing constant of the running mean of squared gradients.
    public let alpha: Float
    /// ε, added to the root for numerical stability.
    public let eps: Float
    /// The weight decay λ (added to the gradient).
    public let weightDecay: Float
    /// The momentum factor μ (0: no momentum buffer).
    public let momentum: Float
    /// Whether the squared-gradient mean is centered by the running mean of the gradient.
    public let centered: Bool

    /// Creates the optimizer with `torch.optim.RMSprop`'s defaults.
    ///
    /// - Parameters:
    ///   - parameters: the tensors to update (usually `model.parameters`), leaf tensors, each listed once.
    ///   - learningRate: lr, >= 0. Default 0.01.
    ///   - alpha: α in [0, 1]. Default 0.99.
    ///   - eps: ε, >= 0. Default 1e-8.
    ///   - weightDecay: λ, >= 0. Default 0.
    ///   - momentum: μ, >= 0. Default 0.
    ///   - centered: center by the mean gradient. Default false.
    /// - Throws: `OptimizerError.invalidHyperparameter` for a value out of range, naming it and its bounds;
    ///   `OptimizerError.invalidParameter` for a parameter that is not a leaf tensor or is listed twice.
    public init(parameters: [Tensor], learningRate: Float = 0.01, alpha: Float = 0.99, eps: Float = 1e-8,
                weightDecay: Float = 0, momentum: Float = 0, centered: Bool = false) throws {
        let name = "RMSProp"
        try requireHyperparameter(learningRate >= 0, name, "learningRate", learningRate, ">= 0")
        try requireHyperparameter(alpha >= 0 && alpha <= 1, name, "alpha", alpha, "in [0, 1]")
        try requireHyperparameter(eps >= 0, name, "eps", eps, ">= 0")
        try requireHyperparameter(weightDecay >= 0, name, "weightDecay", weightDecay, ">= 0")
        try requireHyperparameter(momentum >= 0, name, "momentum", momentum, ">= 0")
        self.alpha = alpha
        self.eps = eps
        self.weightDecay = weightDecay
        self.momentum = momentum
        self.centered = centered
        try super.init(name: name, parameters: parameters, learningRate: learningRate,
                       slotNames: ["square_avg"] + (momentum > 0 ? ["momentum_buffer"] : []) + (centered ? ["grad_avg"] : []))
    }

    override func update(_ parameter: Tensor, gradient: Tensor, slots: [Tensor], first: Bool, step: Int) {
        let hyper = RMSPropStepParameters(learningRate: learningRate, alpha: alpha, eps: eps, weightDecay: weightDecay,
                                          momentum: momentum, centered: centered, first: first)
        let momentumBuffer = momentum > 0 ? slots[1] : nil
        let gradientAverage = centered ? slots[slots.count - 1] : nil
        parameter.rmspropStep(grad: gradient, squareAverage: slots[0], gradientAverage: gradientAverage,
                              momentumBuffer: momentumBuffer, hyper)
    }
}

/// Adam (`torch.optim.Adam`) with L2-style weight decay (added to the gradient):
///
///     g ← g + λθ
///     m ← β₁m + (1 − β₁)g;   v ← β₂v + (1 − β₂)g²        (both start at 0)
///     m̂ = m / (1 − β₁ᵗ);     v̂ = v / (1 − β₂ᵗ)          (amsgrad: v̂ uses max over steps of v)
///     θ ← θ − lr·m̂ / (√v̂ + ε)
///
/// ```swift
/// let adam = try Adam(parameters: model.parameters, learningRate: 1e-3)
/// ```
public class Adam: StatefulOptimizer {
    /// (β₁, β₂): the decay rates of the running means of the gradient and of its square.
    public let betas: (Float, Float)
    /// ε, added to √v̂ for numerical stability.
    public let eps: Float
    /// The weight decay λ (added to the gradient for Adam, applied to the weights for AdamW).
    public let weightDecay: Float
    /// Whether the AMSGrad variant is used (v̂ from the maximum of v over the steps).
    public let amsgrad: Bool
    /// True for AdamW: the weight decay is applied to the weights, not added to the gradient.
    let decoupledWeightDecay: Bool
    /// Per-parameter weight decays of parameter groups (`AdamW(groups:)`), by tensor identity.
    var weightDecayOverrides: [ObjectIdentifier: Float] = [:]

    /// Creates the optimizer with `torch.optim.Adam`'s defaults.
    ///
    /// - Parameters:
    ///   - parameters: the tensors to update (usually `model.parameters`), leaf tensors, each listed once.
    ///   - learningRate: lr, >= 0. Default 1e-3.
    ///   - betas: (β₁, β₂), each in [0, 1). Default (0.9, 0.999).
    ///   - eps: ε, >= 0. Default 1e-8.
    ///   - weightDecay: λ, >= 0, added to the gradient. Default 0.
    ///   - amsgrad: use AMSGrad. Default false.
    /// - Throws: `OptimizerError.invalidHyperparameter` for a value out of range, naming it and its bounds;
    ///   `OptimizerError.invalidParameter` for a parameter that is not a leaf tensor or is listed twice.
    public convenience init(parameters: [Tensor], learningRate: Float = 1e-3, betas: (Float, Float) = (0.9, 0.999),
                            eps: Float = 1e-8, weightDecay: Float = 0, amsgrad: Bool = false) throws {
        try self.init(name: "Adam", parameters: parameters, learningRate: learningRate, betas: betas, eps: eps,
                      weightDecay: weightDecay, amsgrad: amsgrad, decoupledWeightDecay: false)
    }

    /// Adam, or AdamW with `decoupledWeightDecay`; `name` is the one errors give.
    init(name: String, parameters: [Tensor], learningRate: Float, betas: (Float, Float), eps: Float,
         weightDecay: Float, amsgrad: Bool, decoupledWeightDecay: Bool) throws {
        try requireHyperparameter(learningRate >= 0, name, "learningRate", learningRate, ">= 0")
        try requireHyperparameter(betas.0 >= 0 && betas.0 < 1, name, "betas.0", betas.0, "in [0, 1)")
        try requireHyperparameter(betas.1 >= 0 && betas.1 < 1, name, "betas.1", betas.1, "in [0, 1)")
        try requireHyperparameter(eps >= 0, name, "eps", eps, ">= 0")
        try requireHyperparameter(weightDecay >= 0, name, "weightDecay", weightDecay, ">= 0")
        self.betas = betas
        self.eps = eps
        self.weightDecay = weightDecay
        self.amsgrad = amsgrad
        self.decoupledWeightDecay = decoupledWeightDecay
        try super.init(name: name, parameters: parameters, learningRate: learningRate,
                       slotNames: ["exp_avg", "exp_avg_sq"] + (amsgrad ? ["max_exp_avg_sq"] : []))
    }

    override func update(_ parameter: Tensor, gradient: Tensor, slots: [Tensor], first: Bool, step t: Int) {
        // Bias corrections from the host-side step count, in Double.
        let bc1 = 1 - Foundation.pow(Double(betas.0), Double(t))
        let bc2 = 1 - Foundation.pow(Double(betas.1), Double(t))
        let hyper = AdamStepParameters(learningRate: learningRate, beta1: betas.0, beta2: betas.1, eps: eps,
                                       weightDecay: weightDecay(for: parameter), stepSize: Float(Double(learningRate) / bc1),
                                       biasCorrection2Sqrt: Float(bc2.squareRoot()), decoupled: decoupledWeightDecay,
                                       amsgrad: amsgrad, first: first)
        parameter.adamStep(grad: gradient, expAvg: slots[0], expAvgSq: slots[1], maxExpAvgSq: amsgrad ? slots[2] : nil, hyper,
                           batch: updateBatch)
    }
}

/// AdamW (`torch.optim.AdamW`, like it a subclass of `Adam`): Adam with decoupled weight decay, applied to the
/// weights:
///
///     θ ← θ·(1 − lr·λ)
///     then the Adam update without the λθ gradient term.
///
/// ```swift
/// let adamw = try AdamW(parameters: model.parameters, learningRate: 1e-3, weightDecay: 0.01)
/// ```
public final class AdamW: Adam {
    /// Creates the optimizer with `torch.optim.AdamW`'s defaults (weight decay 0.01).
    ///
    /// - Parameters:
    ///   - parameters: the tensors to update (usually `model.parameters`), leaf tensors, each listed once.
    ///   - learningRate: lr, >= 0. Default 1e-3.
    ///   - betas: (β₁, β₂), each in [0, 1). Default (0.9, 0.999).
    ///   - eps: ε, >= 0. Default 1e-8.
    ///   - weightDecay: λ, >= 0, applied to the weights. Default 0.01.
    ///   - amsgrad: use AMSGrad. Default false.
    /// - Throws: `OptimizerError.invalidHyperparameter` for a value out of range, naming it and its bounds;
    ///   `OptimizerError.invalidParameter` for a parameter that is not a leaf tensor or is listed twice.
    public init(parameters: [Tensor], learningRate: Float = 1e-3, betas: (Float, Float) = (0.9, 0.999),
                eps: Float = 1e-8, weightDecay: Float = 0.01, amsgrad: Bool = false) throws {
        try super.init(name: "AdamW", parameters: parameters, learningRate: learningRate, betas: betas, eps: eps,
                       weightDecay: weightDecay, amsgrad: amsgrad, decoupledWeightDecay: true)
    }
}
