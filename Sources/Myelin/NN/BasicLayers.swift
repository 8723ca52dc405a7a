import Foundation

/// A layer without tensors: gives the empty state dict and rejects `setTensor`.
public protocol ParameterlessLayer: Layer {}

extension ParameterlessLayer {
    public var namedTensors: [(String, Tensor)] { [] }
    public func setTensor(_ name: String, _ value: Tensor) throws {
        throw LayerError.unknownTensor(layer: layerDescription, name: name)
    }
}

/// Applies an activation function elementwise. `ReLU()`, `Sigmoid()`, ... are shorthands.
/// `.step` works forward only: backward through it throws.
///
/// ```swift
/// let model = Sequential { Dense(inputSize: 4, outputSize: 8); ActivationLayer(.leakyRelu(slope: 0.1)) }
/// ```
public class ActivationLayer: ParameterlessLayer {
    /// The function applied to every element.
    public let activation: Activation
    public var isTraining = true

    /// A layer applying `activation` elementwise.
    public init(_ activation: Activation) { self.activation = activation }

    public func callAsFunction(_ input: Tensor) throws -> Tensor {
        activation == .identity ? input : input.activation(activation)
    }

    public var layerDescription: String { activation.layerName }
}

/// max(x, 0).
public final class ReLU: ActivationLayer {
    /// A ReLU activation layer.
    public init() { super.init(.relu) }
}
/// The logistic function 1 / (1 + e^-x).
public final class Sigmoid: ActivationLayer {
    /// A sigmoid activation layer.
    public init() { super.init(.sigmoid) }
}
/// Hyperbolic tangent.
public final class Tanh: ActivationLayer {
    /// A tanh activation layer.
    public init() { super.init(.tanh) }
}
/// x for x > 0, slope·x otherwise.
public final class LeakyReLU: ActivationLayer {
    /// A leaky ReLU with `slope` for negative inputs (PyTorch's default 0.01).
    public init(slope: Float = 0.01) { super.init(.leakyRelu(slope: slope)) }
}
/// x for x > 0, alpha·(e^x - 1) otherwise.
public final class ELU: ActivationLayer {
    /// An ELU whose negative side tends to −`alpha`.
    public init(alpha: Float = 1) { super.init(.elu(alpha: alpha)) }
}
/// Scaled ELU (self-normalizing networks).
public final class SELU: ActivationLayer {
    /// A SELU activation layer.
    public init() { super.init(.selu) }
}
/// log(1 + e^x).
public final class Softplus: ActivationLayer {
    /// A softplus activation layer.
    public init() { super.init(.softplus) }
}
/// GELU; `approximate: true` uses the tanh approximation, `false` the exact erf form.
public final class GELU: ActivationLayer {
    /// A GELU layer: the exact erf form, or the tanh approximation when `approximate` is true.
    public init(approximate: Bool = false) { super.init(approximate ? .geluTanh : .geluErf) }
}
/// SiLU (swish): x·σ(x), as PyTorch's `nn.SiLU`.
public final class SiLU: ActivationLayer {
    /// A SiLU activation layer.
    public init() { super.init(.silu) }
}
/// Heaviside step (1 where x > 0): forward only, for perceptron demos; backward through it throws.
public final class Step: ActivationLayer {
    /// A step layer (forward only).
    public init() { super.init(.step) }
}
/// Passes its input through unchanged.
public final class Identity: ActivationLayer {
    /// A layer that returns its input.
    public init() { super.init(.identity) }
}

/// Softmax over the last axis (probabilities). For training, prefer raw logits with
/// `softmaxCrossEntropy(logits:labels:)`, which is stabler and faster.
public final class Softmax: ParameterlessLayer {
    public var isTraining = true
    /// A softmax layer over the last axis.
    public init() {}
    public func callAsFunction(_ input: Tensor) throws -> Tensor {
        guard input.rank >= 1 else { throw LayerError.shape(layer: layerDescription, expected: "[..., classes]", got: input.shape) }
        return input.softmax()
    }
    public var layerDescription: String { "Softmax" }
}

/// Collapses every axis after the first: [N, d1, d2, ...] -> [N, d1·d2·...] (no copy).
public final class Flatten: ParameterlessLayer {
    public var isTraining = true
    /// A flatten layer.
    public init() {}
    public func callAsFunction(_ input: Tensor) throws -> Tensor {
        guard input.rank >= 1 else { throw LayerError.shape(layer: layerDescription, expected: "[batch, ...]", got: input.shape) }
        return try input.reshaped([input.shape[0], input.count / Swift.max(input.shape[0], 1)])
    }
    public var layerDescription: String { "Flatten" }
}

/// Inverted dropout: in train mode each element is zeroed with probability `rate` and the survivors are
/// scaled by 1 / (1 - rate); in eval mode it is the identity.
///
/// The mask is drawn on the device (`Tensor.deviceUniform`) from `seed` and the number of train-mode
/// calls so far (`calls`), so a run is reproducible and gives the same masks on every device.
///
/// ```swift
/// let drop = Dropout(rate: 0.5, seed: 7)
/// ```
public final class Dropout: ParameterlessLayer {
    /// The probability that an element is zeroed in train mode, in [0, 1).
    public let rate: Float
    /// The seed the masks derive from.
    public let seed: UInt64
    /// Train-mode forward passes so far; each uses a fresh mask. Set it back to replay a mask.
    public var calls: UInt64 = 0
    public var isTraining = true

    /// A dropout layer zeroing elements with probability `rate`; a nil `seed` draws one from `Initializer.nextSeed()`.
    public init(rate: Float, seed: UInt64? = nil) {
        precondition(rate >= 0 && rate < 1, "Dropout rate must be in [0, 1), got \(rate)")
        self.rate = rate
        self.seed = seed ?? Initializer.nextSeed()
    }

    /// The seed of the mask for call number `call`.
    func maskSeed(_ call: UInt64) -> UInt64 {
        var g = SeededGenerator(seed: seed ^ (call &* 0xD1B5_4A32_D192_ED03))
        return g.next()
    }

    public func callAsFunction(_ input: Tensor) throws -> Tensor {
        guard isTraining, rate > 0 else { return input }
        let seed = maskSeed(calls)
        calls &+= 1
        if CaptureHooks.isRecording {
            // A captured step draws the next call's mask seed the same way at each replay.
            CaptureHooks.noteSeed(seed) { [self] in
                let next = maskSeed(calls)
                calls &+= 1
                return next
            }
        }
        let u = Tensor.deviceUniform(input.shape, seed: seed, on: input.device)
        // keep where u >= rate (probability 1 - rate), scaled so the expectation is unchanged.
        let mask = u.greaterEqual(rate) * (1 / (1 - rate))
        return try input * mask
    }

    public var layerDescription: String { "Dropout(\(rate))" }
}

/// Gives each sample the shape `sampleShape`: [N, ...] -> [N] + sampleShape (no copy), for any input whose
/// samples hold as many values, e.g. flat Fashion-MNIST rows [N, 784] -> images [N, 1, 28, 28] (images
/// already [N, 1, 28, 28] pass unchanged). It stands for PyTorch's `nn.Unflatten(1, sampleShape)` (one module
/// in a `Sequential`, no tensors).
///
/// ```swift
/// let model = Sequential { Reshape([1, 28, 28]); Conv2D(inChannels: 1, outChannels: 8, kernelSize: 3) }
/// ```
public final class Reshape: ParameterlessLayer {
    /// The shape of one sample after the layer.
    public let sampleShape: [Int]
    public var isTraining = true

    /// A layer that reshapes every sample to `sampleShape` (positive sizes).
    public init(_ sampleShape: [Int]) {
        precondition(!sampleShape.isEmpty && sampleShape.allSatisfy { $0 > 0 },
                     "Reshape needs a non-empty shape of positive sizes, got \(sampleShape)")
        self.sampleShape = sampleShape
    }

    public func callAsFunction(_ input: Tensor) throws -> Tensor {
        let perSample = sampleShape.reduce(1, *)
        guard input.rank >= 1, input.shape.dropFirst().reduce(1, *) == perSample else {
            throw LayerError.shape(layer: layerDescription, expected: "[batch, ...] with \(perSample) values per sample", got: input.shape)
        }
        return try input.reshaped([input.shape[0]] + sampleShape)
    }

    public var layerDescription: String { "Reshape(\(sampleShape))" }
}
