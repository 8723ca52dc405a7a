import Foundation

/// Errors that stop training.
public enum TrainingError: Error, CustomStringConvertible, Equatable {
    /// The loss became NaN or infinite.
    case nonFiniteLoss(epoch: Int, batch: Int, value: Float)
    /// An argument of `fit` is out of range (the message says which and why).
    case invalid(String)

    public var description: String {
        switch self {
        case .nonFiniteLoss(let epoch, let batch, let value):
            return "the loss is \(value) at epoch \(epoch), batch \(batch): training stopped (lower the learning rate, check the inputs for NaN, or scale them)"
        case .invalid(let why):
            return why
        }
    }
}

extension Layer {
    /// Trains the model on `data` for `epochs` epochs and returns the loss and metrics per epoch.
    ///
    /// Everything stays on the device: batches are gathered there, the epoch's loss and metrics are summed
    /// there, and read back once per epoch (and every few batches while a progress bar is shown). A NaN or
    /// infinite loss stops training with an error naming the epoch and batch.
    ///
    /// ```swift
    /// let model = Sequential { Dense(inputSize: 784, outputSize: 128, activation: .relu); Dense(inputSize: 128, outputSize: 10) }
    /// let optimizer = try Adam(parameters: model.parameters, learningRate: 1e-3)
    /// let history = try model.fit(train, epochs: 10, batchSize: 128, validation: validation,
    ///                             loss: .softmaxCrossEntropy, optimizer: optimizer, metrics: [.accuracy],
    ///                             callbacks: [EarlyStopping(monitor: "val_loss", patience: 2)])
    /// ```
    ///
    /// - Parameters:
    ///   - data: the training samples (features and targets, on the device training runs on).
    ///   - epochs: the number of passes over `data` to reach (counting the `initialEpoch` ones already done).
    ///   - batchSize: samples per optimizer step. Default 32.
    ///   - validation: evaluated after each epoch (in eval mode); its loss and metrics are logged as `val_loss`,
    ///     `val_accuracy`, ... Default none.
    ///   - loss: the loss the optimizer minimises.
    ///   - optimizer: updates the model's parameters after each batch; it must hold `parameters` of this model.
    ///   - metrics: computed over each epoch's training batches (and over `validation`) and logged by name.
    ///   - callbacks: called before and after training, each epoch and each batch (see `Callback`); the
    ///     per-batch hooks add no host reads unless a callback reads the batch loss it is given.
    ///   - schedule: sets the learning rate before each epoch from the rate the optimizer has when `fit` starts
    ///     (or `baseLearningRate`).
    ///   - baseLearningRate: the rate `schedule` starts from; nil takes the optimizer's rate when `fit` starts.
    ///   - shuffle: draws a new sample order each epoch (from `seed`). Default true.
    ///   - seed: fixes the shuffling; epoch `e` always sees the same batches, so a run resumed with
    ///     `initialEpoch` continues exactly as if it had not stopped. nil draws one from `Random.nextSeed()`
    ///     (so `Random.seed(_:)` fixes it too); the seed used is `TrainingContext.seed`.
    ///   - dropLast: skips the last batch of an epoch when it has fewer than `batchSize` samples. Default false.
    ///   - initialEpoch: the number of epochs already done (resuming); `epochs` is the total to reach.
    ///   - history: the history of the epochs already done (resuming), extended and returned.
    ///   - verbosity: what is printed: a progress bar, a line per epoch, or nothing. Default `.auto`.
    ///   - output: where the progress text goes. Default standard output.
    /// - Returns: the loss and metrics of every epoch (those of `history` first).
    /// - Throws: `TrainingError.invalid` for a bad argument (batch size, empty data, `initialEpoch`),
    ///   `TrainingError.nonFiniteLoss` when the loss becomes NaN or infinite, and any error of the model,
    ///   loss, optimizer or a callback (shape mismatches, for example).
    @discardableResult
    public func fit(_ data: Dataset, epochs: Int, batchSize: Int = 32, validation: Dataset? = nil,
                    loss: Loss, optimizer: any Optimizer, metrics: [Metric] = [], callbacks: [any Callback] = [],
                    schedule: (any LearningRateSchedule)? = nil, baseLearningRate: Float? = nil,
                    shuffle: Bool = true, seed: UInt64? = nil, dropLast: Bool = false,
                    initialEpoch: Int = 0, history: History = History(),
                    verbosity: Verbosity = .auto, output: @escaping (String) -> Void = { print($0, terminator: ""); fflush(nil) }) throws -> History {
        guard batchSize > 0 else { throw TrainingError.invalid("fit: batchSize must be positive, got \(batchSize)") }
        guard data.count > 0 else { throw TrainingError.invalid("fit: the training data is empty") }
        guard initialEpoch >= 0, initialEpoch <= epochs else {
            throw TrainingError.invalid("fit: initialEpoch \(initialEpoch) must be in 0...\(epochs)")
        }
        let base = baseLearningRate ?? optimizer.learningRate
        let seed = seed ?? Random.nextSeed()
        let context = TrainingContext(model: self, optimizer: optimizer, history: history, epochs: epochs,
                                      baseLearningRate: base, seed: seed)
        let mode: Verbosity = verbosity == .auto ? (isatty(1) != 0 ? .progressBar : .epochLines) : verbosity
        let progress = ProgressPrinter(mode: mode, epochs: epochs, output: output)
        for c in callbacks { try c.trainingWillBegin(context) }
        defer { eval() }
        for epoch in initialEpoch..<epochs {
            context.epoch = epoch
            if let schedule { schedule.apply(to: optimizer, epoch: epoch, base: base) }
            for c in callbacks { try c.epochWillBegin(epoch, context) }
            train()
            let start = Date()
            let batches = data.batches(size: batchSize, shuffle: shuffle, seed: seed, epoch: epoch, dropLast: dropLast)
            let batchCount = batches.count
            context.batchesPerEpoch = batchCount
            progress.epochBegan(epoch, batches: batchCount)
            let device = data.device
            var lossSum = Tensor.zeros([], on: device)
            var metricSums = metrics.map { _ in Tensor.zeros([], on: device) }
            var metricCounts = metrics.map { _ in 0 }
            // The first batch whose loss is not finite (a huge number while all are finite), kept on the device.
            let noBad = Float(1 << 23)  // whole numbers below it are exact in Float
            var firstBad = Tensor.full([], noBad, on: device)
            var samples = 0
            let readEvery = Swift.max(1, batchCount / 40)
            for (b, batch) in batches.enumerated() {
                for c in callbacks { try c.batchWillBegin(b, context) }
                optimizer.zeroGrad()
                let out = try self(batch.features)
                let l = try loss(out, batch.targets)
                try l.backward()
                try optimizer.step()
                let value = l.detach()
                try withNoGrad {
                    lossSum = try lossSum + value * Float(batch.count)
                    // finite x gives x·0 = 0; NaN and ±inf give NaN, which equals nothing.
                    let bad = 1 - (value * 0).equal(0)
                    firstBad = try firstBad.minimum(bad * (Float(b) - noBad) + noBad)
                    let o = out.detach()
                    for (i, m) in metrics.enumerated() {
                        let (s, n) = try m.batchSum(output: o, target: batch.targets)
                        metricSums[i] = try metricSums[i] + s
                        metricCounts[i] += n
                    }
                }
                for c in callbacks { try c.batchDidEnd(b, loss: value, context) }
                samples += batch.count
                if mode == .progressBar && ((b + 1) % readEvery == 0 || b + 1 == batchCount) {
                    let badBatch = try firstBad.item()
                    if badBatch < noBad { throw TrainingError.nonFiniteLoss(epoch: epoch + 1, batch: Int(badBatch) + 1, value: try lossSum.item()) }
                    var running = try ["loss": Double(lossSum.item()) / Double(samples)]
                    for (i, m) in metrics.enumerated() { running[m.rawValue] = try m.finish(Double(metricSums[i].item()), count: metricCounts[i]) }
                    progress.batchDone(b + 1, samples: samples, elapsed: Date().timeIntervalSince(start), running: running)
                }
            }
            let badBatch = try firstBad.item()
            if badBatch < noBad {
                throw TrainingError.nonFiniteLoss(epoch: epoch + 1, batch: Int(badBatch) + 1, value: try lossSum.item())
            }
            var logs: [String: Double] = try ["loss": Double(lossSum.item()) / Double(Swift.max(samples, 1))]
            for (i, m) in metrics.enumerated() { logs[m.rawValue] = try m.finish(Double(metricSums[i].item()), count: metricCounts[i]) }
            let trainSeconds = Date().timeIntervalSince(start)
            if let validation {
                let v = try evaluate(validation, batchSize: Swift.max(batchSize, 256), loss: loss, metrics: metrics)
                for (k, value) in v { logs["val_" + k] = value }
            }
            context.history.append(epoch: epoch + 1, logs)
            progress.epochEnded(epoch, logs: logs, samples: samples, seconds: trainSeconds,
                                totalSeconds: Date().timeIntervalSince(start), learningRate: optimizer.learningRate)
            for c in callbacks { try c.epochDidEnd(epoch, logs: logs, context) }
            if context.stopTraining { break }
        }
        for c in callbacks { try c.trainingDidEnd(context) }
        return context.history
    }

    /// The loss and metrics over `data` in eval mode (dropout off, batch-norm running statistics), without a graph.
    /// Sums stay on the device and are read once at the end.
    public func evaluate(_ data: Dataset, batchSize: Int = 256, loss: Loss, metrics: [Metric] = []) throws -> [String: Double] {
        let wasTraining = isTraining
        eval()
        defer { isTraining = wasTraining }
        return try withNoGrad {
            var lossSum = Tensor.zeros([], on: data.device)
            var sums = metrics.map { _ in Tensor.zeros([], on: data.device) }
            var counts = metrics.map { _ in 0 }
            for batch in data.batches(size: batchSize) {
                let out = try self(batch.features)
                lossSum = try lossSum + loss(out, batch.targets) * Float(batch.count)
                for (i, m) in metrics.enumerated() {
                    let (s, n) = try m.batchSum(output: out, target: batch.targets)
                    sums[i] = try sums[i] + s
                    counts[i] += n
                }
            }
            var result = try ["loss": Double(lossSum.item()) / Double(Swift.max(data.count, 1))]
            for (i, m) in metrics.enumerated() { result[m.rawValue] = try m.finish(Double(sums[i].item()), count: counts[i]) }
            return result
        }
    }

    /// The model's outputs for every row of `features` [N, ...], computed in eval mode in batches, on the device.
    public func predict(_ features: Tensor, batchSize: Int = 256) throws -> Tensor {
        let wasTraining = isTraining
        eval()
        defer { isTraining = wasTraining }
        return try withNoGrad {
            let n = features.shape.first ?? 0
            var parts: [Tensor] = []
            var start = 0
            while start < n {
                let end = Swift.min(start + batchSize, n)
                parts.append(try self(start == 0 && end == n ? features : features.slice(start..<end)))
                start = end
            }
            return parts.count == 1 ? parts[0] : try Tensor.concat(parts)
        }
    }
}
