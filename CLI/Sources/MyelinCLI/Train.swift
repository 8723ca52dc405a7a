import ArgumentParser
import Foundation
import Myelin

/// `myelin train <sample>`: the course's labs and a Fashion-MNIST MLP.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train", abstract: "Train a sample model: xor, and, regression, fashion-mnist, text.",
        subcommands: [TrainXOR.self, TrainAND.self, TrainRegression.self, TrainFashionMNIST.self, TrainText.self])
}

/// Options every sample trainer takes. Unset values take the sample's defaults.
struct TrainOptions: ParsableArguments {
    // Numbers are parsed `.unconditional`ly so that `--lr -1` reaches validate() and gets a clear error instead of
    // the parser taking `-1` for a flag.
    @Option(parsing: .unconditional,
            help: "Epochs in all, counting those a resumed checkpoint has done (for xor/and: full-batch gradient steps).")
    var epochs: Int?
    @Option(name: .customLong("batch-size"), parsing: .unconditional, help: "Samples per batch.") var batchSize: Int?
    @Option(parsing: .unconditional, help: "Learning rate (wins over a resumed checkpoint's).") var lr: Float?
    @Option(help: "Optimizer: sgd, momentum, nesterov, adagrad, rmsprop, adam, adamw.") var optimizer: String?
    @Option(name: .customLong("weight-decay"), parsing: .unconditional,
            help: "Weight decay λ (L2 added to the gradient; decoupled for adamw). Default: the sample's (else the optimizer's own: adamw 0.01, others 0).")
    var weightDecay: Float?
    @Option(parsing: .unconditional, help: "Seed for initial weights and shuffling.") var seed: UInt64 = 1
    @Option(help: "Save a training checkpoint (safetensors) at the end.") var save: String?
    @Option(help: "Start from a checkpoint: a training checkpoint resumes; a plain model file loads the weights.") var load: String?
    @Option(help: "Write the loss curve as SVG.") var plot: String?
    @Option(help: "Write the history as CSV (or JSON for a .json name).") var history: String?
    @Option(help: "Write TensorBoard event files to this folder (a new file per run; view with tensorboard --logdir).")
    var logdir: String?
    @Flag(help: "No progress bar: one line per epoch.") var quiet = false
    @Flag(help: "Progress bar even when the output is not a terminal, and more detail.") var verbose = false

    var verbosity: Verbosity { quiet ? .epochLines : verbose ? .progressBar : .auto }

    /// The optimizer the options name, for `parameters`. The weight decay is `--weight-decay`, else
    /// `defaultWeightDecay`, else the optimizer's own default (AdamW 0.01, the others 0).
    func makeOptimizer(_ parameters: [Tensor], defaultName: String, defaultRate: Float,
                       defaultWeightDecay: Float? = nil) throws -> any Optimizer {
        let name = (optimizer ?? defaultName).lowercased()
        let rate = lr ?? defaultRate
        let decay = weightDecay ?? defaultWeightDecay
        switch name {
        case "sgd": return try SGD(parameters: parameters, learningRate: rate, weightDecay: decay ?? 0)
        case "momentum": return try SGD(parameters: parameters, learningRate: rate, momentum: 0.9, weightDecay: decay ?? 0)
        case "nesterov":
            return try SGD(parameters: parameters, learningRate: rate, momentum: 0.9, nesterov: true, weightDecay: decay ?? 0)
        case "adagrad": return try Adagrad(parameters: parameters, learningRate: rate, weightDecay: decay ?? 0)
        case "rmsprop": return try RMSProp(parameters: parameters, learningRate: rate, weightDecay: decay ?? 0)
        case "adam": return try Adam(parameters: parameters, learningRate: rate, weightDecay: decay ?? 0)
        case "adamw":
            return try decay.map { try AdamW(parameters: parameters, learningRate: rate, weightDecay: $0) }
                ?? AdamW(parameters: parameters, learningRate: rate)
        default:
            throw ValidationError("unknown optimizer '\(name)'; choose sgd, momentum, nesterov, adagrad, rmsprop, adam or adamw")
        }
    }

    /// State tensors per parameter of the optimizer the options name (for the memory check before building).
    func optimizerStateTensors(defaultName: String) -> Int {
        switch (optimizer ?? defaultName).lowercased() {
        case "sgd": return 0
        case "adam", "adamw": return 2
        default: return 1
        }
    }

    func validate() throws {
        try checkingValues {
            if let epochs { try ValueCheck.atLeast(1, epochs, name: "--epochs") }
            if let batchSize { try ValueCheck.atLeast(1, batchSize, name: "--batch-size") }
            if let lr { try ValueCheck.learningRate(lr, name: "--lr") }
            if let weightDecay { try ValueCheck.learningRate(weightDecay, name: "--weight-decay") }
        }
    }

    /// Where training starts and ends and the learning rate, after `--load`: the command line wins over a
    /// checkpoint (`--lr` replaces its learning rate; `--epochs` counts all epochs and must be more than it has
    /// done), and what happened is printed.
    func resumePlan(_ resumed: TrainingCheckpoint?, optimizer: any Optimizer, defaultEpochs: Int,
                    epochName: String = "epoch") throws
        -> (initialEpoch: Int, epochs: Int, history: History, baseLearningRate: Float?, partialEpoch: PartialEpoch?) {
        guard let resumed, let load else { return (0, epochs ?? defaultEpochs, History(), lr, nil) }
        let plan = try resumed.resumePlan(epochs: epochs, defaultEpochs: defaultEpochs, learningRate: lr, source: load,
                                          epochName: epochName)
        if let rate = plan.learningRate { optimizer.learningRate = rate }
        print(plan.note.prefix(1).uppercased() + plan.note.dropFirst())
        return (plan.initialEpoch, plan.epochs, resumed.history, plan.baseLearningRate, resumed.partialEpoch)
    }

    /// Loads `--load` into the model (and optimizer when it is a training checkpoint); returns the checkpoint's
    /// position when it is one.
    func loadIfAsked(_ model: any Layer, _ optimizer: any Optimizer) throws -> TrainingCheckpoint? {
        guard let load else { return nil }
        let url = URL(fileURLWithPath: load)
        let file = try SafeTensors.load(url)
        if file.metadata["format"] == "myelin-training-checkpoint" {
            return try TrainingCheckpoint.load(from: url, into: model, optimizer: optimizer)
        }
        try model.loadState(file, source: url.path)
        print("Loaded weights from \(load)")
        return nil
    }

    /// Checks, before any data is loaded or any training done, that every output path (`--save`, `--plot`,
    /// `--history`) can be written and that `--load` can be read, so that a bad path fails in a second and not
    /// after the training run. Errors name the user's path and say why in words.
    func checkFiles() throws {
        let outputs = [("--save", save), ("--plot", plot), ("--history", history)].compactMap { name, path in path.map { (name, $0) } }
        for (i, (name, path)) in outputs.enumerated() {
            if let other = outputs[..<i].first(where: { URL(fileURLWithPath: $0.1).standardized == URL(fileURLWithPath: path).standardized }) {
                throw ValidationError("\(name) and \(other.0) name the same file \(path); give each output its own file")
            }
            do { try AtomicFile.checkWritable(URL(fileURLWithPath: path)) } catch {
                throw FileOptionError(message: "\(name): \(error)")
            }
        }
        if let logdir {   // the folder is made now, and a file can be created in it
            let folder = URL(fileURLWithPath: logdir)
            do {
                try AtomicFile.makeFolder(folder)
                try AtomicFile.checkWritable(folder.appendingPathComponent("events.out.tfevents.check"))
            } catch {
                throw FileOptionError(message: "--logdir: \(error)")
            }
        }
        if let load {
            do { _ = try ReadableFile(URL(fileURLWithPath: load)) } catch {
                throw FileOptionError(message: "--load: \(error)")
            }
        }
    }

    /// `TensorBoardLogger` for `--logdir` (histograms every 100 steps), or nothing.
    var tensorBoard: [any Callback] {
        logdir.map { [TensorBoardLogger(logDir: $0)] } ?? []
    }

    /// Writes `--save`, `--plot` and `--history` when asked. One that cannot be written does not stop the
    /// others, and its content is not lost: it goes to a `rescued-...` file in the current folder (or the
    /// temporary folder), and the error says where; the command then fails. `partialEpoch` is the progress inside
    /// the epoch after `epoch` when training stopped there; `savePath` replaces `--save` (an interrupted run's rescue).
    func writeOutputs(model: any Layer, optimizer: any Optimizer, epoch: Int, partialEpoch: PartialEpoch? = nil,
                      history: History, title: String, baseLearningRate: Float, savePath: String? = nil,
                      metadata: [String: String] = [:]) throws {
        var failures: [String] = []
        func write(_ what: String, _ option: String, _ path: String?, _ body: (URL) throws -> Void) {
            guard let path else { return }
            do {
                switch try AtomicFile.rescuing(URL(fileURLWithPath: path), body) {
                case .written:
                    print(what == "checkpoint" ? "Saved checkpoint: \(path)" : "Wrote \(what): \(path)")
                case .rescued(let place, let cause):
                    failures.append("\(option): \(cause); the \(what) was written to \(place.path) instead")
                }
            } catch {
                failures.append("\(option): \(error); the \(what) could not be written anywhere (the current and the temporary folder failed too)")
            }
        }
        write("checkpoint", "--save", savePath ?? save) { url in
            try TrainingCheckpoint.save(model: model, optimizer: optimizer, epoch: epoch, seed: seed,
                                        baseLearningRate: baseLearningRate, history: history, partialEpoch: partialEpoch,
                                        metadata: metadata, to: url)
        }
        write("loss plot", "--plot", plot) { try LossPlot.write(history, title: title, to: $0) }
        write("history", "--history", self.history) { try history.write(to: $0) }
        if !failures.isEmpty { throw OutputsNotWritten(failures: failures) }
    }
}

/// A file option (`--save`, `--load`, ...) whose file cannot be used, in words.
struct FileOptionError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// Outputs that could not be written where asked (each line says where its content went instead).
struct OutputsNotWritten: Error, CustomStringConvertible {
    let failures: [String]
    var description: String {
        "\(failures.count) output\(failures.count == 1 ? "" : "s") not written where asked:\n  " + failures.joined(separator: "\n  ")
    }
}

/// Runs `body`, turning an `InvalidValueError` into the parser's `ValidationError` (printed with the usage).
func checkingValues<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch let error as InvalidValueError { throw ValidationError(error.description) }
}

func printDevice(_ device: Device) {
    print("Device: \(device.name) (\(device.details))")
}

// MARK: XOR and AND

/// The course's logic-gate lab: a 2-3-1 sigmoid network without bias, weights uniform in [0, 1), half sum of squares,
/// learning rate 0.1, 20000 full-batch gradient steps.
struct GateLab {
    let name: String
    let table: ToyTable

    func run(_ options: TrainOptions, _ deviceOptions: DeviceOptions) throws {
        try options.checkFiles()
        let device = try deviceOptions.resolve()
        Device.default = device  // anything made without a device lands there too
        printDevice(device)
        let csv = table.table
        let x = try csv.tensor(["x1", "x2"], on: device)
        let t = try csv.tensor(["y"], on: device)
        let model = GateLab.model(seed: options.seed, on: device)
        let optimizer = try options.makeOptimizer(model.parameters, defaultName: "sgd", defaultRate: 0.1)
        let resumed = try options.loadIfAsked(model, optimizer)
        let plan = try options.resumePlan(resumed, optimizer: optimizer, defaultEpochs: 20_000, epochName: "step")
        let steps = plan.epochs
        print("\(name.uppercased()) lab: 2-3-1 sigmoid, no bias, half sum of squares, \(type(of: optimizer)) lr \(optimizer.learningRate), \(steps) full-batch steps")
        var history = plan.history
        let first = plan.initialEpoch
        let logEvery = Swift.max(1, steps / 20)
        let board = try options.logdir.map { try TensorBoardWriter(logDir: URL(fileURLWithPath: $0)) }
        let start = Date()
        var lastLoss: Float = .nan
        let interrupt = TrainingInterrupt.shared
        interrupt.install()
        for step in first..<Swift.max(first, steps) {
            if interrupt.stop.isRequested {
                try options.finishInterrupted(model: model, optimizer: optimizer, position: TrainingPosition(epoch: step, partialEpoch: nil),
                                              history: history, title: "\(name.uppercased()) lab (\(device.name))",
                                              baseLearningRate: plan.baseLearningRate ?? 0.1, sample: name)
            }
            optimizer.zeroGrad()
            let loss = try halfSumOfSquares(predictions: model(x), targets: t)
            try loss.backward()
            try optimizer.step()
            if (step + 1) % logEvery == 0 || step + 1 == steps {
                lastLoss = try loss.item()
                guard lastLoss.isFinite else { throw TrainingError.nonFiniteLoss(epoch: step + 1, batch: 1, value: lastLoss) }
                history.append(epoch: step + 1, ["loss": Double(lastLoss)])
                board?.scalars([("batch/loss", Double(lastLoss)), ("batch/learning_rate", Double(optimizer.learningRate))], step: step + 1)
                if (step + 1) % (logEvery * 4) == 0 || step + 1 == steps {
                    for (key, t) in model.namedTensors { board?.histogram("weights/" + key, values: try t.toArray(), step: step + 1) }
                    board?.flushOrStopLogging()
                }
                if options.verbose || (step + 1) % (logEvery * 4) == 0 || step + 1 == steps {
                    print(String(format: "step %6d  loss %.6f", step + 1, lastLoss))
                }
            }
        }
        let seconds = Date().timeIntervalSince(start)
        let y = try model.predict(x).toArray()
        print(String(format: "%d steps in %.2f s (%.0f steps/s)", steps - first, seconds, Double(steps - first) / Swift.max(seconds, 1e-9)))
        print("x1 x2  target  output")
        for (i, row) in csv.rows.enumerated() {
            print(String(format: " %.0f  %.0f     %.0f    %.4f", row[0], row[1], row[2], y[i]))
        }
        let correct = zip(csv.rows, y).filter { ($0.0[2] > 0.5) == ($0.1 > 0.5) }.count
        print("\(correct)/4 rows on the right side of 0.5")
        try options.writeOutputs(model: model, optimizer: optimizer, epoch: steps, history: history,
                                 title: "\(name.uppercased()) lab (\(device.name))", baseLearningRate: plan.baseLearningRate ?? 0.1)
        if interrupt.stop.isRequested { throw interrupt.exitCode }   // the signal came after the last step: all is saved
    }

    static func model(seed: UInt64, on device: Device) -> Sequential {
        Sequential {
            Dense(inputSize: 2, outputSize: 3, activation: .sigmoid, bias: false, weightInit: .uniform(low: 0, high: 1),
                  seed: seed, device: device)
            Dense(inputSize: 3, outputSize: 1, activation: .sigmoid, bias: false, weightInit: .uniform(low: 0, high: 1),
                  seed: seed &+ 1000, device: device)
        }
    }
}

struct TrainXOR: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "xor", abstract: "The XOR lab (2-3-1 sigmoid, no bias, 20000 steps).")
    @OptionGroup var device: DeviceOptions
    @OptionGroup var options: TrainOptions
    func run() throws { try GateLab(name: "xor", table: .xor).run(options, device) }
}

struct TrainAND: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "and", abstract: "The AND lab (2-3-1 sigmoid, no bias, 20000 steps).")
    @OptionGroup var device: DeviceOptions
    @OptionGroup var options: TrainOptions
    func run() throws { try GateLab(name: "and", table: .and).run(options, device) }
}

// MARK: regression

/// Prints one line every `every` epochs (and the last).
final class EveryNthEpoch: Callback {
    let every: Int
    init(every: Int) { self.every = every }
    func epochDidEnd(_ epoch: Int, logs: [String: Double], _ context: TrainingContext) throws {
        guard (epoch + 1) % every == 0 || epoch + 1 == context.epochs else { return }
        let values = logs.keys.sorted().map { "\($0) " + String(format: "%.5f", logs[$0]!) }.joined(separator: "  ")
        print("epoch \(epoch + 1)/\(context.epochs)  \(values)")
    }
}

struct TrainRegression: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "regression",
        abstract: "Apartment prices from size and age (2 standardized inputs, 2 sigmoid hidden units, identity output, MSE).")
    @OptionGroup var device: DeviceOptions
    @OptionGroup var options: TrainOptions

    func run() throws {
        try options.checkFiles()
        let device = try self.device.resolve()
        Device.default = device  // anything made without a device lands there too
        printDevice(device)
        let table = ToyTable.apartments.table
        let raw = try Dataset(features: table.tensor(["size", "age"], on: device), targets: table.tensor(["price"], on: device))
        let scaler = try Standardizer(fitting: raw.features)
        let data = try raw.mapFeatures(scaler.transform)
        let model = Self.model(seed: options.seed, on: device)
        let optimizer = try options.makeOptimizer(model.parameters, defaultName: "sgd", defaultRate: 0.05)
        let resumed = try options.loadIfAsked(model, optimizer)
        let plan = try options.resumePlan(resumed, optimizer: optimizer, defaultEpochs: 3000)
        let epochs = plan.epochs
        let batch = options.batchSize ?? data.count
        print("Apartment prices: \(data.count) rows, inputs size and age standardized (mean \(try scaler.mean.toArray()), std \(try scaler.std.toArray().map { ($0 * 1000).rounded() / 1000 }))")
        print("2-2-1 network, sigmoid hidden, identity output, MSE, \(type(of: optimizer)) lr \(optimizer.learningRate), \(epochs) epochs of batch \(batch)")
        let interrupt = TrainingInterrupt.shared
        interrupt.install()
        let history = try model.fit(data, epochs: epochs, batchSize: batch, loss: .meanSquaredError, optimizer: optimizer,
                                    metrics: [.rmse], callbacks: [EveryNthEpoch(every: Swift.max(1, epochs / 10))] + options.tensorBoard,
                                    baseLearningRate: plan.baseLearningRate, seed: options.seed, initialEpoch: plan.initialEpoch,
                                    partialEpoch: plan.partialEpoch, history: plan.history, stop: interrupt.stop, verbosity: .silent)
        if interrupt.stop.isRequested {
            try options.finishInterrupted(model: model, optimizer: optimizer,
                                          position: interrupt.stop.stoppedAt ?? TrainingPosition(epoch: epochs, partialEpoch: nil),
                                          history: history, title: "Apartment prices (\(device.name))",
                                          baseLearningRate: plan.baseLearningRate ?? 0.05, sample: "regression")
        }
        let predictions = try model.predict(data.features).toArray()
        print(" size  age   price  predicted")
        for (row, p) in zip(table.rows, predictions) {
            print(String(format: "%5.0f %4.0f  %6.2f  %9.3f", row[0], row[1], row[2], p))
        }
        let rmse = (zip(table.rows, predictions).map { pow(Double($0.1) - $0.0[2], 2) }.reduce(0, +) / Double(table.rowCount)).squareRoot()
        print(String(format: "RMSE: %.4f (price units)", rmse))
        try options.writeOutputs(model: model, optimizer: optimizer, epoch: epochs, history: history,
                                 title: "Apartment prices (\(device.name))", baseLearningRate: plan.baseLearningRate ?? 0.05)
    }
}

extension TrainRegression {
    /// The regression lab's 2-2-1 network.
    static func model(seed: UInt64, on device: Device) -> Sequential {
        Sequential {
            Dense(inputSize: 2, outputSize: 2, activation: .sigmoid, weightInit: .uniform(low: 0, high: 1), seed: seed, device: device)
            Dense(inputSize: 2, outputSize: 1, weightInit: .uniform(low: 0, high: 1), seed: seed &+ 1000, device: device)
        }
    }
}
