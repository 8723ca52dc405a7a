import Foundation
import Synchronization

// Stopping `fit` between two batches and resuming exactly there: the request, where training stopped, and the
// interrupted epoch's running sums that a checkpoint keeps.

/// A request to stop `fit` before its next batch, settable from any thread: a signal handler's queue (the `myelin`
/// command's Ctrl-C), a user interface, a callback. Like Keras's `model.stop_training`, but checked before every
/// batch, not only at the end of an epoch (`TrainingContext.stopTraining` does that).
///
/// When it stops training, `fit` returns normally with the history of the completed epochs, and `stoppedAt` says
/// where it stopped: the completed epochs and, when it stopped inside an epoch, that epoch's progress. Pass both
/// to `TrainingCheckpoint.save` and a run resumed from the file continues with the very next batch, reaching the
/// same parameters as a run that never stopped.
///
/// ```swift
/// let stop = StopRequest()
/// // elsewhere, on any thread: stop.request()
/// let history = try model.fit(train, epochs: 10, loss: .softmaxCrossEntropy, optimizer: adam, seed: 1, stop: stop)
/// if let position = stop.stoppedAt {
///     try TrainingCheckpoint.save(model: model, optimizer: adam, epoch: position.epoch, seed: 1, history: history,
///                                 partialEpoch: position.partialEpoch, to: url)
/// }
/// ```
public final class StopRequest: Sendable {
    private let flag = Atomic<Bool>(false)
    private let position = Mutex<TrainingPosition?>(nil)

    /// A request not yet made.
    public init() {}

    /// Asks `fit` to stop before its next batch (the batch in progress finishes). Safe from any thread.
    public func request() { flag.store(true, ordering: .sequentiallyConsistent) }

    /// Whether `request()` was called (and not `reset()` since).
    public var isRequested: Bool { flag.load(ordering: .sequentiallyConsistent) }

    /// Withdraws the request and forgets `stoppedAt`, so the object can serve another `fit` call.
    public func reset() {
        flag.store(false, ordering: .sequentiallyConsistent)
        position.withLock { $0 = nil }
    }

    /// Where the last `fit` given this request stopped because of it; nil while it has not (a `fit` that ran to
    /// its last epoch leaves it nil even when the request came after that).
    public var stoppedAt: TrainingPosition? { position.withLock { $0 } }

    func record(_ stop: TrainingPosition) { position.withLock { $0 = stop } }
}

/// Where a stopped training run is: the completed epochs and the progress of the epoch it stopped in.
public struct TrainingPosition: Sendable, Equatable, CustomStringConvertible {
    /// The completed epochs (`fit`'s `initialEpoch` to resume).
    public let epoch: Int
    /// The batches of epoch `epoch` (0-based) already trained and their running sums; nil when training stopped
    /// between two epochs.
    public let partialEpoch: PartialEpoch?

    /// A position from its parts.
    public init(epoch: Int, partialEpoch: PartialEpoch?) {
        self.epoch = epoch; self.partialEpoch = partialEpoch
    }

    /// "after epoch 3" or "after batch 5 of 40 of epoch 4" (1-based, for people).
    public var description: String {
        guard let partialEpoch else { return "after epoch \(epoch)" }
        return "after batch \(partialEpoch.batches) of \(partialEpoch.batchCount) of epoch \(epoch + 1)"
    }
}

/// The part of an epoch done when training stopped inside it: how many batches, and the running sums of its loss
/// and metrics (combined over the ranks in data-parallel training). `fit(partialEpoch:)` skips those batches and
/// starts its sums from these values, so the resumed epoch trains the same batches in the same order and logs the
/// same loss and metrics as if it had not stopped. A `TrainingCheckpoint` stores it in its metadata
/// (`epoch_progress`, JSON).
public struct PartialEpoch: Sendable, Equatable {
    /// The batches already trained (their order is the epoch's seeded shuffle), at least 1.
    public let batches: Int
    /// The batch size they were trained with (a resumed `fit` must use the same).
    public let batchSize: Int
    /// The batches of the whole epoch (a resumed `fit` checks its data gives the same count).
    public let batchCount: Int
    /// The samples those batches held.
    public let samples: Int
    /// The sum of each batch's mean loss × its sample count, then each metric's sum, in the order of `metrics`.
    public let sums: [Float]
    /// The metrics' names (`Metric.rawValue`), in the order of `sums` after the loss.
    public let metrics: [String]
    /// How many values each metric summed.
    public let metricCounts: [Int]

    /// A partial epoch from its parts; `sums` holds the loss sum then one sum per metric.
    public init(batches: Int, batchSize: Int, batchCount: Int, samples: Int, sums: [Float], metrics: [String],
                metricCounts: [Int]) {
        self.batches = batches; self.batchSize = batchSize; self.batchCount = batchCount; self.samples = samples
        self.sums = sums; self.metrics = metrics; self.metricCounts = metricCounts
    }

    /// The JSON text a checkpoint's metadata holds. The sums are strings of Swift's shortest exact decimal form, so
    /// that they read back bit for bit.
    public func json() -> String {
        let object: [String: Any] = ["batches": batches, "batch_size": batchSize, "batch_count": batchCount,
                                     "samples": samples, "sums": sums.map { "\($0)" }, "metrics": metrics,
                                     "metric_counts": metricCounts]
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    /// A partial epoch read back from `json()`, every field checked; the error names the field and the rule.
    public init(validatingJSON text: String) throws {
        func bad(_ field: String, _ rule: String) -> InvalidValueError {
            InvalidValueError(name: "epoch_progress \(field)", value: "in '\(text.prefix(80))'", rule: rule)
        }
        guard let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] else {
            throw bad("", "must be a JSON object")
        }
        func whole(_ key: String, atLeast low: Int) throws -> Int {
            guard let n = object[key] as? NSNumber, String(cString: n.objCType) != "c", let v = Int(exactly: n.doubleValue), v >= low else {
                throw bad("'\(key)'", "must be a whole number >= \(low)")
            }
            return v
        }
        let batches = try whole("batches", atLeast: 1)
        let batchSize = try whole("batch_size", atLeast: 1)
        let batchCount = try whole("batch_count", atLeast: 2)
        let samples = try whole("samples", atLeast: 1)
        guard batches < batchCount else { throw bad("'batches'", "must be less than 'batch_count' (\(batchCount))") }
        guard let sumTexts = object["sums"] as? [String], let sums = Optional(sumTexts.compactMap(Float.init)),
              sums.count == sumTexts.count, sums.allSatisfy(\.isFinite) else {
            throw bad("'sums'", "must be a list of finite numbers written as strings")
        }
        guard let metrics = object["metrics"] as? [String], sums.count == metrics.count + 1 else {
            throw bad("'metrics'", "must be a list of names, one fewer than 'sums' (the loss comes first)")
        }
        guard let counts = object["metric_counts"] as? [NSNumber], counts.count == metrics.count,
              let metricCounts = Optional(counts.compactMap { Int(exactly: $0.doubleValue) }), metricCounts.count == counts.count,
              metricCounts.allSatisfy({ $0 >= 0 }) else {
            throw bad("'metric_counts'", "must be a list of whole numbers >= 0, one per metric")
        }
        self.init(batches: batches, batchSize: batchSize, batchCount: batchCount, samples: samples, sums: sums,
                  metrics: metrics, metricCounts: metricCounts)
    }
}
