import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// Training a BERT: finite-difference gradients of a tiny random encoder's parameters (through the fused masked
/// attention), freezing (frozen tensors unchanged by optimizer steps, the others changed), sentence pairs and their
/// batches, the retrieval scores, and saving a fine-tuned folder that loads back.
@Suite struct BertTrainingTests {
    /// Σ w · meanPool(bert(ids, mask)) over a padded batch of two sequences, the weights fixed.
    static func loss(_ model: BertEncoder, device: Device) throws -> Tensor {
        let (ids, mask) = try TokenBatch(sequences: [[2, 5, 7, 13, 3], [2, 9, 3]], paddingID: 0).tensors(on: device)
        let pooled = try SentenceEncoder.meanPool(model(ids, attentionMask: mask), mask: mask)
        let w = try Tensor(testValues(pooled.count, seed: 11, low: 0.5, high: 1.5), shape: pooled.shape, on: device)
        return try (pooled * w).sum()
    }

    @Test(arguments: TestDevices.all)
    func parameterGradientsMatchFiniteDifferences(device: Device) throws {
        let model = try BertEncoderTests.tinyModel(device: device, pooler: false)
        try Self.loss(model, device: device).backward()
        let eps: Float = 1e-2
        for (name, tensor) in model.namedTensors {
            let values = try tensor.toArray(), h = model.config.hiddenSize
            let grad = try #require(tensor.grad, "\(name) has no gradient").toArray()
            // Entries the batch uses: word row 7, position rows 0-4, token type 0; elsewhere first, middle, last.
            let picks: [Int] = switch name {
            case "embeddings.word_embeddings.weight": [7 * h, 7 * h + 3, 13 * h + 5]
            case "embeddings.position_embeddings.weight": [1, 3 * h + 2, 4 * h + 7]
            case "embeddings.token_type_embeddings.weight": [0, 4]
            default: [0, values.count / 2, values.count - 1]
            }
            var numeric: [Double] = []
            for j in picks {
                var plus = values, minus = values
                plus[j] += eps; minus[j] -= eps
                func at(_ v: [Float]) throws -> Double {
                    try withNoGrad {
                        try model.setTensor(name, Tensor(v, shape: tensor.shape, on: device))
                        return Double(try Self.loss(model, device: device).item())
                    }
                }
                numeric.append((try at(plus) - at(minus)) / Double(plus[j] - minus[j]))
                try model.setTensor(name, Tensor(values, shape: tensor.shape, on: device))
            }
            expectClose(picks.map { grad[$0] }, numeric, rtol: 3e-2, atol: 3e-3, "\(device) ∂loss/∂\(name)\(picks)")
        }
    }

    /// Three AdamW steps of the ranking loss with the embeddings and layer 0 frozen: those tensors keep their exact
    /// values and get no gradient; every tensor of layer 1 moves.
    @Test(arguments: TestDevices.all)
    func frozenTensorsStayPutAndTheOthersMove(device: Device) throws {
        try inTemporaryFolder { dir in
            try SentenceEncoderTests.writeTinyFolder(dir)
            let encoder = try SentenceEncoder(directory: dir, device: device)
            encoder.model.freeze(embeddings: true, layers: 1)
            let frozen = Set(encoder.model.namedTensors.map(\.0).filter { $0.hasPrefix("embeddings.") || $0.hasPrefix("encoder.layer.0.") })
            #expect(frozen.count == 5 + 16 && encoder.model.parameters.count == encoder.model.namedTensors.count - frozen.count)
            let before = Dictionary(uniqueKeysWithValues: try encoder.model.namedTensors.map { ($0.0, try $0.1.toArray()) })
            let optimizer = try AdamW(parameters: encoder.model.parameters, learningRate: 1e-2)
            let pairs = [SentencePair(anchor: "hello", positive: "hello , world !"), SentencePair(anchor: "cafe", positive: "cafe ."),
                         SentencePair(anchor: "中", positive: "中 文")]
            for _ in 0..<3 { try encoder.trainStep(pairs, optimizer: optimizer) }
            for (name, tensor) in encoder.model.namedTensors where !name.hasPrefix("pooler.") {   // the pooler is unused
                let changed = try tensor.toArray() != before[name]
                #expect(changed == !frozen.contains(name), "\(device) \(name): frozen \(frozen.contains(name)), changed \(changed)")
                if frozen.contains(name) { #expect(tensor.grad == nil, "\(device) \(name) frozen but has a gradient") }
            }
        }
    }

    @Test func pairsFileBatchesAndErrors() throws {
        try inTemporaryFolder { dir in
            let url = dir.appendingPathComponent("pairs.tsv")
            try "a one\tX\n\nb two\tX\nc three\tY\nd four\tZ\ne five\tY\n".write(to: url, atomically: true, encoding: .utf8)
            let pairs = try SentencePair.read(tsv: url)
            #expect(pairs.count == 5 && pairs[0] == SentencePair(anchor: "a one", positive: "X"))
            for size in [2, 3, 8] {
                let batches = SentencePair.batches(pairs, size: size, seed: 3)
                #expect(batches.flatMap { $0 }.sorted { $0.anchor < $1.anchor } == pairs, "size \(size): every pair once")
                for batch in batches {
                    #expect(batch.count <= size && Set(batch.map(\.positive)).count == batch.count, "size \(size): \(batch)")
                }
                #expect(batches.count == (size == 2 ? 3 : 2), "size \(size): \(batches.map(\.count))")   // X twice: 2 batches at least
            }
            try "good\tpair\nno tab here\n".write(to: url, atomically: true, encoding: .utf8)
            let text = errorText { _ = try SentencePair.read(tsv: url) }
            #expect(text.contains("pairs.tsv") && text.contains("line 2") && text.contains("anchor<TAB>positive"), "\(text)")
            let missing = errorText { _ = try SentencePair.read(tsv: dir.appendingPathComponent("none.tsv")) }
            #expect(missing.contains("none.tsv"), "\(missing)")
        }
    }

    /// Retrieval scores against ranks counted by hand from the cosine matrix, and a saved folder that loads back
    /// with the same embeddings (and without the source folder's other weight files).
    @Test func retrievalScoresAndSavedFolder() throws {
        try inTemporaryFolder { dir in
            let source = dir.appendingPathComponent("source"), saved = dir.appendingPathComponent("saved")
            try FileManager.default.createDirectory(at: source, withIntermediateDirectories: true)
            try SentenceEncoderTests.writeTinyFolder(source)
            try Data([1, 2, 3]).write(to: source.appendingPathComponent("pytorch_model.bin"))
            let encoder = try SentenceEncoder(directory: source, device: .cpu)
            let pairs = [SentencePair(anchor: "hello", positive: "world"), SentencePair(anchor: "cafe", positive: "中 文"),
                         SentencePair(anchor: "a b", positive: "world"), SentencePair(anchor: "un", positive: "s ' s")]
            let scores = try encoder.retrievalScores(pairs)
            let candidates = ["world", "中 文", "s ' s"]
            let cos = try encoder.encode(pairs.map(\.anchor)).matmul(encoder.encode(candidates), transposeB: true).toArray2D()
            let ranks = pairs.enumerated().map { i, p in
                let own = cos[i][candidates.firstIndex(of: p.positive)!]
                return 1 + cos[i].filter { $0 > own }.count
            }
            #expect(scores.queries == 4)
            #expect(abs(scores.accuracyAt1 - Double(ranks.filter { $0 == 1 }.count) / 4) < 1e-12, "\(scores) ranks \(ranks)")
            #expect(abs(scores.meanReciprocalRank - ranks.map { 1 / Double($0) }.reduce(0, +) / 4) < 1e-12, "\(scores) ranks \(ranks)")

            let optimizer = try AdamW(parameters: encoder.model.parameters, learningRate: 1e-2)
            try encoder.trainStep(pairs.prefix(2).map { $0 }, optimizer: optimizer)
            try encoder.save(to: saved)
            #expect(!FileManager.default.fileExists(atPath: saved.appendingPathComponent("pytorch_model.bin").path))
            #expect(FileManager.default.fileExists(atPath: saved.appendingPathComponent("1_Pooling/config.json").path))
            let reloaded = try SentenceEncoder(directory: saved, device: .cpu)
            let texts = ["hello world", "cafe"]
            expectClose(try reloaded.encode(texts).toArray(), try encoder.encode(texts).toArray(), rtol: 0, atol: 0, "reloaded")
            let original = try SentenceEncoder(directory: source, device: .cpu).encode(texts).toArray()
            #expect(original != (try reloaded.encode(texts).toArray()), "the saved weights are the trained ones")
        }
    }
}
