import Foundation

// The layers of a transformer that are not attention: token embeddings and layer normalization (attention and
// the GPT-2 block are in Attention.swift).

/// A lookup table of `count` vectors of size `dimension` (PyTorch's `nn.Embedding`, state key `weight`
/// [count, dimension]): maps whole-number indices of any shape (stored as Float) to indices.shape + [dimension].
/// The backward scatter-adds into the rows used (a repeated index adds up). With `paddingIndex`, that row starts
/// at zero and never gets a gradient, as `padding_idx` does.
///
/// ```swift
/// let tokens = Embedding(count: 65, dimension: 32, seed: 1)
/// let x = try tokens(try Tensor([3, 1, 4, 1], shape: [1, 4]))   // [1, 4] -> [1, 4, 32]
/// ```
public final class Embedding: Layer {
    /// The number of rows (the vocabulary size).
    public let count: Int
    /// The size of each vector.
    public let dimension: Int
    /// The row that is all zeros and gets no gradient, or nil.
    public let paddingIndex: Int?
    /// [count, dimension], like `nn.Embedding.weight`.
    public private(set) var weight: Tensor
    public var isTraining = true

    /// A table with `weightInit` values (default N(0, 1), as PyTorch), from `seed` (nil: `Initializer.nextSeed()`);
    /// the row `paddingIndex` (which must lie in 0..<count) is zeroed.
    public init(count: Int, dimension: Int, paddingIndex: Int? = nil, weightInit: Initializer = .normal(mean: 0, std: 1),
                seed: UInt64? = nil, device: Device = .default) {
        precondition(count > 0 && dimension > 0, "Embedding needs positive sizes, got count \(count), dimension \(dimension)")
        precondition(paddingIndex.map { (0..<count).contains($0) } ?? true,
                     "Embedding(count: \(count)): paddingIndex \(paddingIndex!) is not in 0..<\(count)")
        self.count = count
        self.dimension = dimension
        self.paddingIndex = paddingIndex
        weight = Initializer.filled([count, dimension], on: device, layer: "Embedding(\(count), \(dimension))") {
            var values = try weightInit.make([count, dimension], seed: seed ?? Initializer.nextSeed(),
                                             fans: (dimension, count), on: .cpu).toArray()
            if let p = paddingIndex { for j in 0..<dimension { values[p * dimension + j] = 0 } }
            return try Tensor(values, shape: [count, dimension], on: device)
        }
        weight.requiresGrad = true
    }

    /// The vectors of `input`'s indices: input.shape + [dimension].
    public func callAsFunction(_ input: Tensor) throws -> Tensor {
        try weight.embedding(input, paddingIndex: paddingIndex)
    }

    public var namedTensors: [(String, Tensor)] { [("weight", weight)] }

    public func setTensor(_ name: String, _ value: Tensor) throws {
        guard name == "weight" else { throw LayerError.unknownTensor(layer: layerDescription, name: name) }
        weight = try replacement(for: weight, name, value, layer: layerDescription)
    }

    public var layerDescription: String {
        "Embedding(\(count), \(dimension)\(paddingIndex.map { ", paddingIndex \($0)" } ?? ""))"
    }
}

/// Layer normalization over the last axis (PyTorch's `nn.LayerNorm(features, eps, elementwise_affine, bias)`,
/// state keys `weight` and `bias` [features]): each row is normalized to mean 0 and variance 1 (biased), then
/// scaled by `weight` (starts at 1) and shifted by `bias` (starts at 0). See `Tensor.layerNorm`: one fused launch
/// forward, two backward.
///
/// ```swift
/// let norm = LayerNorm(features: 32)
/// let y = try norm(x)   // x [batch, T, 32] -> the same shape
/// ```
public final class LayerNorm: Layer {
    /// The size of the last axis.
    public let features: Int
    /// Added to the variance before the square root.
    public let epsilon: Float
    /// [features], or nil without an elementwise affine.
    public private(set) var weight: Tensor?
    /// [features], or nil without an elementwise affine or with `bias: false`.
    public private(set) var bias: Tensor?
    public var isTraining = true

    /// A layer normalization over `features` values, with a learned weight and bias unless `elementwiseAffine`
    /// is false (and no bias when `bias` is false).
    public init(features: Int, epsilon: Float = 1e-5, elementwiseAffine: Bool = true, bias: Bool = true,
                device: Device = .default) {
        precondition(features > 0, "LayerNorm needs a positive feature count, got \(features)")
        precondition(epsilon >= 0 && epsilon.isFinite, "LayerNorm needs a finite epsilon >= 0, got \(epsilon)")
        self.features = features
        self.epsilon = epsilon
        if elementwiseAffine {
            weight = Tensor.ones([features], on: device)
            weight?.requiresGrad = true
            if bias {
                self.bias = Tensor.zeros([features], on: device)
                self.bias?.requiresGrad = true
            }
        }
    }

    public func callAsFunction(_ input: Tensor) throws -> Tensor {
        guard input.rank >= 1, input.shape[input.rank - 1] == features else {
            throw LayerError.shape(layer: layerDescription, expected: "[..., \(features)]", got: input.shape)
        }
        return try input.layerNorm(weight: weight, bias: bias, epsilon: epsilon)
    }

    public var namedTensors: [(String, Tensor)] {
        [("weight", weight), ("bias", bias)].compactMap { name, t in t.map { (name, $0) } }
    }

    public func setTensor(_ name: String, _ value: Tensor) throws {
        switch name {
        case "weight" where weight != nil: weight = try replacement(for: weight!, name, value, layer: layerDescription)
        case "bias" where bias != nil: bias = try replacement(for: bias!, name, value, layer: layerDescription)
        default: throw LayerError.unknownTensor(layer: layerDescription, name: name)
        }
    }

    public var layerDescription: String {
        "LayerNorm(\(features)\(epsilon == 1e-5 ? "" : ", eps \(epsilon)")\(weight == nil ? ", no affine" : (bias == nil ? ", no bias" : "")))"
    }
}

/// The tensors of named child layers, each key prefixed with its child's name (`ln_1.weight`).
func childTensors(_ children: [(String, any Layer)]) -> [(String, Tensor)] {
    children.flatMap { prefix, layer in layer.namedTensors.map { ("\(prefix).\($0.0)", $0.1) } }
}

/// `setTensor` of a layer made of named children: hands `name`'s rest after the first dot to the child it starts
/// with; any other name is `LayerError.unknownTensor`.
func setChildTensor(_ name: String, _ value: Tensor, children: [(String, any Layer)], layer: String) throws {
    guard let dot = name.firstIndex(of: "."), let child = children.first(where: { $0.0 == name[..<dot] })?.1 else {
        throw LayerError.unknownTensor(layer: layer, name: name)
    }
    try child.setTensor(String(name[name.index(after: dot)...]), value)
}
