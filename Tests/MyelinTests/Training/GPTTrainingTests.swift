import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// A tiny GPT learns a fixed sentence by heart within seconds, on every device: the loss falls below 0.05, and greedy
/// generation from its first character gives the rest of it back.
struct GPTTrainingTests {
    @Test(arguments: TestDevices.all)
    func tinyGPTOverfitsASentence(device: Device) throws {
        let sentence = "the cat sat on the mat."
        let corpus = try TextCorpus(text: sentence)
        let config = GPTConfig(vocabSize: corpus.vocabulary.count, blockSize: sentence.count - 1, layers: 2, heads: 2,
                               embedDim: 32)
        let gpt = GPT(config, seed: 1, device: device)
        let optimizer = try AdamW(groups: gpt.parameterGroups(weightDecay: 0.1), learningRate: 1e-2, betas: (0.9, 0.99))
        let tokens = corpus.tokens.map(Float.init)
        let x = try Tensor(Array(tokens.dropLast()), shape: [1, config.blockSize], on: device)
        let y = try Tensor(Array(tokens.dropFirst()), shape: [1, config.blockSize], on: device)
        let start = Date()
        var loss: Float = .nan
        for _ in 0..<150 {
            optimizer.zeroGrad()
            let l = try softmaxCrossEntropy(logits: gpt(x), labels: y, ignoreIndex: -1)
            try l.backward()
            _ = try clipGradients(gpt.parameters, byGlobalNorm: 1)
            try optimizer.step()
            loss = try l.item()
            if loss < 0.02 { break }
        }
        let seconds = Date().timeIntervalSince(start)
        #expect(loss < 0.05, "\(device): loss \(loss) after training")
        #expect(seconds < 60, "\(device): \(seconds) s")
        let generated = try gpt.generate(prompt: [corpus.tokens[0]], count: sentence.count - 1)
        #expect(corpus.vocabulary.decode([corpus.tokens[0]] + generated) == sentence, "\(device)")
    }
}
