import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// The contrastive loss against a Double reference and by finite differences, and contrastive fine-tuning of a
/// whole (tiny) BERT encoder from its loaded weights.
@Suite struct FineTuningTests {
    static func reference(_ a: [Float], _ p: [Float], n: Int, m: Int, d: Int, scale: Double) -> Double {
        func unit(_ x: [Float], _ r: Int) -> [Double] {
            let row = x[(r * d)..<((r + 1) * d)].map(Double.init)
            let norm = row.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return row.map { $0 / norm }
        }
        var total = 0.0
        for i in 0..<n {
            let scores = (0..<m).map { j in zip(unit(a, i), unit(p, j)).reduce(0) { $0 + $1.0 * $1.1 } * scale }
            let top = scores.max()!
            total += top + Foundation.log(scores.reduce(0) { $0 + Foundation.exp($1 - top) }) - scores[i]
        }
        return total / Double(n)
    }

    @Test(arguments: TestDevices.all)
    func rankingLossMatchesReferenceAndGradients(device: Device) throws {
        for (n, m, d) in [(1, 1, 3), (3, 4, 5), (7, 7, 33)] {
            let a = testValues(n * d, seed: 1), p = testValues(m * d, seed: 2)
            let loss = try multipleNegativesRankingLoss(anchors: Tensor(a, shape: [n, d], on: device),
                                                        positives: Tensor(p, shape: [m, d], on: device), scale: 20)
            expectClose([try loss.item()], [Self.reference(a, p, n: n, m: m, d: d, scale: 20)], rtol: 1e-4, atol: 1e-5,
                        "\(device) ranking loss n \(n), m \(m), d \(d)")
        }
        try gradientCheck(device: device, inputs: [(testValues(12, seed: 3), [3, 4]), (testValues(16, seed: 4), [4, 4])],
                          "multipleNegativesRankingLoss") {
            try multipleNegativesRankingLoss(anchors: $0[0], positives: $0[1], scale: 2)
        }
        let text = errorText { _ = try multipleNegativesRankingLoss(anchors: Tensor.zeros([3, 4], on: device), positives: Tensor.zeros([2, 4], on: device)) }
        #expect(text.contains("multipleNegativesRankingLoss") && text.contains("M ≥ N"), "\(text)")
    }

    /// Loaded from a folder, then fine-tuned end to end with the ranking loss on pairs the random model does not
    /// match: the loss falls and retrieval of each pair's partner rises.
    @Test(arguments: TestDevices.all)
    func contrastiveFineTuningOfALoadedEncoder(device: Device) throws {
        try inTemporaryFolder { dir in
            try SentenceEncoderTests.writeTinyFolder(dir)
            let encoder = try SentenceEncoder(directory: dir, device: device)
            let anchors = ["hello", "world", "cafe", "中", "unaffable", "a b"]
            let positives = ["hello , world !", "world !", "cafe .", "中 文", "un ##aff", "s ' s"]
            let a = encoder.tokenizer.encode(batch: anchors), p = encoder.tokenizer.encode(batch: positives)
            func loss() throws -> Tensor { try multipleNegativesRankingLoss(anchors: encoder.embed(a), positives: encoder.embed(p)) }
            func retrieved() throws -> Int {
                let scores = try encoder.encode(anchors).matmul(encoder.encode(positives), transposeB: true).toArray2D()
                return scores.enumerated().filter { i, row in row.indices.max { row[$0] < row[$1] } == i }.count
            }
            let before = try loss().item(), foundBefore = try retrieved()
            let optimizer = try Adam(parameters: encoder.model.parameters, learningRate: 3e-2)
            for _ in 0..<30 {
                optimizer.zeroGrad()
                try loss().backward()
                try optimizer.step()
            }
            let after = try loss().item(), foundAfter = try retrieved()
            #expect(after < 0.5 * before && foundAfter == anchors.count && foundAfter > foundBefore,
                    "\(device): loss \(before) -> \(after), pairs retrieved \(foundBefore) -> \(foundAfter) of \(anchors.count)")
        }
    }
}
