import Foundation

// Everything Swift knows about each activation, in one place: its names, its kernel code, its CPU formulas and
// what its derivative needs. A new activation is a case here (and in each switch below), its `ACT_*` code, `f_*`
// and `g_*` functions and `act_apply` case in Kernels/common.cl, one `ACTIVATION(name)` line in
// Kernels/elementwise.cl, and its tests; layers (`Dense`, `ActivationLayer`) pick it up from here.

/// Activation functions, usable alone (`Tensor.relu()`, ...) and fused into a GEMM's epilogue.
///
/// ```swift
/// let y = x.activation(.leakyRelu(slope: 0.1))
/// let layer = Dense(inputSize: 4, outputSize: 8, activation: .geluErf)
/// ```
public enum Activation: Equatable, Sendable, Hashable {
    /// f(x) = x: no activation.
    case identity
    /// Heaviside step: 1 where x > 0, else 0. Forward only.
    case step
    /// f(x) = 1 / (1 + e^-x).
    case sigmoid
    /// f(x) = tanh(x).
    case tanh
    /// f(x) = max(x, 0).
    case relu
    /// f(x) = x where x > 0, else slope·x (PyTorch's `LeakyReLU(negative_slope)`; 0.01 there by default).
    case leakyRelu(slope: Float)
    /// f(x) = x where x > 0, else alpha·(e^x − 1) (PyTorch's `ELU(alpha)`; 1 there by default).
    case elu(alpha: Float)
    /// f(x) = λ·(x where x > 0, else α·(e^x − 1)) with λ ≈ 1.0507 and α ≈ 1.6733 (PyTorch's `SELU`).
    case selu
    /// f(x) = log(1 + e^x), computed stably (PyTorch's `Softplus` with beta 1).
    case softplus
    /// GELU with the tanh approximation.
    case geluTanh
    /// GELU with the exact erf form.
    case geluErf
    /// SiLU (swish): x·σ(x), as PyTorch's `nn.SiLU`.
    case silu
}

// MARK: names

extension Activation {
    /// A readable name: `relu`, `leakyRelu(0.01)`, `elu(1.0)`, `gelu`, ...
    public var displayName: String {
        switch self {
        case .identity: return "identity"
        case .step: return "step"
        case .sigmoid: return "sigmoid"
        case .tanh: return "tanh"
        case .relu: return "relu"
        case .leakyRelu(let s): return "leakyRelu(\(s))"
        case .elu(let a): return "elu(\(a))"
        case .selu: return "selu"
        case .softplus: return "softplus"
        case .geluTanh: return "gelu(tanh)"
        case .geluErf: return "gelu"
        case .silu: return "silu"
        }
    }

    /// The name of the layer that applies the activation alone: `ReLU`, `LeakyReLU(0.01)`, `GELU`, ...
    package var layerName: String {
        switch self {
        case .identity: return "Identity"
        case .step: return "Step"
        case .sigmoid: return "Sigmoid"
        case .tanh: return "Tanh"
        case .relu: return "ReLU"
        case .leakyRelu(let s): return "LeakyReLU(\(s))"
        case .elu(let a): return "ELU(\(a))"
        case .selu: return "SELU"
        case .softplus: return "Softplus"
        case .geluTanh: return "GELU(tanh)"
        case .geluErf: return "GELU"
        case .silu: return "SiLU"
        }
    }
}

// MARK: kernel side

extension Activation {
    /// The kernel-side code of the activation (matches `ACT_*` in Kernels/common.cl).
    var code: Int32 {
        switch self {
        case .identity: return 0
        case .step: return 1
        case .sigmoid: return 2
        case .tanh: return 3
        case .relu: return 4
        case .leakyRelu: return 5
        case .elu: return 6
        case .selu: return 7
        case .softplus: return 8
        case .geluTanh: return 9
        case .geluErf: return 10
        case .silu: return 11
        }
    }

    /// The activation's parameter (slope or alpha), 0 where it has none.
    var parameter: Float {
        switch self {
        case .leakyRelu(let s): return s
        case .elu(let a): return a
        default: return 0
        }
    }

    /// The kernel name suffix (`act_relu`, `actgrad_relu`, ... in Kernels/elementwise.cl; `f_relu`, `g_relu` in
    /// Kernels/common.cl).
    var kernelName: String {
        switch self {
        case .identity: return "identity"
        case .step: return "step"
        case .sigmoid: return "sigmoid"
        case .tanh: return "tanh"
        case .relu: return "relu"
        case .leakyRelu: return "leaky_relu"
        case .elu: return "elu"
        case .selu: return "selu"
        case .softplus: return "softplus"
        case .geluTanh: return "gelu_tanh"
        case .geluErf: return "gelu_erf"
        case .silu: return "silu"
        }
    }
}

// MARK: formulas (the CPU device's; the same as f_* and g_* in Kernels/common.cl)

extension Activation {
    static let seluLambda: Float = 1.0507009873554805
    static let seluAlpha: Float = 1.6732632423543772
    static let sqrt2OverPi: Float = 0.7978845608028654
    static let geluC: Float = 0.044715

    /// f(x).
    @inline(__always) func apply(_ x: Float) -> Float {
        switch self {
        case .identity: return x
        case .step: return x > 0 ? 1 : 0
        case .sigmoid: return 1 / (1 + Foundation.exp(-x))
        case .tanh: return Foundation.tanh(x)
        case .relu: return x > 0 ? x : 0
        case .leakyRelu(let s): return x > 0 ? x : s * x
        case .elu(let al): return x > 0 ? x : al * (Foundation.exp(x) - 1)
        case .selu: return Self.seluLambda * (x > 0 ? x : Self.seluAlpha * (Foundation.exp(x) - 1))
        case .softplus: return max(x, 0) + Foundation.log1p(Foundation.exp(-Swift.abs(x)))
        case .geluTanh:
            // x·sigmoid(2u) through e = exp(-2|u|), as in Kernels/common.cl (no cancellation at large |x|).
            let u = Self.sqrt2OverPi * (x + Self.geluC * x * x * x)
            let e = Foundation.exp(-2 * Swift.abs(u))
            return x * ((u >= 0 ? 1 : e) / (1 + e))
        case .geluErf: return 0.5 * x * (1 + Foundation.erf(x * 0.7071067811865476))
        case .silu: return x / (1 + Foundation.exp(-x))
        }
    }

    /// f'(x) given x and y = f(x).
    @inline(__always) func derivative(x: Float, y: Float) -> Float {
        switch self {
        case .identity: return 1
        case .step: return 0
        case .sigmoid: return y * (1 - y)
        case .tanh: return 1 - y * y
        case .relu: return x > 0 ? 1 : 0
        case .leakyRelu(let s): return x > 0 ? 1 : s
        case .elu(let al): return x > 0 ? 1 : y + al
        case .selu: return x > 0 ? Self.seluLambda : Self.seluLambda * Self.seluAlpha * Foundation.exp(x)
        case .softplus: return 1 / (1 + Foundation.exp(-x))
        case .geluTanh:
            let u = Self.sqrt2OverPi * (x + Self.geluC * x * x * x)
            let e = Foundation.exp(-2 * Swift.abs(u))
            let r = 1 / (1 + e)
            let s = u >= 0 ? r : e * r
            return e == 0 ? s : s + 2 * x * e * r * r * Self.sqrt2OverPi * (1 + 3 * Self.geluC * x * x)
        case .geluErf:
            return 0.5 * (1 + Foundation.erf(x * 0.7071067811865476)) + x * Foundation.exp(-0.5 * x * x) * 0.3989422804014327
        case .silu:
            let s = 1 / (1 + Foundation.exp(-x))
            return s * (1 + x * (1 - s))
        }
    }

    // MARK: what the backward needs

    /// True when f'(x) can be computed from y = f(x) alone (passing y for x in the backward formula), so the
    /// activation can be fused into a GEMM without keeping the pre-activation.
    var derivativeFromOutput: Bool {
        switch self {
        case .identity, .step, .sigmoid, .tanh, .relu: return true
        // y > 0 exactly where x > 0 only for a positive slope, or a non-negative alpha.
        case .leakyRelu(let s): return s > 0
        case .elu(let a): return a >= 0
        case .selu, .softplus, .geluTanh, .geluErf, .silu: return false
        }
    }

    /// The error a backward pass through the activation throws, nil when it has a gradient.
    var missingGradientError: TensorError? {
        switch self {
        case .step:
            return .noGradient("the step activation has no gradient (it is forward only); use sigmoid or another differentiable activation in a network that is trained")
        default: return nil
        }
    }
}
