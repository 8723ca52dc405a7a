import Foundation

/// A building block of a network: maps a batch to a batch and owns its parameters.
/// Parameters are tensors with `requiresGrad = true` that live on the layer's device.
///
/// Errors: everything that depends on data throws, naming the layer and the shapes (the forward pass,
/// `setTensor`, checkpoint loading). A layer's initializer does not throw: an invalid hyperparameter written in
/// the code (a size of 0, a dropout rate of 1, an `Initializer.array` of the wrong count) stops the program with a
/// message naming the layer, as `Array(repeating:count:)` does for a negative count, so that `Sequential { ... }`
/// blocks need no `try`. So does a size too large for the device's memory (the message names the layer, the
/// tensor and the bytes). Check values read from a file or a command line before building layers from them:
/// `ValueCheck` for the values, `DenseNetworkMemory` or `Device.checkAllocation(shape:for:)` for the sizes.
///
/// ```swift
/// let model = Sequential {
///     Dense(inputSize: 784, outputSize: 128, activation: .relu)
///     Dense(inputSize: 128, outputSize: 10)
/// }
/// let logits = try model(x)
/// ```
public protocol Layer: AnyObject {
    /// The forward pass. Shape errors name the layer and both shapes.
    func callAsFunction(_ input: Tensor) throws -> Tensor
    /// Named tensors of this layer in a stable order, keyed like PyTorch's `state_dict` (`weight`, `bias`,
    /// `running_mean`, ...; containers prefix their children's keys, see `Sequential` and `Residual`).
    /// Trainable ones have `requiresGrad = true`. `stateDict()` gives the same as a dictionary.
    var namedTensors: [(String, Tensor)] { get }
    /// Replaces the tensor stored under `name` (used by `to(_:)` and checkpoint loading).
    func setTensor(_ name: String, _ value: Tensor) throws
    /// Train mode (dropout active, batch statistics) or eval mode.
    var isTraining: Bool { get set }
    /// A short type name for summaries and errors, e.g. "Dense(784 -> 128, relu)".
    var layerDescription: String { get }
    /// How many modules this layer stands for in PyTorch's equivalent `nn.Sequential`, which sets the
    /// indices of the keys that follow it: 2 for a layer with a fused activation (`Dense(activation: .relu)`
    /// is `Linear` then `ReLU`), 1 otherwise (the default).
    var torchModuleCount: Int { get }
}

extension Layer {
    /// The trainable parameters, in a stable order; a tensor stored under two keys (a tied weight) is listed once.
    public var parameters: [Tensor] {
        var seen = Set<ObjectIdentifier>()
        return namedTensors.map(\.1).filter { $0.requiresGrad && seen.insert(ObjectIdentifier($0)).inserted }
    }
    /// 1: one PyTorch module.
    public var torchModuleCount: Int { 1 }

    /// Every named tensor (parameters and buffers such as running statistics) by its key, like PyTorch's
    /// `state_dict()`. The tensors are the live ones (not copies); `namedTensors` gives them in order.
    ///
    /// ```swift
    /// let state = model.stateDict()          // ["0.weight": ..., "0.bias": ..., "2.weight": ...]
    /// try other.loadStateDict(state)         // copies the values into other's tensors
    /// ```
    public func stateDict() -> [String: Tensor] {
        Dictionary(namedTensors, uniquingKeysWith: { first, _ in first })
    }

    /// Copies the values of `state` into this layer's tensors, in place (parameters keep their identity, so an
    /// optimizer built on them stays valid), like PyTorch's `load_state_dict`. Everything is checked before
    /// anything changes: a shape mismatch is always an error naming the tensor and both shapes (and saying so
    /// when one is the transpose of the other); with `strict` (the default), so are keys of the model missing
    /// from `state` and keys of `state` the model does not have, all named in one `CheckpointError`.
    /// Without `strict`, only the tensors present on both sides are copied. A NaN or infinite value is refused
    /// (`CheckpointError.nonFinite` names the tensor) unless `allowNonFinite`.
    public func loadStateDict(_ state: [String: Tensor], strict: Bool = true, allowNonFinite: Bool = false) throws {
        let entries = try state.map { SafeTensorsEntry(name: $0.key, shape: $0.value.shape, values: try $0.value.toArray()) }
        try loadState(SafeTensorsFile(entries: entries, metadata: [:]), source: "state dict", strict: strict,
                      ignoringPrefixes: [], allowNonFinite: allowNonFinite)
    }
    /// Switches to train mode (dropout active, batch norm uses and updates batch statistics), like PyTorch's
    /// `train()`. `fit` does this before each epoch.
    public func train() { isTraining = true }
    /// Switches to eval mode (dropout off, batch norm uses its running statistics), like PyTorch's `eval()`.
    /// `fit` leaves the model in eval mode; `evaluate` and `predict` use it and restore the previous mode.
    public func eval() { isTraining = false }
    /// Clears the gradients of all parameters.
    public func zeroGrad() { for p in parameters { p.zeroGrad() } }
    /// Moves every tensor of this layer to `device` (a copy per tensor; gradients are dropped).
    public func to(_ device: Device) {
        for (name, t) in namedTensors where t.device !== device {
            try! setTensor(name, t.to(device))
        }
    }
    /// The number of trainable scalars.
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.count } }
}

/// Errors raised by layers, naming the layer (index and type in a container) and the shapes.
public enum LayerError: Error, CustomStringConvertible {
    /// The input of `layer` has shape `got`; `expected` describes what it accepts (e.g. "[batch, 784]").
    case shape(layer: String, expected: String, got: [Int])
    /// `layer` has no tensor under the key `name` (from `setTensor` or state loading).
    case unknownTensor(layer: String, name: String)
    /// The tensor given for `name` has shape `got`; `layer` stores it with shape `expected`.
    case tensorShape(layer: String, name: String, expected: [Int], got: [Int])
    /// `underlying` was thrown by the child at position `index` of a container (`layer` describes the child).
    case inLayer(index: Int, layer: String, underlying: Error)

    public var description: String {
        switch self {
        case .shape(let layer, let expected, let got):
            return "\(layer): expected input \(expected), got \(got)"
        case .unknownTensor(let layer, let name):
            return "\(layer): has no tensor named '\(name)'"
        case .tensorShape(let layer, let name, let expected, let got):
            return "\(layer): tensor '\(name)' has shape \(expected), got \(got)"
        case .inLayer(let index, let layer, let underlying):
            return "layer \(index) (\(layer)): \(underlying)"
        }
    }
}
