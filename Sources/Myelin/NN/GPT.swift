import Foundation

// nanoGPT's GPT: token and position embeddings, a stack of pre-LN transformer blocks, a final layer norm and an
// output projection tied to the token embedding, with nanoGPT's state-dict names.

/// The sizes of a `GPT` (nanoGPT's `GPTConfig`). Its JSON form (`json()`, the `gpt_config` metadata of a
/// checkpoint) uses nanoGPT's names: `vocab_size`, `block_size`, `n_layer`, `n_head`, `n_embd`, `dropout`, `bias`.
public struct GPTConfig: Codable, Equatable, Sendable {
    /// The number of tokens (rows of the embedding, columns of the logits).
    public var vocabSize: Int
    /// The longest context (rows of the position embedding).
    public var blockSize: Int
    /// The number of transformer blocks.
    public var layers: Int
    /// Attention heads per block; they divide `embedDim`.
    public var heads: Int
    /// The width of every position's vector.
    public var embedDim: Int
    /// Dropout after the embeddings, on the attention weights and on each residual branch (train mode only).
    public var dropout: Float
    /// Whether the linear layers and layer norms have biases.
    public var bias: Bool

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", blockSize = "block_size", layers = "n_layer", heads = "n_head"
        case embedDim = "n_embd", dropout, bias
    }

    /// A configuration; the defaults are nanoGPT's small CPU one (4 layers, 4 heads, 128 dims, block 64).
    public init(vocabSize: Int, blockSize: Int = 64, layers: Int = 4, heads: Int = 4, embedDim: Int = 128,
                dropout: Float = 0, bias: Bool = true) {
        self.vocabSize = vocabSize; self.blockSize = blockSize; self.layers = layers; self.heads = heads
        self.embedDim = embedDim; self.dropout = dropout; self.bias = bias
    }

    /// Throws `GPTError.invalidConfig` naming the first size out of range.
    public func validate() throws {
        func check(_ ok: Bool, _ what: String) throws { if !ok { throw GPTError.invalidConfig(what) } }
        try check(vocabSize >= 1, "vocab_size must be >= 1, got \(vocabSize)")
        try check(blockSize >= 1, "block_size must be >= 1, got \(blockSize)")
        try check(layers >= 1, "n_layer must be >= 1, got \(layers)")
        try check(heads >= 1, "n_head must be >= 1, got \(heads)")
        try check(embedDim >= 1 && embedDim % heads == 0, "n_embd must be a positive multiple of n_head (\(heads)), got \(embedDim)")
        try check(dropout >= 0 && dropout < 1, "dropout must be in [0, 1), got \(dropout)")
    }

    /// The configuration as one line of JSON with nanoGPT's keys.
    public func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: try! encoder.encode(self), as: UTF8.self)
    }

    /// A configuration read from `json()`'s form, validated; throws `GPTError.invalidConfig` when it cannot be read.
    public init(json text: String) throws {
        do { self = try JSONDecoder().decode(GPTConfig.self, from: Data(text.utf8)) } catch {
            throw GPTError.invalidConfig("cannot be read from '\(text.prefix(200))': \(error)")
        }
        try validate()
    }
}

/// Errors of `GPT`: a bad configuration, or tokens it cannot take.
public enum GPTError: Error, CustomStringConvertible, Equatable {
    /// The configuration (from code, a command line or a checkpoint) has a value out of range.
    case invalidConfig(String)
    /// The input is not what the model takes (shape, length past the block size, an empty prompt...).
    case invalidInput(String)

    public var description: String {
        switch self {
        case .invalidConfig(let why): return "GPT configuration: \(why)"
        case .invalidInput(let why): return "GPT: \(why)"
        }
    }
}

/// nanoGPT's GPT on token indices [batch, T] (whole numbers stored as Float), giving logits [batch, T, vocab]:
///
///     x = drop(wte(tokens) + wpe(positions))
///     x = h[i](x) for each block
///     logits = ln_f(x) · wteᵀ            (lm_head, tied to wte)
///
/// State keys are nanoGPT's: `transformer.wte.weight`, `transformer.wpe.weight`, `transformer.h.N.…`,
/// `transformer.ln_f.*` and `lm_head.weight`, which is the same tensor as `transformer.wte.weight` (weight tying:
/// one parameter, its gradient the sum of both uses; `parameters` lists it once). Weights start as nanoGPT's:
/// N(0, 0.02), the residual projections (`c_proj`) N(0, 0.02/√(2·layers)), biases 0.
///
/// ```swift
/// let gpt = GPT(GPTConfig(vocabSize: 65), seed: 1)
/// let logits = try gpt(tokens)   // tokens [12, 64] -> [12, 64, 65]
/// ```
public final class GPT: Layer {
    /// The sizes.
    public let config: GPTConfig
    /// `transformer.wte`: [vocab, embedDim], also the output projection.
    public let tokenEmbedding: Embedding
    /// `transformer.wpe`: [blockSize, embedDim].
    public let positionEmbedding: Embedding
    /// Dropout after the embeddings (`transformer.drop`).
    public let embeddingDropout: Dropout
    /// `transformer.h`: the blocks.
    public let blocks: [TransformerBlock]
    /// `transformer.ln_f`.
    public let finalNorm: LayerNorm

    /// Train or eval mode, passed on to every dropout.
    public var isTraining = true {
        didSet {
            embeddingDropout.isTraining = isTraining
            for block in blocks { block.isTraining = isTraining }
        }
    }

    /// A GPT of `config`'s sizes (which must be valid: see `GPTConfig.validate()`) with weights from `seed`
    /// (nil: `Initializer.nextSeed()`). Sizes the device cannot hold are the device's failure, thrown at the next
    /// `Device.check()`, `toArray()` or `item()` (an optimizer checks before each step); check sizes read from a command line
    /// or a file first with `config.memory(batchSize:optimizerStateTensors:)`, which throws at once.
    public init(_ config: GPTConfig, seed: UInt64? = nil, device: Device = .default) {
        do { try config.validate() } catch { preconditionFailure("\(error)") }
        self.config = config
        let s = seed ?? Initializer.nextSeed()
        let init02 = Initializer.normal(mean: 0, std: 0.02)
        tokenEmbedding = Embedding(count: config.vocabSize, dimension: config.embedDim, weightInit: init02, seed: s, device: device)
        positionEmbedding = Embedding(count: config.blockSize, dimension: config.embedDim, weightInit: init02,
                                      seed: s &+ 1, device: device)
        embeddingDropout = Dropout(rate: config.dropout, seed: s &+ 2)
        blocks = (0..<config.layers).map { i in
            TransformerBlock(embedDim: config.embedDim, heads: config.heads, dropout: config.dropout, bias: config.bias,
                             seed: s &+ 64 &* UInt64(i + 1), device: device)
        }
        finalNorm = LayerNorm(features: config.embedDim, bias: config.bias, device: device)
        // GPT-2's scaled initialization of the projections that end a residual branch.
        let projection = Initializer.normal(mean: 0, std: Float(0.02 / (2 * Double(config.layers)).squareRoot()))
        for (i, block) in blocks.enumerated() {
            for (j, dense) in [block.attention.cProj, block.mlp.cProj].enumerated() {
                let w = Initializer.filled(dense.weight.shape, on: device, layer: "GPT") {
                    try projection.make(dense.weight.shape, seed: s &+ 64 &* UInt64(i + 1) &+ 40 &+ UInt64(j), on: device)
                }
                do { try dense.setTensor("weight", w) } catch { preconditionFailure("GPT: \(error)") }
            }
        }
    }

    /// The logits [batch, T, vocab] of `tokens` [batch, T] (T ≤ blockSize).
    public func callAsFunction(_ input: Tensor) throws -> Tensor { try logits(input, cache: nil) }

    /// The logits of `tokens` [batch, T], which continue the positions already in `cache` (when given: its keys and
    /// values grow by T); `cache.length + T` must not pass `blockSize`.
    public func logits(_ tokens: Tensor, cache: GPTCache?) throws -> Tensor {
        try logits(tokens, cache: cache, lastOnly: false)
    }

    /// The logits [batch, T, vocab] of `tokens` (see `logits(_:cache:)`), or with `lastOnly` those of the last
    /// position only, [batch, 1, vocab] (what generation reads): the last block then runs its output projection,
    /// MLP and final norm on that position alone (the same values; its keys and values still come from all).
    func logits(_ tokens: Tensor, cache: GPTCache?, lastOnly: Bool) throws -> Tensor {
        let start = cache?.length ?? 0
        guard tokens.rank == 2, tokens.shape[1] >= 1 else {
            throw LayerError.shape(layer: layerDescription, expected: "[batch, T] token indices", got: tokens.shape)
        }
        let (b, t) = (tokens.shape[0], tokens.shape[1])
        guard start + t <= config.blockSize else {
            throw GPTError.invalidInput("\(start + t) positions\(start > 0 ? " (\(start) cached + \(t) new)" : "") are more than the block size \(config.blockSize)")
        }
        if let cache, cache.layers.count != blocks.count {
            throw GPTError.invalidInput("the cache has \(cache.layers.count) layers, the model \(blocks.count)")
        }
        let positions = Tensor((start..<(start + t)).map(Float.init), on: tokens.device)
        var x = try embeddingDropout(tokenEmbedding(tokens) + positionEmbedding(positions))
        for (i, block) in blocks.enumerated() {
            if lastOnly && i == blocks.count - 1 {
                // The last block's attention needs every position's keys and values; a cache of its own when
                // there is none (it only lives for this call).
                x = try block.lastPositions(1, of: x, cache: cache?.layers[i] ?? AttentionCache())
            } else {
                x = try cache.map { try block(x, cache: $0.layers[i]) } ?? block(x)
            }
        }
        let (c, rows) = (config.embedDim, x.shape[1])
        let out = try finalNorm(x).reshaped([b * rows, c]).matmul(tokenEmbedding.weight, transposeB: true)
        return try out.reshaped([b, rows, config.vocabSize])
    }

    /// The parameters in AdamW groups, as nanoGPT's `configure_optimizers` but without decay on the embeddings:
    /// the linear weights get `weightDecay`, the biases, layer-norm weights and embeddings (hence the tied output
    /// projection) get none.
    ///
    /// ```swift
    /// let optimizer = try AdamW(groups: gpt.parameterGroups(weightDecay: 0.1), learningRate: 1e-3)
    /// ```
    public func parameterGroups(weightDecay: Float) -> [ParameterGroup] {
        let embeddings = Set([tokenEmbedding.weight, positionEmbedding.weight].map(ObjectIdentifier.init))
        var decay: [Tensor] = [], noDecay: [Tensor] = []
        for p in parameters {
            if p.rank >= 2 && !embeddings.contains(ObjectIdentifier(p)) { decay.append(p) } else { noDecay.append(p) }
        }
        return [ParameterGroup(decay, weightDecay: weightDecay), ParameterGroup(noDecay, weightDecay: 0)]
    }

    private var children: [(String, any Layer)] {
        [("transformer.wte", tokenEmbedding), ("transformer.wpe", positionEmbedding)]
            + blocks.enumerated().map { ("transformer.h.\($0.offset)", $0.element) }
            + [("transformer.ln_f", finalNorm)]
    }

    public var namedTensors: [(String, Tensor)] {
        childTensors(children) + [("lm_head.weight", tokenEmbedding.weight)]
    }

    public func setTensor(_ name: String, _ value: Tensor) throws {
        if name == "lm_head.weight" { return try tokenEmbedding.setTensor("weight", value) }
        // The children's names hold dots (transformer.h.3): the longest one that prefixes the key.
        guard let (prefix, child) = children.filter({ name.hasPrefix($0.0 + ".") }).max(by: { $0.0.count < $1.0.count }) else {
            throw LayerError.unknownTensor(layer: layerDescription, name: name)
        }
        try child.setTensor(String(name.dropFirst(prefix.count + 1)), value)
    }

    public var layerDescription: String {
        "GPT(vocab \(config.vocabSize), block \(config.blockSize), \(config.layers) layers, \(config.heads) heads, \(config.embedDim) dims)"
    }
}
