import Foundation

/// Builds an array of layers from a block: `Sequential { Dense(...); ReLU() }`.
@resultBuilder
///
/// Besides single layers, a block may hold arrays of layers, `if`/`else` and `for` loops:
///
/// ```swift
/// let model = Sequential {
///     for _ in 0..<3 { Dense(inputSize: 16, outputSize: 16, activation: .relu) }
///     if useDropout { Dropout(rate: 0.1) }
///     Dense(inputSize: 16, outputSize: 1)
/// }
/// ```
public enum LayerBuilder {
    /// One layer in the block.
    public static func buildExpression(_ layer: any Layer) -> [any Layer] { [layer] }
    /// An array of layers in the block, spliced in order.
    public static func buildExpression(_ layers: [any Layer]) -> [any Layer] { layers }
    /// The block's statements, concatenated in order.
    public static func buildBlock(_ parts: [any Layer]...) -> [any Layer] { parts.flatMap { $0 } }
    /// An `if` without `else`: its layers, or none.
    public static func buildOptional(_ part: [any Layer]?) -> [any Layer] { part ?? [] }
    /// The `if` branch of an `if`/`else`.
    public static func buildEither(first part: [any Layer]) -> [any Layer] { part }
    /// The `else` branch of an `if`/`else`.
    public static func buildEither(second part: [any Layer]) -> [any Layer] { part }
    /// A `for` loop: the layers of every iteration, in order.
    public static func buildArray(_ parts: [[any Layer]]) -> [any Layer] { parts.flatMap { $0 } }
}

/// Layers applied one after another. State keys are the children's keys prefixed by the index the child
/// has in PyTorch's equivalent `nn.Sequential`, so a `state_dict` of that module loads with no renaming.
/// The index counts PyTorch modules, not Swift layers: a layer with a fused activation
/// (`Dense(..., activation: .relu)`, `Conv2D(..., activation: .relu)`) stands for two modules
/// (`Linear` then `ReLU`) and takes two indices (see `Layer.torchModuleCount`). So
///
/// ```swift
/// let mlp = Sequential {
///     Dense(inputSize: 4, outputSize: 8, activation: .relu)   // 0.weight, 0.bias (ReLU is 1)
///     Dense(inputSize: 8, outputSize: 8, activation: .tanh)   // 2.weight, 2.bias (Tanh is 3)
///     Dense(inputSize: 8, outputSize: 3)                      // 4.weight, 4.bias
/// }
/// ```
///
/// has the keys of `nn.Sequential(Linear(4, 8), ReLU(), Linear(8, 8), Tanh(), Linear(8, 3))`. A nested `Sequential` or a
/// `Residual` is one module. `torchIndices` lists each child's index. An error in a child is wrapped in
/// `LayerError.inLayer` naming its position in `layers` and its type.
///
/// ```swift
/// let model = Sequential {
///     Dense(inputSize: 784, outputSize: 128, activation: .relu)
///     Dropout(rate: 0.2)
///     Dense(inputSize: 128, outputSize: 10)
/// }
/// print(try model.summary(inputShape: [1, 784]))
/// ```
public final class Sequential: Layer {
    /// The children, in the order they are applied.
    // No dynamic exclusivity check: read on every forward pass; `append(_:)` is the only write, and nothing
    // reads the list during it.
    @exclusivity(unchecked) public private(set) var layers: [any Layer]

    /// Train or eval mode, passed on to every child.
    public var isTraining = true {
        didSet { for layer in layers { layer.isTraining = isTraining } }
    }

    /// Chains `layers` (applied first to last); each child is put in this container's train mode.
    public init(_ layers: [any Layer]) {
        self.layers = layers
        for layer in layers { layer.isTraining = isTraining }
    }

    /// Chains the layers listed in a block: `Sequential { Dense(...); Dropout(rate: 0.2); Dense(...) }`.
    public convenience init(@LayerBuilder _ build: () -> [any Layer]) {
        self.init(build())
    }

    /// Adds a layer at the end.
    public func append(_ layer: any Layer) {
        layer.isTraining = isTraining
        layers.append(layer)
    }

    public func callAsFunction(_ input: Tensor) throws -> Tensor {
        var x = input
        var i = 0
        while i < layers.count {
            let layer = layers[i]
            do {
                // A BatchNorm followed by a ReLU runs as one fused normalization (the same values, fewer launches).
                if let bn = layer as? BatchNorm, i + 1 < layers.count, let next = layers[i + 1] as? ActivationLayer,
                   next.activation == .relu {
                    x = try bn(x, residual: nil, relu: true)
                    i += 2
                    continue
                }
                x = try layer(x)
            } catch {
                throw LayerError.inLayer(index: i, layer: layer.layerDescription, underlying: error)
            }
            i += 1
        }
        return x
    }

    /// The index of each child in PyTorch's equivalent `nn.Sequential` (the prefix of its keys): the running
    /// sum of the `torchModuleCount` of the children before it. `[0, 2, 4]` for three Dense layers with
    /// fused activations.
    public var torchIndices: [Int] {
        var next = 0
        return layers.map { layer in defer { next += layer.torchModuleCount }; return next }
    }

    public var namedTensors: [(String, Tensor)] {
        zip(torchIndices, layers).flatMap { i, layer in layer.namedTensors.map { ("\(i).\($0.0)", $0.1) } }
    }

    public func setTensor(_ name: String, _ value: Tensor) throws {
        guard let dot = name.firstIndex(of: "."), let i = Int(name[..<dot]),
              let position = torchIndices.firstIndex(of: i) else {
            throw LayerError.unknownTensor(layer: layerDescription, name: name)
        }
        try layers[position].setTensor(String(name[name.index(after: dot)...]), value)
    }

    public var layerDescription: String { "Sequential(\(layers.count) layers)" }

    /// One row per child: index, type, output shape and parameter count, then the totals.
    /// Runs one forward pass on zeros of `inputShape` (batch included, e.g. `[1, 784]`) in eval mode
    /// without recording a graph; the train/eval mode and all state are left as they were.
    public func summary(inputShape: [Int]) throws -> String {
        let device = namedTensors.first?.1.device ?? .default
        let wasTraining = isTraining
        isTraining = false
        defer { isTraining = wasTraining }
        var rows: [(String, String, String, String)] = [("#", "Layer", "Output shape", "Parameters")]
        try withNoGrad {
            var x = Tensor.zeros(inputShape, on: device)
            rows.append(("", "Input", "\(inputShape)", ""))
            for (i, layer) in layers.enumerated() {
                do { x = try layer(x) } catch {
                    throw LayerError.inLayer(index: i, layer: layer.layerDescription, underlying: error)
                }
                rows.append(("\(i)", layer.layerDescription, "\(x.shape)", "\(layer.parameterCount)"))
            }
        }
        let buffers = namedTensors.filter { !$0.1.requiresGrad }.reduce(0) { $0 + $1.1.count }
        let widths = (0..<4).map { c in rows.map { [$0.0, $0.1, $0.2, $0.3][c].count }.max()! }
        func line(_ r: (String, String, String, String)) -> String {
            let cells = [r.0, r.1, r.2, r.3]
            return (0..<4).map { c in
                c == 3 ? String(repeating: " ", count: widths[c] - cells[c].count) + cells[c]
                       : cells[c] + String(repeating: " ", count: widths[c] - cells[c].count)
            }.joined(separator: "  ")
        }
        let rule = String(repeating: "-", count: widths.reduce(0, +) + 6)
        var out = [line(rows[0]), rule] + rows.dropFirst().map(line) + [rule]
        out.append("Trainable parameters: \(parameterCount)")
        out.append("Non-trainable values (buffers): \(buffers)")
        return out.joined(separator: "\n")
    }
}

/// A skip connection: `shortcut(x) + inner(x)`, where the shortcut is the identity unless given
/// (a projection such as a 1x1 convolution or a Dense when the shapes change). State keys are
/// prefixed `inner.` and `shortcut.`: those of a PyTorch module with the attributes `inner` and
/// `shortcut` (`self.inner = nn.Sequential(...)`, `self.shortcut = nn.Linear(...)` or absent) whose
/// `forward` returns `shortcut(x) + inner(x)`. In a `Sequential` it is one module.
///
/// ```swift
/// let block = Residual(Sequential { Dense(inputSize: 64, outputSize: 64, activation: .relu); Dense(inputSize: 64, outputSize: 64) })
/// ```
public final class Residual: Layer {
    /// The residual branch (keys prefixed `inner.`).
    public let inner: any Layer
    /// The projection on the skip path (keys prefixed `shortcut.`), or nil for the identity.
    public let shortcut: (any Layer)?
    public var isTraining = true {
        didSet { inner.isTraining = isTraining; shortcut?.isTraining = isTraining }
    }

    /// Wraps `inner` with a skip connection. `shortcut` must map the input to `inner`'s output shape; nil (the
    /// default) adds the input itself, so `inner` must then keep the shape.
    public init(_ inner: any Layer, shortcut: (any Layer)? = nil) {
        self.inner = inner
        self.shortcut = shortcut
        inner.isTraining = true
        shortcut?.isTraining = true
    }

    public func callAsFunction(_ input: Tensor) throws -> Tensor {
        let y: Tensor
        do { y = try inner(input) } catch {
            throw LayerError.inLayer(index: 0, layer: "inner " + inner.layerDescription, underlying: error)
        }
        var skip = input
        if let shortcut {
            do { skip = try shortcut(input) } catch {
                throw LayerError.inLayer(index: 1, layer: "shortcut " + shortcut.layerDescription, underlying: error)
            }
        }
        guard y.shape == skip.shape else {
            throw LayerError.shape(layer: layerDescription,
                                   expected: "inner output \(y.shape) to equal the \(shortcut == nil ? "input" : "shortcut output") shape",
                                   got: skip.shape)
        }
        return try skip + y
    }

    public var namedTensors: [(String, Tensor)] {
        inner.namedTensors.map { ("inner.\($0.0)", $0.1) } + (shortcut?.namedTensors.map { ("shortcut.\($0.0)", $0.1) } ?? [])
    }

    public func setTensor(_ name: String, _ value: Tensor) throws {
        if name.hasPrefix("inner.") { return try inner.setTensor(String(name.dropFirst(6)), value) }
        if name.hasPrefix("shortcut."), let shortcut { return try shortcut.setTensor(String(name.dropFirst(9)), value) }
        throw LayerError.unknownTensor(layer: layerDescription, name: name)
    }

    public var layerDescription: String {
        "Residual(\(inner.layerDescription)\(shortcut.map { ", shortcut: " + $0.layerDescription } ?? ""))"
    }
}
