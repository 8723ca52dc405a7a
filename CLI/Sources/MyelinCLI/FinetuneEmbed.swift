import ArgumentParser
import Foundation
import Myelin

/// `myelin finetune-embed --train PAIRS.tsv [--eval PAIRS.tsv] [--output DIR]`: contrastive fine-tuning of a
/// sentence-transformers model (all-MiniLM-L6-v2 by default) with MultipleNegativesRankingLoss, as
/// sentence-transformers' `fit` with `MultipleNegativesRankingLoss` and `NoDuplicatesBatchSampler` does; the
/// held-out retrieval scores before and after.
struct FinetuneEmbedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "finetune-embed",
        abstract: "Fine-tunes a sentence-embedding model on text pairs (MultipleNegativesRankingLoss).",
        discussion: """
            --train holds one 'anchor<TAB>positive' pair a line (a question and its answer, a message and its \
            intent, two paraphrases); each anchor learns to pick its own positive among the batch's. With --eval \
            (pairs of the same form), every anchor is ranked against the distinct positives of that file before \
            and after each epoch: accuracy@1 and mean reciprocal rank. --output writes a model folder that \
            `myelin embed --model` and sentence-transformers load.
            Example: myelin finetune-embed --train Tests/Fixtures/BankIntents/train.tsv --eval Tests/Fixtures/BankIntents/heldout.tsv \
            --output bank-minilm
            """)
    @Option(help: "Training pairs: one 'anchor<TAB>positive' a line.") var train: String
    @Option(help: "Held-out pairs of the same form, for the retrieval scores.") var eval: String?
    @Option(help: "Where to write the fine-tuned model folder (nothing is written without it).") var output: String?
    @Option(help: "The model's folder (default: the installed \(SentenceEncoder.packageName)).") var model: String?
    @Option(help: "Passes over the training pairs.") var epochs = 4
    @Option(help: "Pairs per batch (at most; no text twice in a batch).") var batchSize = 32
    @Option(help: "AdamW's learning rate.") var learningRate: Float = 2e-5
    @Option(help: "AdamW's weight decay.") var weightDecay: Float = 0.01
    @Option(help: "Freeze the embeddings and the first N transformer layers (-1: nothing frozen).") var freezeLayers = -1
    @Option(help: "The seed of the batches' order.") var seed: UInt64 = 0
    @OptionGroup var deviceOptions: DeviceOptions

    func validate() throws {
        guard epochs >= 0 else { throw ValidationError("--epochs must be at least 0, got \(epochs)") }
        guard batchSize >= 2 else { throw ValidationError("--batch-size must be at least 2 (the other pairs of a batch are the negatives), got \(batchSize)") }
        guard learningRate > 0, learningRate.isFinite else { throw ValidationError("--learning-rate must be positive, got \(learningRate)") }
        guard weightDecay >= 0 else { throw ValidationError("--weight-decay must be at least 0, got \(weightDecay)") }
        guard freezeLayers >= -1 else { throw ValidationError("--freeze-layers must be -1 (nothing) or at least 0, got \(freezeLayers)") }
    }

    func run() throws {
        let pairs = try SentencePair.read(tsv: URL(fileURLWithPath: train))
        let held = try eval.map { try SentencePair.read(tsv: URL(fileURLWithPath: $0)) }
        guard let folder = model.map({ URL(fileURLWithPath: $0) }) ?? SentenceEncoder.installedModelDirectory() else {
            throw FileOptionError(message: "no --model folder given, and the model package is not installed; install it with: \(SentenceEncoder.installCommand)")
        }
        let encoder = try SentenceEncoder(directory: folder, device: deviceOptions.resolve())
        guard freezeLayers <= encoder.model.config.layers else {
            throw ValidationError("--freeze-layers \(freezeLayers) exceeds the model's \(encoder.model.config.layers) layers")
        }
        if freezeLayers >= 0 { encoder.model.freeze(embeddings: true, layers: freezeLayers) }
        let trainable = encoder.model.parameters
        let frozen = encoder.model.namedTensors.count - trainable.count
        print("\(pairs.count) training pairs, \(held.map { "\($0.count) held-out pairs, " } ?? "")\(trainable.count) trainable tensors"
              + (frozen > 0 ? ", \(frozen) frozen (embeddings and layers 0..<\(freezeLayers))" : ""))
        func report(_ label: String) throws {
            guard let held else { return }
            let s = try encoder.retrievalScores(held)
            print(String(format: "%@: held-out accuracy@1 %.3f, MRR %.3f", label, s.accuracyAt1, s.meanReciprocalRank))
        }
        try report("before")
        let optimizer = try AdamW(parameters: trainable, learningRate: learningRate, weightDecay: weightDecay)
        for epoch in 0..<epochs {
            let start = Date()
            var losses: [Float] = []
            for batch in SentencePair.batches(pairs, size: batchSize, seed: seed &+ UInt64(epoch)) where batch.count > 1 {
                losses.append(try encoder.trainStep(batch, optimizer: optimizer))
            }
            let mean = losses.isEmpty ? Float.nan : losses.reduce(0, +) / Float(losses.count)
            print(String(format: "epoch %d: mean loss %.4f over %d steps, %.1f s", epoch + 1, mean, losses.count, Date().timeIntervalSince(start)))
            try report("epoch \(epoch + 1)")
        }
        if let output {
            try encoder.save(to: URL(fileURLWithPath: output))
            print("wrote \(output) (myelin embed --model \(output) ...)")
        }
    }
}
