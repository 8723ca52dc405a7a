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
                + ": training stopped (lower the learning rate" + SwiftAPIAdvice.noDivergenceCheck + ")"
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
    /// NaN or infinite while the loss stayed finite (after each step the parameters are scanned on the device and
    /// the result folded into a device scalar, so this adds no host read); an epoch loss past `divergence` stops it too.
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
    ///   - partialEpoch: the batches of epoch `initialEpoch` already trained when training stopped inside it
    ///     (`StopRequest.stoppedAt`, `TrainingCheckpoint.partialEpoch`): they are skipped and the epoch's sums
    ///     start from theirs, so the run continues exactly. It needs the same batch size, data, metrics and seed.
    ///   - history: the history of the epochs already done (resuming), extended and returned. When the first epoch's
    ///     loss is far above the loss `history` ends at, a warning is printed (`TrainingCheckpoint.resumeWarning`).
    ///   - divergence: stops training with `TrainingError.diverged` when an epoch's loss exceeds its bound (see
    ///     `DivergenceCheck`); nil turns the check off.
    ///   - distributed: trains data-parallel over the ranks of a `DataParallel` coordinator (MyelinMPI's
    ///     `DistributedDataParallel`): `batchSize` is the global batch, split over the ranks; gradients are
    ///     combined before each step, so every rank steps like a single process on the global batch; the logs are
    ///     the global ones on every rank; only rank 0 prints (and `ModelCheckpoint` writes only there). The
    ///     progress bar's running figures are rank 0's share. Default nil (one process).
    ///   - stop: checked before every batch; once requested, `fit` stops there (the batch in progress has
    ///     finished), calls the callbacks' `trainingDidEnd`, returns the history of the completed epochs and records
    ///     where it stopped in `stop.stoppedAt`. In data-parallel training the ranks agree (one tiny allreduce per
    ///     batch) and stop at the same batch. Default nil.
    ///   - verbosity: what is printed: a progress bar, a line per epoch, or nothing. Default `.auto`.
    ///   - output: where the progress text goes. Default standard output.
    ///   - capture: records the training step once per batch shape and replays it (see `CapturedStep`):
    ///     bit-identical results with less host work per step. Used when every layer is one of Myelin's own; a
    ///     model with a layer type of your own, or a step that capture refuses (`CaptureError`), trains eagerly.
    ///     The loss given to callbacks is then a copy. Default true; false always trains eagerly.
    /// - Returns: the loss and metrics of every epoch (those of `history` first).
    /// - Throws: `TrainingError.invalid` for a bad argument (batch size, empty data, `initialEpoch`),
    ///   `TrainingError.nonFiniteLoss` when the loss becomes NaN or infinite,
    ///   `TrainingError.nonFiniteParameters` when parameters do, `TrainingError.diverged` when the loss explodes,
    ///   `DeviceError.outOfMemory` before the first batch when the gradients and optimizer state still to be made do
    ///   not fit in the device's memory (naming the counts, the bytes and the limit), and any error of the model,
    ///   loss, optimizer or a callback (shape mismatches, for example).
    @discardableResult
    public func fit(_ data: Dataset, epochs: Int, batchSize: Int = 32, validation: Dataset? = nil,
                    loss: Loss, optimizer: any Optimizer, metrics: [Metric] = [], callbacks: [any Callback] = [],
                    schedule: (any LearningRateSchedule)? = nil, baseLearningRate: Float? = nil,
                    augmentation: Augmentation? = nil, shuffle: Bool = true, seed: UInt64? = nil, dropLast: Bool = false,
                    initialEpoch: Int = 0, partialEpoch: PartialEpoch? = nil, history: History = History(),
                    divergence: DivergenceCheck? = .standard, distributed: (any DataParallel)? = nil,
                    stop: StopRequest? = nil, verbosity: Verbosity = .auto,
                    output: @escaping (String) -> Void = { print($0, terminator: ""); fflush(nil) },
                    capture: Bool = true) throws -> History {
        try Self.checkFitArguments(data, batchSize: batchSize, epochs: epochs, initialEpoch: initialEpoch,
                                   augmentation: augmentation)
        if partialEpoch != nil && initialEpoch == epochs {
            throw TrainingError.invalid("fit: a partial epoch resumes epoch \(initialEpoch + 1), but epochs is \(epochs)")
        }
        try checkTrainingMemory(optimizer: optimizer)
        let base = baseLearningRate ?? optimizer.learningRate
        let seed = seed ?? Random.nextSeed()
        let context = TrainingContext(model: self, optimizer: optimizer, history: history, epochs: epochs,
                                      baseLearningRate: base, seed: seed)
        if let distributed { try startDataParallel(distributed, batchSize: batchSize); context.rank = distributed.rank }
        let mode: Verbosity = (distributed?.rank ?? 0) != 0 ? .silent : verbosity == .auto ? (isatty(1) != 0 ? .progressBar : .epochLines) : verbosity
        let progress = ProgressPrinter(mode: mode, epochs: epochs, output: output)
        for c in callbacks { try c.trainingWillBegin(context) }
        defer { eval() }
        var loop = FitLoop(model: self, data: data, batchSize: batchSize, validation: validation, loss: loss,
                           optimizer: optimizer, metrics: metrics, callbacks: callbacks, schedule: schedule, base: base,
                           augmentation: augmentation, shuffle: shuffle, seed: seed, dropLast: dropLast,
                           divergence: divergence, distributed: distributed, stop: stop, context: context, mode: mode,
                           progress: progress, parameters: parameters,
                           captured: capture && CapturedStep.isBuiltIn(self)
                               ? CapturedStep(model: self, optimizer: optimizer, loss: { try loss($0, $1) }) : nil)
        for epoch in initialEpoch..<epochs {
            guard try loop.runEpoch(epoch, resuming: epoch == initialEpoch ? partialEpoch : nil) else { break }
            if context.stopTraining { break }
        }
        for c in callbacks { try c.trainingDidEnd(context) }
        return context.history
    }

    /// Throws `TrainingError.invalid` for an argument of `fit` out of range.
    private static func checkFitArguments(_ data: Dataset, batchSize: Int, epochs: Int, initialEpoch: Int,
                                          augmentation: Augmentation?) throws {
        guard batchSize > 0 else { throw TrainingError.invalid("fit: batchSize must be positive, got \(batchSize)") }
        guard data.count > 0 else { throw TrainingError.invalid("fit: the training data is empty") }
        guard initialEpoch >= 0, initialEpoch <= epochs else {
            throw TrainingError.invalid("fit: initialEpoch \(initialEpoch) must be in 0...\(epochs)")
        }
        if let augmentation { _ = try augmentation.image(forSampleShape: data.sampleShape) }
    }

    /// The loss and metrics over `data` in eval mode (dropout off, batch-norm running statistics), without a graph.
    /// Sums stay on the device and are read once at the end.
    public func evaluate(_ data: Dataset, batchSize: Int = 256, loss: Loss, metrics: [Metric] = []) throws -> [String: Double] {
        let wasTraining = isTraining
        eval()
        defer { isTraining = wasTraining }
        return try withNoGrad {
            var sums = EpochAccumulator(metrics: metrics, device: data.device)
            for batch in data.batches(size: batchSize) {
                let out = try self(batch.features)
                try sums.add(loss: loss(out, batch.targets), output: out, targets: batch.targets, count: batch.count)
            }
            // One host read per scalar, the loss sum first.
            return sums.logs(try sums.sums.map { try $0.item() }, samples: data.count, counts: sums.metricCounts)
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

/// One `fit` call: its settings and the state it keeps across epochs. Everything stays on the device: batches are
/// gathered there, the epoch's sums (an `EpochAccumulator`) and its first bad batch (a `FirstBadBatch`) are kept
/// there and read back once per epoch (and every few batches while a progress bar is shown).
private struct FitLoop<Model: Layer> {
    let model: Model
    let data: Dataset, batchSize: Int, validation: Dataset?
    let loss: Loss, optimizer: any Optimizer, metrics: [Metric], callbacks: [any Callback]
    let schedule: (any LearningRateSchedule)?, base: Float
    let augmentation: Augmentation?, shuffle: Bool, seed: UInt64, dropLast: Bool
    let divergence: DivergenceCheck?, distributed: (any DataParallel)?, stop: StopRequest?
    let context: TrainingContext, mode: Verbosity, progress: ProgressPrinter
    /// The model's parameters when training began (after the callbacks' `trainingWillBegin`).
    let parameters: [Tensor]
    /// The recorded step, or nil to train eagerly.
    let captured: CapturedStep?
    /// The loss of the first batch this call trains, on the device until the end of the first epoch.
    var firstLoss: Tensor?
    /// The host value of `firstLoss`, the reference of the divergence check.
    var reference: Double?

    /// The epoch on the device: one step per batch, a host read only where the progress bar shows the running
    /// figures, then `endEpoch`. Resuming a `partial` epoch skips its batches and starts from its sums. Returns
    /// false when `stop` ended training inside the epoch (or before it).
    mutating func runEpoch(_ epoch: Int, resuming partial: PartialEpoch?) throws -> Bool {
        context.epoch = epoch
        if let schedule {
            if schedule.perBatch { schedule.apply(to: optimizer, progress: Double(epoch), base: base) }
            else { schedule.apply(to: optimizer, epoch: epoch, base: base) }
        }
        for c in callbacks { try c.epochWillBegin(epoch, context) }
        model.train()
        captured?.dropStaleRecordings()
        let start = Date()
        var batches = data.batches(size: batchSize, shuffle: shuffle, seed: seed, epoch: epoch, dropLast: dropLast)
        if let distributed { batches = batches.sharded(rank: distributed.rank, of: distributed.worldSize) }
        let batchCount = batches.count
        if let partial { try check(partial, batchCount: batchCount) }
        let skipped = partial?.batches ?? 0
        batches.startBatch = skipped
        context.batchesPerEpoch = batchCount
        progress.epochBegan(epoch, batches: batchCount)
        // In data-parallel training the saved sums are the ranks' combined ones: rank 0 alone starts from them.
        var sums = EpochAccumulator(metrics: metrics, device: data.device)
        if let partial, (distributed?.rank ?? 0) == 0 { sums = EpochAccumulator(metrics: metrics, device: data.device, resuming: partial) }
        var firstBad = FirstBadBatch(device: data.device)
        let readEvery = Swift.max(1, batchCount / 40)
        for (i, batch) in batches.enumerated() {
            let b = skipped + i
            if try stopRequested() {
                try stopInside(epoch, after: b, of: batchCount, sums: sums, firstBad: firstBad)
                return false
            }
            try trainBatch(b, batch, epoch: epoch, batchCount: batchCount, sums: &sums, firstBad: &firstBad)
            if mode == .progressBar && ((b + 1) % readEvery == 0 || b + 1 == batchCount) {
                try showProgress(b + 1, epoch: epoch, sums: sums, firstBad: firstBad, start: start)
            }
        }
        try endEpoch(epoch, sums: sums, firstBad: firstBad, start: start)
        return true
    }

    /// Throws when `partial` cannot continue in this call: another batch size, batch count or metrics.
    private func check(_ partial: PartialEpoch, batchCount: Int) throws {
        let names = metrics.map(\.rawValue)
        guard partial.batchSize == batchSize, partial.batchCount == batchCount, partial.metrics == names,
              partial.batches < batchCount else {
            throw TrainingError.invalid("fit: the partial epoch to resume stopped after batch \(partial.batches) of \(partial.batchCount) batches of \(partial.batchSize) with metrics \(partial.metrics); this call has \(batchCount) batches of \(batchSize) with metrics \(names): resume with the same data, batch size and metrics")
        }
    }

    /// Whether `stop` asks to stop now; in data-parallel training, whether it does on any rank (so all stop).
    private func stopRequested() throws -> Bool {
        guard let stop else { return false }
        guard let distributed else { return stop.isRequested }
        return try distributed.allReduce([stop.isRequested ? -1 : 0], .minimum)[0] < 0
    }

    /// Stops training before batch `b` of `epoch`: one host read of the sums (combined over the ranks), the usual
    /// check for a bad batch, and the position recorded in `stop`.
    private func stopInside(_ epoch: Int, after b: Int, of batchCount: Int, sums: EpochAccumulator, firstBad: FirstBadBatch) throws {
        var partial: PartialEpoch?
        if b > 0 {
            var read = try EpochAccumulator.readScalars([firstBad.flag] + sums.sums)
            var samples = sums.samples, counts = sums.metricCounts
            if let distributed { (read, samples, counts) = try Model.combineEpoch(distributed, read: read, samples: samples, counts: counts) }
            try firstBad.check(read[0], epoch: epoch, lossSum: read[1], model: model)
            partial = PartialEpoch(batches: b, batchSize: batchSize, batchCount: batchCount, samples: samples,
                                   sums: Array(read.dropFirst()), metrics: metrics.map(\.rawValue), metricCounts: counts)
        }
        let position = TrainingPosition(epoch: epoch, partialEpoch: partial)
        stop?.record(position)
        progress.stopped(at: position)
    }

    /// One batch: the schedule and callbacks, the step, and the batch's loss, metrics and finiteness added to the
    /// epoch's device sums.
    private mutating func trainBatch(_ b: Int, _ batch: Dataset.Batch, epoch: Int, batchCount: Int,
                                     sums: inout EpochAccumulator, firstBad: inout FirstBadBatch) throws {
        if let schedule, schedule.perBatch {
            schedule.apply(to: optimizer, progress: Double(epoch) + Double(b) / Double(batchCount), base: base)
        }
        for c in callbacks { try c.batchWillBegin(b, context) }
        let features = try augmentation.map {
            try $0.apply(to: batch.features, seed: Augmentation.batchSeed(seed, epoch: epoch, batch: b))
        } ?? batch.features
        // This rank's share of the global batch: its gradients, weighted by it and combined over the ranks,
        // become the global batch's (1 in one process).
        let share = distributed == nil ? 1 : Float(batch.count) / Float(Swift.min(batchSize, data.count - b * batchSize))
        let (value, out) = try step(features, batch.targets, share: share)
        if firstLoss == nil {
            firstLoss = distributed != nil ? value * share : captured == nil ? value : value.copy()
        }
        try withNoGrad {
            try sums.addMetrics(output: out.detach(), targets: batch.targets, count: batch.count)
            try firstBad.note(batch: b, loss: value, lossSum: sums.lossSum, count: batch.count, parameters: parameters)
        }
        if !callbacks.isEmpty {
            let kept = captured == nil ? value : value.copy()
            for c in callbacks { try c.batchDidEnd(b, loss: kept, context) }
        }
    }

    /// One optimizer step on a batch (captured or eager): its loss, a device scalar, and the model's output. A
    /// captured step's loss and output are overwritten by its next call (copies are made where they are kept).
    private func step(_ features: Tensor, _ targets: Tensor, share: Float) throws -> (loss: Tensor, output: Tensor) {
        if let captured {
            // Combines the gradients over the ranks before the update, as the eager step below does.
            if let distributed {
                captured.beforeUpdate = { [parameters] in try distributed.reduceGradients(of: parameters, weight: share) }
            }
            return try captured.fitStep(features, targets)
        }
        optimizer.zeroGrad()
        let out = try model(features)
        let l = try loss(out, targets)
        try l.backward()
        try distributed?.reduceGradients(of: parameters, weight: share)
        try optimizer.step()
        return (l.detach(), out)
    }

    /// The progress bar's running figures after `done` batches: one host read of the flag and the sums.
    private func showProgress(_ done: Int, epoch: Int, sums: EpochAccumulator, firstBad: FirstBadBatch, start: Date) throws {
        let read = try EpochAccumulator.readScalars([firstBad.flag] + sums.sums)
        try firstBad.check(read[0], epoch: epoch, lossSum: read[1], model: model)
        let running = sums.logs(read.dropFirst(), samples: sums.samples, counts: sums.metricCounts)
        progress.batchDone(done, samples: sums.samples, elapsed: Date().timeIntervalSince(start), running: running)
    }

    /// The end of an epoch: one host read of the flag, the sums and (once) the first batch's loss, combined over
    /// the ranks; the finiteness and divergence checks, validation, the history, the epoch line and the callbacks.
    private mutating func endEpoch(_ epoch: Int, sums: EpochAccumulator, firstBad: FirstBadBatch, start: Date) throws {
        let firstLossToRead = reference == nil ? firstLoss : nil
        var read = try EpochAccumulator.readScalars([firstBad.flag] + sums.sums + (firstLossToRead.map { [$0] } ?? []))
        var samples = sums.samples, counts = sums.metricCounts
        if let distributed {
            (read, samples, counts) = try Model.combineEpoch(distributed, read: read, samples: samples, counts: counts)
            try distributed.broadcast(model.namedTensors.map(\.1).filter { !$0.requiresGrad })   // rank 0's running statistics
        }
        try firstBad.check(read[0], epoch: epoch, lossSum: read[1], model: model)
        var logs = sums.logs(read[1...(1 + metrics.count)], samples: samples, counts: counts)
        if firstLossToRead != nil { reference = Double(read[2 + metrics.count]) }
        if let divergence, let reference, divergence.isDiverged(loss: logs["loss"]!, reference: reference) {
            throw TrainingError.diverged(epoch: epoch + 1, loss: logs["loss"]!, reference: reference, factor: divergence.factor)
        }
        let trainSeconds = Date().timeIntervalSince(start)
        if let validation {
            let v = try model.evaluate(validation, batchSize: Swift.max(batchSize, 256), loss: loss, metrics: metrics)
            for (k, value) in v { logs["val_" + k] = value }
        }
        // The first epoch of a resumed run against the loss its history ends at (a warning, not an error).
        let resumedFrom = firstLossToRead != nil && context.history.epochs.last == epoch ? context.history["loss"]?.last : nil
        context.history.append(epoch: epoch + 1, logs)
        progress.epochEnded(epoch, logs: logs, samples: samples, seconds: trainSeconds,
                            totalSeconds: Date().timeIntervalSince(start), learningRate: optimizer.learningRate)
        if let resumedFrom, context.rank == 0, let loss = logs["loss"],
           let warning = TrainingCheckpoint.resumeWarning(epoch: epoch + 1, previous: resumedFrom, resumed: loss) {
            progress.output(warning + "\n")
        }
        for c in callbacks { try c.epochDidEnd(epoch, logs: logs, context) }
    }
}

/// The first bad batch of an epoch, kept on the device as 2·batch when its loss is not finite, 2·batch + 1 when
/// the loss is finite but a parameter is not after the step, and `none` (a huge number) while all is well.
private struct FirstBadBatch {
    /// The flag's value while every batch was good (whole numbers below it are exact in Float).
    static let none = Float(1 << 24)
    /// The flag, a device scalar (updated in place).
    let flag: Tensor
    /// 1 while the batch being noted has a non-finite parameter, else 0 (a device scalar, reset by each note).
    private let parametersBad: Tensor

    init(device: Device) {
        flag = Tensor.full([], Self.none, on: device)
        parametersBad = Tensor.zeros([], on: device)
    }

    /// Notes batch `b` of `count` samples, whose loss is `value`, and the model's `parameters` after the step
    /// (those on the flag's device), and adds the batch's loss × `count` to `lossSum`: no host read, a scan of the
    /// parameters for NaN and infinities (one launch per 8 parameters on OpenCL) and one launch that updates
    /// `lossSum`, the flag and resets the scan's result. Call under `withNoGrad`.
    func note(batch b: Int, loss value: Tensor, lossSum: Tensor, count: Int, parameters: [Tensor]) throws {
        parametersBad.flagNonFinite(in: parameters)
        try flag.noteFitBatch(parametersBad: parametersBad, loss: value, lossSum: lossSum, count: count, batch: b,
                              none: Self.none)
    }
    /// Throws when the flag's host value `code` names a bad batch: a non-finite loss, or parameters that became
    /// non-finite (named after a host read of `model`'s parameters, done only then).
    func check(_ code: Float, epoch: Int, lossSum: Float, model: some Layer) throws {
        guard code < Self.none, let whole = Int(exactly: code) else { return }
        let batch = whole / 2 + 1
        if whole % 2 == 0 { throw TrainingError.nonFiniteLoss(epoch: epoch + 1, batch: batch, value: lossSum) }
        let names = try model.namedTensors.filter { try $0.1.requiresGrad && $0.1.toArray().contains { !$0.isFinite } }.map(\.0)
        throw TrainingError.nonFiniteParameters(epoch: epoch + 1, batch: batch, parameters: names)
    }
}
