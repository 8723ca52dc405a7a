import Foundation

/// Errors that stop training.
public enum TrainingError: Error, CustomStringConvertible, Equatable {
    /// The loss became NaN or infinite.
    case nonFiniteLoss(epoch: Int, batch: Int, value: Float)
    /// The loss stayed finite but the parameters became NaN or infinite at this batch: a non-finite gradient (for
    /// example from a NaN input that a ReLU hid in the forward pass) or an update that overflowed reached them.
    /// `parameters` names the ones that are non-finite when training stopped (keys of `stateDict()`).
    case nonFiniteParameters(epoch: Int, batch: Int, parameters: [String])
    /// The epoch's mean loss grew past the bound of `DivergenceCheck`: `loss` > `factor` × `reference`, where
    /// `reference` is the larger of the first batch's loss and the check's `minimumReference`.
    case diverged(epoch: Int, loss: Double, reference: Double, factor: Double)
    /// An argument of `fit` is out of range (the message says which and why).
    case invalid(String)

    public var description: String {
        switch self {
        case .nonFiniteLoss(let epoch, let batch, let value):
            return "the loss is \(value) at epoch \(epoch), batch \(batch): training stopped (lower the learning rate, check the inputs for NaN, or scale them)"
        case .nonFiniteParameters(let epoch, let batch, let names):
            let which = names.isEmpty ? "" : " (non-finite now: " + names.map { "'\($0)'" }.joined(separator: ", ") + ")"
            return "the gradients or parameters became NaN or infinite at epoch \(epoch), batch \(batch) although the loss was finite\(which): training stopped (check the inputs for NaN or infinite values, or lower the learning rate)"
        case .diverged(let epoch, let loss, let reference, let factor):
            return "training diverged: the loss of epoch \(epoch) is " + String(format: "%.4g", loss) + ", more than "
                + String(format: "%g", factor) + " times the first batch's loss " + String(format: "%.4g", reference)
                + ": training stopped (lower the learning rate; fit's divergence: nil turns this check off)"
        case .invalid(let why):
            return why
        }
    }
}

/// When `fit` calls a loss divergence: an epoch's mean loss above `factor` × max(first batch's loss,
/// `minimumReference`), the first batch being the first one this `fit` call trains (the loss of the model as it
/// started). The default, a factor of 10^6, never trips in normal training (a loss rarely grows at all), and stops a
/// run whose loss exploded (Adam at learning rate 10^6 reaches 10^23) before its garbage weights are saved.
///
/// ```swift
/// try model.fit(data, epochs: 5, loss: .meanSquaredError, optimizer: sgd, divergence: DivergenceCheck(factor: 1e3))
/// try model.fit(data, epochs: 5, loss: .meanSquaredError, optimizer: sgd, divergence: nil)   // no check
/// ```
public struct DivergenceCheck: Sendable, Equatable {
    /// How many times the first batch's loss an epoch's loss may reach.
    public var factor: Double
    /// The smallest reference loss (so that a model starting at a loss of 0 is not stopped by any later loss).
    public var minimumReference: Double

    /// A check with the given bound (defaults: 10^6 times the first batch's loss, and a reference of at least 10^-6).
    public init(factor: Double = 1e6, minimumReference: Double = 1e-6) {
        self.factor = factor
        self.minimumReference = minimumReference
    }

    /// A factor of 10^6 over a reference of at least 10^-6.
    public static let standard = DivergenceCheck()

    /// True when `loss` is past the bound set by `reference` (the first batch's loss).
    public func isDiverged(loss: Double, reference: Double) -> Bool {
        loss > factor * Swift.max(reference, minimumReference)
    }
}

extension Layer {
    /// Trains the model on `data` for `epochs` epochs and returns the loss and metrics per epoch.
    ///
    /// Everything stays on the device: batches are gathered there, the epoch's loss and metrics are summed
    /// there, and read back once per epoch (and every few batches while a progress bar is shown). A NaN or
    /// infinite loss stops training with an error naming the epoch and batch, and so do parameters that became
    /// NaN or infinite while the loss stayed finite (after each step the parameters' sums are folded into the same
    /// device scalar, so this adds no host read); an epoch loss past `divergence` stops it too.
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
    ///   - schedule: sets the learning rate before each epoch (before each batch when its `perBatch` is true, from
    ///     the fractional epoch `epoch + batch / batchesPerEpoch`) from the rate the optimizer has when `fit`
    ///     starts (or `baseLearningRate`).
    ///   - baseLearningRate: the rate `schedule` starts from; nil takes the optimizer's rate when `fit` starts.
    ///   - augmentation: a random change made on the device to each training batch's features before the step
    ///     (see `Augmentation`), with draws fixed by `seed`, the epoch and the batch; validation is never
    ///     augmented. Default none.
    ///   - shuffle: draws a new sample order each epoch (from `seed`). Default true.
    ///   - seed: fixes the shuffling; epoch `e` always sees the same batches, so a run resumed with
    ///     `initialEpoch` continues exactly as if it had not stopped. nil draws one from `Random.nextSeed()`
    ///     (so `Random.seed(_:)` fixes it too); the seed used is `TrainingContext.seed`.
    ///   - dropLast: skips the last batch of an epoch when it has fewer than `batchSize` samples. Default false.
    ///   - initialEpoch: the number of epochs already done (resuming); `epochs` is the total to reach.
    ///   - history: the history of the epochs already done (resuming), extended and returned.
    ///   - divergence: stops training with `TrainingError.diverged` when an epoch's loss exceeds its bound (see
    ///     `DivergenceCheck`); nil turns the check off.
    ///   - distributed: trains data-parallel over the ranks of a `DataParallel` coordinator (MyelinMPI's
    ///     `DistributedDataParallel`): `batchSize` is the global batch, split over the ranks; gradients are
    ///     combined before each step, so every rank steps like a single process on the global batch; the logs are
    ///     the global ones on every rank; only rank 0 prints (and `ModelCheckpoint` writes only there). The
    ///     progress bar's running figures are rank 0's share. Default nil (one process).
    ///   - verbosity: what is printed: a progress bar, a line per epoch, or nothing. Default `.auto`.
    ///   - output: where the progress text goes. Default standard output.
    ///   - capture: records the training step once per batch shape and replays it (see `CapturedStep`):
    ///     bit-identical results with less host work per step. Used when every layer is one of Myelin's own; a
    ///     model with a layer type of your own, or a step that capture refuses (`CaptureError`), trains eagerly.
    ///     The loss given to callbacks is then a copy. Default true; false always trains eagerly.
    /// - Returns: the loss and metrics of every epoch (those of `history` first).
    /// - Throws: `TrainingError.invalid` for a bad argument (batch size, empty data, `initialEpoch`),
    ///   `TrainingError.nonFiniteLoss` when the loss becomes NaN or infinite,
    ///   `TrainingError.nonFiniteParameters` when parameters do, `TrainingError.diverged` when the loss explodes, and any error of the model,
    ///   loss, optimizer or a callback (shape mismatches, for example).
    @discardableResult
    public func fit(_ data: Dataset, epochs: Int, batchSize: Int = 32, validation: Dataset? = nil,
                    loss: Loss, optimizer: any Optimizer, metrics: [Metric] = [], callbacks: [any Callback] = [],
                    schedule: (any LearningRateSchedule)? = nil, baseLearningRate: Float? = nil,
                    augmentation: Augmentation? = nil, shuffle: Bool = true, seed: UInt64? = nil, dropLast: Bool = false,
                    initialEpoch: Int = 0, history: History = History(), divergence: DivergenceCheck? = .standard,
                    distributed: (any DataParallel)? = nil, verbosity: Verbosity = .auto,
                    output: @escaping (String) -> Void = { print($0, terminator: ""); fflush(nil) },
                    capture: Bool = true) throws -> History {
        guard batchSize > 0 else { throw TrainingError.invalid("fit: batchSize must be positive, got \(batchSize)") }
        guard data.count > 0 else { throw TrainingError.invalid("fit: the training data is empty") }
        guard initialEpoch >= 0, initialEpoch <= epochs else {
            throw TrainingError.invalid("fit: initialEpoch \(initialEpoch) must be in 0...\(epochs)")
        }
        if let augmentation { _ = try augmentation.image(forSampleShape: data.sampleShape) }
        let base = baseLearningRate ?? optimizer.learningRate
        let seed = seed ?? Random.nextSeed()
        let context = TrainingContext(model: self, optimizer: optimizer, history: history, epochs: epochs,
                                      baseLearningRate: base, seed: seed)
        if let distributed { try startDataParallel(distributed, batchSize: batchSize); context.rank = distributed.rank }
        let mode: Verbosity = (distributed?.rank ?? 0) != 0 ? .silent : verbosity == .auto ? (isatty(1) != 0 ? .progressBar : .epochLines) : verbosity
        let progress = ProgressPrinter(mode: mode, epochs: epochs, output: output)
        for c in callbacks { try c.trainingWillBegin(context) }
        defer { eval() }
        let parameters = self.parameters
        let captured = capture && CapturedStep.isBuiltIn(self) ? CapturedStep(model: self, optimizer: optimizer, loss: { try loss($0, $1) }) : nil
        var share: Float = 1   // this rank's share of the batch being trained (set per batch below)
        if let distributed, let captured {
            captured.beforeUpdate = { try distributed.reduceGradients(of: parameters, weight: share) }
        }
        // The loss of the first batch this call trains, on the device until the end of the first epoch.
        var firstLoss: Tensor?
        var reference: Double?
        for epoch in initialEpoch..<epochs {
            context.epoch = epoch
            if let schedule {
                if schedule.perBatch { schedule.apply(to: optimizer, progress: Double(epoch), base: base) }
                else { schedule.apply(to: optimizer, epoch: epoch, base: base) }
            }
            for c in callbacks { try c.epochWillBegin(epoch, context) }
            train()
            captured?.dropStaleRecordings()
            let start = Date()
            var batches = data.batches(size: batchSize, shuffle: shuffle, seed: seed, epoch: epoch, dropLast: dropLast)
            if let distributed { batches = batches.sharded(rank: distributed.rank, of: distributed.worldSize) }
            let batchCount = batches.count
            context.batchesPerEpoch = batchCount
            progress.epochBegan(epoch, batches: batchCount)
            let device = data.device
            var lossSum = Tensor.zeros([], on: device)
            var metricSums = metrics.map { _ in Tensor.zeros([], on: device) }
            var metricCounts = metrics.map { _ in 0 }
            // The first bad batch, kept on the device as 2·batch when its loss is not finite, 2·batch + 1 when the
            // loss is finite but a parameter is not after the step (a huge number while all is well).
            let noBad = Float(1 << 24)  // whole numbers below it are exact in Float
            var firstBad = Tensor.full([], noBad, on: device)
            var samples = 0
            let readEvery = Swift.max(1, batchCount / 40)
            for (b, batch) in batches.enumerated() {
                if let schedule, schedule.perBatch {
                    schedule.apply(to: optimizer, progress: Double(epoch) + Double(b) / Double(batchCount), base: base)
                }
                for c in callbacks { try c.batchWillBegin(b, context) }
                let features = try augmentation.map {
                    try $0.apply(to: batch.features, seed: Augmentation.batchSeed(seed, epoch: epoch, batch: b))
                } ?? batch.features
                // This rank's share of the global batch: its gradients, weighted by it and combined over the ranks,
                // become the global batch's (1 in one process).
                share = distributed == nil ? 1 : Float(batch.count) / Float(Swift.min(batchSize, data.count - b * batchSize))
                let out: Tensor, value: Tensor
                if let captured {
                    // The captured step's loss and output are overwritten by its next call: copies where kept.
                    // Its `beforeUpdate` combines the gradients over the ranks (set above).
                    (value, out) = try captured.fitStep(features, batch.targets)
                } else {
                    optimizer.zeroGrad()
                    out = try self(features)
                    let l = try loss(out, batch.targets)
                    try l.backward()
                    try distributed?.reduceGradients(of: parameters, weight: share)
                    try optimizer.step()
                    value = l.detach()
                }
                if firstLoss == nil {
                    firstLoss = distributed != nil ? value * share : captured == nil ? value : value.copy()
                }
                try withNoGrad {
                    lossSum = try lossSum + value * Float(batch.count)
                    // finite x gives x·0 = 0; NaN and ±inf give NaN, which equals nothing. A non-finite parameter
                    // value makes its sum non-finite (a sum of finite values that overflows counts as non-finite).
                    let lossGood = (value * 0).equal(0)
                    var parameterSum = value * 0
                    for p in parameters where p.device === device { parameterSum = try parameterSum + p.sum() }
                    let allGood = (parameterSum * 0).equal(0)   // also 0 when the loss is not finite
                    // 2b when the loss is bad, 2b + 1 when only a parameter is, noBad when all is well.
                    firstBad = try firstBad.minimum(allGood * (noBad - Float(2 * b) - 1) + lossGood + Float(2 * b))
                    let o = out.detach()
                    for (i, m) in metrics.enumerated() {
                        let (s, n) = try m.batchSum(output: o, target: batch.targets)
                        metricSums[i] = try metricSums[i] + s
                        metricCounts[i] += n
                    }
                }
                if !callbacks.isEmpty {
                    let kept = captured == nil ? value : value.copy()
                    for c in callbacks { try c.batchDidEnd(b, loss: kept, context) }
                }
                samples += batch.count
                if mode == .progressBar && ((b + 1) % readEvery == 0 || b + 1 == batchCount) {
                    // One host read: the flag, the loss sum and the metric sums.
                    let read = try Self.readScalars([firstBad, lossSum] + metricSums)
                    try checkFinite(firstBad: read[0], noBad: noBad, epoch: epoch, lossSum: read[1])
                    var running = ["loss": Double(read[1]) / Double(samples)]
                    for (i, m) in metrics.enumerated() { running[m.rawValue] = m.finish(Double(read[2 + i]), count: metricCounts[i]) }
                    progress.batchDone(b + 1, samples: samples, elapsed: Date().timeIntervalSince(start), running: running)
                }
            }
            // One host read per epoch: the flag, the loss sum, the metric sums and (once) the first batch's loss.
            let firstLossToRead = reference == nil ? firstLoss : nil
            var read = try Self.readScalars([firstBad, lossSum] + metricSums + (firstLossToRead.map { [$0] } ?? []))
            if let distributed {
                (read, samples, metricCounts) = try Self.combineEpoch(distributed, read: read, samples: samples, counts: metricCounts)
                try distributed.broadcast(namedTensors.map(\.1).filter { !$0.requiresGrad })   // rank 0's running statistics
            }
            try checkFinite(firstBad: read[0], noBad: noBad, epoch: epoch, lossSum: read[1])
            var logs: [String: Double] = ["loss": Double(read[1]) / Double(Swift.max(samples, 1))]
            if firstLossToRead != nil { reference = Double(read[2 + metrics.count]) }
            if let divergence, let reference, divergence.isDiverged(loss: logs["loss"]!, reference: reference) {
                throw TrainingError.diverged(epoch: epoch + 1, loss: logs["loss"]!, reference: reference, factor: divergence.factor)
            }
            for (i, m) in metrics.enumerated() { logs[m.rawValue] = m.finish(Double(read[2 + i]), count: metricCounts[i]) }
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

    /// Throws when the device flag `firstBad` (see `fit`) names a bad batch: a non-finite loss, or parameters
    /// that became non-finite (named after a host read of the parameters, done only then).
    private func checkFinite(firstBad code: Float, noBad: Float, epoch: Int, lossSum: Float) throws {
        guard code < noBad, let whole = Int(exactly: code) else { return }
        let batch = whole / 2 + 1
        if whole % 2 == 0 { throw TrainingError.nonFiniteLoss(epoch: epoch + 1, batch: batch, value: lossSum) }
        let names = namedTensors.filter { $0.1.requiresGrad && $0.1.toArray().contains { !$0.isFinite } }.map(\.0)
        throw TrainingError.nonFiniteParameters(epoch: epoch + 1, batch: batch, parameters: names)
    }

    /// The values of rank-0 tensors on one device, in one host read.
    static func readScalars(_ scalars: [Tensor]) throws -> [Float] {
        if scalars.count == 1 { return [try scalars[0].item()] }
        return try Tensor.concat(scalars.map { try $0.reshaped([1]) }).toArray()
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
