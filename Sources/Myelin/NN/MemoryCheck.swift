import Foundation

/// What training a stack of `Dense` layers needs in memory, worked out from the sizes alone, before any layer is
/// built: so that sizes read from a command line or a file give a clear error naming the layer and the bytes,
/// not a crash in an allocation or the out-of-memory killer a minute later.
///
/// ```swift
/// let plan = try DenseNetworkMemory(sizes: [784, 512, 256, 10], batchSize: 128, optimizerStateTensors: 2)
/// try plan.check(on: device)      // throws DeviceError.outOfMemory naming the layer, or the whole model
/// ```
public struct DenseNetworkMemory: Sendable, Equatable {
    /// One layer's parameters.
    public struct LayerNeeds: Sendable, Equatable {
        /// The layer as its `layerDescription` starts: `Dense(784 -> 512)`.
        public let layer: String
        /// The weight's shape [out, in].
        public let weightShape: [Int]
        /// Bytes of the weight.
        public let weightBytes: Int
        /// Bytes of the weight and the bias.
        public let parameterBytes: Int
    }

    /// The layer sizes, inputs first and outputs last (`[784, 512, 256, 10]`).
    public let sizes: [Int]
    /// Rows of one batch.
    public let batchSize: Int
    /// State tensors the optimizer keeps per parameter (SGD 0, momentum/Adagrad/RMSProp 1, Adam 2).
    public let optimizerStateTensors: Int
    /// Each layer's parameters.
    public let layers: [LayerNeeds]
    /// Bytes of all parameters.
    public let parameterBytes: Int
    /// Bytes of one batch's activations: the input, and each layer's output and its gradient.
    public let activationBytes: Int
    /// Everything training needs: parameters, their gradients, the optimizer's state and the activations.
    public let trainingBytes: Int

    /// Works out the needs; throws `DeviceError.sizeOverflow` (naming the layer) when a count overflows, and
    /// `InvalidValueError` for sizes or a batch size below 1.
    public init(sizes: [Int], batchSize: Int, optimizerStateTensors: Int) throws {
        guard sizes.count >= 2 else { throw InvalidValueError(name: "sizes", value: "\(sizes)", rule: "need at least an input and an output size") }
        for s in sizes where s < 1 {
            throw InvalidValueError(name: "layer sizes", value: "\(sizes)", rule: "must all be at least 1")
        }
        guard batchSize >= 1 else { throw InvalidValueError(name: "batch size", value: "\(batchSize)", rule: "must be at least 1") }
        guard optimizerStateTensors >= 0 else {
            throw InvalidValueError(name: "optimizer state tensors", value: "\(optimizerStateTensors)", rule: "must be >= 0")
        }
        self.sizes = sizes
        self.batchSize = batchSize
        self.optimizerStateTensors = optimizerStateTensors
        var layers: [LayerNeeds] = []
        var parameters = 0, activations = 0
        func add(_ a: inout Int, _ b: Int, _ what: String, _ shape: [Int]) throws {
            let (sum, overflow) = a.addingReportingOverflow(b)
            guard !overflow else { throw DeviceError.sizeOverflow(what: what, shape: shape) }
            a = sum
        }
        func bytes(_ shape: [Int], _ what: String) throws -> Int {
            guard let n = checkedElementCount(shape), let b = checkedFloatBytes(n) else {
                throw DeviceError.sizeOverflow(what: what, shape: shape)
            }
            return b
        }
        try add(&activations, bytes([batchSize, sizes[0]], "the input batch"), "the input batch", [batchSize, sizes[0]])
        for i in 0..<(sizes.count - 1) {
            let name = "Dense(\(sizes[i]) -> \(sizes[i + 1]))"
            let weight = [sizes[i + 1], sizes[i]]
            let w = try bytes(weight, "\(name): the weight")
            var p = w
            try add(&p, bytes([sizes[i + 1]], "\(name): the bias"), "\(name): the bias", [sizes[i + 1]])
            layers.append(LayerNeeds(layer: name, weightShape: weight, weightBytes: w, parameterBytes: p))
            try add(&parameters, p, "the model's parameters", sizes)
            let out = try bytes([batchSize, sizes[i + 1]], "\(name): the output of a batch")
            try add(&activations, out, "the activations", [batchSize, sizes[i + 1]])
            try add(&activations, out, "the activations", [batchSize, sizes[i + 1]])
        }
        self.layers = layers
        self.parameterBytes = parameters
        self.activationBytes = activations
        let (copies, o1) = parameters.multipliedReportingOverflow(by: 2 + optimizerStateTensors)
        let (total, o2) = copies.addingReportingOverflow(activations)
        guard !o1, !o2 else { throw DeviceError.sizeOverflow(what: "training the model", shape: sizes) }
        self.trainingBytes = total
    }

    /// Throws `DeviceError.outOfMemory` when a layer's weight does not fit in one buffer or in the memory available
    /// on `device` (or, for another device, on the host, where weights are drawn), naming the layer and the bytes;
    /// then when the whole of training does not fit.
    public func check(on device: Device) throws {
        for l in layers {
            try device.checkAllocation(bytes: l.weightBytes, for: "\(l.layer): the weight \(l.weightShape)")
            if device !== Device.cpu {
                try Device.cpu.checkAllocation(bytes: l.weightBytes,
                                               for: "\(l.layer): the weight \(l.weightShape), drawn on the host,")
            }
        }
        let available = device.memory.available
        guard trainingBytes <= available else {
            let states = Int(clamping: Int64(parameterBytes) * Int64(optimizerStateTensors))
            throw DeviceError.outOfMemory(
                what: "training \(sizes.map(String.init).joined(separator: "-")) with batches of \(batchSize) "
                    + "(parameters \(formatBytes(parameterBytes)), as much again for gradients, optimizer state "
                    + "\(formatBytes(states)), activations \(formatBytes(activationBytes)))",
                bytes: trainingBytes, device: device.name, limit: available, limitKind: "of memory available")
        }
    }
}

/// A value from a command line, a file or a checkpoint that breaks a rule, e.g. `--lr must be a finite number >= 0,
/// got -1`.
public struct InvalidValueError: Error, CustomStringConvertible, Equatable {
    /// What the value is called where it came from (`--lr`, `the checkpoint's learning_rate`).
    public let name: String
    /// The value as given.
    public let value: String
    /// The rule it breaks (`must be at least 1`).
    public let rule: String

    /// An error saying that `value` of `name` breaks `rule`.
    public init(name: String, value: String, rule: String) {
        self.name = name
        self.value = value
        self.rule = rule
    }

    public var description: String { "\(name) \(rule), got \(value)" }
}
