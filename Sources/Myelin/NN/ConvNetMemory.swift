import Foundation

/// What training a model needs in memory, counted from the options that size it before any layer is built: its
/// parameters, as many gradients, the optimizer's state tensors (one per parameter per slot), the non-trainable
/// buffers (BatchNorm statistics) and an estimate of one batch's activations and their gradients. Counts are
/// Doubles, so a size from a command line that no `Int` holds (`--depth 1000000000000000000000`) is still counted
/// and refused, never overflowed. `check(on:)` throws naming the option.
///
/// ```swift
/// let plan = ConvNets.resnetMemory(depth: 1_000_000_000, batchSize: 128, optimizerStateTensors: 1)
/// try plan.check(on: device)   // --depth 1000000000: training ResNet-6000000002 ... needs 1.4 PiB, ...
/// ```
public struct ModelMemory: Sendable, Equatable {
    /// The model as people call it (`ResNet-14`).
    public let model: String
    /// The options that size it, as given (`--depth 2`); errors name them.
    public let options: String
    /// Trainable parameters (elements).
    public let parameters: Double
    /// Non-trainable state elements (running statistics).
    public let buffers: Double
    /// Elements of one batch's activations and their gradients (an estimate: what backward keeps, twice).
    public let activations: Double
    /// State tensors the optimizer keeps per parameter (SGD 0, momentum/Adagrad/RMSProp 1, Adam 2).
    public let optimizerStateTensors: Int
    /// Whether the plan is for training (parameters, gradients and optimizer state) or for running the model only
    /// (its parameters; `optimizerStateTensors` is then ignored).
    public var training = true

    /// A plan from its counts.
    public init(model: String, options: String, parameters: Double, buffers: Double, activations: Double,
                optimizerStateTensors: Int) {
        self.model = model; self.options = options; self.parameters = parameters; self.buffers = buffers
        self.activations = activations; self.optimizerStateTensors = optimizerStateTensors
    }

    /// Bytes of everything training holds: parameters, gradients, optimizer state, buffers and activations (Float32);
    /// for a plan that is not for `training`, the parameters, buffers and activations.
    public var trainingBytes: Double {
        4 * (parameters * Double(training ? 2 + optimizerStateTensors : 1) + buffers + activations)
    }

    /// Throws `DeviceError.outOfMemory` when training does not fit in the memory `device` can give now
    /// (`Device.memory`, which for the CPU and CPU-like OpenCL devices is bounded by the process's limits too),
    /// naming the options, the model and the parts.
    public func check(on device: Device) throws {
        let available = device.memory.available
        guard trainingBytes > Double(available) else { return }
        func bytes(_ x: Double) -> String { x >= 0x1p63 ? "more than 8 EiB" : formatBytes(Int(x)) }
        let parts = "parameters \(bytes(4 * parameters)), "
            + (training ? "as much again for gradients, optimizer state \(bytes(4 * parameters * Double(optimizerStateTensors))), " : "")
            + "activations about \(bytes(4 * activations))"
        throw DeviceError.outOfMemory(what: "\(options): \(training ? "training" : "running") \(model) (\(parts))",
                                      bytes: trainingBytes >= 0x1p63 ? Int.max : Int(trainingBytes),
                                      device: device.name, limit: available, limitKind: "of memory available")
    }
}

extension ConvNets {
    /// Parameters and buffers of a 3x3 (or `kernel`) convolution without bias followed by BatchNorm.
    private static func convBN(_ inChannels: Double, _ outChannels: Double, kernel: Double = 9) -> (p: Double, b: Double) {
        (outChannels * inChannels * kernel + 2 * outChannels, 2 * outChannels + 1)
    }

    /// A basic residual block's parameters and buffers (with its projection when `projected`).
    private static func block(_ inChannels: Double, _ outChannels: Double, projected: Bool) -> (p: Double, b: Double) {
        let a = convBN(inChannels, outChannels), c = convBN(outChannels, outChannels)
        let d = projected ? convBN(inChannels, outChannels, kernel: 1) : (p: 0, b: 0)
        return (a.p + c.p + d.p, a.b + c.b + d.b)
    }

    /// What training `resnet(depth:classes:inChannels:imageSize:)` needs, counted without building it (the
    /// parameter count is exact; activations are estimated as eight tensors per block, kept for backward, and as
    /// much again for their gradients). `options` names what set the sizes in errors (default `--depth <depth>`).
    public static func resnetMemory(depth: Int, classes: Int = 10, inChannels: Int = 1, imageSize: Int = 28,
                                    batchSize: Int, optimizerStateTensors: Int, options: String? = nil) -> ModelMemory {
        let d = Double(Swift.max(depth, 0)), k = Double(classes), s = Double(imageSize)
        let stem = convBN(Double(inChannels), 16)
        let first = [block(16, 16, projected: false), block(16, 32, projected: true), block(32, 64, projected: true)]
        let rest = [block(16, 16, projected: false), block(32, 32, projected: false), block(64, 64, projected: false)]
        let parameters = stem.p + first.map(\.p).reduce(0, +) + (d - 1) * rest.map(\.p).reduce(0, +) + 64 * k + k
        let buffers = stem.b + first.map(\.b).reduce(0, +) + (d - 1) * rest.map(\.b).reduce(0, +)
        let half = ((s - 1) / 2).rounded(.down) + 1, quarter = ((half - 1) / 2).rounded(.down) + 1
        let stages: Double = 16 * s * s + 32 * half * half + 64 * quarter * quarter
        let perSample: Double = 4 * 16 * s * s + 8 * d * stages
        let (six, overflow) = depth.multipliedReportingOverflow(by: 6)
        let name = overflow || six > Int.max - 2 ? "ResNet-(6·\(depth) + 2)" : "ResNet-\(six + 2)"
        return ModelMemory(model: name, options: options ?? "--depth \(depth)",
                           parameters: parameters, buffers: buffers, activations: 2 * Double(batchSize) * perSample,
                           optimizerStateTensors: optimizerStateTensors)
    }

    /// What training `fashionCNN` needs for batches of `batchSize` (exact parameters; activations estimated as for
    /// `resnetMemory`). `options` names what set the sizes in errors (default `--batch-size <batchSize>`).
    public static func fashionCNNMemory(batchSize: Int, optimizerStateTensors: Int, options: String? = nil) -> ModelMemory {
        let c1 = convBN(1, 32), c2 = convBN(32, 64)
        let parameters = c1.p + c2.p + 3136 * 128 + 128 + 128 * 10 + 10
        let convolutions: Double = 5 * 32 * 28 * 28 + 5 * 64 * 14 * 14   // conv, BN, ReLU, pool input and output
        let perSample: Double = convolutions + 3136 + 2 * 128 + 10
        return ModelMemory(model: "the cnn", options: options ?? "--batch-size \(batchSize)", parameters: parameters,
                           buffers: c1.b + c2.b, activations: 2 * Double(batchSize) * perSample,
                           optimizerStateTensors: optimizerStateTensors)
    }
}
