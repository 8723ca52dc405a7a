import Foundation

// The key/value cache of generation: each attention layer keeps the keys and values of the positions it has seen,
// so that a new token costs one position instead of the whole prefix.

/// The keys and values one `MultiHeadAttention` has computed so far, each [T, batch, heads, headSize] (positions
/// first, so that new ones are appended with `Tensor.concat`).
public final class AttentionCache {
    /// The cached keys, or nil before the first call.
    public private(set) var keys: Tensor?
    /// The cached values, or nil before the first call.
    public private(set) var values: Tensor?

    /// An empty cache.
    public init() {}

    /// The number of positions cached.
    public var length: Int { keys?.shape[0] ?? 0 }

    /// Forgets every position.
    public func reset() { keys = nil; values = nil }

    /// Appends `k` and `v` [T, batch, heads, headSize]; returns all keys and values.
    func append(_ k: Tensor, _ v: Tensor) throws -> (Tensor, Tensor) {
        let allKeys = try keys.map { try Tensor.concat([$0, k]) } ?? k
        let allValues = try values.map { try Tensor.concat([$0, v]) } ?? v
        keys = allKeys; values = allValues
        return (allKeys, allValues)
    }
}

/// One `AttentionCache` per block of a `GPT`, in order (see `GPT.logits(_:cache:)` and `GPT.generate`).
public final class GPTCache {
    /// The caches of the blocks.
    public let layers: [AttentionCache]
    /// An empty cache for a model of `layers` blocks.
    public init(layers: Int) { self.layers = (0..<layers).map { _ in AttentionCache() } }
    /// The number of positions cached.
    public var length: Int { layers.first?.length ?? 0 }
    /// Forgets every position.
    public func reset() { for layer in layers { layer.reset() } }
}

extension MultiHeadAttention {
    /// Self-attention of the new positions `input` [batch, T, embedDim] over the cached ones and themselves:
    /// their keys and values are appended to `cache`, and query i sees every cached position and the new ones up
    /// to itself (when `causal`). In eval mode this is what `callAsFunction(_:)` gives for the last T positions of
    /// the whole sequence. No dropout is applied. The attention is the fused
    /// `Tensor.scaledDotProductAttention` (queries fewer than keys) unless `useFusedAttention` is false.
    public func callAsFunction(_ input: Tensor, cache: AttentionCache) throws -> Tensor {
        try callAsFunction(input, cache: cache, lastQueries: nil)
    }

    /// As `callAsFunction(_:cache:)`, but the output is that of the last `lastQueries` positions only
    /// ([batch, lastQueries, embedDim]; nil: every position): the keys and values of all of `input` still go to
    /// the cache. Generation needs the last position of the last block only.
    func callAsFunction(_ input: Tensor, cache: AttentionCache, lastQueries: Int?) throws -> Tensor {
        guard input.rank == 3, input.shape[2] == embedDim, input.shape[1] > 0 else {
            throw LayerError.shape(layer: layerDescription, expected: "[batch, T, \(embedDim)]", got: input.shape)
        }
        let (b, t, d) = (input.shape[0], input.shape[1], embedDim / heads)
        if let cached = cache.keys, cached.shape[1] != b {
            throw LayerError.shape(layer: layerDescription + " with a cache of batch \(cached.shape[1])",
                                   expected: "[\(cached.shape[1]), T, \(embedDim)]", got: input.shape)
        }
        // Each of q, k, v as [T, batch, heads, d].
        let q: Tensor, kNew: Tensor, vNew: Tensor
        if let cAttn {
            let parts = try cAttn(input).reshaped([b, t, 3, heads, d]).permuted([2, 1, 0, 3, 4])   // [3, T, B, H, D]
            (q, kNew, vNew) = (try parts.slice(0..<1).reshaped([t, b, heads, d]),
                               try parts.slice(1..<2).reshaped([t, b, heads, d]),
                               try parts.slice(2..<3).reshaped([t, b, heads, d]))
        } else {
            let projected = try [qProj!, kProj!, vProj!].map { try $0(input).reshaped([b, t, heads, d]).permuted([1, 0, 2, 3]) }
            (q, kNew, vNew) = (projected[0], projected[1], projected[2])
        }
        let (keys, values) = try cache.append(kNew, vNew)
        let n = Swift.min(lastQueries ?? t, t)
        let toHeads = [1, 2, 0, 3]   // [T, B, H, D] -> [B, H, T, D]
        let queries = n < t ? try q.slice((t - n)..<t) : q
        let (qh, kh, vh) = (try queries.permuted(toHeads), try keys.permuted(toHeads), try values.permuted(toHeads))
        // Causal masks are aligned to the last key: new query i sees the cached positions and new ones 0...i.
        let attended: Tensor
        if useFusedAttention {
            attended = try Tensor.scaledDotProductAttention(qh, kh, vh, causal: causal)
        } else {
            attended = try qh.matmul(kh, transposeB: true, alpha: 1 / Float(d).squareRoot()).softmax(causal: causal).matmul(vh)
        }
        let y = try attended.permuted([0, 2, 1, 3]).reshaped([b, n, embedDim])
        return try cProj(y)
    }
}

extension TransformerBlock {
    /// The block on new positions `input` [batch, T, embedDim], its attention reading and extending `cache`.
    public func callAsFunction(_ input: Tensor, cache: AttentionCache) throws -> Tensor {
        let attended = try input + attention(ln1(input), cache: cache)
        return try attended + mlp(ln2(attended))
    }

    /// The block's output [batch, n, embedDim] at the last `n` positions of `input` [batch, T, embedDim] only (the
    /// keys and values of all T go to `cache`): what `callAsFunction(_:cache:)` gives there, with the attention's
    /// output projection and the MLP run on n positions instead of T.
    func lastPositions(_ n: Int, of input: Tensor, cache: AttentionCache) throws -> Tensor {
        guard input.rank == 3, n < input.shape[1] else { return try callAsFunction(input, cache: cache) }
        let (b, t, c) = (input.shape[0], input.shape[1], input.shape[2])
        let residual = b == 1 ? try input.reshaped([t, c]).slice((t - n)..<t).reshaped([1, n, c])
                              : try input.permuted([1, 0, 2]).slice((t - n)..<t).permuted([1, 0, 2])
        let attended = try residual + attention(ln1(input), cache: cache, lastQueries: n)
        return try attended + mlp(ln2(attended))
    }
}
