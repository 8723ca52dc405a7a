import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// The transformers' sizes counted before building (issue 28, item 2): `GPTConfig.parameterCount` and
/// `BertConfig.parameterCount` equal the built models' counts, and sizes no machine holds are refused at once, the
/// error naming the options (GPT) or config.json and its fields (BERT).
@Suite struct TransformerMemoryTests {
    @Test func gptCountsMatchTheBuiltModels() {
        for (layers, heads, dim, bias) in [(1, 1, 4, true), (2, 2, 8, true), (3, 2, 6, false), (1, 4, 12, false)] {
            let config = GPTConfig(vocabSize: 7, blockSize: 5, layers: layers, heads: heads, embedDim: dim, bias: bias)
            let gpt = GPT(config, seed: 1, device: .cpu)
            #expect(config.parameterCount == Double(gpt.parameterCount), "\(config)")
            let plan = config.memory(batchSize: 3, optimizerStateTensors: 2)
            #expect(plan.parameters == Double(gpt.parameterCount) && plan.training)
            #expect(plan.trainingBytes > 16 * plan.parameters)
        }
    }

    /// The three-op attention keeps the scores [B, H, T, T] (and their softmax) in every block: 4·B·H·T²·L more
    /// elements with their gradients, 8·B·H·T²·L with attention dropout (the mask and the dropped weights too).
    @Test func attentionScoresAreCountedForTheThreeOpPath() {
        let (b, t, h, l) = (3.0, 16.0, 4.0, 2.0)
        for dropout: Float in [0, 0.1] {
            let config = GPTConfig(vocabSize: 11, blockSize: Int(t), layers: Int(l), heads: Int(h), embedDim: 8, dropout: dropout)
            let fused = config.memory(batchSize: Int(b), optimizerStateTensors: 2, attentionScores: false)
            let scores = config.memory(batchSize: Int(b), optimizerStateTensors: 2, attentionScores: true)
            #expect(scores.activations - fused.activations == (dropout > 0 ? 8 : 4) * b * h * t * t * l, "dropout \(dropout)")
            #expect(config.trainsWithAttentionScores == (dropout > 0 || ProcessInfo.processInfo.environment["MYELIN_ATTENTION"] == "reference"))
        }
    }

    @Test(arguments: TestDevices.all)
    func aHugeGPTIsRefusedAtOnceNamingTheOption(device: Device) throws {
        let start = Date()
        for (config, option) in [(GPTConfig(vocabSize: 65, layers: 1_000_000_000), "--layers 1000000000"),
                                 (GPTConfig(vocabSize: 65, blockSize: 1 << 40), "--block-size 1099511627776"),
                                 (GPTConfig(vocabSize: 65, heads: 1 << 20, embedDim: 1 << 40), "--embed-dim 1099511627776")] {
            do {
                try config.memory(batchSize: 12, optimizerStateTensors: 2, options: option).check(on: device)
                Issue.record("\(option) fits \(device)?")
            } catch let error as DeviceError {
                #expect("\(error)".hasPrefix("\(option): training a GPT of \(config.layers) layers"), "\(error)")
                #expect("\(error)".contains("of memory available"), "\(error)")
            }
        }
        // A batch no device holds, with the scores of the three-op path.
        #expect(throws: DeviceError.self) {
            try GPTConfig(vocabSize: 65, dropout: 0.1).memory(batchSize: 1 << 30, optimizerStateTensors: 2).check(on: device)
        }
        try GPTConfig(vocabSize: 65).memory(batchSize: 12, optimizerStateTensors: 2).check(on: device)
        #expect(Date().timeIntervalSince(start) < 1)
    }

    @Test func bertCountsMatchTheBuiltModels() {
        for (hidden, layers, heads, intermediate) in [(8, 1, 2, 12), (6, 2, 3, 5), (4, 3, 1, 16)] {
            let config = BertConfig(hiddenSize: hidden, layers: layers, heads: heads, intermediateSize: intermediate,
                                    maxPositions: 9, typeVocabularySize: 3, vocabularySize: 13)
            for pooler in [false, true] {
                let bert = BertEncoder(config: config, pooler: pooler, device: .cpu)
                #expect(config.parameterCount(pooler: pooler) == Double(bert.parameterCount), "\(config) pooler \(pooler)")
            }
            let running = config.memory(batchSize: 2, sequenceLength: 9, pooler: true)
            #expect(!running.training && running.trainingBytes == 4 * (running.parameters + running.activations))
            let training = config.memory(batchSize: 2, sequenceLength: 9, pooler: true, optimizerStateTensors: 2)
            #expect(training.training && training.trainingBytes > 4 * 4 * training.parameters)
        }
    }

    /// A config.json with absurd sizes is refused before anything else of the folder is read or built, naming the
    /// file and the field; the same through `BertEncoder.load`.
    @Test(arguments: TestDevices.all)
    func absurdBertSizesAreRefusedNamingConfigJSONAndTheField(device: Device) throws {
        try inTemporaryFolder { dir in
            try SentenceEncoderTests.writeTinyFolder(dir)
            let configURL = dir.appendingPathComponent("config.json")
            let original = try String(contentsOf: configURL, encoding: .utf8)
            for (field, value) in [("hidden_size", "1000000"), ("num_hidden_layers", "1000000000"), ("vocab_size", "1000000000000")] {
                let pattern = "\"\(field)\": [0-9]+"
                let edited = original.replacingOccurrences(of: pattern, with: "\"\(field)\": \(value)", options: .regularExpression)
                #expect(edited != original)
                try edited.write(to: configURL, atomically: true, encoding: .utf8)
                let start = Date()
                let text = errorText { _ = try SentenceEncoder(directory: dir, device: device) }
                #expect(text.hasPrefix("\(configURL.path): '\(field)' \(value),") && text.contains("running BertEncoder("), "\(text)")
                #expect(text.contains("of memory available"), "\(text)")
                let config = try BertConfig(contentsOf: configURL)
                let loading = errorText { _ = try BertEncoder.load(from: dir.appendingPathComponent("model.safetensors"), config: config, device: device) }
                #expect(loading.hasPrefix("\(configURL.path): '\(field)' \(value),"), "\(loading)")
                #expect(Date().timeIntervalSince(start) < 2)
            }
            try original.write(to: configURL, atomically: true, encoding: .utf8)
            _ = try SentenceEncoder(directory: dir, device: device)
        }
    }
}
