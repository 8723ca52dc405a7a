import Foundation

// What the transformers need in memory, counted from their sizes before any layer is built (issue 28, item 2):
// `GPTConfig.memory` for `myelin train text`, `BertConfig.memory` for a pretrained model's config.json.

extension GPTConfig {
    /// The exact number of trainable parameters of `GPT(self)` (the output projection is tied to the token
    /// embedding, so counted once), in Double so that no size overflows: the embeddings V·C + T·C, each block
    /// 12·C² + 2·C (+ 11·C with biases), the final layer norm C (+ C).
    public var parameterCount: Double {
        let c = Double(embedDim), b = bias ? 1.0 : 0
        let block = 12 * c * c + 2 * c + 11 * c * b
        return Double(vocabSize) * c + Double(blockSize) * c + Double(layers) * block + c * (1 + b)
    }

    /// Whether a `GPT` of this configuration trains through the three-op attention (product, masked softmax,
    /// product), which keeps the [B, H, T, T] scores: with attention dropout, or `MYELIN_ATTENTION=reference`.
    public var trainsWithAttentionScores: Bool {
        dropout > 0 || ProcessInfo.processInfo.environment["MYELIN_ATTENTION"] == "reference"
    }

    /// What training a `GPT` of this configuration on batches of `batchSize` windows needs, counted without building
    /// it: the exact parameters, as many gradients, `optimizerStateTensors` slots each (AdamW 2), and an estimate of
    /// a step's activations kept for backward and their gradients: per block about 23·B·T·C (layer norms,
    /// projections, the MLP's 4·C pre-activation and GELU, residual sums), plus the attention scores B·H·T·T twice
    /// (four times with dropout) when `attentionScores` (default `trainsWithAttentionScores`); the embeddings and
    /// the logits with their softmax, 2·B·T·V. `options` names the sizes in errors (`--layers 1000000000, ...`).
    ///
    /// ```swift
    /// let config = GPTConfig(vocabSize: 65, layers: 1_000_000_000)
    /// try config.memory(batchSize: 12, optimizerStateTensors: 2, options: "--layers 1000000000").check(on: .cpu)
    /// // throws: --layers 1000000000: training a GPT of 1000000000 layers ... needs 2.2 PiB, the device cpu has ...
    /// ```
    public func memory(batchSize: Int, optimizerStateTensors: Int, attentionScores: Bool? = nil,
                       options: String? = nil) -> ModelMemory {
        let bt = Double(Swift.max(batchSize, 0)) * Double(blockSize), c = Double(embedDim)
        let scores = (attentionScores ?? trainsWithAttentionScores) ? (dropout > 0 ? 4.0 : 2.0) * Double(heads) * Double(blockSize) : 0
        let perPosition = 4 * c + Double(layers) * (23 * c + scores) + 2 * Double(vocabSize)
        return ModelMemory(model: "a GPT of \(layers) layers, \(embedDim) dims, \(heads) heads, block \(blockSize) "
                                + "(\(Self.count(parameterCount)) parameters)",
                           options: options ?? "block_size \(blockSize), n_layer \(layers), n_embd \(embedDim)",
                           parameters: parameterCount, buffers: 0, activations: 2 * bt * perPosition,
                           optimizerStateTensors: optimizerStateTensors)
    }

    /// A count for people: 813 248, 2.1e+11.
    static func count(_ x: Double) -> String { x < 1e9 ? String(Int(x)) : String(format: "%.2g", x) }
}

extension BertConfig {
    /// The exact number of parameters of `BertEncoder(config: self, pooler:)`, in Double so that no size
    /// overflows: the three embedding tables (V + P + types)·H and their layer norm 2·H, each layer
    /// 4·H² + 2·H·I + 9·H + I, the pooler H² + H.
    public func parameterCount(pooler: Bool) -> Double {
        let h = Double(hiddenSize), i = Double(intermediateSize)
        let embeddings = (Double(vocabularySize) + Double(maxPositions) + Double(typeVocabularySize)) * h + 2 * h
        let layer = 4 * h * h + 2 * h * i + 9 * h + i
        return embeddings + Double(layers) * layer + (pooler ? h * h + h : 0)
    }

    /// What running (or, with `optimizerStateTensors`, training) a `BertEncoder` of this configuration on
    /// `batchSize` sequences of `sequenceLength` tokens needs, counted without building it: the exact parameters
    /// and an estimate of the activations (running: one layer's at a time, B·T·(4·H + 2·I) and the scores
    /// 2·B·heads·T²; training: every layer's, twice). `file` is the config.json named in errors, with its size
    /// fields, the one furthest above BERT-base's first.
    public func memory(batchSize: Int, sequenceLength: Int, pooler: Bool, optimizerStateTensors: Int? = nil,
                       file: String = "config.json") -> ModelMemory {
        let bt = Double(Swift.max(batchSize, 0)) * Double(sequenceLength)
        let perLayer = bt * (4 * Double(hiddenSize) + 2 * Double(intermediateSize))
            + 2 * Double(batchSize) * Double(heads) * Double(sequenceLength) * Double(sequenceLength)
        let training = optimizerStateTensors != nil
        let fields: [(String, Int, Double)] = [
            ("hidden_size", hiddenSize, 768), ("num_hidden_layers", layers, 12), ("intermediate_size", intermediateSize, 3072),
            ("vocab_size", vocabularySize, 30522), ("max_position_embeddings", maxPositions, 512),
            ("type_vocab_size", typeVocabularySize, 2), ("num_attention_heads", heads, 12)]
        let named = fields.sorted { Double($0.1) / $0.2 > Double($1.1) / $1.2 }.map { "'\($0.0)' \($0.1)" }
        var plan = ModelMemory(model: "BertEncoder(\(layers) layers, hidden \(hiddenSize), intermediate \(intermediateSize), "
                                   + "vocabulary \(vocabularySize); \(GPTConfig.count(parameterCount(pooler: pooler))) parameters)",
                               options: "\(file): \(named.joined(separator: ", "))", parameters: parameterCount(pooler: pooler),
                               buffers: 0, activations: training ? 2 * Double(layers) * perLayer : perLayer,
                               optimizerStateTensors: optimizerStateTensors ?? 0)
        plan.training = training
        return plan
    }
}
