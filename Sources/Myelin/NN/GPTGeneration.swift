import Foundation

// Sampling from a GPT, nanoGPT's `generate`: the logits of the last position, divided by the temperature, cut to the
// top k, then a draw; with a key/value cache so that each new token runs one position through the model.

/// How `GPT.generate` picks each next token.
public struct SamplingOptions: Sendable, Equatable {
    /// The logits are divided by it; 0 picks the most likely token (greedy, no draw).
    public var temperature: Float
    /// Only the `topK` most likely tokens can be drawn (nil: all).
    public var topK: Int?
    /// The seed of the draws.
    public var seed: UInt64

    /// Sampling at `temperature` (>= 0; 0 is greedy) among the `topK` most likely tokens (nil: all), from `seed`.
    public init(temperature: Float = 1, topK: Int? = nil, seed: UInt64 = 1) {
        self.temperature = temperature; self.topK = topK; self.seed = seed
    }

    /// Greedy decoding: always the most likely token.
    public static let greedy = SamplingOptions(temperature: 0)

    /// The token drawn from `logits` (one row, Float) with `generator`.
    func pick(_ logits: [Float], _ generator: inout SeededGenerator) -> Int {
        guard temperature > 0 else {
            return logits.indices.max { logits[$0] < logits[$1] || (logits[$0] == logits[$1] && $0 > $1) } ?? 0
        }
        var scaled = logits.map { Double($0) / Double(temperature) }
        if let topK, topK < scaled.count {
            let cut = scaled.sorted(by: >)[Swift.max(topK, 1) - 1]
            scaled = scaled.map { $0 < cut ? -Double.infinity : $0 }
        }
        let top = scaled.max() ?? 0
        let weights = scaled.map { Foundation.exp($0 - top) }
        var u = generator.nextDouble() * weights.reduce(0, +)
        for (i, w) in weights.enumerated() where w > 0 {
            u -= w
            if u < 0 { return i }
        }
        return weights.lastIndex { $0 > 0 } ?? 0
    }
}

extension GPT {
    /// `count` new tokens after `prompt` (at least one token, each in 0..<vocabSize), in eval mode and without
    /// gradients; the mode is restored after. The context is the last `blockSize` tokens, as in nanoGPT.
    /// With `useCache` (the default) each layer keeps the keys and values of the positions seen (`GPTCache`), so a
    /// new token runs one position through the model; when the context passes the block size, it is cropped to the
    /// last `blockSize` tokens and the cache is computed again from them (positions are relative to the context,
    /// as nanoGPT does). Without the cache every token recomputes the whole context; both give the same tokens.
    /// Either way the last block and the head run on the last position only (`logits(_:cache:lastOnly:)`).
    ///
    /// ```swift
    /// let tokens = try gpt.generate(prompt: vocabulary.encode("The "), count: 300,
    ///                               sampling: SamplingOptions(temperature: 0.8, topK: 20, seed: 1))
    /// ```
    public func generate(prompt: [Int], count: Int, sampling: SamplingOptions = .greedy, useCache: Bool = true,
                         onToken: ((Int) -> Void)? = nil) throws -> [Int] {
        guard !prompt.isEmpty else { throw GPTError.invalidInput("the prompt has no tokens; give at least one") }
        if let bad = prompt.first(where: { !(0..<config.vocabSize).contains($0) }) {
            throw GPTError.invalidInput("prompt token \(bad) is not in 0..<\(config.vocabSize) (the vocabulary size)")
        }
        guard count >= 0 else { throw GPTError.invalidInput("the number of tokens to generate must be >= 0, got \(count)") }
        guard sampling.temperature >= 0, sampling.temperature.isFinite else {
            throw GPTError.invalidInput("the temperature must be >= 0 (0: greedy), got \(sampling.temperature)")
        }
        if let k = sampling.topK, k < 1 { throw GPTError.invalidInput("top-k must be >= 1, got \(k)") }
        let device = tokenEmbedding.weight.device
        let wasTraining = isTraining
        eval()
        defer { isTraining = wasTraining }
        var generator = SeededGenerator(seed: sampling.seed)
        var tokens = prompt
        let cache = useCache ? GPTCache(layers: blocks.count) : nil
        var cachedUpTo = 0   // tokens[..<cachedUpTo] are in the cache (its last `cache.length` of them)
        for _ in 0..<count {
            var feed: ArraySlice<Int>
            if let cache {
                feed = tokens[cachedUpTo...]
                if cache.length + feed.count > config.blockSize {
                    cache.reset()
                    feed = tokens.suffix(config.blockSize)
                }
                cachedUpTo = tokens.count
            } else {
                feed = tokens.suffix(config.blockSize)
            }
            let input = try Tensor(feed.map(Float.init), shape: [1, feed.count], on: device)
            let last = try withNoGrad { try self.logits(input, cache: cache, lastOnly: true) }.toArray()
            let next = sampling.pick(last, &generator)
            tokens.append(next)
            onToken?(next)
        }
        return Array(tokens.dropFirst(prompt.count))
    }
}
