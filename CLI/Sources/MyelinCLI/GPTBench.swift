import ArgumentParser
import Foundation
import Myelin

/// `myelin bench gpt`: the Myelin side of the GPT rows of `scripts/bench-peers` (Benchmarks/gpt_bench.py), one JSON
/// line. The model is `myelin train text`'s default (4 layers, 4 heads, 128 dims, block 64) with `--vocab` tokens.
///
/// - `--mode train`: the training step of `myelin train text` (batch 12 windows of random tokens drawn as
///   `TextCorpus.batch` draws them, softmax cross-entropy, gradients clipped to global norm 1, AdamW lr 1e-3,
///   betas (0.9, 0.99), decay 0.1 on the linear weights): `--warmup` untimed steps, then `--steps` timed ones;
///   training tokens/s (batch × block per step).
/// - `--mode generate`: `GPT.generate` from a one-token prompt, temperature 0.8, top-k 200 (`myelin generate`'s
///   defaults) with the key/value cache (or without, `--no-cache`): a warm-up of `--warmup` tokens, then `--tokens`
///   timed ones; generated tokens/s.
///
/// ```
/// myelin bench gpt --mode train --device cpu --steps 50
/// ```
struct GPTBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gpt", abstract: "GPT training or generation tokens/s (the Myelin side of scripts/bench-peers' GPT rows), as one JSON line.")

    @OptionGroup var device: DeviceOptions
    @Option(help: "train or generate.") var mode = "train"
    @Option(parsing: .unconditional, help: "Vocabulary size.") var vocab = 65
    @Option(parsing: .unconditional, help: "Windows per training batch.") var batch = 12
    @Option(parsing: .unconditional, help: "Untimed steps (train) or tokens (generate) first.") var warmup = 5
    @Option(parsing: .unconditional, help: "Timed training steps.") var steps = 50
    @Option(parsing: .unconditional, help: "Timed generated tokens.") var tokens = 300
    @Flag(name: .customLong("no-cache"), help: "Generate without the key/value cache (the whole context for every token).")
    var noCache = false
    @Option(parsing: .unconditional, help: "Seed of the weights, batches and draws.") var seed: UInt64 = 1

    func validate() throws {
        guard ["train", "generate"].contains(mode) else { throw ValidationError("--mode must be train or generate, got '\(mode)'") }
        try checkingValues {
            try ValueCheck.atLeast(1, vocab, name: "--vocab")
            try ValueCheck.atLeast(1, batch, name: "--batch")
            try ValueCheck.atLeast(0, warmup, name: "--warmup")
            try ValueCheck.atLeast(1, steps, name: "--steps")
            try ValueCheck.atLeast(1, tokens, name: "--tokens")
        }
    }

    func run() throws {
        let device = try self.device.resolve()
        Device.default = device
        let config = GPTConfig(vocabSize: vocab)
        let gpt = GPT(config, seed: seed, device: device)
        var row: [String: Any] = ["device": device.name, "mode": mode, "vocab": vocab, "parameters": gpt.parameterCount]
        if mode == "train" {
            let (seconds, loss) = try train(gpt, on: device)
            row["steps"] = steps
            row["tokens_per_s"] = Double(steps * batch * config.blockSize) / seconds
            row["final_loss"] = loss.isFinite ? Double(loss) : NSNull()
        } else {
            let sampling = SamplingOptions(temperature: 0.8, topK: 200, seed: seed)
            if warmup > 0 { _ = try gpt.generate(prompt: [0], count: warmup, sampling: sampling, useCache: !noCache) }
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try gpt.generate(prompt: [0], count: tokens, sampling: sampling, useCache: !noCache)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            row["tokens"] = tokens
            row["cache"] = !noCache
            row["tokens_per_s"] = Double(tokens) / seconds
        }
        let data = try JSONSerialization.data(withJSONObject: row, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }

    /// `warmup` + `steps` steps of `myelin train text`'s loop (without its schedule and evaluations); the seconds of
    /// the timed steps (the last loss read at the end) and that loss.
    private func train(_ gpt: GPT, on device: Device) throws -> (Double, Float) {
        let optimizer = try AdamW(groups: gpt.parameterGroups(weightDecay: 0.1), learningRate: 1e-3, betas: (0.9, 0.99))
        var generator = SeededGenerator(seed: seed)
        let text = (0..<100_000).map { _ in Int(generator.next() % UInt64(vocab)) }
        func step() throws -> Tensor {
            let (x, y) = try TextCorpus.batch(text, batchSize: batch, blockSize: gpt.config.blockSize, generator: &generator, on: device)
            optimizer.zeroGrad()
            let loss = try softmaxCrossEntropy(logits: gpt(x), labels: y, ignoreIndex: -1)
            try loss.backward()
            _ = try clipGradients(gpt.parameters, byGlobalNorm: 1)
            try optimizer.step()
            return loss
        }
        gpt.train()
        for _ in 0..<warmup { _ = try step() }
        device.synchronize()
        let start = DispatchTime.now().uptimeNanoseconds
        var loss: Tensor? = nil
        for _ in 0..<steps { loss = try step() }
        let last = try loss?.item() ?? .nan
        return (Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9, last)
    }
}
