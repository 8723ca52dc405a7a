import ArgumentParser
import CTerminal
import Foundation
import Myelin

/// `myelin train text`: a character-level GPT (nanoGPT's shakespeare_char recipe, its small CPU configuration) on a
/// text file, by default the fortunes of Debian's `fortunes` package.
struct TrainText: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "text",
        abstract: "A character-level GPT on a text file (default: the fortunes of Debian's fortunes package).",
        discussion: """
            nanoGPT's small CPU configuration: 4 layers, 4 heads, 128 dims, block 64, batch 12, no dropout; AdamW lr 1e-3,
            betas (0.9, 0.99), weight decay 0.1 on the linear weights only; 100 warm-up steps then cosine to 1e-4 at the
            last step; gradients clipped to global norm 1; 2000 steps. The vocabulary is the text's characters; the first
            90% trains and the last 10% validates. Every --eval-interval steps the mean loss of --eval-iters batches of
            each part is printed. The checkpoint (--save) holds the vocabulary and the sizes: sample from it with
            myelin generate --load FILE.
            """)
    static let fortunesFolder = "/usr/share/games/fortunes"

    @OptionGroup var device: DeviceOptions
    @OptionGroup var options: TrainOptions
    @Option(help: "The text (UTF-8) to train on (default: the plain-text files of \(TrainText.fortunesFolder)).") var data: String?
    @Option(parsing: .unconditional, help: "Optimizer steps in all, counting a resumed checkpoint's (default 2000; --epochs means the same).")
    var steps: Int?
    @Option(name: .customLong("block-size"), parsing: .unconditional, help: "Context length (default 64).") var blockSize: Int?
    @Option(parsing: .unconditional, help: "Transformer blocks (default 4).") var layers: Int?
    @Option(parsing: .unconditional, help: "Attention heads (default 4).") var heads: Int?
    @Option(name: .customLong("embed-dim"), parsing: .unconditional, help: "Width (default 128; a multiple of --heads).") var embedDim: Int?
    @Option(parsing: .unconditional, help: "Dropout rate (default 0).") var dropout: Float?
    @Option(name: .customLong("eval-interval"), parsing: .unconditional, help: "Steps between evaluations (default 250).")
    var evalInterval: Int = 250
    @Option(name: .customLong("eval-iters"), parsing: .unconditional, help: "Batches per evaluated part (default 20).")
    var evalIters: Int = 20
    @Option(parsing: .unconditional, help: "Warm-up steps (default 100).") var warmup: Int = 100
    @Option(name: .customLong("min-lr"), parsing: .unconditional, help: "The rate at the last step (default 1e-4).") var minLR: Float = 1e-4
    @Option(name: .customLong("grad-clip"), parsing: .unconditional, help: "Global gradient norm limit; 0: none (default 1).")
    var gradClip: Float = 1
    @Option(name: .customLong("sample-tokens"), parsing: .unconditional, help: "Characters sampled at the end (default 200; 0: none).")
    var sampleTokens: Int = 200

    func validate() throws {
        try checkingValues {
            for (name, value) in [("--steps", steps), ("--block-size", blockSize), ("--layers", layers), ("--heads", heads),
                                  ("--embed-dim", embedDim)] {
                if let value { try ValueCheck.atLeast(1, value, name: name) }
            }
            try ValueCheck.atLeast(1, evalInterval, name: "--eval-interval")
            try ValueCheck.atLeast(1, evalIters, name: "--eval-iters")
            try ValueCheck.atLeast(0, warmup, name: "--warmup")
            try ValueCheck.atLeast(0, sampleTokens, name: "--sample-tokens")
            try ValueCheck.learningRate(minLR, name: "--min-lr")
            try ValueCheck.learningRate(gradClip, name: "--grad-clip")
        }
        if let dropout, !(dropout >= 0 && dropout < 1) { throw ValidationError("--dropout must be in [0, 1), got \(dropout)") }
        if let heads, let embedDim, embedDim % heads != 0 {
            throw ValidationError("--embed-dim \(embedDim) must be a multiple of --heads \(heads)")
        }
        if options.load != nil, [blockSize, layers, heads, embedDim].contains(where: { $0 != nil }) || dropout != nil {
            throw ValidationError("--load: the checkpoint fixes the model's sizes; leave out --block-size, --layers, --heads, --embed-dim and --dropout")
        }
    }

    func run() throws {
        try options.checkFiles()
        let device = try self.device.resolve()
        Device.default = device
        printDevice(device)
        // A checkpoint to resume (or start from) fixes the sizes and the vocabulary.
        let loaded = try options.load.map { try GPT.load(from: URL(fileURLWithPath: $0), device: device) }
        let (text, source) = try readText()
        let corpus = try TextCorpus(text: text, vocabulary: loaded?.1, source: source)
        let config = loaded?.0.config ?? GPTConfig(vocabSize: corpus.vocabulary.count, blockSize: blockSize ?? 64,
                                                   layers: layers ?? 4, heads: heads ?? 4, embedDim: embedDim ?? 128,
                                                   dropout: dropout ?? 0)
        do { try config.validate() } catch { throw ValidationError("\(error)") }
        let batch = options.batchSize ?? 12
        // Parameters, gradients, optimizer state and a step's activations counted from the sizes before anything is
        // built: a size no device holds is an error naming the options, not an allocation that stops the program.
        try config.memory(batchSize: batch, optimizerStateTensors: options.optimizerStateTensors(defaultName: "adamw"),
                          options: sizeOptions(config, batch: batch, loaded: loaded != nil)).check(on: device)
        let (train, validation) = corpus.split(validationFraction: 0.1)
        if train.count <= config.blockSize || validation.count <= config.blockSize {
            throw TextCorpusError.tooShort(source: source, tokens: corpus.tokens.count, needed: (config.blockSize + 1) * 10 + 1,
                                           why: "block size \(config.blockSize) (each of the 90% training and 10% validation parts must hold a window of \(config.blockSize + 1))")
        }
        let gpt = loaded?.0 ?? GPT(config, seed: options.seed, device: device)
        let optimizer = try makeOptimizer(gpt)
        let metadata = gpt.metadata(vocabulary: corpus.vocabulary)
        var resumed: TrainingCheckpoint?
        if let load = options.load, try SafeTensors.load(URL(fileURLWithPath: load)).metadata["format"] == "myelin-training-checkpoint" {
            resumed = try TrainingCheckpoint.load(from: URL(fileURLWithPath: load), into: gpt, optimizer: optimizer)
        }
        let requested = steps ?? options.epochs
        var first = 0, total = requested ?? 2000, history = History()
        var base = options.lr ?? 1e-3
        if let resumed, let load = options.load {
            let plan = try resumed.resumePlan(epochs: requested, defaultEpochs: 2000, learningRate: options.lr, source: load, epochName: "step")
            print(plan.note.prefix(1).uppercased() + plan.note.dropFirst())
            (first, total, history) = (plan.initialEpoch, plan.epochs, resumed.history)
            base = plan.baseLearningRate ?? base
        } else if loaded != nil {
            print("Loaded weights from \(options.load!)")
        }
        let warm = Double(Swift.min(warmup, total - 1))
        let schedule = try WarmupCosine(warmupEpochs: warm, totalEpochs: Double(total), etaMin: Swift.min(minLR, base),
                                        warmupStartFactor: 1 / Float(warmup + 1))
        print("Text: \(source): \(corpus.tokens.count) characters, vocabulary \(corpus.vocabulary.count); \(train.count) train, \(validation.count) validation")
        print("GPT: \(config.layers) layers, \(config.heads) heads, \(config.embedDim) dims, block \(config.blockSize), \(gpt.parameterCount) parameters; \(type(of: optimizer)) lr \(base), batch \(batch), \(total) steps")
        let board = try options.logdir.map { try TensorBoardWriter(logDir: URL(fileURLWithPath: $0)) }
        let interrupt = TrainingInterrupt.shared
        interrupt.install()
        let bar = options.verbosity == .progressBar || (options.verbosity == .auto && isatty(1) != 0)
        let start = Date()
        var lastLoss: Float = .nan
        for step in first..<Swift.max(first, total) {
            if interrupt.stop.isRequested {
                try options.finishInterrupted(model: gpt, optimizer: optimizer, position: TrainingPosition(epoch: step, partialEpoch: nil),
                                              history: history, title: "Character GPT (\(device.name))", baseLearningRate: base,
                                              sample: "text", metadata: metadata)
            }
            gpt.train()
            schedule.apply(to: optimizer, progress: Double(step), base: base)
            var generator = SeededGenerator(seed: options.seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(step))
            let (x, y) = try TextCorpus.batch(train, batchSize: batch, blockSize: config.blockSize, generator: &generator, on: device)
            optimizer.zeroGrad()
            let loss = try softmaxCrossEntropy(logits: gpt(x), labels: y, ignoreIndex: -1)
            try loss.backward()
            if gradClip > 0 { _ = try clipGradients(gpt.parameters, byGlobalNorm: gradClip) }
            try optimizer.step()
            let done = step + 1
            if bar || done % 10 == 0 || done == total {
                lastLoss = try loss.item()
                guard lastLoss.isFinite else { throw TrainingError.nonFiniteLoss(epoch: done, batch: 1, value: lastLoss) }
                board?.scalars([("batch/loss", Double(lastLoss)), ("batch/learning_rate", Double(optimizer.learningRate))], step: done)
            }
            let elapsed = Date().timeIntervalSince(start)
            if bar {
                let rate = Double((done - first) * batch * config.blockSize) / Swift.max(elapsed, 1e-9)
                let eta = elapsed / Double(done - first) * Double(total - done)
                print("\r\u{1B}[2K" + progressLine(done, total) + String(format: "  loss %.4f  lr %.2e  %.0f tok/s  ETA %@", lastLoss,
                                                                          optimizer.learningRate, rate, time(eta)), terminator: "")
                fflush(nil)
            }
            if done % evalInterval == 0 || done == total {
                let (trainLoss, validationLoss) = try evaluate(gpt, train: train, validation: validation, batch: batch)
                history.append(epoch: done, ["loss": trainLoss, "val_loss": validationLoss])
                board?.scalars([("epoch/loss", trainLoss), ("epoch/val_loss", validationLoss)], step: done)
                board?.flushOrStopLogging()
                print((bar ? "\r\u{1B}[2K" : "") + String(format: "step %d/%d: train loss %.4f, val loss %.4f  (%.0f s)", done, total,
                                                          trainLoss, validationLoss, elapsed))
            }
        }
        let seconds = Date().timeIntervalSince(start)
        if total > first {
            print(String(format: "%d steps in %.1f s (%.0f tokens/s)", total - first, seconds,
                         Double((total - first) * batch * config.blockSize) / Swift.max(seconds, 1e-9)))
        }
        if sampleTokens > 0 {
            let prompt = corpus.vocabulary.characters.contains("\n") ? "\n" : String(corpus.vocabulary.characters[0])
            let tokens = try gpt.generate(prompt: corpus.vocabulary.encode(prompt), count: sampleTokens,
                                          sampling: SamplingOptions(temperature: 0.8, topK: 200, seed: options.seed))
            print("Sample (temperature 0.8):\n" + corpus.vocabulary.decode(tokens))
        }
        try options.writeOutputs(model: gpt, optimizer: optimizer, epoch: total, history: history,
                                 title: "Character GPT (\(device.name))", baseLearningRate: base, metadata: metadata)
        if interrupt.stop.isRequested { throw interrupt.exitCode }
    }

    /// The options that size the model and a step, for errors: those furthest above their defaults first
    /// (`--layers 1000000000, --embed-dim 128, ...`); a loaded checkpoint's sizes are named as its.
    func sizeOptions(_ config: GPTConfig, batch: Int, loaded: Bool) -> String {
        let model: [(String, Int, Double)] = [("--layers", config.layers, 4), ("--embed-dim", config.embedDim, 128),
                                              ("--heads", config.heads, 4), ("--block-size", config.blockSize, 64)]
        let sizes = (loaded ? [] : model) + [("--batch-size", batch, 12)]
        let named = sizes.sorted { Double($0.1) / $0.2 > Double($1.1) / $1.2 }.map { "\($0.0) \($0.1)" }
        let checkpoint = loaded ? ["--load \(options.load!) (n_layer \(config.layers), n_embd \(config.embedDim), "
                                   + "n_head \(config.heads), block_size \(config.blockSize))"] : []
        return (named + checkpoint).joined(separator: ", ")
    }

    /// AdamW with nanoGPT's groups (or another optimizer named by --optimizer, on all parameters).
    func makeOptimizer(_ gpt: GPT) throws -> any Optimizer {
        let name = (options.optimizer ?? "adamw").lowercased()
        guard name == "adamw" else { return try options.makeOptimizer(gpt.parameters, defaultName: name, defaultRate: 1e-3) }
        return try AdamW(groups: gpt.parameterGroups(weightDecay: options.weightDecay ?? 0.1), learningRate: options.lr ?? 1e-3,
                         betas: (0.9, 0.99))
    }

    /// The mean loss of `evalIters` batches of each part, in eval mode (the same batches at every evaluation).
    func evaluate(_ gpt: GPT, train: [Int], validation: [Int], batch: Int) throws -> (Double, Double) {
        gpt.eval()
        defer { gpt.train() }
        return try withNoGrad {
            try ([train, validation].enumerated().map { part, tokens in
                var generator = SeededGenerator(seed: options.seed &+ 1000 &+ UInt64(part))
                var sum = 0.0
                for _ in 0..<evalIters {
                    let (x, y) = try TextCorpus.batch(tokens, batchSize: batch, blockSize: gpt.config.blockSize, generator: &generator,
                                                      on: gpt.tokenEmbedding.weight.device)
                    sum += Double(try softmaxCrossEntropy(logits: gpt(x), labels: y, ignoreIndex: -1).item())
                }
                return sum / Double(evalIters)
            }).withTwo { ($0, $1) }
        }
    }

    /// The text of --data, or the fortunes; and its name for messages.
    func readText() throws -> (String, String) {
        if let data { return (try TextCorpus.readText(URL(fileURLWithPath: data)), data) }
        return (try Self.fortunes(), Self.fortunesFolder)
    }

    /// The plain-text fortune files (not the .dat indexes, not the .u8 links, nothing offensive), in name order,
    /// with the `%` lines between fortunes made blank lines.
    static func fortunes() throws -> String {
        let folder = URL(fileURLWithPath: fortunesFolder)
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder.path) else {
            throw ValidationError("no --data given, and \(fortunesFolder) cannot be read: install Debian's fortunes package (scripts/setup does: apt-get install fortunes) or give --data FILE")
        }
        var parts: [String] = []
        for name in names.sorted() where !name.hasSuffix(".dat") && !name.hasSuffix(".u8") && !name.contains("off") {
            let url = folder.appendingPathComponent(name)
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder), !isFolder.boolValue,
                  let text = try? TextCorpus.readText(url) else { continue }
            parts.append(text.replacingOccurrences(of: "\n%\n", with: "\n\n"))
        }
        guard !parts.isEmpty else {
            throw ValidationError("no --data given, and \(fortunesFolder) has no plain-text fortune files: install Debian's fortunes package or give --data FILE")
        }
        return parts.joined(separator: "\n")
    }

    func progressLine(_ done: Int, _ total: Int) -> String {
        let width = 24, filled = Swift.min(width, done * width / Swift.max(total, 1))
        let bar = String(repeating: "=", count: filled) + (filled < width ? ">" + String(repeating: ".", count: width - filled - 1) : "")
        return "step \(done)/\(total) [\(bar)]"
    }

    func time(_ s: Double) -> String {
        guard s.isFinite, s < 1e9 else { return "?" }
        let t = Int(s.rounded())
        return String(format: "%d:%02d", t / 60, t % 60)
    }
}

extension Array {
    /// The two elements of a two-element array, through `body`.
    fileprivate func withTwo<T>(_ body: (Element, Element) -> T) -> T { body(self[0], self[1]) }
}
