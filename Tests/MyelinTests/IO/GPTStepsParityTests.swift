import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// From the same initial weights and batches, 100 steps of `myelin train text`'s recipe (AdamW with the GPT's
/// parameter groups, warm-up + cosine, clipping to global norm 1) give the weights PyTorch gives
/// (scripts/torch_gpt_steps_check.py, nanoGPT's GPT and torch.optim.AdamW in float64) within 1e-4, on every device.
struct GPTStepsParityTests {
    static let steps = 100
    /// A vocabulary of 30 characters.
    static let vocabulary = CharacterVocabulary(text: "abcdefghijklmnopqrstuvwxyz .,\n")
    /// `myelin train text`'s recipe, with a warm-up that fits 100 steps.
    struct Recipe {
        var lr: Float = 1e-3, betas: (Float, Float) = (0.9, 0.99), eps: Float = 1e-8, weightDecay: Float = 0.1
        var warmup = 10, minLR: Float = 1e-4, gradClip: Float = 1

        /// The form scripts/torch_gpt_steps_check.py reads.
        var json: [String: Any] {
            ["lr": Double(lr), "betas": [Double(betas.0), Double(betas.1)], "eps": Double(eps), "weight_decay": Double(weightDecay),
             "warmup": warmup, "min_lr": Double(minLR), "grad_clip": Double(gradClip)]
        }
    }

    @Test(.enabled(if: pythonTorchAvailable, "python3 cannot import torch and safetensors: run scripts/setup --test"),
          arguments: TestDevices.all)
    func hundredAdamWStepsMatchPyTorch(device: Device) throws {
        let dir = temporaryFolder("hundredAdamWStepsMatchPyTorch-\(device.name)")
        defer { try? FileManager.default.removeItem(at: dir) }
        do {
            let (vocabulary, batch, recipe) = (Self.vocabulary, 4, Recipe())
            let config = GPTConfig(vocabSize: vocabulary.count, blockSize: 16, layers: 2, heads: 2, embedDim: 32)
            let gpt = GPT(config, seed: 7, device: device)
            let metadata = gpt.metadata(vocabulary: vocabulary)
            try SafeTensors.save(gpt.namedTensors, metadata: metadata, to: dir.appendingPathComponent("initial.safetensors"))
            // A token stream with some structure to learn (a cycle with noise), and every step's batch from it.
            var noise = SeededGenerator(seed: 3)
            let stream = (0..<600).map { i in noise.next() % 5 == 0 ? Int(noise.next() % UInt64(vocabulary.count)) : (i * 7) % vocabulary.count }
            var generator = SeededGenerator(seed: 11)
            var inputs: [Float] = [], targets: [Float] = []
            for _ in 0..<Self.steps {
                let (x, y) = try TextCorpus.batch(stream, batchSize: batch, blockSize: config.blockSize, generator: &generator, on: .cpu)
                inputs += try x.toArray(); targets += try y.toArray()
            }
            let shape = [Self.steps, batch, config.blockSize]
            let batches: [String: Any] = ["inputs": ["shape": shape, "values": inputs], "targets": ["shape": shape, "values": targets]]
            try JSONSerialization.data(withJSONObject: batches).write(to: dir.appendingPathComponent("batches.json"))
            try JSONSerialization.data(withJSONObject: recipe.json).write(to: dir.appendingPathComponent("recipe.json"))
            // TrainText's loop.
            let base = recipe.lr
            let optimizer = try AdamW(groups: gpt.parameterGroups(weightDecay: recipe.weightDecay), learningRate: base,
                                      betas: recipe.betas, eps: recipe.eps)
            let schedule = try WarmupCosine(warmupEpochs: Double(recipe.warmup), totalEpochs: Double(Self.steps),
                                            etaMin: recipe.minLR, warmupStartFactor: 1 / Float(recipe.warmup + 1))
            let perStep = batch * config.blockSize
            var losses: [Float] = []
            let start = Date()
            for step in 0..<Self.steps {
                schedule.apply(to: optimizer, progress: Double(step), base: base)
                let x = try Tensor(Array(inputs[(step * perStep)..<((step + 1) * perStep)]), shape: [batch, config.blockSize], on: device)
                let y = try Tensor(Array(targets[(step * perStep)..<((step + 1) * perStep)]), shape: [batch, config.blockSize], on: device)
                optimizer.zeroGrad()
                let loss = try softmaxCrossEntropy(logits: gpt(x), labels: y, ignoreIndex: -1)
                try loss.backward()
                _ = try clipGradients(gpt.parameters, byGlobalNorm: recipe.gradClip)
                try optimizer.step()
                losses.append(try loss.item())
            }
            try TorchInteropTests.writeJSON(Tensor(losses, on: .cpu), to: dir.appendingPathComponent("losses.json"))
            try SafeTensors.save(gpt.namedTensors, metadata: metadata, to: dir.appendingPathComponent("final.safetensors"))
            #expect(losses.last! < losses.first! - 0.5, "\(device): the loss went from \(losses.first!) to \(losses.last!)")
            let trained = Date()
            let (status, output) = try runPythonScript("scripts/torch_gpt_steps_check.py", [dir.path])
            print("\(device): \(Self.steps) steps in " + String(format: "%.1f s; scripts/torch_gpt_steps_check.py in %.1f s:\n",
                                                               trained.timeIntervalSince(start), Date().timeIntervalSince(trained)) + output,
                  terminator: "")
            #expect(status == 0, "\(device): torch_gpt_steps_check.py:\n\(output)")
            #expect(output.contains("strict load OK") && output.contains("parameters after \(Self.steps) steps"), "\(output)")
        }
    }
}
