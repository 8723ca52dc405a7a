import Foundation

// Hooks into `fit` (Keras style): the protocol, what callbacks see, and the built-in callbacks.

/// What callbacks see and may change while `fit` runs.
public final class TrainingContext {
    /// The model being trained.
    public let model: any Layer
    /// The optimizer updating `model`'s parameters (a schedule may have changed its learning rate).
    public let optimizer: any Optimizer
    /// The history so far (including epochs of a resumed run).
    public internal(set) var history: History
    /// The epoch being run or just finished (0-based).
    public internal(set) var epoch = 0
    /// The number of batches in the epoch being run.
    public internal(set) var batchesPerEpoch = 0
    /// The number of epochs `fit` was asked to reach.
    public let epochs: Int
    /// The learning rate at the start of training (schedules scale from it).
    public let baseLearningRate: Float
    /// The shuffling seed.
    public let seed: UInt64
    /// This process's rank in data-parallel training (`fit`'s `distributed`), 0 otherwise. Callbacks that
    /// write files or print do it on rank 0 only; the logs they see are the same on every rank.
    public internal(set) var rank = 0
    /// Set to true to end training after the current epoch.
    public var stopTraining = false

    init(model: any Layer, optimizer: any Optimizer, history: History, epochs: Int, baseLearningRate: Float, seed: UInt64) {
        self.model = model; self.optimizer = optimizer; self.history = history
        self.epochs = epochs; self.baseLearningRate = baseLearningRate; self.seed = seed
    }
}

/// Hooks into `fit` (Keras style). Every method has an empty default.
///
/// A callback that watches every batch (Keras's `on_train_batch_end`):
///
/// ```swift
/// final class LossEvery100Batches: Callback {
///     func batchDidEnd(_ batch: Int, loss: Tensor, _ context: TrainingContext) throws {
///         if batch % 100 == 0 { print("epoch \(context.epoch + 1) batch \(batch): loss \(try loss.item())") }
///     }
/// }
/// ```
public protocol Callback: AnyObject {
    /// Once, before the first epoch (after `context` is set up).
    func trainingWillBegin(_ context: TrainingContext) throws
    /// Before epoch `epoch` (0-based), after the learning-rate schedule has set the epoch's rate.
    func epochWillBegin(_ epoch: Int, _ context: TrainingContext) throws
    /// Before training batch `batch` (0-based within the epoch `context.epoch`).
    func batchWillBegin(_ batch: Int, _ context: TrainingContext) throws
    /// After training batch `batch` (0-based within the epoch `context.epoch`) and its optimizer step.
    /// `loss` is the batch's mean loss as a device scalar without a graph: nothing has been read from the
    /// device for it; `loss.item()` reads it (one host read, a wait for the device), so read it only as
    /// often as needed. Setting `context.stopTraining` ends training after the current epoch.
    func batchDidEnd(_ batch: Int, loss: Tensor, _ context: TrainingContext) throws
    /// `logs` holds the epoch's `loss`, metrics, and `val_` ones.
    func epochDidEnd(_ epoch: Int, logs: [String: Double], _ context: TrainingContext) throws
    /// Once, after the last epoch (also when a callback stopped training early); not called when training
    /// ends with an error.
    func trainingDidEnd(_ context: TrainingContext) throws
}

extension Callback {
    public func trainingWillBegin(_ context: TrainingContext) throws {}
    public func epochWillBegin(_ epoch: Int, _ context: TrainingContext) throws {}
    public func batchWillBegin(_ batch: Int, _ context: TrainingContext) throws {}
    public func batchDidEnd(_ batch: Int, loss: Tensor, _ context: TrainingContext) throws {}
    public func epochDidEnd(_ epoch: Int, logs: [String: Double], _ context: TrainingContext) throws {}
    public func trainingDidEnd(_ context: TrainingContext) throws {}
}

/// Stops training when a monitored value stops improving (Keras's `EarlyStopping`).
///
/// ```swift
/// let stop = EarlyStopping(monitor: "val_loss", patience: 3, minDelta: 1e-4, restoreBestWeights: true)
/// try model.fit(train, epochs: 100, validation: validation, loss: .meanSquaredError, optimizer: opt, callbacks: [stop])
/// ```
public final class EarlyStopping: Callback {
    /// The `logs` key watched (`val_loss`, `accuracy`, ...).
    public let monitor: String
    /// How many epochs in a row without improvement end training (0 and 1 both stop at the first one).
    public let patience: Int
    /// The smallest change that counts as an improvement (stored as its absolute value).
    public let minDelta: Double
    /// Whether the weights of the best epoch are put back when training ends.
    public let restoreBestWeights: Bool
    /// True when larger is better (accuracies); false for losses and errors.
    public let maximize: Bool
    /// The best value seen and its epoch (1-based), and the epoch training stopped at (nil when it ran to the end).
    public private(set) var best: Double?
    /// The epoch (1-based) of `best`, or nil before the first epoch.
    public private(set) var bestEpoch: Int?
    /// The epoch (1-based) training stopped at, or nil when it ran to the end.
    public private(set) var stoppedEpoch: Int?
    private var wait = 0
    private var bestWeights: [Tensor] = []

    /// Creates the callback; pass it to `fit` in `callbacks`.
    ///
    /// - Parameters:
    ///   - monitor: the `logs` key to watch. Default `val_loss` (which needs validation data).
    ///   - patience: epochs in a row without improvement before stopping. Default 0.
    ///   - minDelta: the smallest change that counts as an improvement. Default 0.
    ///   - restoreBestWeights: put the weights of the best epoch back when training ends. Default false.
    ///   - maximize: nil picks from the name: `accuracy`-like names are maximized, the rest minimized.
    public init(monitor: String = "val_loss", patience: Int = 0, minDelta: Double = 0, restoreBestWeights: Bool = false,
                maximize: Bool? = nil) {
        self.monitor = monitor
        self.patience = patience
        self.minDelta = Swift.abs(minDelta)
        self.restoreBestWeights = restoreBestWeights
        self.maximize = maximize ?? monitor.contains("accuracy")
    }

    /// Resets the state, so one callback can serve several `fit` calls.
    public func trainingWillBegin(_ context: TrainingContext) throws {
        wait = 0; best = nil; bestEpoch = nil; stoppedEpoch = nil; bestWeights = []
    }

    public func epochDidEnd(_ epoch: Int, logs: [String: Double], _ context: TrainingContext) throws {
        guard let value = logs[monitor] else {
            throw TrainingError.invalid("EarlyStopping: no value '\(monitor)' to monitor (have: \(logs.keys.sorted().joined(separator: ", ")); pass validation data for val_ values)")
        }
        let improved = best.map { maximize ? value > $0 + minDelta : value < $0 - minDelta } ?? true
        if improved {
            best = value
            bestEpoch = epoch + 1
            wait = 0
            if restoreBestWeights { bestWeights = context.model.namedTensors.map { $0.1.copy() } }
        } else {
            wait += 1
            if wait >= patience {
                context.stopTraining = true
                stoppedEpoch = epoch + 1
            }
        }
    }

    /// Puts the best epoch's weights back when `restoreBestWeights` is set and the last epoch was not the best.
    public func trainingDidEnd(_ context: TrainingContext) throws {
        guard restoreBestWeights, !bestWeights.isEmpty, bestEpoch != context.history.epochs.last else { return }
        for ((_, t), saved) in zip(context.model.namedTensors, bestWeights) { t.assign(from: saved) }
    }
}

/// Saves a training checkpoint (model, optimizer state, epoch, seed, history) after each epoch, or only when the
/// monitored value improves. Writes are atomic. In data-parallel training (`fit`'s `distributed`) only rank 0 writes.
///
/// The file is a `TrainingCheckpoint`; resume with `TrainingCheckpoint.load(from:into:optimizer:)`.
///
/// ```swift
/// let save = ModelCheckpoint(url: URL(fileURLWithPath: "best.safetensors"), monitor: "val_accuracy", saveBestOnly: true)
/// try model.fit(train, epochs: 20, validation: validation, loss: .softmaxCrossEntropy, optimizer: opt, callbacks: [save])
/// ```
public final class ModelCheckpoint: Callback {
    /// The file written (replaced at each save).
    public let url: URL
    /// The `logs` key compared when `saveBestOnly` is set.
    public let monitor: String
    /// Save only when `monitor` improves on the best value so far; otherwise after every epoch.
    public let saveBestOnly: Bool
    /// True when larger values of `monitor` are better.
    public let maximize: Bool
    /// The best value of `monitor` saved so far (only with `saveBestOnly`).
    public private(set) var best: Double?

    /// Creates the callback; pass it to `fit` in `callbacks`.
    ///
    /// - Parameters:
    ///   - url: the checkpoint file to write.
    ///   - monitor: the `logs` key to compare with `saveBestOnly`. Default `val_loss`.
    ///   - saveBestOnly: save only epochs that improve `monitor`. Default false (save every epoch).
    ///   - maximize: nil picks from the name: `accuracy`-like names are maximized, the rest minimized.
    public init(url: URL, monitor: String = "val_loss", saveBestOnly: Bool = false, maximize: Bool? = nil) {
        self.url = url
        self.monitor = monitor
        self.saveBestOnly = saveBestOnly
        self.maximize = maximize ?? monitor.contains("accuracy")
    }

    /// Checks that `url` can be written (`AtomicFile.checkWritable`) before the first epoch, so a bad path fails
    /// at once, not after an epoch of training.
    public func trainingWillBegin(_ context: TrainingContext) throws {
        guard context.rank == 0 else { return }
        try AtomicFile.checkWritable(url)
    }

    public func epochDidEnd(_ epoch: Int, logs: [String: Double], _ context: TrainingContext) throws {
        if saveBestOnly {
            guard let value = logs[monitor] else {
                throw TrainingError.invalid("ModelCheckpoint: no value '\(monitor)' to monitor (have: \(logs.keys.sorted().joined(separator: ", ")))")
            }
            if let best, maximize ? value <= best : value >= best { return }
            best = value
        }
        guard context.rank == 0 else { return }   // data-parallel training: every rank holds the same model
        try TrainingCheckpoint.save(model: context.model, optimizer: context.optimizer, epoch: epoch + 1, seed: context.seed,
                                    baseLearningRate: context.baseLearningRate, history: context.history, to: url)
    }
}
