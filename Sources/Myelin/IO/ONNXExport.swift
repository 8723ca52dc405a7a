import Foundation

/// Why `Layer.exportONNX` could not export a model.
public enum ONNXExportError: Error, CustomStringConvertible, Equatable {
    /// The layer at `path` (positions in the containers, e.g. "layer 3 > inner > layer 0") has no ONNX form;
    /// `layer` is its description and `reason` says why.
    case unsupportedLayer(path: String, layer: String, reason: String)
    /// `inputShape` is not the shape of one sample the model accepts (the reason says why).
    case invalidInputShape([Int], reason: String)

    public var description: String {
        switch self {
        case .unsupportedLayer(let path, let layer, let reason):
            return "ONNX export: \(path) (\(layer)) cannot be exported: \(reason)"
        case .invalidInputShape(let shape, let reason):
            return "ONNX export: input shape \(shape) (one sample, without the batch axis): \(reason)"
        }
    }
}

extension Layer {
    /// Writes the model as an ONNX file (opset 17, float32), atomically, for ONNX Runtime, TensorRT, OpenVINO and
    /// the like. The graph's input `input` is [batch] + `inputShape` and its output `output` is [batch] + the
    /// model's output shape, the first dimension dynamic (named "batch"); the weights are initializers named by
    /// their state-dict keys (`1.weight`, `4.0.bn1.running_mean`, ...). The model is exported as it computes in
    /// eval mode: `BatchNorm` with its running statistics, `Dropout` as the identity.
    ///
    /// Exports `Sequential`, `Residual`, `ResidualBlock`, `Dense`, `Conv2D` (stride, padding, `.same`, groups),
    /// `BatchNorm`, `MaxPool2D`, `AvgPool2D`, `GlobalAvgPool2D`, `Flatten`, `Reshape`, `Softmax`, `Dropout` and
    /// every activation (GELU and SiLU as their formulas, which opset 17 has no single operator for). A layer of
    /// another type gives `ONNXExportError.unsupportedLayer` naming it and where it is; an `inputShape` the model
    /// does not take gives `ONNXExportError.invalidInputShape` (one forward pass on zeros checks it); a path that
    /// cannot be written gives a `FileError` naming it. Nothing is written unless the whole export succeeds.
    ///
    /// ```swift
    /// let model = ConvNets.fashionCNN(seed: 1)
    /// try model.exportONNX(to: URL(fileURLWithPath: "cnn.onnx"), inputShape: [784])
    /// // python: onnxruntime.InferenceSession("cnn.onnx").run(None, {"input": images})   # images [N, 784]
    /// ```
    ///
    /// - Parameters:
    ///   - url: the file to write (`.onnx`).
    ///   - inputShape: the shape of one sample, without the batch axis: `[784]` for flat images, `[1, 28, 28]` for
    ///     images with their channel.
    public func exportONNX(to url: URL, inputShape: [Int]) throws {
        let bytes = try onnxModel(inputShape: inputShape)
        try AtomicFile.write(Data(bytes), to: url)
    }

    /// `exportONNX(to:inputShape:)` with a file path.
    public func exportONNX(to path: String, inputShape: [Int]) throws {
        try exportONNX(to: URL(fileURLWithPath: path), inputShape: inputShape)
    }

    /// The bytes of the ONNX model `exportONNX(to:inputShape:)` writes.
    public func onnxModel(inputShape: [Int]) throws -> [UInt8] {
        guard !inputShape.isEmpty, inputShape.allSatisfy({ $0 > 0 }) else {
            throw ONNXExportError.invalidInputShape(inputShape, reason: "needs at least one axis, every size positive")
        }
        var graph = ONNXGraph()
        let output = try ONNXLowering.lower(self, input: "input", prefix: "", path: "the model", graph: &graph)
        let outputShape = try sampleOutputShape(inputShape)
        // A model that is the identity (or only Dropout) still gets a node between its input and output.
        let named = graph.node("Identity", [output], hint: "output")
        return graph.modelBytes(input: "input", inputShape: inputShape, output: named, outputShape: outputShape,
                                graphName: layerDescription)
    }

    /// The output shape of one sample, from one eval-mode forward pass on zeros [1] + `inputShape` without a graph
    /// (the train/eval mode is restored).
    private func sampleOutputShape(_ inputShape: [Int]) throws -> [Int] {
        let device = namedTensors.first?.1.device ?? .default
        let wasTraining = isTraining
        isTraining = false
        defer { isTraining = wasTraining }
        do {
            let y = try withNoGrad { try self(Tensor.zeros([1] + inputShape, on: device)) }
            return Array(y.shape.dropFirst())
        } catch {
            throw ONNXExportError.invalidInputShape(inputShape, reason: "the model does not take it: \(error)")
        }
    }
}

/// Each Myelin layer as ONNX nodes.
enum ONNXLowering {
    /// Adds the nodes of `layer` applied to the value `input`; returns the name of its output. `prefix` is the
    /// state-dict prefix of the layer's tensors, `path` its place in the model for errors.
    static func lower(_ layer: any Layer, input x: String, prefix: String, path: String,
                      graph: inout ONNXGraph) throws -> String {
        switch layer {
        case let s as Sequential:
            var y = x
            for ((i, child), index) in zip(s.layers.enumerated(), s.torchIndices) {
                let where_ = path == "the model" ? "layer \(i)" : "\(path) > layer \(i)"
                y = try lower(child, input: y, prefix: "\(prefix)\(index).", path: where_, graph: &graph)
            }
            return y
        case let r as Residual:
            let inner = try lower(r.inner, input: x, prefix: prefix + "inner.", path: path + " > inner", graph: &graph)
            let skip = try r.shortcut.map {
                try lower($0, input: x, prefix: prefix + "shortcut.", path: path + " > shortcut", graph: &graph)
            } ?? x
            return graph.node("Add", [skip, inner], hint: "residual")
        case let b as ResidualBlock:
            var y = try lower(b.conv1, input: x, prefix: prefix + "conv1.", path: path, graph: &graph)
            y = try lower(b.bn1, input: y, prefix: prefix + "bn1.", path: path, graph: &graph)
            y = graph.node("Relu", [y])
            y = try lower(b.conv2, input: y, prefix: prefix + "conv2.", path: path, graph: &graph)
            y = try lower(b.bn2, input: y, prefix: prefix + "bn2.", path: path, graph: &graph)
            let skip = try b.downsample.map {
                try lower($0, input: x, prefix: prefix + "downsample.", path: path + " > downsample", graph: &graph)
            } ?? x
            return graph.node("Relu", [graph.node("Add", [y, skip], hint: "residual")])
        case let d as Dense:
            let w = graph.constant(prefix + "weight", try d.weight.checkedArray(op: "exporting '\(prefix)weight'"), dims: d.weight.shape)
            let b = try d.bias.map { graph.constant(prefix + "bias", try $0.toArray(), dims: $0.shape) }
            let y = graph.node("Gemm", [x, w] + (b.map { [$0] } ?? []), hint: "dense", [("transB", .int(1))])
            return try activation(d.activation, y, path: path, graph: &graph)
        case let c as Conv2D:
            return try convolution(c, x, prefix: prefix, path: path, graph: &graph)
        case let n as BatchNorm:
            let inputs = try [x] + [("weight", n.weight), ("bias", n.bias), ("running_mean", n.runningMean),
                                ("running_var", n.runningVar)].map { graph.constant(prefix + $0.0, try $0.1.toArray(), dims: $0.1.shape) }
            return graph.node("BatchNormalization", inputs, hint: "batchnorm", [("epsilon", .float(n.epsilon))])
        case let p as MaxPool2D:
            return graph.node("MaxPool", [x], pooling(p.kernelSize, p.stride, p.padding))
        case let p as AvgPool2D:
            // Padding counts as zeros in the average, as Myelin (and PyTorch by default) computes it.
            return graph.node("AveragePool", [x], pooling(p.kernelSize, p.stride, p.padding) + [("count_include_pad", .int(1))])
        case is GlobalAvgPool2D:
            return graph.node("Flatten", [graph.node("GlobalAveragePool", [x])], [("axis", .int(1))])
        case is Flatten:
            return graph.node("Flatten", [x], [("axis", .int(1))])
        case let r as Reshape:
            // 0 keeps the input's (dynamic) batch size.
            let shape = graph.int64Constant("shape", [0] + r.sampleShape.map(Int64.init))
            return graph.node("Reshape", [x, shape])
        case is Softmax:
            return graph.node("Softmax", [x], [("axis", .int(-1))])
        case is Dropout:
            return graph.node("Identity", [x], hint: "dropout")
        case let a as ActivationLayer:
            return try activation(a.activation, x, path: path, graph: &graph)
        default:
            throw ONNXExportError.unsupportedLayer(path: path, layer: layer.layerDescription,
                                                   reason: "\(type(of: layer)) has no ONNX form in Myelin's exporter (it exports Myelin's own layers only)")
        }
    }

    /// Conv with its weight, bias, stride, padding (`.same` with an even kernel padded one less above and left, as
    /// Myelin and PyTorch compute it) and groups, then the fused activation.
    private static func convolution(_ c: Conv2D, _ x: String, prefix: String, path: String,
                                    graph: inout ONNXGraph) throws -> String {
        let (kh, kw) = c.kernelSize
        var top = c.padding.0, left = c.padding.1, bottom = c.padding.0, right = c.padding.1
        if c.paddingMode == .same {
            (top, bottom) = ((kh - 1) / 2, kh - 1 - (kh - 1) / 2)
            (left, right) = ((kw - 1) / 2, kw - 1 - (kw - 1) / 2)
        }
        let w = graph.constant(prefix + "weight", try c.weight.checkedArray(op: "exporting '\(prefix)weight'"), dims: c.weight.shape)
        let b = try c.bias.map { graph.constant(prefix + "bias", try $0.toArray(), dims: $0.shape) }
        let y = graph.node("Conv", [x, w] + (b.map { [$0] } ?? []), hint: "conv", [
            ("kernel_shape", .ints([kh, kw])), ("strides", .ints([c.stride.0, c.stride.1])),
            ("pads", .ints([top, left, bottom, right])), ("dilations", .ints([1, 1])), ("group", .int(c.groups)),
        ])
        return try activation(c.activation, y, path: path, graph: &graph)
    }

    private static func pooling(_ kernel: (Int, Int), _ stride: (Int, Int), _ padding: (Int, Int)) -> [(String, ONNXAttribute)] {
        [("kernel_shape", .ints([kernel.0, kernel.1])), ("strides", .ints([stride.0, stride.1])),
         ("pads", .ints([padding.0, padding.1, padding.0, padding.1]))]
    }

    /// `a` applied to `x`: one operator where opset 17 has it, else its formula.
    static func activation(_ a: Activation, _ x: String, path: String, graph: inout ONNXGraph) throws -> String {
        switch a {
        case .identity: return x
        case .step:   // 1 where x > 0, else 0
            let positive = graph.node("Greater", [x, graph.scalar("zero", 0)])
            return graph.node("Cast", [positive], hint: "step", [("to", .int(1))])
        case .sigmoid: return graph.node("Sigmoid", [x])
        case .tanh: return graph.node("Tanh", [x])
        case .relu: return graph.node("Relu", [x])
        case .leakyRelu(let slope): return graph.node("LeakyRelu", [x], [("alpha", .float(slope))])
        case .elu(let alpha): return graph.node("Elu", [x], [("alpha", .float(alpha))])
        case .selu: return graph.node("Selu", [x])   // ONNX's default alpha and gamma are SELU's constants
        case .softplus: return graph.node("Softplus", [x])
        case .silu: return graph.node("Mul", [x, graph.node("Sigmoid", [x])], hint: "silu")
        case .geluErf:   // 0.5·x·(1 + erf(x/√2))
            let erf = graph.node("Erf", [graph.node("Mul", [x, graph.scalar("inverse_sqrt2", 0.7071067811865476)])])
            let onePlus = graph.node("Add", [erf, graph.scalar("one", 1)])
            return graph.node("Mul", [graph.node("Mul", [x, graph.scalar("half", 0.5)]), onePlus], hint: "gelu")
        case .geluTanh:  // 0.5·x·(1 + tanh(u)) = x·sigmoid(2u), u = √(2/π)·x·(1 + 0.044715·x²)
            let square = graph.node("Mul", [x, x])
            let inner = graph.node("Add", [graph.node("Mul", [square, graph.scalar("gelu_c", 0.044715)]), graph.scalar("one", 1)])
            let twoU = graph.node("Mul", [graph.node("Mul", [inner, x]), graph.scalar("two_sqrt_2_over_pi", 2 * 0.7978845608028654)])
            return graph.node("Mul", [x, graph.node("Sigmoid", [twoU])], hint: "gelu")
        }
    }
}
