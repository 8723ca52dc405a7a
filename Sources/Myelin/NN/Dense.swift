import Foundation

/// A fully connected layer: `activation(x · weightᵀ + bias)` for x [..., inputSize] (any rank: the last axis is
/// the features, as `nn.Linear`; the leading axes are rows of one product), computed as one fused GEMM with B transposed (bias and activation in its epilogue, see `Tensor.linear`).
///
/// The weight is stored [outputSize, inputSize] and the bias [outputSize], exactly like PyTorch's
/// `nn.Linear`, under the same state-dict keys (`weight`, `bias`): a `Linear`'s tensors load into a
/// `Dense` and back with no conversion. In a `Sequential`, a `Dense` with an activation other than
/// `.identity` stands for PyTorch's `Linear` followed by the activation module and takes two indices
/// (see `Sequential`).
///
/// ```swift
/// let layer = Dense(inputSize: 784, outputSize: 128, activation: .relu, seed: 1)
/// let y = try layer(x)   // x [batch, 784] -> y [batch, 128]
/// ```
public final class Dense: Layer {
    /// The number of input features (the last dimension of the input).
    public let inputSize: Int
    /// The number of output features (the last dimension of the output).
    public let outputSize: Int
    /// Applied to `x · weightᵀ + bias`, fused into the matrix product.
    public let activation: Activation
    // weight and bias skip Swift's dynamic exclusivity checks (read on every forward pass): they are only
    // read whole or replaced whole (`setTensor`), never passed inout.
    /// [outputSize, inputSize], like `nn.Linear.weight`.
    @exclusivity(unchecked) public private(set) var weight: Tensor
    /// [outputSize], or nil for a layer without bias.
    @exclusivity(unchecked) public private(set) var bias: Tensor?
    public var isTraining = true

    /// Creates a layer with freshly initialised weight and bias.
    ///
    /// - Parameters:
    ///   - inputSize: the number of input features; must be positive.
    ///   - outputSize: the number of output features; must be positive.
    ///   - activation: applied to the output. Default `.identity` (none).
    ///   - bias: whether the layer adds a bias [outputSize]. Default true.
    ///   - weightInit: fills the weight (fan-in = inputSize, fan-out = outputSize). Default Glorot uniform.
    ///     `.array` values are taken in the stored order, [outputSize, inputSize] row-major, as PyTorch's
    ///     `nn.Linear.weight.flatten()` gives them. Random values are drawn in [inputSize, outputSize] row-major
    ///     order and stored transposed, so a seed gives the same network as in earlier versions of Myelin.
    ///   - biasInit: fills the bias. Default zeros.
    ///   - seed: the weight's seed (the bias uses `seed + 1`); nil draws one from `Initializer.nextSeed()`
    ///     (so `Random.seed(_:)` fixes it too).
    ///   - device: where the weight and bias live. Default `Device.default`.
    public init(inputSize: Int, outputSize: Int, activation: Activation = .identity, bias: Bool = true,
                weightInit: Initializer = .xavierUniform, biasInit: Initializer = .zeros,
                seed: UInt64? = nil, device: Device = .default) {
        precondition(inputSize > 0 && outputSize > 0,
                     "Dense needs positive sizes, got inputSize \(inputSize), outputSize \(outputSize)")
        self.inputSize = inputSize
        self.outputSize = outputSize
        self.activation = activation
        let s = seed ?? Initializer.nextSeed()
        let layer = "Dense(\(inputSize) -> \(outputSize))"
        weight = Initializer.filled([outputSize, inputSize], on: device, layer: layer) {
            if case .array = weightInit {
                // Given values are already in the stored order [out, in] (PyTorch's).
                return try weightInit.make([outputSize, inputSize], seed: s, on: device)
            }
            // Drawn [in, out] on the host, stored [out, in] once.
            let drawn = try weightInit.make([inputSize, outputSize], seed: s, on: .cpu).toArray()
            var stored = [Float](repeating: 0, count: drawn.count)
            for i in 0..<inputSize { for o in 0..<outputSize { stored[o * inputSize + i] = drawn[i * outputSize + o] } }
            return try Tensor(stored, shape: [outputSize, inputSize], on: device)
        }
        self.bias = bias ? Initializer.filled([outputSize], on: device, layer: layer) {
            try biasInit.make([outputSize], seed: s &+ 1, fans: (inputSize, outputSize), on: device)
        } : nil
        weight.requiresGrad = true
        self.bias?.requiresGrad = true
    }

    public func callAsFunction(_ input: Tensor) throws -> Tensor {
        guard input.rank >= 1, input.shape[input.rank - 1] == inputSize else {
            throw LayerError.shape(layer: layerDescription, expected: "[..., \(inputSize)]", got: input.shape)
        }
        return try input.linear(weight: weight, bias: bias, activation: activation)
    }

    public var namedTensors: [(String, Tensor)] { weightAndBias(weight, bias) }

    public func setTensor(_ name: String, _ value: Tensor) throws {
        let layer = layerDescription  // read before the inout accesses below begin
        try setWeightOrBias(name, value, weight: &weight, bias: &bias, layer: layer)
    }

    /// Two PyTorch modules (`Linear` and the activation) when the activation is fused, else one.
    public var torchModuleCount: Int { activation == .identity ? 1 : 2 }

    public var layerDescription: String {
        "Dense(\(inputSize) -> \(outputSize)\(activation == .identity ? "" : ", \(activation.displayName)")\(bias == nil ? ", no bias" : ""))"
    }
}

/// `Linear` is PyTorch's name for `Dense` (same weight layout [out, in], same keys).
public typealias Linear = Dense

/// The tensor that replaces `current` in `setTensor`: a device copy of `value` (so the caller's tensor is
/// never aliased) that keeps `current`'s `requiresGrad`, after checking the shape.
func replacement(for current: Tensor, _ name: String, _ value: Tensor, layer: String) throws -> Tensor {
    guard value.shape == current.shape else {
        throw LayerError.tensorShape(layer: layer, name: name, expected: current.shape, got: value.shape)
    }
    let t = value.copy()
    t.requiresGrad = current.requiresGrad
    return t
}

/// The tensors of a layer with a weight and an optional bias, under PyTorch's names (`weight`, `bias`).
func weightAndBias(_ weight: Tensor, _ bias: Tensor?) -> [(String, Tensor)] {
    var out = [("weight", weight)]
    if let bias { out.append(("bias", bias)) }
    return out
}

/// `setTensor` of a layer with a weight and an optional bias: replaces the one `name` names (see `replacement`);
/// any other name, or `bias` on a layer without one, is `LayerError.unknownTensor`.
func setWeightOrBias(_ name: String, _ value: Tensor, weight: inout Tensor, bias: inout Tensor?, layer: String) throws {
    switch name {
    case "weight": weight = try replacement(for: weight, name, value, layer: layer)
    case "bias" where bias != nil: bias = try replacement(for: bias!, name, value, layer: layer)
    default: throw LayerError.unknownTensor(layer: layer, name: name)
    }
}
