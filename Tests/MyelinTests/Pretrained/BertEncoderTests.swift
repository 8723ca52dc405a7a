import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// A tiny BERT (random weights) against a Double reference, its Hugging Face names, and the errors of loading a
/// corrupt or mismatched model folder.
@Suite struct BertEncoderTests {
    static let config = BertConfig(hiddenSize: 8, layers: 2, heads: 2, intermediateSize: 12, maxPositions: 16,
                                   vocabularySize: WordPieceTokenizerTests.smallVocabulary.count)

    /// A tiny encoder with every tensor random in about [-0.5, 0.5].
    static func tinyModel(device: Device = .cpu, pooler: Bool = true) throws -> BertEncoder {
        let model = BertEncoder(config: config, pooler: pooler, device: device)
        try TransformerLayerTests.randomize(model, seed: 7)
        return model
    }

    /// BERT's last hidden state [t, hidden] of one unpadded sequence, in Double from the model's tensors.
    static func reference(_ model: BertEncoder, ids: [Int]) throws -> [Double] {
        let c = model.config, h = c.hiddenSize, t = ids.count, eps = Double(c.layerNormEpsilon)
        let s = try model.stateDict().mapValues { try $0.toArray() }
        var x = [Double]()
        for (p, id) in ids.enumerated() {
            for j in 0..<h {
                x.append(Double(s["embeddings.word_embeddings.weight"]![id * h + j]) + Double(s["embeddings.position_embeddings.weight"]![p * h + j])
                         + Double(s["embeddings.token_type_embeddings.weight"]![j]))
            }
        }
        x = TransformerReference.layerNorm(x, s["embeddings.LayerNorm.weight"], s["embeddings.LayerNorm.bias"], features: h, epsilon: eps)
        for l in 0..<c.layers {
            let p = "encoder.layer.\(l)."
            func linear(_ x: [Double], _ name: String, _ inputs: Int, _ outputs: Int) -> [Double] {
                TransformerReference.linear(x, s[p + name + ".weight"]!, s[p + name + ".bias"], inputs: inputs, outputs: outputs)
            }
            let y = TransformerReference.attention(q: linear(x, "attention.self.query", h, h), k: linear(x, "attention.self.key", h, h),
                                                   v: linear(x, "attention.self.value", h, h), batch: 1, t: t, c: h,
                                                   heads: c.heads, causal: false)
            let a = zip(x, linear(y, "attention.output.dense", h, h)).map(+)
            let hn = TransformerReference.layerNorm(a, s[p + "attention.output.LayerNorm.weight"], s[p + "attention.output.LayerNorm.bias"],
                                                    features: h, epsilon: eps)
            let inner = linear(hn, "intermediate.dense", h, c.intermediateSize).map { 0.5 * $0 * (1 + erf($0 / 2.0.squareRoot())) }
            let o = zip(hn, linear(inner, "output.dense", c.intermediateSize, h)).map(+)
            x = TransformerReference.layerNorm(o, s[p + "output.LayerNorm.weight"], s[p + "output.LayerNorm.bias"], features: h, epsilon: eps)
        }
        return x
    }

    @Test(arguments: TestDevices.all)
    func paddedBatchMatchesReference(device: Device) throws {
        let model = try Self.tinyModel(device: device)
        let sequences = [[2, 5, 6, 7, 8, 3], [2, 3], [2, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 1, 4, 0, 3], [2, 13, 3]]
        let batch = TokenBatch(sequences: sequences, paddingID: 0)
        let (ids, mask) = try batch.tensors(on: device)
        let hidden = try model(ids, attentionMask: mask).toArray()
        let h = Self.config.hiddenSize, t = batch.length
        for (n, seq) in sequences.enumerated() {
            let rows = Array(hidden[(n * t * h)..<((n * t + seq.count) * h)])
            expectClose(rows, try Self.reference(model, ids: seq), rtol: 1e-4, atol: 1e-4, "\(device) sequence \(n) (\(seq.count) of \(t) tokens)")
        }
        // Mean pooling and normalization against the reference.
        let pooled = try SentenceEncoder.l2Normalized(SentenceEncoder.meanPool(model(ids, attentionMask: mask), mask: mask)).toArray()
        for (n, seq) in sequences.enumerated() {
            let ref = try Self.reference(model, ids: seq)
            let mean = (0..<h).map { j in (0..<seq.count).reduce(0.0) { $0 + ref[$1 * h + j] } / Double(seq.count) }
            let norm = mean.reduce(0) { $0 + $1 * $1 }.squareRoot()
            expectClose(Array(pooled[(n * h)..<((n + 1) * h)]), mean.map { $0 / norm }, rtol: 1e-4, atol: 1e-4, "\(device) pooled \(n)")
        }
    }

    /// The encoder on unpadded token rows (`callAsFunction(sequences:)`) against the reference, with a head size of 8
    /// (the CPU's row kernel without gradients) and of 4 (the padded composite), without and with gradients.
    @Test(arguments: TestDevices.all)
    func unpaddedRowsMatchReference(device: Device) throws {
        let sequences = [[2, 5, 6, 7, 8, 3], [2, 3], [2, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 1, 4, 0, 3], [2, 13, 3]]
        for hidden in [16, 8] {
            var config = Self.config
            config.hiddenSize = hidden
            let model = BertEncoder(config: config, pooler: false, device: device)
            try TransformerLayerTests.randomize(model, seed: 9)
            let expected = try sequences.flatMap { try Self.reference(model, ids: $0) }
            let fast = try withNoGrad { try model(sequences: sequences) }
            #expect(fast.shape == [sequences.joined().count, hidden])
            expectClose(try fast.toArray(), expected, rtol: 1e-4, atol: 1e-4, "\(device) hidden \(hidden), no gradient")
            let rows = try model(sequences: sequences)
            expectClose(try rows.toArray(), expected, rtol: 1e-4, atol: 1e-4, "\(device) hidden \(hidden), with gradients")
            try rows.square().sum().backward()
            for (name, t) in model.namedTensors {
                let g = try #require(t.grad, "\(name) has no gradient").toArray()
                #expect(g.allSatisfy { $0.isFinite }, "\(device) hidden \(hidden) \(name): gradient not finite")
            }
        }
        let tiny = try Self.tinyModel(device: device)
        #expect(throws: LayerError.self) { _ = try tiny(sequences: [[2, 3], []]) }
        #expect(throws: LayerError.self) { _ = try tiny(sequences: [[2, 999]]) }
    }

    @Test(arguments: TestDevices.all)
    func gradientsReachEveryTensor(device: Device) throws {
        let model = try Self.tinyModel(device: device)
        let (ids, mask) = try TokenBatch(sequences: [[2, 5, 7, 3], [2, 9, 3]], paddingID: 0).tensors(on: device)
        let hidden = try model(ids, attentionMask: mask)
        try (SentenceEncoder.meanPool(hidden, mask: mask).square().sum() + model.pooled(hidden).sum()).backward()
        for (name, t) in model.namedTensors {
            let g = try #require(t.grad, "\(name) has no gradient").toArray()
            #expect(g.allSatisfy(\.isFinite) && g.contains { $0 != 0 }, "\(device) \(name): gradient all zero or not finite")
        }
        // Frozen: the embeddings and the first layer (requiresGrad = false on the subtree) get no gradient, the rest do.
        let frozen = try Self.tinyModel(device: device)
        let frozenNames = Set(frozen.namedTensors.map(\.0).filter { $0.hasPrefix("embeddings.") || $0.hasPrefix("encoder.layer.0.") })
        for (name, t) in frozen.namedTensors where frozenNames.contains(name) { t.requiresGrad = false }
        #expect(frozen.parameters.count == frozen.namedTensors.count - frozenNames.count)
        try SentenceEncoder.meanPool(frozen(ids, attentionMask: mask), mask: mask).square().sum().backward()
        for (name, t) in frozen.namedTensors where !name.hasPrefix("pooler.") {
            #expect((t.grad != nil) == !frozenNames.contains(name), "\(device) \(name) frozen: \(frozenNames.contains(name))")
        }
    }

    /// A config.json that disagrees with model.safetensors (other sizes, more layers) is said as that, naming both
    /// files, the config's sizes and the tensors.
    @Test func aConfigThatDisagreesWithTheWeightsIsNamed() throws {
        try inTemporaryFolder { dir in
            let weights = dir.appendingPathComponent("model.safetensors")
            try Self.tinyModel().save(to: weights)
            var wider = Self.config, deeper = Self.config
            wider.hiddenSize = 16
            deeper.layers = 3
            let shape = errorText { _ = try BertEncoder.load(from: weights, config: wider, device: .cpu) }
            #expect(shape.hasPrefix("\(weights.path): its tensors disagree with \(dir.appendingPathComponent("config.json").path) "
                                    + "(num_hidden_layers 2, hidden_size 16, intermediate_size 12,")
                        && shape.contains("tensor 'embeddings.word_embeddings.weight' has shape [\(Self.config.vocabularySize), 8] in the checkpoint but [\(Self.config.vocabularySize), 16]"),
                    "\(shape)")
            let keys = errorText { _ = try BertEncoder.load(from: weights, config: deeper, device: .cpu) }
            #expect(keys.contains("(num_hidden_layers 3, hidden_size 8,") && keys.contains("'encoder.layer.2.attention.self.query.weight'")
                        && !keys.contains("strict"), "\(keys)")
        }
    }

    @Test func huggingFaceNames() throws {
        let names = Set(BertEncoder(config: Self.config).namedTensors.map(\.0))
        for name in ["embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
                     "embeddings.token_type_embeddings.weight", "embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias",
                     "encoder.layer.1.attention.self.query.weight", "encoder.layer.1.attention.self.key.bias",
                     "encoder.layer.0.attention.self.value.weight", "encoder.layer.0.attention.output.dense.weight",
                     "encoder.layer.0.attention.output.LayerNorm.bias", "encoder.layer.1.intermediate.dense.weight",
                     "encoder.layer.1.output.dense.bias", "encoder.layer.1.output.LayerNorm.weight",
                     "pooler.dense.weight", "pooler.dense.bias"] {
            #expect(names.contains(name), "\(name)")
        }
        #expect(names.count == 5 + 2 * 16 + 2)
    }
}
