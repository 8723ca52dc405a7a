import Foundation

// Multi-head self-attention and the pre-LN transformer block of GPT-2 (nanoGPT's `CausalSelfAttention`, `MLP`
// and `Block`, with their state-dict keys), built from the sequence ops: batched products, a permute, and the
// masked softmax.

/// Multi-head self-attention over x [batch, T, embedDim]:
///
///     q, k, v = the projections of x, split into `heads` heads of embedDim / heads each: [B, H, T, D]
///     y = c_proj(merge(dropout(softmax(q·kᵀ / √D, causal, mask)) · v))
///
/// The projections are one fused `c_attn` (embedDim -> 3·embedDim, q then k then v, as GPT-2 and nanoGPT) or,
/// with `fusedProjection: false`, three: `q_proj`, `k_proj`, `v_proj`. The output projection is `c_proj`. State
/// keys are those names with `.weight` and `.bias` (weights [out, in], as `nn.Linear`). `dropout` applies to the
/// attention weights and to the output (nanoGPT's `attn_dropout` and `resid_dropout`), in train mode only.
///
/// ```swift
/// let attention = MultiHeadAttention(embedDim: 32, heads: 4, causal: true, seed: 1)
/// let y = try attention(x)   // x [2, 7, 32] -> [2, 7, 32]
/// ```
public final class MultiHeadAttention: Layer {
    /// The size of each position's vector (input and output).
    public let embedDim: Int
    /// The number of heads; each has embedDim / heads dimensions.
    public let heads: Int
    /// Whether position i attends to positions 0...i only.
    public let causal: Bool
    /// The fused q/k/v projection (embedDim -> 3·embedDim), or nil with separate projections.
    public let cAttn: Dense?
    /// The separate q, k and v projections (embedDim -> embedDim each), or nil with the fused one.
    public let qProj: Dense?, kProj: Dense?, vProj: Dense?
    /// The output projection (embedDim -> embedDim).
    public let cProj: Dense
    /// Dropout of the attention weights and of the output (rate 0: none).
    public let attentionDropout: Dropout, outputDropout: Dropout

    /// Whether the attention runs as the fused op `Tensor.scaledDotProductAttention` (when attention dropout is
    /// off or in eval mode) rather than the three-op reference path (product, masked softmax, product), which
    /// stores the [B, H, T, T] weights. Defaults to true unless the environment sets `MYELIN_ATTENTION=reference`.
    public var useFusedAttention = ProcessInfo.processInfo.environment["MYELIN_ATTENTION"] != "reference"

    /// Train or eval mode, passed on to the dropouts.
    public var isTraining = true {
        didSet { for layer in [attentionDropout, outputDropout] { layer.isTraining = isTraining } }
    }

    /// Attention with `heads` heads (which must divide `embedDim`). Projection weights are drawn from
    /// `weightInit` (default N(0, 0.02), as GPT-2) from `seed` (nil: `Initializer.nextSeed()`), biases start at 0.
    public init(embedDim: Int, heads: Int, causal: Bool = false, dropout: Float = 0, fusedProjection: Bool = true,
                bias: Bool = true, weightInit: Initializer = .normal(mean: 0, std: 0.02), seed: UInt64? = nil,
                device: Device = .default) {
        precondition(embedDim > 0 && heads > 0 && embedDim % heads == 0,
                     "MultiHeadAttention needs heads dividing embedDim, got embedDim \(embedDim), heads \(heads)")
        self.embedDim = embedDim
        self.heads = heads
        self.causal = causal
        let s = seed ?? Initializer.nextSeed()
        func projection(_ outputs: Int, _ index: UInt64) -> Dense {
            Dense(inputSize: embedDim, outputSize: outputs, bias: bias, weightInit: weightInit,
                  seed: s &+ 2 &* index, device: device)
        }
        if fusedProjection {
            cAttn = projection(3 * embedDim, 0); qProj = nil; kProj = nil; vProj = nil
        } else {
            cAttn = nil; qProj = projection(embedDim, 0); kProj = projection(embedDim, 1); vProj = projection(embedDim, 2)
        }
        cProj = projection(embedDim, 3)
        attentionDropout = Dropout(rate: dropout, seed: s &+ 8)
        outputDropout = Dropout(rate: dropout, seed: s &+ 9)
    }

    /// Self-attention of `input` [batch, T, embedDim].
    public func callAsFunction(_ input: Tensor) throws -> Tensor { try callAsFunction(input, mask: nil) }

    /// Self-attention of `input` [batch, T, embedDim] with an additive `mask` on the scores, broadcast to
    /// [batch, heads, T, T] (0 where a key is seen, −∞ where not; e.g. [batch, 1, 1, T] for padded keys).
    public func callAsFunction(_ input: Tensor, mask: Tensor?) throws -> Tensor {
        guard input.rank == 3, input.shape[2] == embedDim, input.shape[1] > 0 else {
            throw LayerError.shape(layer: layerDescription, expected: "[batch, T, \(embedDim)]", got: input.shape)
        }
        let b = input.shape[0], t = input.shape[1], d = embedDim / heads
        let fused = useFusedAttention && (attentionDropout.rate == 0 || !isTraining)
        if fused, let cAttn, !input.device.isOpenCL {
            // The CPU kernel reads q, k and v from c_attn's [B, T, 3C] output and writes the heads merged: one
            // product, no permutes, and one [B, T, 3C] gradient.
            return try outputDropout(cProj(Tensor.scaledDotProductAttention(packed: cAttn(input), heads: heads,
                                                                             causal: causal, mask: mask)))
        }
        let q: Tensor, k: Tensor, v: Tensor
        if let cAttn, Tensor.recordsGradient([input, cAttn.weight]) {
            // Recording a graph: three products with the q, k and v rows of c_attn's weight and bias (slices of
            // [3C, C]: small), not slices of the [B, T, 3C] output, whose gradients would be three zero-filled
            // tensors of the whole output's size, summed (a fifth of the attention's backward memory traffic).
            func split(_ part: Int) throws -> Tensor {
                let rows = (part * embedDim)..<((part + 1) * embedDim)
                return try input.linear(weight: cAttn.weight.slice(rows), bias: cAttn.bias?.slice(rows))
                    .reshaped([b, t, heads, d]).permuted([0, 2, 1, 3])
            }
            q = try split(0); k = try split(1); v = try split(2)
        } else if let cAttn {
            // [B, T, 3C] -> [3, B, H, T, D] in one permute, then the three slices.
            let qkv = try cAttn(input).reshaped([b, t, 3, heads, d]).permuted([2, 0, 3, 1, 4])
            q = try qkv.slice(0..<1).reshaped([b, heads, t, d])
            k = try qkv.slice(1..<2).reshaped([b, heads, t, d])
            v = try qkv.slice(2..<3).reshaped([b, heads, t, d])
        } else {
            func split(_ projection: Dense) throws -> Tensor {
                try projection(input).reshaped([b, t, heads, d]).permuted([0, 2, 1, 3])
            }
            q = try split(qProj!); k = try split(kProj!); v = try split(vProj!)
        }
        let attended: Tensor   // [B, H, T, D]
        if fused {
            attended = try Tensor.scaledDotProductAttention(q, k, v, causal: causal, mask: mask)
        } else {
            let scores = try q.matmul(k, transposeB: true, alpha: 1 / Float(d).squareRoot())   // [B, H, T, T]
            attended = try attentionDropout(scores.softmax(causal: causal, mask: mask)).matmul(v)
        }
        let y = try attended.permuted([0, 2, 1, 3]).reshaped([b, t, embedDim])   // [B, T, C]
        return try outputDropout(cProj(y))
    }

    private var children: [(String, any Layer)] {
        if let cAttn { return [("c_attn", cAttn), ("c_proj", cProj)] }
        return [("q_proj", qProj!), ("k_proj", kProj!), ("v_proj", vProj!), ("c_proj", cProj)]
    }

    public var namedTensors: [(String, Tensor)] { childTensors(children) }

    public func setTensor(_ name: String, _ value: Tensor) throws {
        try setChildTensor(name, value, children: children, layer: layerDescription)
    }

    public var layerDescription: String {
        "MultiHeadAttention(\(embedDim), heads \(heads)\(causal ? ", causal" : "")\(cAttn == nil ? ", separate q/k/v" : ""))"
    }
}

/// The feed-forward part of a GPT-2 block (nanoGPT's `MLP`): `c_proj(gelu(c_fc(x)))` then dropout, with
/// c_fc embedDim -> 4·embedDim and c_proj back (state keys `c_fc.*`, `c_proj.*`). GELU is the exact (erf) form
/// unless `approximateGELU` (GPT-2's original tanh form).
public final class TransformerMLP: Layer {
    /// The size of each position's vector.
    public let embedDim: Int
    /// embedDim -> 4·embedDim, with GELU.
    public let cFc: Dense
    /// 4·embedDim -> embedDim.
    public let cProj: Dense
    /// Dropout of the output (rate 0: none).
    public let dropout: Dropout

    /// Train or eval mode, passed on to the dropout.
    public var isTraining = true { didSet { dropout.isTraining = isTraining } }

    /// The MLP of a block of width `embedDim`; weights from `weightInit` and `seed`, biases 0.
    public init(embedDim: Int, dropout: Float = 0, approximateGELU: Bool = false, bias: Bool = true,
                weightInit: Initializer = .normal(mean: 0, std: 0.02), seed: UInt64? = nil, device: Device = .default) {
        precondition(embedDim > 0, "TransformerMLP needs a positive embedDim, got \(embedDim)")
        self.embedDim = embedDim
        let s = seed ?? Initializer.nextSeed()
        cFc = Dense(inputSize: embedDim, outputSize: 4 * embedDim, activation: approximateGELU ? .geluTanh : .geluErf,
                    bias: bias, weightInit: weightInit, seed: s, device: device)
        cProj = Dense(inputSize: 4 * embedDim, outputSize: embedDim, bias: bias, weightInit: weightInit,
                      seed: s &+ 2, device: device)
        self.dropout = Dropout(rate: dropout, seed: s &+ 4)
    }

    public func callAsFunction(_ input: Tensor) throws -> Tensor {
        guard input.rank >= 1, input.shape[input.rank - 1] == embedDim else {
            throw LayerError.shape(layer: layerDescription, expected: "[..., \(embedDim)]", got: input.shape)
        }
        return try dropout(cProj(cFc(input)))
    }

    private var children: [(String, any Layer)] { [("c_fc", cFc), ("c_proj", cProj)] }
    public var namedTensors: [(String, Tensor)] { childTensors(children) }
    public func setTensor(_ name: String, _ value: Tensor) throws {
        try setChildTensor(name, value, children: children, layer: layerDescription)
    }
    public var layerDescription: String { "TransformerMLP(\(embedDim) -> \(4 * embedDim) -> \(embedDim))" }
}

/// The pre-LN transformer block of GPT-2 (nanoGPT's `Block`):
///
///     x = x + attn(ln_1(x))
///     x = x + mlp(ln_2(x))
///
/// State keys: `ln_1.*`, `attn.c_attn.*`, `attn.c_proj.*`, `ln_2.*`, `mlp.c_fc.*`, `mlp.c_proj.*`, so a
/// nanoGPT block's `state_dict` loads as it is.
///
/// ```swift
/// let block = TransformerBlock(embedDim: 128, heads: 4, seed: 1)
/// let y = try block(x)   // x [12, 64, 128] -> the same shape
/// ```
public final class TransformerBlock: Layer {
    /// The size of each position's vector.
    public let embedDim: Int
    /// Layer normalization before attention.
    public let ln1: LayerNorm
    /// The (causal by default) self-attention.
    public let attention: MultiHeadAttention
    /// Layer normalization before the MLP.
    public let ln2: LayerNorm
    /// The feed-forward part.
    public let mlp: TransformerMLP

    /// Train or eval mode, passed on to the attention and the MLP.
    public var isTraining = true {
        didSet { attention.isTraining = isTraining; mlp.isTraining = isTraining }
    }

    /// A block of width `embedDim` with `heads` heads; weights N(0, 0.02) from `seed` (nil:
    /// `Initializer.nextSeed()`), biases 0, layer norms at weight 1 and bias 0.
    public init(embedDim: Int, heads: Int, causal: Bool = true, dropout: Float = 0, bias: Bool = true,
                approximateGELU: Bool = false, epsilon: Float = 1e-5, seed: UInt64? = nil, device: Device = .default) {
        precondition(embedDim > 0 && heads > 0 && embedDim % heads == 0,
                     "TransformerBlock needs heads dividing embedDim, got embedDim \(embedDim), heads \(heads)")
        self.embedDim = embedDim
        let s = seed ?? Initializer.nextSeed()
        ln1 = LayerNorm(features: embedDim, epsilon: epsilon, bias: bias, device: device)
        attention = MultiHeadAttention(embedDim: embedDim, heads: heads, causal: causal, dropout: dropout, bias: bias,
                                       seed: s, device: device)
        ln2 = LayerNorm(features: embedDim, epsilon: epsilon, bias: bias, device: device)
        mlp = TransformerMLP(embedDim: embedDim, dropout: dropout, approximateGELU: approximateGELU, bias: bias,
                             seed: s &+ 16, device: device)
    }

    /// The block applied to `input` [batch, T, embedDim].
    public func callAsFunction(_ input: Tensor) throws -> Tensor { try callAsFunction(input, mask: nil) }

    /// The block with an additive attention `mask` (see `MultiHeadAttention.callAsFunction(_:mask:)`).
    public func callAsFunction(_ input: Tensor, mask: Tensor?) throws -> Tensor {
        guard input.rank == 3, input.shape[2] == embedDim else {
            throw LayerError.shape(layer: layerDescription, expected: "[batch, T, \(embedDim)]", got: input.shape)
        }
        let x = try input + attention(ln1(input), mask: mask)
        return try x + mlp(ln2(x))
    }

    private var children: [(String, any Layer)] { [("ln_1", ln1), ("attn", attention), ("ln_2", ln2), ("mlp", mlp)] }
    public var namedTensors: [(String, Tensor)] { childTensors(children) }
    public func setTensor(_ name: String, _ value: Tensor) throws {
        try setChildTensor(name, value, children: children, layer: layerDescription)
    }
    public var layerDescription: String {
        "TransformerBlock(\(embedDim), heads \(attention.heads)\(attention.causal ? ", causal" : ""))"
    }
}
