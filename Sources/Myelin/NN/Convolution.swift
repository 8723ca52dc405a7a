import Foundation

/// A 2-D convolution over NCHW images, computed as im2col + one batched GEMM:
/// y[n] = weight[O, C·kh·kw] · cols[n] (+ bias), then the activation.
///
/// The weight is stored [outChannels, inChannels / groups, kh, kw] and the bias [outChannels]: the same layout
/// and state-dict keys (`weight`, `bias`) as PyTorch's `nn.Conv2d`. With an activation other than `.identity`
/// it stands for `Conv2d` then the activation module and takes two indices in a `Sequential`.
///
/// ```swift
/// let conv = Conv2D(inChannels: 1, outChannels: 32, kernelSize: 3, padding: 1, activation: .relu)
/// let y = try conv(images)   // [N, 1, 28, 28] -> [N, 32, 28, 28]
/// let same = Conv2D(inChannels: 32, outChannels: 32, kernelSize: 5, padding: .same, bias: false)
/// let depthwise = Conv2D(inChannels: 32, outChannels: 32, kernelSize: 3, padding: 1, groups: 32)
/// ```
public final class Conv2D: Layer {
    /// How a convolution pads its input: numbers, or PyTorch's `padding="same"`.
    public enum Padding: Equatable, Sendable {
        /// This many zero rows above and below, and zero columns left and right, of each image.
        case explicit(rows: Int, columns: Int)
        /// The output keeps the input's height and width (PyTorch's `padding="same"`): k − 1 zeros in all,
        /// (k − 1) / 2 above (left) and the rest below (right), so an even kernel gets one more below (right),
        /// as in PyTorch. Stride 1 only: PyTorch refuses `padding="same"` for strided convolutions too.
        case same
    }

    /// Channels of the input images (C of [N, C, H, W]).
    public let inChannels: Int
    /// Channels of the output images: the number of filters.
    public let outChannels: Int
    /// The window's (rows, columns).
    public let kernelSize: (Int, Int)
    /// The step between windows, (rows, columns).
    public let stride: (Int, Int)
    /// Zero rows added above and below, and zero columns added left and right, of each image. For `.same`,
    /// k / 2 (rounded down): (k − 1) / 2 for an odd kernel; for an even one the window then starts one row
    /// (column) early, and the output's first row (column) is dropped, which is PyTorch's asymmetric padding.
    public let padding: (Int, Int)
    /// The padding as given: `.explicit` numbers or `.same`.
    public let paddingMode: Padding
    /// Input and output channels are split into this many groups, each convolved with its own filters
    /// (PyTorch's `groups`; `groups == inChannels` is a depthwise convolution).
    public let groups: Int
    /// Applied to the output (fused after the bias).
    public let activation: Activation
    /// [outChannels, inChannels / groups, kh, kw].
    public private(set) var weight: Tensor
    /// [outChannels], or nil.
    public private(set) var bias: Tensor?
    public var isTraining = true

    /// A convolution with a rectangular kernel; the output is [N, outChannels, outH, outW] with
    /// outH = (H + 2·padding.rows − kernelSize.0) / stride.0 + 1 and outW alike (H and W for `.same`).
    ///
    /// - Parameters:
    ///   - inChannels: channels of the input images.
    ///   - outChannels: channels of the output images (filters).
    ///   - kernelSize: the window's (rows, columns).
    ///   - stride: the step between windows, (rows, columns).
    ///   - padding: `.explicit(rows:columns:)` zeros on each side, or `.same` (stride 1 only, like PyTorch,
    ///     which refuses `padding="same"` for strided convolutions).
    ///   - groups: channel groups; must divide both channel counts. Default 1.
    ///   - activation: applied to the output. Default identity.
    ///   - bias: whether the layer has a bias [outChannels].
    ///   - weightInit: fills the weight (fan-in = inChannels / groups·kh·kw, fan-out = outChannels·kh·kw, as
    ///     PyTorch counts them). Default He uniform.
    ///   - biasInit: fills the bias. Default zeros.
    ///   - seed: the weight's seed (the bias uses `seed + 1`); nil draws one from `Initializer.nextSeed()`.
    ///   - device: where the weight and bias live.
    public init(inChannels: Int, outChannels: Int, kernelSize: (Int, Int), stride: (Int, Int) = (1, 1),
                padding: Padding, groups: Int = 1, activation: Activation = .identity, bias: Bool = true,
                weightInit: Initializer = .heUniform, biasInit: Initializer = .zeros,
                seed: UInt64? = nil, device: Device = .default) {
        let name = "Conv2D(\(inChannels) -> \(outChannels), \(kernelSize.0)x\(kernelSize.1))"
        precondition(inChannels > 0 && outChannels > 0 && kernelSize.0 > 0 && kernelSize.1 > 0
                     && stride.0 > 0 && stride.1 > 0,
                     "\(name): needs positive channels, kernel and stride")
        precondition(groups > 0 && inChannels % groups == 0 && outChannels % groups == 0,
                     "\(name): groups (\(groups)) must be positive and divide both inChannels and outChannels")
        switch padding {
        case .explicit(let rows, let columns):
            precondition(rows >= 0 && columns >= 0, "\(name): padding must not be negative, got (\(rows), \(columns))")
            self.padding = (rows, columns)
        case .same:
            precondition(stride == (1, 1),
                         "\(name): padding .same is not supported for strided convolutions (stride \(stride)), as in PyTorch")
            self.padding = (kernelSize.0 / 2, kernelSize.1 / 2)
        }
        self.paddingMode = padding
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernelSize = kernelSize
        self.stride = stride
        self.groups = groups
        self.activation = activation
        let s = seed ?? Initializer.nextSeed()
        let shape = [outChannels, inChannels / groups, kernelSize.0, kernelSize.1]
        weight = Initializer.filled(shape, on: device, layer: name) { try weightInit.make(shape, seed: s, on: device) }
        self.bias = bias ? Initializer.filled([outChannels], on: device, layer: name) {
            try biasInit.make([outChannels], seed: s &+ 1, fans: Initializer.fans(shape), on: device)
        } : nil
        weight.requiresGrad = true
        self.bias?.requiresGrad = true
    }

    /// A rectangular kernel with padding given as numbers (rows, columns) on each side.
    public convenience init(inChannels: Int, outChannels: Int, kernelSize: (Int, Int), stride: (Int, Int) = (1, 1),
                            padding: (Int, Int) = (0, 0), groups: Int = 1, activation: Activation = .identity,
                            bias: Bool = true, weightInit: Initializer = .heUniform, biasInit: Initializer = .zeros,
                            seed: UInt64? = nil, device: Device = .default) {
        self.init(inChannels: inChannels, outChannels: outChannels, kernelSize: kernelSize, stride: stride,
                  padding: .explicit(rows: padding.0, columns: padding.1), groups: groups, activation: activation,
                  bias: bias, weightInit: weightInit, biasInit: biasInit, seed: seed, device: device)
    }

    /// A square kernel, stride and padding.
    public convenience init(inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
                            groups: Int = 1, activation: Activation = .identity, bias: Bool = true,
                            weightInit: Initializer = .heUniform, biasInit: Initializer = .zeros,
                            seed: UInt64? = nil, device: Device = .default) {
        self.init(inChannels: inChannels, outChannels: outChannels, kernelSize: (kernelSize, kernelSize),
                  stride: (stride, stride), padding: .explicit(rows: padding, columns: padding), groups: groups,
                  activation: activation, bias: bias, weightInit: weightInit, biasInit: biasInit, seed: seed, device: device)
    }

    /// A square kernel and stride, with padding given as `.same` or `.explicit(rows:columns:)`.
    public convenience init(inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Padding,
                            groups: Int = 1, activation: Activation = .identity, bias: Bool = true,
                            weightInit: Initializer = .heUniform, biasInit: Initializer = .zeros,
                            seed: UInt64? = nil, device: Device = .default) {
        self.init(inChannels: inChannels, outChannels: outChannels, kernelSize: (kernelSize, kernelSize),
                  stride: (stride, stride), padding: padding, groups: groups, activation: activation, bias: bias,
                  weightInit: weightInit, biasInit: biasInit, seed: seed, device: device)
    }

    public func callAsFunction(_ input: Tensor) throws -> Tensor {
        guard input.rank == 4, input.shape[1] == inChannels,
              input.shape[2] + 2 * padding.0 >= kernelSize.0, input.shape[3] + 2 * padding.1 >= kernelSize.1 else {
            throw LayerError.shape(layer: layerDescription,
                                   expected: "[batch, \(inChannels), height >= \(kernelSize.0 - 2 * padding.0), width >= \(kernelSize.1 - 2 * padding.1)] (weight \(weight.shape))",
                                   got: input.shape)
        }
        var y: Tensor
        if groups == 1 {
            // One node: the chunked convolution with its bias (MyelinCore's conv2d).
            y = try input.conv2d(weight: weight, bias: bias, stride: stride, padding: padding)
        } else {
            y = try groupedConvolution(input)
            if let bias { y = try y + bias.reshaped([1, outChannels, 1, 1]) }
        }
        // A per-channel bias commutes with dropping the first row and column.
        if paddingMode == .same, kernelSize.0 % 2 == 0 || kernelSize.1 % 2 == 0 {
            y = try droppingFirstRowAndColumn(y, row: kernelSize.0 % 2 == 0, column: kernelSize.1 % 2 == 0)
        }
        return activation == .identity ? y : y.activation(activation)
    }

    /// `.same` with an even kernel: y [N, O, H + 1, W + 1] (padded by k / 2 on both sides) without its first
    /// row and/or column, i.e. padded by k / 2 − 1 above (left) and k / 2 below (right), as PyTorch pads.
    private func droppingFirstRowAndColumn(_ y: Tensor, row: Bool, column: Bool) throws -> Tensor {
        var (planes, h, w) = (y.shape[0] * y.shape[1], y.shape[2], y.shape[3])
        var x = y
        if row {   // rows of each plane but its first
            x = try x.reshaped([planes * h, w]).gather(rows: (0..<planes).flatMap { p in (1..<h).map { p * h + $0 } })
            h -= 1
        }
        if column {   // the same on the transpose: columns but the first
            let t = try x.reshaped([planes, h, w]).transposed().reshaped([planes * w, h])
            x = try t.gather(rows: (0..<planes).flatMap { p in (1..<w).map { p * w + $0 } })
                .reshaped([planes, w - 1, h]).transposed()
            w -= 1
        }
        return try x.reshaped([y.shape[0], y.shape[1], h, w])
    }

    /// groups > 1: the images seen as N·G images of C/G channels, each multiplied by its group's filters
    /// [O/G, C/G·kh·kw] in one batched GEMM (the weight repeated over the batch; its gradient sums back).
    private func groupedConvolution(_ input: Tensor) throws -> Tensor {
        let (n, h, w) = (input.shape[0], input.shape[2], input.shape[3])
        let perGroupOut = outChannels / groups
        let grouped = try input.reshaped([n * groups, inChannels / groups, h, w])
        let g = try grouped.convGeometry(kernel: kernelSize, stride: stride, padding: padding, op: layerDescription)
        let cols = try grouped.im2col(kernel: kernelSize, stride: stride, padding: padding)   // [N·G, C/G·kh·kw, L]
        let filters = try weight.reshaped([1, weight.count]).broadcast(to: [n, weight.count])
            .reshaped([n * groups, perGroupOut, g.patchSize])
        return try filters.matmul(cols).reshaped([n, outChannels, g.outH, g.outW])   // [N·G, O/G, L] = [N, O, L]
    }

    public var namedTensors: [(String, Tensor)] { weightAndBias(weight, bias) }

    public func setTensor(_ name: String, _ value: Tensor) throws {
        let layer = layerDescription  // read before the inout accesses below begin
        try setWeightOrBias(name, value, weight: &weight, bias: &bias, layer: layer)
    }

    /// Two PyTorch modules (`Conv2d` and the activation) when the activation is fused, else one.
    public var torchModuleCount: Int { activation == .identity ? 1 : 2 }

    public var layerDescription: String {
        var s = "Conv2D(\(inChannels) -> \(outChannels), \(kernelSize.0)x\(kernelSize.1)"
        if stride != (1, 1) { s += ", stride \(stride.0)x\(stride.1)" }
        if paddingMode == .same { s += ", padding same" } else if padding != (0, 0) { s += ", padding \(padding.0)x\(padding.1)" }
        if groups != 1 { s += ", groups \(groups)" }
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
    if kind == .max { return try input.maxPool2d(kernel: kernel, stride: stride, padding: padding) }
    let (n, c, h, w) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
    let planes = try input.reshaped([n * c, 1, h, w])
    let cols = try planes.im2col(kernel: kernel, stride: stride, padding: padding, padValue: 0)   // [N·C, kh·kw, L]
    let g = try planes.convGeometry(kernel: kernel, stride: stride, padding: padding, op: layer)
    let reduced = try cols.mean(axis: 1)
    return try reduced.reshaped([n, c, g.outH, g.outW])
}

/// Max pooling over kh x kw windows (stride defaults to the kernel size; padding reads -infinity).
/// The gradient goes to the window's largest input; on ties all of it goes to the first one in window order (row by
/// row), as in PyTorch's `nn.MaxPool2d`.
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

/// Global average pooling: [N, C, H, W] -> [N, C], the mean of each channel's H·W values (one reduction;
/// the backward spreads each gradient evenly over its channel's positions).
///
/// It stands for two PyTorch modules, `nn.AdaptiveAvgPool2d(1)` then `nn.Flatten()`, and takes two indices
/// in a `Sequential`.
///
/// ```swift
/// let head = Sequential { GlobalAvgPool2D(); Dense(inputSize: 64, outputSize: 10) }   // [N, 64, 7, 7] -> [N, 10]
/// ```
public final class GlobalAvgPool2D: ParameterlessLayer {
    public var isTraining = true
    /// A global average pooling layer.
    public init() {}

    public func callAsFunction(_ input: Tensor) throws -> Tensor {
        guard input.rank == 4, input.shape[2] > 0, input.shape[3] > 0 else {
            throw LayerError.shape(layer: layerDescription, expected: "[batch, channels, height > 0, width > 0]", got: input.shape)
        }
        let (n, c) = (input.shape[0], input.shape[1])
        return try input.reshaped([n, c, input.shape[2] * input.shape[3]]).mean(axis: 2)
    }

    /// Two PyTorch modules: `AdaptiveAvgPool2d(1)` and `Flatten()`.
    public var torchModuleCount: Int { 2 }

    public var layerDescription: String { "GlobalAvgPool2D" }
}
