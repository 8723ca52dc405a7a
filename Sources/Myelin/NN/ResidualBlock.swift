import Foundation

/// The basic residual block of ResNet-18/34 and of the CIFAR ResNets (torchvision's `BasicBlock`):
///
///     y = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))
///
/// `conv1` is 3x3 with `stride` and `conv2` 3x3 with stride 1, both padded by 1 and without bias. The shortcut
/// is the identity when the shape is kept, else `downsample`: a 1x1 convolution with `stride` (no bias) and a
/// `BatchNorm`. State keys are torchvision's: `conv1.weight`, `bn1.weight`, `bn1.bias`, `bn1.running_mean`,
/// `bn1.running_var`, `bn1.num_batches_tracked`, `conv2.*`, `bn2.*`, and `downsample.0.weight`,
/// `downsample.1.*` with a projection. In a `Sequential` it is one module (`3.conv1.weight`, ...).
///
/// ```swift
/// let block = ResidualBlock(inChannels: 16, outChannels: 32, stride: 2, seed: 1)   // [N, 16, 28, 28] -> [N, 32, 14, 14]
/// ```
public final class ResidualBlock: Layer {
    /// Channels of the input.
    public let inChannels: Int
    /// Channels of the output.
    public let outChannels: Int
    /// The stride of `conv1` and of the projection: 2 halves the height and width.
    public let stride: Int
    /// 3x3, `inChannels` -> `outChannels`, stride `stride`, padding 1, no bias.
    public let conv1: Conv2D
    /// Batch normalization after `conv1`.
    public let bn1: BatchNorm
    /// 3x3, `outChannels` -> `outChannels`, stride 1, padding 1, no bias.
    public let conv2: Conv2D
    /// Batch normalization after `conv2`.
    public let bn2: BatchNorm
    /// The projection shortcut (1x1 convolution with `stride`, no bias, then batch normalization), or nil for
    /// the identity (when the stride is 1 and the channel count is kept).
    public let downsample: Sequential?

    /// Train or eval mode, passed on to the convolutions and batch normalizations.
    public var isTraining = true {
        didSet {
            for layer in [conv1, bn1, conv2, bn2] as [any Layer] { layer.isTraining = isTraining }
            downsample?.isTraining = isTraining
        }
    }

    /// A basic block `inChannels` -> `outChannels`; the projection is made when `stride != 1` or the channel
    /// counts differ. Convolution weights are He uniform (fans counted with the receptive field), drawn from
    /// `seed` (nil: `Initializer.nextSeed()`); batch normalizations start at weight 1, bias 0.
    public init(inChannels: Int, outChannels: Int, stride: Int = 1, seed: UInt64? = nil, device: Device = .default) {
        precondition(inChannels > 0 && outChannels > 0 && stride > 0,
                     "ResidualBlock needs positive channels and stride, got \(inChannels) -> \(outChannels), stride \(stride)")
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.stride = stride
        let s = seed ?? Initializer.nextSeed()
        conv1 = Conv2D(inChannels: inChannels, outChannels: outChannels, kernelSize: 3, stride: stride, padding: 1,
                       bias: false, seed: s, device: device)
        bn1 = BatchNorm(features: outChannels, device: device)
        conv2 = Conv2D(inChannels: outChannels, outChannels: outChannels, kernelSize: 3, padding: 1,
                       bias: false, seed: s &+ 2, device: device)
        bn2 = BatchNorm(features: outChannels, device: device)
        if stride != 1 || inChannels != outChannels {
            downsample = Sequential {
                Conv2D(inChannels: inChannels, outChannels: outChannels, kernelSize: 1, stride: stride, bias: false,
                       seed: s &+ 4, device: device)
                BatchNorm(features: outChannels, device: device)
            }
        } else {
            downsample = nil
        }
    }

    public func callAsFunction(_ input: Tensor) throws -> Tensor {
        guard input.rank == 4, input.shape[1] == inChannels, input.shape[2] > 0, input.shape[3] > 0 else {
            throw LayerError.shape(layer: layerDescription, expected: "[batch, \(inChannels), height, width]", got: input.shape)
        }
        // relu(bn2(conv2(relu(bn1(conv1(input))))) + skip), with each ReLU and the sum fused into a normalization.
        let h = try bn1(conv1(input), residual: nil, relu: true)
        let skip = try downsample?(input) ?? input
        return try bn2(conv2(h), residual: skip, relu: true)
    }

    public var namedTensors: [(String, Tensor)] {
        let children: [(String, any Layer)] = [("conv1", conv1), ("bn1", bn1), ("conv2", conv2), ("bn2", bn2)]
            + (downsample.map { [("downsample", $0)] } ?? [])
        return children.flatMap { prefix, layer in layer.namedTensors.map { ("\(prefix).\($0.0)", $0.1) } }
    }

    public func setTensor(_ name: String, _ value: Tensor) throws {
        guard let dot = name.firstIndex(of: ".") else {
            throw LayerError.unknownTensor(layer: layerDescription, name: name)
        }
        let rest = String(name[name.index(after: dot)...])
        switch name[..<dot] {
        case "conv1": try conv1.setTensor(rest, value)
        case "bn1": try bn1.setTensor(rest, value)
        case "conv2": try conv2.setTensor(rest, value)
        case "bn2": try bn2.setTensor(rest, value)
        case "downsample" where downsample != nil: try downsample!.setTensor(rest, value)
        default: throw LayerError.unknownTensor(layer: layerDescription, name: name)
        }
    }

    public var layerDescription: String {
        "ResidualBlock(\(inChannels) -> \(outChannels)\(stride != 1 ? ", stride \(stride)" : "")\(downsample != nil ? ", projection" : ""))"
    }
}
