import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

// Everything the tests know about each activation, in one place: the list every test that goes over the
// activations uses, their Double references (f and f'), the named tensor methods and the shorthand layers. A new
// activation is a case in `TestActivations.all` and in the two switches of `Reference` below (and, where it has
// them, its method in `namedMethods` and its layer in `layers`); ActivationTests and the Dense, linear, gradient
// and layer tests then cover it.

/// The activations the tests go over.
enum TestActivations {
    /// Every activation, the parametrized ones with several parameters: PyTorch's defaults (slope 0.01, alpha 1),
    /// others, and negative or zero ones.
    static let all: [Activation] = [
        .identity, .step, .sigmoid, .tanh, .relu,
        .leakyRelu(slope: 0.01), .leakyRelu(slope: 0.1), .leakyRelu(slope: 0.3), .leakyRelu(slope: -0.5),
        .elu(alpha: 1), .elu(alpha: 0.5), .elu(alpha: 0.7), .elu(alpha: 1.5), .elu(alpha: -0.5), .elu(alpha: 0),
        .selu, .softplus, .geluTanh, .geluErf, .silu,
    ]

    /// Those with a gradient: every activation but `step`.
    static let differentiable = all.filter { $0 != .step }

    /// Each named tensor method (`x.relu()`, `x.gelu(approximate: true)`, ...) applied to `x`, with the activation
    /// it must equal; the parametrized ones with their default and with another parameter.
    static func namedMethods(of x: Tensor) -> [(Tensor, Activation)] {
        [
            (x.step(), .step), (x.sigmoid(), .sigmoid), (x.tanh(), .tanh), (x.relu(), .relu),
            (x.leakyRelu(), .leakyRelu(slope: 0.01)), (x.leakyRelu(slope: 0.2), .leakyRelu(slope: 0.2)),
            (x.elu(), .elu(alpha: 1)), (x.elu(alpha: 2), .elu(alpha: 2)), (x.selu(), .selu), (x.softplus(), .softplus),
            (x.gelu(), .geluErf), (x.gelu(approximate: true), .geluTanh), (x.silu(), .silu),
        ]
    }

    /// The shorthand activation layers with a gradient (`ReLU()`, `LeakyReLU(slope:)`, ...; `Step` has none).
    static var layers: [ActivationLayer] {
        [ReLU(), Sigmoid(), Tanh(), LeakyReLU(slope: 0.2), ELU(alpha: 0.5), SELU(), Softplus(), GELU(approximate: true),
         GELU(), SiLU(), Identity()]
    }
}

/// The Double reference of every activation.
extension Reference {
    static let seluLambda = 1.0507009873554805
    static let seluAlpha = 1.6732632423543772

    /// f(x) in Double.
    static func activation(_ a: Activation, _ x: Double) -> Double {
        switch a {
        case .identity: return x
        case .step: return x > 0 ? 1 : 0
        case .sigmoid: return 1 / (1 + Foundation.exp(-x))
        case .tanh: return Foundation.tanh(x)
        case .relu: return Swift.max(x, 0)
        case .leakyRelu(let s): return x > 0 ? x : Double(s) * x
        case .elu(let al): return x > 0 ? x : Double(al) * (Foundation.exp(x) - 1)
        case .selu: return seluLambda * (x > 0 ? x : seluAlpha * (Foundation.exp(x) - 1))
        case .softplus: return Swift.max(x, 0) + Foundation.log1p(Foundation.exp(-Swift.abs(x)))
        case .geluTanh:
            return 0.5 * x * (1 + Foundation.tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x)))
        case .geluErf: return 0.5 * x * (1 + Foundation.erf(x / 2.0.squareRoot()))
        case .silu: return x / (1 + Foundation.exp(-x))
        }
    }

    /// f'(x) in Double, written from the definition (not from f's output).
    static func activationDerivative(_ a: Activation, _ x: Double) -> Double {
        switch a {
        case .identity: return 1
        case .step: return 0
        case .sigmoid: let s = 1 / (1 + Foundation.exp(-x)); return s * (1 - s)
        case .tanh: let t = Foundation.tanh(x); return 1 - t * t
        case .relu: return x > 0 ? 1 : 0
        case .leakyRelu(let s): return x > 0 ? 1 : Double(s)
        case .elu(let al): return x > 0 ? 1 : Double(al) * Foundation.exp(x)
        case .selu: return x > 0 ? seluLambda : seluLambda * seluAlpha * Foundation.exp(x)
        case .softplus: return 1 / (1 + Foundation.exp(-x))
        case .geluTanh:
            let c = (2 / Double.pi).squareRoot()
            let t = Foundation.tanh(c * (x + 0.044715 * x * x * x))
            return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x)
        case .geluErf:
            return 0.5 * (1 + Foundation.erf(x / 2.0.squareRoot())) + x * Foundation.exp(-0.5 * x * x) / (2 * Double.pi).squareRoot()
        case .silu: return 1 / (1 + Foundation.exp(-x)) + x * Foundation.exp(-x) / ((1 + Foundation.exp(-x)) * (1 + Foundation.exp(-x)))
        }
    }
}
