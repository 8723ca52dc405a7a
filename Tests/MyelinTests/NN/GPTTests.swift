import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// The GPT model: weight tying, the key/value cache against the full recomputation, AdamW parameter groups and the
/// checkpoint with its vocabulary.
struct GPTTests {
    static let tiny = GPTConfig(vocabSize: 11, blockSize: 9, layers: 2, heads: 3, embedDim: 12)

    static func tokens(_ count: Int, vocab: Int, seed: UInt64) -> [Int] {
        var g = SeededGenerator(seed: seed)
        return (0..<count).map { _ in Int(g.next() % UInt64(vocab)) }
    }

    @Test func stateKeysAreNanoGPTsAndTheHeadIsTied() throws {
        let gpt = GPT(Self.tiny, seed: 1, device: .cpu)
        let names = gpt.namedTensors.map(\.0)
        #expect(names.first == "transformer.wte.weight" && names[1] == "transformer.wpe.weight")
        #expect(names.contains("transformer.h.1.attn.c_attn.weight") && names.contains("transformer.h.0.mlp.c_proj.bias"))
        #expect(names.suffix(3) == ["transformer.ln_f.weight", "transformer.ln_f.bias", "lm_head.weight"])
        let state = gpt.stateDict()
        #expect(state["lm_head.weight"] === state["transformer.wte.weight"])
        // The tied tensor is one parameter: listed once, and once in the optimizer.
        #expect(gpt.parameters.count == names.count - 1)
        #expect(gpt.parameters.filter { $0 === gpt.tokenEmbedding.weight }.count == 1)
        // setTensor through either key replaces the one tensor.
        let replacement = Tensor.zeros([11, 12], on: .cpu)
        try gpt.setTensor("lm_head.weight", replacement)
        #expect(try gpt.tokenEmbedding.weight.toArray().allSatisfy { $0 == 0 })
        #expect(throws: LayerError.self) { try gpt.setTensor("transformer.h.2.ln_1.weight", replacement) }
        #expect(gpt.layerDescription.contains("2 layers"))
    }

    /// The gradient of the tied weight is the sum of its two uses (embedding lookup and output projection),
    /// checked against central differences of the cross-entropy.
    @Test(arguments: TestDevices.all)
    func tiedWeightGradientMatchesFiniteDifferences(device: Device) throws {
        let config = GPTConfig(vocabSize: 5, blockSize: 4, layers: 1, heads: 2, embedDim: 4)
        let gpt = GPT(config, seed: 3, device: device)
        try TransformerLayerTests.randomize(gpt, seed: 4)
        let x = try Tensor([0, 3, 3, 1, 4, 2, 2, 0], shape: [2, 4], on: device)
        let y = try Tensor([3, 3, 1, 4, 2, 2, 0, 1], shape: [2, 4], on: device)
        let wte = gpt.tokenEmbedding.weight
        try GradientCheck.check([("transformer.wte.weight", wte), ("transformer.wpe.weight", gpt.positionEmbedding.weight)],
                                eps: 1e-2, rtol: 3e-2, atol: 3e-3, "GPT tied weight on \(device)") {
            try softmaxCrossEntropy(logits: gpt(x), labels: y, ignoreIndex: -1)
        }
        // The tied gradient is the sum of the two uses': the same network with two untied copies of the weight.
        wte.zeroGrad()
        try softmaxCrossEntropy(logits: gpt(x), labels: y, ignoreIndex: -1).backward()
        let tied = try wte.grad!.toArray()
        let lookup = wte.detach().copy(), head = wte.detach().copy()
        lookup.requiresGrad = true; head.requiresGrad = true
        let positions = try Tensor([0, 1, 2, 3], shape: [4], on: device)
        var h = try lookup.embedding(x) + gpt.positionEmbedding(positions)
        for block in gpt.blocks { h = try block(h) }
        let logits = try gpt.finalNorm(h).reshaped([8, 4]).matmul(head, transposeB: true).reshaped([2, 4, 5])
        try softmaxCrossEntropy(logits: logits, labels: y, ignoreIndex: -1).backward()
        let sum = zip(try lookup.grad!.toArray(), try head.grad!.toArray()).map { Double($0) + Double($1) }
        expectClose(tied, sum, rtol: 1e-4, atol: 1e-6, "tied gradient = lookup + head on \(device)")
        #expect(try lookup.grad!.toArray().contains { $0 != 0 } && head.grad!.toArray().contains { $0 != 0 })
    }

    /// Logits of the last positions through the cache equal those of the whole sequence at once, and generation with
    /// the cache gives the tokens generation without it gives (greedy and sampled, past the block size).
    @Test(arguments: TestDevices.all)
    func cacheGivesTheSameLogitsAndTokens(device: Device) throws {
        let gpt = GPT(Self.tiny, seed: 5, device: device)
        try TransformerLayerTests.randomize(gpt, seed: 6)
        gpt.eval()
        let sequence = Self.tokens(9, vocab: 11, seed: 7)
        let all = try gpt(Tensor(sequence.map(Float.init), shape: [1, 9], on: device)).toArray()
        // The cached path with the fused attention (the default) and with the three-op reference.
        for fused in [true, false] {
            for block in gpt.blocks { block.attention.useFusedAttention = fused }
            let cache = GPTCache(layers: 2)
            var pieces: [Float] = []
            for range in [0..<4, 4..<5, 5..<9] {   // a prompt of 4, one token, then 4 at once
                let part = try Tensor(sequence[range].map(Float.init), shape: [1, range.count], on: device)
                pieces += try gpt.logits(part, cache: cache).toArray()
            }
            #expect(cache.length == 9)
            expectClose(pieces, all, rtol: 1e-4, atol: 1e-5, "cached logits on \(device), fused attention \(fused)")
        }
        for block in gpt.blocks { block.attention.useFusedAttention = true }
        let cache = GPTCache(layers: 2)
        _ = try gpt.logits(Tensor(sequence.map(Float.init), shape: [1, 9], on: device), cache: cache)
        #expect(throws: GPTError.self) { try gpt.logits(Tensor([1], shape: [1, 1], on: device), cache: cache) }
        for sampling in [SamplingOptions.greedy, SamplingOptions(temperature: 0.9, topK: 5, seed: 8), SamplingOptions(seed: 9)] {
            let cached = try gpt.generate(prompt: [1, 2, 3], count: 20, sampling: sampling)
            let full = try gpt.generate(prompt: [1, 2, 3], count: 20, sampling: sampling, useCache: false)
            #expect(cached.count == 20)
            #expect(cached == full, "\(device) \(sampling)")
        }
        #expect(gpt.isTraining == false)
        #expect(throws: GPTError.self) { try gpt.generate(prompt: [], count: 1) }
        #expect(throws: GPTError.self) { try gpt.generate(prompt: [11], count: 1) }
        #expect(throws: GPTError.self) { try gpt.generate(prompt: [1], count: 1, sampling: SamplingOptions(topK: 0)) }
    }

    /// Generation's logits of the last position alone (the last block and the head on one position) equal the last
    /// position of the whole logits, with and without a cache, at T = 1, 7, 33 and batch 1 and 3.
    @Test(arguments: TestDevices.all)
    func lastPositionLogitsEqualTheWholeLogits(device: Device) throws {
        let config = GPTConfig(vocabSize: 11, blockSize: 40, layers: 2, heads: 3, embedDim: 12)
        let gpt = GPT(config, seed: 11, device: device)
        try TransformerLayerTests.randomize(gpt, seed: 12)
        gpt.eval()
        for (b, t) in [(1, 1), (1, 7), (1, 33), (3, 7)] {
            let x = try Tensor(Self.tokens(b * t, vocab: 11, seed: UInt64(t)).map(Float.init), shape: [b, t], on: device)
            let all = try gpt(x).toArray()
            var expected: [Float] = []
            for r in 0..<b {
                let end: Int = (r * t + t) * 11
                expected += all[(end - 11)..<end]
            }
            let last = try gpt.logits(x, cache: nil, lastOnly: true)
            #expect(last.shape == [b, 1, 11])
            expectClose(try last.toArray(), expected, rtol: 1e-4, atol: 1e-5, "last logits, [\(b), \(t)] on \(device)")
            let cache = GPTCache(layers: 2)
            let cached = try gpt.logits(x, cache: cache, lastOnly: true)
            #expect(cache.length == t)
            expectClose(try cached.toArray(), expected, rtol: 1e-4, atol: 1e-5, "cached last logits, [\(b), \(t)] on \(device)")
        }
    }

    @Test func samplingFollowsTemperatureAndTopK() throws {
        var g = SeededGenerator(seed: 1)
        let logits: [Float] = [0, 3, 1, 2.9]
        #expect(SamplingOptions.greedy.pick(logits, &g) == 1)
        let top2 = SamplingOptions(temperature: 1, topK: 2)
        var counts = [0, 0, 0, 0]
        for _ in 0..<2000 { counts[top2.pick(logits, &g)] += 1 }
        #expect(counts[0] == 0 && counts[2] == 0)
        // exp(3) / (exp(3) + exp(2.9)) ≈ 0.525
        #expect(abs(Double(counts[1]) / 2000 - 0.525) < 0.05, "\(counts)")
    }

    @Test func adamWGroupsDecayOnlyTheirParameters() throws {
        let a = Tensor([1, 2], on: .cpu, requiresGrad: true), b = Tensor([1, 2], on: .cpu, requiresGrad: true)
        let c = Tensor([4], on: .cpu, requiresGrad: true)
        let adamw = try AdamW(groups: [ParameterGroup([a], weightDecay: 0.5), ParameterGroup([b], weightDecay: 0),
                                       ParameterGroup([c])], learningRate: 0.1, weightDecay: 0.25)
        for p in [a, b, c] { p.grad = Tensor.zeros(p.shape, on: .cpu) }   // no Adam step: only the decay moves them
        try adamw.step()
        expectClose(try a.toArray(), [0.95, 1.9] as [Double], "decayed by lr·0.5")
        expectClose(try b.toArray(), [1, 2] as [Double], "no decay")
        expectClose(try c.toArray(), [3.9] as [Double], "the optimizer's decay 0.25")
        #expect(adamw.weightDecay(for: c) == 0.25)
        #expect(throws: OptimizerError.self) { try AdamW(groups: [ParameterGroup([a], weightDecay: -1)]) }
        // A GPT's groups: linear weights decay; biases, layer norms and embeddings (so the tied head) do not.
        let gpt = GPT(Self.tiny, seed: 1, device: .cpu)
        let groups = gpt.parameterGroups(weightDecay: 0.1)
        #expect(groups[0].parameters.count == 2 * 4 && groups[0].parameters.allSatisfy { $0.rank == 2 })
        #expect(groups[1].parameters.contains { $0 === gpt.tokenEmbedding.weight })
        #expect(groups[0].parameters.count + groups[1].parameters.count == gpt.parameters.count)
    }

    @Test func checkpointKeepsConfigAndVocabulary() throws {
        try inTemporaryFolder { dir in
            let vocabulary = CharacterVocabulary(text: "héllo wörld\n")
            let config = GPTConfig(vocabSize: vocabulary.count, blockSize: 8, layers: 1, heads: 2, embedDim: 6, bias: false)
            let gpt = GPT(config, seed: 2, device: .cpu)
            try TransformerLayerTests.randomize(gpt, seed: 3)
            let optimizer = try AdamW(groups: gpt.parameterGroups(weightDecay: 0.1))
            let url = dir.appendingPathComponent("gpt.safetensors")
            try TrainingCheckpoint.save(model: gpt, optimizer: optimizer, epoch: 5, seed: 1,
                                        metadata: gpt.metadata(vocabulary: vocabulary), to: url)
            let (loaded, loadedVocabulary) = try GPT.load(from: url, device: .cpu)
            #expect(loaded.config == config && loadedVocabulary == vocabulary)
            #expect(loadedVocabulary.decode(try vocabulary.encode("wörld")) == "wörld")
            let x = try Tensor([0, 3, 5, 1], shape: [1, 4], on: .cpu)
            expectClose(try loaded(x).toArray(), try gpt(x).toArray(), rtol: 0, atol: 0, "logits after the round trip")
            #expect(loaded.tokenEmbedding.weight === loaded.stateDict()["lm_head.weight"])
            let plain = dir.appendingPathComponent("plain.safetensors")
            try gpt.save(to: plain)
            expectCheckpointError({ _ = try GPT.load(from: plain) }, contains: ["plain.safetensors", "not a GPT checkpoint"])
            // Metadata that disagrees with the tensors is said as that, without advice the command cannot follow.
            var twoLayers = config
            twoLayers.layers = 2
            let mismatched = dir.appendingPathComponent("mismatched.safetensors")
            try gpt.save(to: mismatched, metadata: GPT(twoLayers, seed: 2, device: .cpu).metadata(vocabulary: vocabulary))
            let text = errorText { _ = try GPT.load(from: mismatched) }
            #expect(text.contains("mismatched.safetensors: its tensors disagree with its metadata 'gpt_config' (n_layer 2, n_head 2, n_embd 6")
                        && text.contains("missing (the model has, the checkpoint lacks): 'transformer.h.1.")
                        && !text.contains("strict"), "\(text)")
        }
        #expect(throws: GPTError.self) { try GPTConfig(json: #"{"vocab_size":5,"block_size":8,"n_layer":1,"n_head":4,"n_embd":6,"dropout":0,"bias":true}"#) }
        #expect(try GPTConfig(json: Self.tiny.json()) == Self.tiny)
    }
}
