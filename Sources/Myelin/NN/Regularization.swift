import Foundation

// Penalties to add to a loss, and gradient clipping. Everything stays on the device: the penalties
// are scalar tensors (autograd gives their gradients) and clipping scales gradients by a factor that
// is itself computed on the device.

/// Errors from the regularization helpers, naming the helper and the offending tensors.
public enum RegularizationError: Error, CustomStringConvertible, Equatable {
    /// The helper (named) was given no tensors.
    case noParameters(String)
    /// The helper (named) was given tensors on two devices (named).
    case deviceMismatch(String, String, String)
    /// The helper (named) was given an argument out of its range (the reason).
    case invalidArgument(String, String)

    public var description: String {
        switch self {
        case .noParameters(let f): return "\(f): the parameter list is empty"
        case .deviceMismatch(let f, let a, let b):
            return "\(f): tensors are on different devices (\(a) and \(b)); move them to one device first"
        case .invalidArgument(let f, let why): return "\(f): \(why)"
        }
    }
}

private func sameDevice(_ tensors: [Tensor], _ function: String) throws -> Device {
    guard let first = tensors.first else { throw RegularizationError.noParameters(function) }
    for t in tensors where t.device !== first.device {
        throw RegularizationError.deviceMismatch(function, first.device.name, t.device.name)
    }
    return first.device
}

/// The L1 penalty λ·Σ|w| over every element of `parameters`, a scalar tensor to add to the loss.
/// Its gradient is λ·sign(w) (0 at w = 0).
///
/// ```swift
/// let loss = try crossEntropy(logits, labels) + l1Penalty(model.parameters, lambda: 1e-4)
/// ```
public func l1Penalty(_ parameters: [Tensor], lambda: Float) throws -> Tensor {
    _ = try sameDevice(parameters, "l1Penalty")
    var total = parameters[0].abs().sum()
    for p in parameters.dropFirst() { total = try total + p.abs().sum() }
    return total * lambda
}

/// The L2 penalty (λ/2)·Σw² over every element of `parameters`, a scalar tensor to add to the loss.
/// The factor 1/2 makes its gradient λ·w: exactly PyTorch-style `weightDecay: λ` of `SGD` / `Adam`.
///
/// ```swift
/// let loss = try meanSquaredError(prediction, target) + l2Penalty(model.parameters, lambda: 1e-4)
/// ```
public func l2Penalty(_ parameters: [Tensor], lambda: Float) throws -> Tensor {
    _ = try sameDevice(parameters, "l2Penalty")
    var total = parameters[0].square().sum()
    for p in parameters.dropFirst() { total = try total + p.square().sum() }
    return total * (lambda / 2)
}

/// Clamps every gradient element of `parameters` to [−maxValue, maxValue]
/// (`torch.nn.utils.clip_grad_value_`). Parameters without a gradient are skipped.
public func clipGradients(_ parameters: [Tensor], byValue maxValue: Float) throws {
    guard maxValue >= 0 else {
        throw RegularizationError.invalidArgument("clipGradients(byValue:)", "maxValue must be >= 0, got \(maxValue)")
    }
    withNoGrad {
        for p in parameters { if let g = p.grad { p.grad = g.clamp(min: -maxValue, max: maxValue) } }
    }
}

/// The L2 norm of all gradients of `parameters` taken together, √(Σ g²), as a scalar tensor on their
/// device (no read back); nil when no parameter has a gradient.
public func globalGradientNorm(_ parameters: [Tensor]) throws -> Tensor? {
    let grads = parameters.compactMap(\.grad)
    guard !grads.isEmpty else { return nil }
    _ = try sameDevice(grads, "globalGradientNorm")
    return try withNoGrad {
        var sumOfSquares = grads[0].square().sum()
        for g in grads.dropFirst() { sumOfSquares = try sumOfSquares + g.square().sum() }
        return sumOfSquares.sqrt()
    }
}

/// Scales all gradients of `parameters` together so that their global L2 norm is at most `maxNorm`
/// (`torch.nn.utils.clip_grad_norm_`): g ← g · min(1, maxNorm / (norm + 1e-6)).
/// The norm and the factor stay on the device; the norm (before clipping) is read back and returned
/// only when `readNorm` is true (that read waits for the device). Returns nil otherwise, or when no
/// parameter has a gradient.
///
/// ```swift
/// try loss.backward()
/// try clipGradients(model.parameters, byGlobalNorm: 1.0)
/// try optimizer.step()
/// ```
@discardableResult
public func clipGradients(_ parameters: [Tensor], byGlobalNorm maxNorm: Float, readNorm: Bool = false) throws -> Float? {
    guard maxNorm > 0 else {
        throw RegularizationError.invalidArgument("clipGradients(byGlobalNorm:)", "maxNorm must be > 0, got \(maxNorm)")
    }
    guard let norm = try globalGradientNorm(parameters) else { return nil }
    try withNoGrad {
        let factor = (maxNorm / (norm + 1e-6)).minimum(1)
        for p in parameters { if let g = p.grad { p.grad = try g * factor } }
    }
    return try readNorm ? norm.item() : nil
}

extension Optimizer {
    /// Clamps the gradients of this optimizer's parameters; see `clipGradients(_:byValue:)`.
    public func clipGradients(byValue maxValue: Float) throws {
        try Myelin.clipGradients(parameters, byValue: maxValue)
    }

    /// Scales the gradients of this optimizer's parameters to a global norm of at most `maxNorm`;
    /// see `clipGradients(_:byGlobalNorm:readNorm:)`.
    @discardableResult
    public func clipGradients(byGlobalNorm maxNorm: Float, readNorm: Bool = false) throws -> Float? {
        try Myelin.clipGradients(parameters, byGlobalNorm: maxNorm, readNorm: readNorm)
    }
}
