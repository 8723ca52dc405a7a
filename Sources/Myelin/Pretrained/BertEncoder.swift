import Foundation

// BERT's encoder (Hugging Face's `BertModel`: embeddings, post-LN transformer layers, optional pooler) under Hugging
// Face's tensor names, so a model.safetensors of the hub loads as it is. Built from the sequence ops.

/// One layer of a BERT encoder (Hugging Face's `BertLayer`), post-LN:
///
///     h = LayerNorm(x + attention.output.dense(selfAttention(x, mask)))
///     y = LayerNorm(h + output.dense(gelu(intermediate.dense(h))))
///
/// State keys as Hugging Face's: `attention.self.{query,key,value}.*`, `attention.output.dense.*`,
/// `attention.output.LayerNorm.*`, `intermediate.dense.*`, `output.dense.*`, `output.LayerNorm.*`.
///
/// ```swift
/// let layer = BertLayer(config: config)
/// let y = try layer(x, mask: nil)   // x [batch, T, hiddenSize] -> the same shape
/// ```
public final class BertLayer: Layer {
    /// The shape of the model this layer belongs to.
    public let config: BertConfig
    /// The query, key and value projections (hiddenSize -> hiddenSize each).
    public let query: Dense, key: Dense, value: Dense
    /// The projection of the attention's output, and the layer norm after its residual sum.
    public let attentionOutput: Dense, attentionNorm: LayerNorm
    /// The feed-forward part: hiddenSize -> intermediateSize with GELU, then back.
    public let intermediate: Dense, output: Dense
    /// The layer norm after the feed-forward residual sum.
    public let outputNorm: LayerNorm
    public var isTraining = true

    /// A layer of `config`'s shape on `device`, its weights zero and its layer norms at weight 1, bias 0 (they are
    /// meant to be loaded: `BertEncoder.load(from:)`).
    public init(config: BertConfig, device: Device = .default) {
        self.config = config
        let h = config.hiddenSize
        func dense(_ inputs: Int, _ outputs: Int, _ activation: Activation = .identity) -> Dense {
            Dense(inputSize: inputs, outputSize: outputs, activation: activation, weightInit: .zeros, seed: 0, device: device)
        }
        query = dense(h, h); key = dense(h, h); value = dense(h, h)
        attentionOutput = dense(h, h)
        attentionNorm = LayerNorm(features: h, epsilon: config.layerNormEpsilon, device: device)
        intermediate = dense(h, config.intermediateSize, config.approximateGELU ? .geluTanh : .geluErf)
        output = dense(config.intermediateSize, h)
        outputNorm = LayerNorm(features: h, epsilon: config.layerNormEpsilon, device: device)
    }

    /// The layer over `input` [batch, T, hiddenSize] without a padding mask.
    public func callAsFunction(_ input: Tensor) throws -> Tensor { try callAsFunction(input, mask: nil) }

    /// The layer over `input` [batch, T, hiddenSize] with an additive attention `mask` [batch, 1, 1, T] (0 for a
    /// token, a large negative number for padding; see `BertEncoder.additiveMask(_:)`).
    public func callAsFunction(_ input: Tensor, mask: Tensor?) throws -> Tensor {
        guard input.rank == 3, input.shape[2] == config.hiddenSize, input.shape[1] > 0 else {
            throw LayerError.shape(layer: layerDescription, expected: "[batch, T, \(config.hiddenSize)]", got: input.shape)
        }
        let b = input.shape[0], t = input.shape[1], heads = config.heads, d = config.hiddenSize / heads
        let scale = 1 / Float(d).squareRoot()
        if !input.device.isOpenCL, query.bias != nil, key.bias != nil, value.bias != nil {
            // On the CPU one product for the three projections and the attention reading its [B, T, 3C] output and
            // writing the heads merged: no permutes.
            let qkv = try stackedProjection(input)
            let context = try Tensor.scaledDotProductAttention(packed: qkv, heads: heads, mask: mask, scale: scale)
            return try feedForward(input, context: context)
        }
        func split(_ projection: Dense) throws -> Tensor {
            try projection(input).reshaped([b, t, heads, d]).permuted([0, 2, 1, 3])   // [B, H, T, D]
        }
        let q = try split(query), k = try split(key), v = try split(value)
        // The fused op (online softmax, no [B, H, T, T] scores kept): Hugging Face's eager attention in one launch.
        let context = try Tensor.scaledDotProductAttention(q, k, v, mask: mask, scale: scale)
            .permuted([0, 2, 1, 3]).reshaped([b, t, config.hiddenSize])
        return try feedForward(input, context: context)
    }

    /// The layer on the tokens of sequences of `lengths` stored back to back as rows [N, hidden], without padding
    /// (`Tensor.scaledDotProductAttention(packedRows:lengths:heads:)`): the values `callAsFunction(_:mask:)` gives
    /// at the tokens of the padded batch, with no work on padded positions.
    public func callAsFunction(rows input: Tensor, lengths: [Int]) throws -> Tensor {
        guard input.rank == 2, input.shape[1] == config.hiddenSize, input.shape[0] > 0 else {
            throw LayerError.shape(layer: layerDescription, expected: "[tokens, \(config.hiddenSize)]", got: input.shape)
        }
        let context = try Tensor.scaledDotProductAttention(packedRows: stackedProjection(input), lengths: lengths,
                                                           heads: config.heads)
        return try feedForward(input, context: context)
    }

    /// The rest of the layer after the attention's `context` (heads merged): the output projection, the residual
    /// and its layer norm, then the feed-forward block with its residual and layer norm (post-LN, as BERT).
    private func feedForward(_ input: Tensor, context: Tensor) throws -> Tensor {
        let h = try attentionNorm(input + attentionOutput(context))
        return try outputNorm(h + output(intermediate(h)))
    }

    /// The three projections as one product, their weights stacked [3·hidden, hidden] (a small copy) and their
    /// biases stacked (zeros for one without, none if none has one): [..., 3·hidden], q, k and v side by side.
    private func stackedProjection(_ input: Tensor) throws -> Tensor {
        let biases = [query.bias, key.bias, value.bias]
        let bias = biases.contains { $0 != nil }
            ? try Tensor.concat(biases.map { $0 ?? Tensor.zeros([config.hiddenSize], on: input.device) }) : nil
        return try input.linear(weight: Tensor.concat([query.weight, key.weight, value.weight]), bias: bias)
    }

    private var children: [(String, any Layer)] {
        [("attention.self.query", query), ("attention.self.key", key), ("attention.self.value", value),
         ("attention.output.dense", attentionOutput), ("attention.output.LayerNorm", attentionNorm),
         ("intermediate.dense", intermediate), ("output.dense", output), ("output.LayerNorm", outputNorm)]
    }
    public var namedTensors: [(String, Tensor)] { childTensors(children) }
    public func setTensor(_ name: String, _ value: Tensor) throws {
        try setNestedChildTensor(name, value, children: children, layer: layerDescription)
    }
    public var layerDescription: String {
        "BertLayer(\(config.hiddenSize), heads \(config.heads), intermediate \(config.intermediateSize))"
    }
}

/// A BERT encoder (Hugging Face's `BertModel`): token, position and token-type embeddings summed and
/// layer-normalized, then `config.layers` post-LN `BertLayer`s; the output is the last hidden state
/// [batch, T, hiddenSize]. With `pooler`, it also holds BERT's pooler (`tanh(dense(h[:, 0]))`, `pooled(_:)`).
/// There is no dropout: the encoder computes what Hugging Face's does in eval mode.
///
/// Tensor names are Hugging Face's: `embeddings.word_embeddings.weight`, `embeddings.position_embeddings.weight`,
/// `embeddings.token_type_embeddings.weight`, `embeddings.LayerNorm.*`, `encoder.layer.N.…` (see `BertLayer`),
/// `pooler.dense.*`; `load(from:config:device:)` reads a model.safetensors strictly.
///
/// ```swift
/// let bert = try BertEncoder.load(from: folder.appendingPathComponent("model.safetensors"),
///                                 config: BertConfig(contentsOf: folder.appendingPathComponent("config.json")))
/// let h = try bert(ids, attentionMask: mask)   // ids, mask [batch, T] -> [batch, T, hiddenSize]
/// ```
public final class BertEncoder: Layer {
    /// The model's shape.
    public let config: BertConfig
    /// The token, position and token-type tables ([vocabularySize | maxPositions | typeVocabularySize, hiddenSize]).
    public let wordEmbeddings: Embedding, positionEmbeddings: Embedding, tokenTypeEmbeddings: Embedding
    /// The layer norm of the summed embeddings.
    public let embeddingNorm: LayerNorm
    /// The transformer layers, in order.
    public let layers: [BertLayer]
    /// BERT's pooler (hiddenSize -> hiddenSize, tanh) of the first token, or nil.
    public let pooler: Dense?
    public var isTraining = true {
        didSet { for layer in layers { layer.isTraining = isTraining } }
    }

    /// An encoder of `config`'s shape on `device`, with zero weights (to be loaded), and a pooler if `pooler`.
    /// Sizes the device cannot hold stop the program: `load(from:config:device:)` checks them first
    /// (`BertConfig.memory`), and throws.
    public init(config: BertConfig, pooler: Bool = true, device: Device = .default) {
        self.config = config
        let h = config.hiddenSize
        wordEmbeddings = Embedding(count: config.vocabularySize, dimension: h, weightInit: .zeros, seed: 0, device: device)
        positionEmbeddings = Embedding(count: config.maxPositions, dimension: h, weightInit: .zeros, seed: 0, device: device)
        tokenTypeEmbeddings = Embedding(count: config.typeVocabularySize, dimension: h, weightInit: .zeros, seed: 0,
                                        device: device)
        embeddingNorm = LayerNorm(features: h, epsilon: config.layerNormEpsilon, device: device)
        layers = (0..<config.layers).map { _ in BertLayer(config: config, device: device) }
        self.pooler = pooler ? Dense(inputSize: h, outputSize: h, activation: .tanh, weightInit: .zeros, seed: 0,
                                     device: device) : nil
    }

    /// The last hidden state of token ids [batch, T] (whole numbers stored as Float), every token attended.
    public func callAsFunction(_ input: Tensor) throws -> Tensor { try callAsFunction(input, attentionMask: nil) }

    /// The last hidden state [batch, T, hiddenSize] of token `ids` [batch, T] with an `attentionMask` [batch, T]
    /// (1 for a token, 0 for padding; nil: all 1) and `tokenTypes` [batch, T] (nil: all 0). T is at most
    /// `config.maxPositions`.
    public func callAsFunction(_ ids: Tensor, attentionMask: Tensor?, tokenTypes: Tensor? = nil) throws -> Tensor {
        guard ids.rank == 2, ids.shape[1] > 0, ids.shape[1] <= config.maxPositions else {
            throw LayerError.shape(layer: layerDescription, expected: "token ids [batch, T] with 1 ≤ T ≤ \(config.maxPositions)",
                                   got: ids.shape)
        }
        for (name, t) in [("attentionMask", attentionMask), ("tokenTypes", tokenTypes)] {
            if let t, t.shape != ids.shape {
                throw LayerError.shape(layer: layerDescription + " \(name)", expected: "\(ids.shape) like the ids", got: t.shape)
            }
        }
        let t = ids.shape[1]
        var x = try wordEmbeddings(ids) + positionEmbeddings.weight.slice(0..<t)
        if let tokenTypes {
            x = try x + tokenTypeEmbeddings(tokenTypes)
        } else {
            x = try x + tokenTypeEmbeddings.weight.slice(0..<1)
        }
        x = try embeddingNorm(x)
        let mask = try attentionMask.map { try Self.additiveMask($0) }
        for layer in layers { x = try layer(x, mask: mask) }
        return x
    }

    /// The encoder on sequences of token ids of different lengths, without padding (`BertLayer.callAsFunction(rows:
    /// lengths:)`), token type 0: the hidden states [N, hidden] of every token, sequence after sequence, which are the
    /// rows of `callAsFunction(_:attentionMask:)` on the padded batch at its unmasked positions.
    public func callAsFunction(sequences: [[Int]]) throws -> Tensor {
        let longest = sequences.map(\.count).max() ?? 0
        guard sequences.allSatisfy({ !$0.isEmpty }), longest <= config.maxPositions else {
            throw LayerError.shape(layer: layerDescription, expected: "sequences of 1 to \(config.maxPositions) token ids",
                                   got: sequences.map(\.count))
        }
        let ids = sequences.joined()
        if let bad = ids.first(where: { !(0..<config.vocabularySize).contains($0) }) {
            throw LayerError.shape(layer: layerDescription + " (token id \(bad) outside 0..<\(config.vocabularySize))",
                                   expected: "token ids of the vocabulary", got: [ids.count])
        }
        let device = wordEmbeddings.weight.device
        let positions = sequences.flatMap { (0..<$0.count).map(Float.init) }
        var x = try wordEmbeddings(Tensor(ids.map(Float.init), on: device))
            + positionEmbeddings(Tensor(positions, on: device)) + tokenTypeEmbeddings.weight.slice(0..<1)
        x = try embeddingNorm(x)
        let lengths = sequences.map(\.count)
        for layer in layers { x = try layer(rows: x, lengths: lengths) }
        return x
    }

    /// The pooler's output [batch, hiddenSize] for a last hidden state [batch, T, hiddenSize]: tanh of a dense layer
    /// on the first ([CLS]) token. Throws if the encoder has no pooler.
    public func pooled(_ hidden: Tensor) throws -> Tensor {
        guard let pooler else { throw LayerError.shape(layer: layerDescription + " (no pooler)", expected: "a pooler", got: hidden.shape) }
        guard hidden.rank == 3, hidden.shape[2] == config.hiddenSize else {
            throw LayerError.shape(layer: layerDescription, expected: "[batch, T, \(config.hiddenSize)]", got: hidden.shape)
        }
        let b = hidden.shape[0], t = hidden.shape[1]
        let first = try hidden.reshaped([b * t, config.hiddenSize]).gather(rows: (0..<b).map { $0 * t })
        return try pooler(first)
    }

    /// The additive attention mask [batch, 1, 1, T] of a 0/1 mask [batch, T]: 0 where 1, −Float.greatestFiniteMagnitude
    /// where 0 (as Hugging Face's, so a row with no token gives uniform weights rather than NaN).
    public static func additiveMask(_ mask: Tensor) throws -> Tensor {
        guard mask.rank == 2 else { throw TensorError.invalidShape(op: "BertEncoder.additiveMask", mask.shape, "is not [batch, T]") }
        return try ((1 - mask) * -Float.greatestFiniteMagnitude).reshaped([mask.shape[0], 1, 1, mask.shape[1]])
    }

    private var children: [(String, any Layer)] {
        var out: [(String, any Layer)] = [
            ("embeddings.word_embeddings", wordEmbeddings), ("embeddings.position_embeddings", positionEmbeddings),
            ("embeddings.token_type_embeddings", tokenTypeEmbeddings), ("embeddings.LayerNorm", embeddingNorm)]
        out += layers.enumerated().map { ("encoder.layer.\($0.offset)", $0.element) }
        if let pooler { out.append(("pooler.dense", pooler)) }
        return out
    }
    public var namedTensors: [(String, Tensor)] { childTensors(children) }
    public func setTensor(_ name: String, _ value: Tensor) throws {
        try setNestedChildTensor(name, value, children: children, layer: layerDescription)
    }
    public var layerDescription: String {
        "BertEncoder(\(config.layers) layers, hidden \(config.hiddenSize), heads \(config.heads), vocabulary \(config.vocabularySize))"
    }

    // MARK: loading

    /// The buffer of Hugging Face's BERT that is no weight: position ids [1, maxPositions], 0, 1, 2, ...
    static let positionIDsName = "embeddings.position_ids"

    /// An encoder of `config`'s shape with the tensors of a Hugging Face model.safetensors, loaded strictly: every
    /// tensor of the file is used and every tensor of the model is in the file, each of the right shape; errors
    /// (`CheckpointError`, `PretrainedModelError`) name the file and all missing, unexpected or misshapen tensors.
    /// The pooler is there when the file has `pooler.*` tensors; the `embeddings.position_ids` buffer older files
    /// hold is checked to be 0, 1, 2, ... and not loaded. The model's size (`BertConfig.memory`) is checked against
    /// the device before the file is read, the error naming the config.json beside `url` and its size fields.
    public static func load(from url: URL, config: BertConfig, device: Device = .default) throws -> BertEncoder {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw PretrainedModelError.missingFile(url.path, what: "the model's weights, model.safetensors")
        }
        try config.memory(batchSize: 1, sequenceLength: min(512, config.maxPositions), pooler: true,
                          file: url.deletingLastPathComponent().appendingPathComponent("config.json").path).check(on: device)
        do { return try readWeights(url, config: config, device: device) } catch let error as CheckpointError {
            let c = config, json = url.deletingLastPathComponent().appendingPathComponent("config.json").path
            throw error.disagreeing(with: "\(json) (num_hidden_layers \(c.layers), hidden_size \(c.hiddenSize), "
                + "intermediate_size \(c.intermediateSize), vocab_size \(c.vocabularySize), "
                + "max_position_embeddings \(c.maxPositions), type_vocab_size \(c.typeVocabularySize))")
        }
    }
}

/// `setTensor` of a layer whose children have dotted names (`attention.self.query`): hands the rest of `name`
/// after the longest child name it starts with (and a dot) to that child; any other name is `LayerError.unknownTensor`.
func setNestedChildTensor(_ name: String, _ value: Tensor, children: [(String, any Layer)], layer: String) throws {
    let match = children.filter { name.hasPrefix($0.0 + ".") }.max { $0.0.count < $1.0.count }
    guard let (prefix, child) = match else { throw LayerError.unknownTensor(layer: layer, name: name) }
    try child.setTensor(String(name.dropFirst(prefix.count + 1)), value)
}
