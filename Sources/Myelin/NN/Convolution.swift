import Foundation

/// A 2-D convolution over NCHW images, computed as im2col + one batched GEMM:
/// y[n] = weight[O, C·kh·kw] · cols[n] (+ bias), then the activation.
///
/// The weight is stored [outChannels, inChannels, kh, kw] and the bias [outChannels]: the same layout and
/// state-dict keys (`weight`, `bias`) as PyTorch's `nn.Conv2d`. With an activation other than `.identity`
/// it stands for `Conv2d` then the activation module and takes two indices in a `Sequential`.
///
/// ```swift
/// let conv = Conv2D(inChannels: 1, outChannels: 32, kernelSize: 3, padding: 1, activation: .relu)
/// let y = try conv(images)   // [N, 1, 28, 28] -> [N, 32, 28, 28]
/// ```
public final class Conv2D: Layer {
    /// Channels of the input images (C of [N, C, H, W]).
    public let inChannels: Int
    /// Channels of the output images: the number of filters.
    public let outChannels: Int
    /// The window's (rows, columns).
    public let kernelSize: (Int, Int)
    /// The step between windows, (rows, columns).
    public let stride: (Int, Int)
    /// Zero rows added above and below, and zero columns added left and right, of each image.
    public let padding: (Int, Int)
    /// Applied to the output (fused after the bias).
    public let activation: Activation
    /// [outChannels, inChannels, kh, kw].
    public private(set) var weight: Tensor
    /// [outChannels], or nil.
    public private(set) var bias: Tensor?
    public var isTraining = true

    /// A convolution with a rectangular kernel; the output is [N, outChannels, outH, outW] with
    /// outH = (H + 2·padding.0 − kernelSize.0) / stride.0 + 1 and outW alike.
    ///
    /// - Parameters:
    ///   - inChannels: channels of the input images.
    ///   - outChannels: channels of the output images (filters).
    ///   - kernelSize: the window's (rows, columns).
    ///   - stride: the step between windows, (rows, columns).
    ///   - padding: zeros added on each side, (rows, columns).
    ///   - activation: applied to the output. Default identity.
    ///   - bias: whether the layer has a bias [outChannels].
    ///   - weightInit: fills the weight (fan-in = inChannels·kh·kw, fan-out = outChannels·kh·kw). Default He uniform.
    ///   - biasInit: fills the bias. Default zeros.
    ///   - seed: the weight's seed (the bias uses `seed + 1`); nil draws one from `Initializer.nextSeed()`.
    ///   - device: where the weight and bias live.
    public init(inChannels: Int, outChannels: Int, kernelSize: (Int, Int), stride: (Int, Int) = (1, 1),
                padding: (Int, Int) = (0, 0), activation: Activation = .identity, bias: Bool = true,
                weightInit: Initializer = .heUniform, biasInit: Initializer = .zeros,
                seed: UInt64? = nil, device: Device = .default) {
        precondition(inChannels > 0 && outChannels > 0 && kernelSize.0 > 0 && kernelSize.1 > 0
                     && stride.0 > 0 && stride.1 > 0 && padding.0 >= 0 && padding.1 >= 0,
                     "Conv2D needs positive channels, kernel and stride and non-negative padding")
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
        self.activation = activation
        let s = seed ?? Initializer.nextSeed()
        let shape = [outChannels, inChannels, kernelSize.0, kernelSize.1]
        do {
            weight = try weightInit.make(shape, seed: s, on: device)
            self.bias = bias ? try biasInit.make([outChannels], seed: s &+ 1, fans: Initializer.fans(shape), on: device) : nil
        } catch {
            preconditionFailure("Conv2D: \(error)")
        }
        weight.requiresGrad = true
        self.bias?.requiresGrad = true
    }

    /// A square kernel, stride and padding.
    public convenience init(inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
                            activation: Activation = .identity, bias: Bool = true,
                            weightInit: Initializer = .heUniform, biasInit: Initializer = .zeros,
                            seed: UInt64? = nil, device: Device = .default) {
        self.init(inChannels: inChannels, outChannels: outChannels, kernelSize: (kernelSize, kernelSize),
                  stride: (stride, stride), padding: (padding, padding), activation: activation, bias: bias,
                  weightInit: weightInit, biasInit: biasInit, seed: seed, device: device)
    }

    public func callAsFunction(_ input: Tensor) throws -> Tensor {
        guard input.rank == 4, input.shape[1] == inChannels,
              input.shape[2] + 2 * padding.0 >= kernelSize.0, input.shape[3] + 2 * padding.1 >= kernelSize.1 else {
            throw LayerError.shape(layer: layerDescription,
                                   expected: "[batch, \(inChannels), height >= \(kernelSize.0 - 2 * padding.0), width >= \(kernelSize.1 - 2 * padding.1)]",
                                   got: input.shape)
        }
        let y = try input.conv2d(weight: weight, bias: bias, stride: stride, padding: padding)
        return activation == .identity ? y : y.activation(activation)
    }

    public var namedTensors: [(String, Tensor)] {
        var out = [("weight", weight)]
        if let bias { out.append(("bias", bias)) }
        return out
    }

    public func setTensor(_ name: String, _ value: Tensor) throws {
        switch name {
        case "weight": weight = try replacement(for: weight, name, value, layer: layerDescription)
        case "bias" where bias != nil: bias = try replacement(for: bias!, name, value, layer: layerDescription)
        default: throw LayerError.unknownTensor(layer: layerDescription, name: name)
        }
    }

    /// Two PyTorch modules (`Conv2d` and the activation) when the activation is fused, else one.
    public var torchModuleCount: Int { activation == .identity ? 1 : 2 }

    public var layerDescription: String {
        var s = "Conv2D(\(inChannels) -> \(outChannels), \(kernelSize.0)x\(kernelSize.1)"
        if stride != (1, 1) { s += ", stride \(stride.0)x\(stride.1)" }
        if padding != (0, 0) { s += ", padding \(padding.0)x\(padding.1)" }
        if activation != .identity { s += ", \(activation.displayName)" }
        if bias == nil { s += ", no bias" }
        return s + ")"
    }
}

/// Which reduction a pooling layer applies over each window.
enum PoolingKind { case max, average }

/// Shared pooling forward: windows of each channel unfolded, then reduced over the window axis.
func pool(_ input: Tensor, _ kind: PoolingKind, kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int),
          layer: String) throws -> Tensor {
    guard input.rank == 4, input.shape[2] + 2 * padding.0 >= kernel.0, input.shape[3] + 2 * padding.1 >= kernel.1 else {
        throw LayerError.shape(layer: layer, expected: "[batch, channels, height >= \(kernel.0 - 2 * padding.0), width >= \(kernel.1 - 2 * padding.1)]",
                               got: input.shape)
    }
    let (n, c, h, w) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
    let planes = try input.reshaped([n * c, 1, h, w])
    let cols = try planes.im2col(kernel: kernel, stride: stride, padding: padding,
                                 padValue: kind == .max ? -Float.infinity : 0)   // [N·C, kh·kw, L]
    let g = try planes.convGeometry(kernel: kernel, stride: stride, padding: padding, op: layer)
    let reduced = kind == .max ? try cols.max(axis: 1) : try cols.mean(axis: 1)
    return try reduced.reshaped([n, c, g.outH, g.outW])
}

/// Max pooling over kh x kw windows (stride defaults to the kernel size; padding reads -infinity).
/// The gradient goes to the window's largest input (to every tied one on ties).
///
/// ```swift
/// let pool = MaxPool2D(kernelSize: 2)   // [N, C, 28, 28] -> [N, C, 14, 14]
/// ```
public final class MaxPool2D: ParameterlessLayer {
    /// The window's (rows, columns), the step between windows and the padding on each side.
    public let kernelSize: (Int, Int), stride: (Int, Int), padding: (Int, Int)
    public var isTraining = true

    /// Square windows of `kernelSize`, moved by `stride` (default: `kernelSize`, so windows do not overlap), over
    /// images padded by `padding` on each side (at most half the kernel).
    public init(kernelSize: Int, stride: Int? = nil, padding: Int = 0) {
        precondition(kernelSize > 0 && (stride ?? 1) > 0 && padding >= 0 && padding * 2 <= kernelSize,
                     "MaxPool2D needs a positive kernel and stride and padding at most half the kernel")
        self.kernelSize = (kernelSize, kernelSize)
        self.stride = (stride ?? kernelSize, stride ?? kernelSize)
        self.padding = (padding, padding)
    }

    public func callAsFunction(_ input: Tensor) throws -> Tensor {
        try pool(input, .max, kernel: kernelSize, stride: stride, padding: padding, layer: layerDescription)
    }

    public var layerDescription: String {
        "MaxPool2D(\(kernelSize.0)x\(kernelSize.1)\(stride != kernelSize ? ", stride \(stride.0)" : "")\(padding.0 > 0 ? ", padding \(padding.0)" : ""))"
    }
}

/// Average pooling over kh x kw windows (stride defaults to the kernel size). Padding counts as zeros in
/// the average (PyTorch's default `count_include_pad=True`).
public final class AvgPool2D: ParameterlessLayer {
    /// The window's (rows, columns), the step between windows and the padding on each side.
    public let kernelSize: (Int, Int), stride: (Int, Int), padding: (Int, Int)
    public var isTraining = true

    /// Square windows of `kernelSize`, moved by `stride` (default: `kernelSize`, so windows do not overlap), over
    /// images padded by `padding` on each side (at most half the kernel).
    public init(kernelSize: Int, stride: Int? = nil, padding: Int = 0) {
        precondition(kernelSize > 0 && (stride ?? 1) > 0 && padding >= 0 && padding * 2 <= kernelSize,
                     "AvgPool2D needs a positive kernel and stride and padding at most half the kernel")
        self.kernelSize = (kernelSize, kernelSize)
        self.stride = (stride ?? kernelSize, stride ?? kernelSize)
        self.padding = (padding, padding)
    }

    public func callAsFunction(_ input: Tensor) throws -> Tensor {
        try pool(input, .average, kernel: kernelSize, stride: stride, padding: padding, layer: layerDescription)
    }

    public var layerDescription: String {
        "AvgPool2D(\(kernelSize.0)x\(kernelSize.1)\(stride != kernelSize ? ", stride \(stride.0)" : "")\(padding.0 > 0 ? ", padding \(padding.0)" : ""))"
    }
}
