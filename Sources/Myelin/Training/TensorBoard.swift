import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// TensorBoard's event files: TFRecord records (see `TFRecord`) of `Event` protobufs, the first one with
// file_version "brain.Event:2", the others each with a `Summary` of scalars or histograms. Field numbers are those
// of tensorboard/compat/proto/event.proto, summary.proto and histogram.proto, named in the comments.

/// Writes one TensorBoard event file (`events.out.tfevents.<time>.<host>.<pid>.<random>`) in a log folder: scalars and
/// histograms at a step. Records are kept in memory until `flush()`, which appends them with one `write`, so a
/// killed process leaves every flushed record whole (TensorBoard's reader also skips a last record cut short).
/// Not thread-safe: use it from one thread.
///
/// ```swift
/// let writer = try TensorBoardWriter(logDir: URL(fileURLWithPath: "runs/lab"))
/// writer.scalar("loss", 0.25, step: 100)
/// writer.histogram("weights/0.weight", values: model.parameters[0].toArray(), step: 100)
/// try writer.flush()                      // then: tensorboard --logdir runs
/// ```
public final class TensorBoardWriter {
    /// The event file written.
    public let url: URL
    private let file: FileHandle
    private var pending: [UInt8] = []
    private var lastSync = Date.distantPast
    /// The write that stopped this log in `flushOrStopLogging` (disk full, the folder removed), or nil: from then
    /// on records are dropped.
    public private(set) var failure: (any Error)?

    /// Creates `logDir` (and the folders above it) when missing and a new event file in it, whose first record
    /// (file_version "brain.Event:2") is written at once. Errors are `FileError`s naming the folder or file.
    public init(logDir: URL) throws {
        try AtomicFile.makeFolder(logDir)
        // The time first (TensorBoard reads a folder's files in name order), then a random part so that two
        // writers started in the same second never share a file.
        let name = "events.out.tfevents.\(Int(Date().timeIntervalSince1970)).\(ProcessInfo.processInfo.hostName)"
            + ".\(getpid()).\(UInt32.random(in: 0...UInt32.max))"
        url = logDir.appendingPathComponent(name)
        let descriptor = open(url.path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw FileError(path: url.path, action: .write, errno: errno) }
        file = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        event(wallTime: Date(), step: 0) { $0.string(3, "brain.Event:2") }   // Event.file_version
        try flush(sync: true)
    }

    /// For tests: a writer appending to the open file `descriptor` (`/dev/full`, say) as `url`, no record written yet.
    package init(url: URL, descriptor: Int32) {
        self.url = url
        file = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
    }

    deinit {
        if failure == nil { try? flush(sync: true) }
    }

    /// `flush(sync:)` for a training loop: a write that fails (disk full, the folder removed) is said once on stderr
    /// (the file and why) and stops this log, whose later records are dropped (`failure` holds the error), instead
    /// of stopping training: a run is worth more than its log. What was flushed before stays readable (TensorBoard
    /// skips a last record cut short). Returns whether the log goes on.
    @discardableResult
    public func flushOrStopLogging(sync: Bool = false) -> Bool {
        guard failure == nil else { return false }
        do {
            try flush(sync: sync)
            return true
        } catch {
            failure = error
            pending = []
            FileHandle.standardError.write(Data("Warning: TensorBoard log: \(error); the log stops here, training goes on\n".utf8))
            return false
        }
    }

    /// Adds a scalar (`Summary.Value.simple_value`, a float) under `tag` at `step`.
    public func scalar(_ tag: String, _ value: Double, step: Int, wallTime: Date = Date()) {
        scalars([(tag, value)], step: step, wallTime: wallTime)
    }

    /// Adds several scalars at one step, in one event.
    public func scalars(_ values: [(String, Double)], step: Int, wallTime: Date = Date()) {
        guard !values.isEmpty else { return }
        event(wallTime: wallTime, step: step) { e in
            e.message(5) { summary in                                   // Event.summary
                for (tag, value) in values {
                    summary.message(1) { v in                           // Summary.value
                        v.string(1, tag)                                // Summary.Value.tag
                        v.float(2, Float(value))                        // simple_value
                    }
                }
            }
        }
    }

    /// Adds a histogram of `values` under `tag` at `step`: their minimum, maximum, count, sum and sum of squares,
    /// and counts in `buckets` equal-width buckets from the minimum to the maximum (`HistogramProto`). NaN and
    /// infinite values are left out (their count is not in `num`).
    public func histogram(_ tag: String, values: [Float], step: Int, buckets: Int = 30, wallTime: Date = Date()) {
        let h = Histogram(values, buckets: buckets)
        event(wallTime: wallTime, step: step) { e in
            e.message(5) { summary in                                   // Event.summary
                summary.message(1) { v in                               // Summary.value
                    v.string(1, tag)                                    // Summary.Value.tag
                    v.message(5) { p in                                 // histo (HistogramProto)
                        p.double(1, h.min); p.double(2, h.max); p.double(3, h.count)   // min, max, num
                        p.double(4, h.sum); p.double(5, h.sumOfSquares)                // sum, sum_squares
                        p.packedDoubles(6, h.limits)                    // bucket_limit (right edges)
                        p.packedDoubles(7, h.counts)                    // bucket
                    }
                }
            }
        }
    }

    /// Appends the records added since the last flush to the file with one `write`: from then on they survive the
    /// process being killed. The file is also synced to the disk (`fsync`, against a power loss) when `sync` is
    /// true or the last sync is more than `syncInterval` seconds old, so that a run flushing every short epoch
    /// does not wait for the disk each time.
    public func flush(sync: Bool = false) throws {
        do {
            if !pending.isEmpty {
                let bytes = Data(pending)
                pending = []
                try file.write(contentsOf: bytes)
            }
            if sync || Date().timeIntervalSince(lastSync) >= Self.syncInterval {
                try file.synchronize()
                lastSync = Date()
            }
        } catch {
            throw FileError(path: url.path, action: .write, error: error)
        }
    }

    /// Seconds between the syncs `flush()` makes on its own.
    public static let syncInterval: TimeInterval = 10

    /// One Event record: wall_time (seconds since 1970), step, then the fields `body` writes.
    private func event(wallTime: Date, step: Int, _ body: (inout ProtobufWriter) -> Void) {
        var e = ProtobufWriter()
        e.double(1, wallTime.timeIntervalSince1970)                     // Event.wall_time
        e.int(2, Int64(step))                                           // Event.step
        body(&e)
        if failure == nil { pending += TFRecord.frame(e.bytes) }
    }
}

/// A histogram's figures as `HistogramProto` holds them.
struct Histogram {
    var min = 0.0, max = 0.0, count = 0.0, sum = 0.0, sumOfSquares = 0.0
    /// The right edge of each bucket (the last is the maximum).
    var limits: [Double] = []
    /// The values in each bucket.
    var counts: [Double] = []

    /// Equal-width buckets from the smallest to the largest finite value (one bucket when they are all equal).
    init(_ values: [Float], buckets: Int) {
        let finite = values.lazy.filter(\.isFinite).map(Double.init)
        guard let lo = finite.min(), let hi = finite.max() else { return }
        min = lo; max = hi
        let n = hi > lo ? Swift.max(1, buckets) : 1
        let width = (hi - lo) / Double(n)
        limits = (1...n).map { $0 == n ? hi : lo + width * Double($0) }
        counts = [Double](repeating: 0, count: n)
        for v in finite {
            count += 1; sum += v; sumOfSquares += v * v
            counts[width > 0 ? Swift.min(n - 1, Int((v - lo) / width)) : 0] += 1
        }
    }
}

/// Logs training to TensorBoard (Keras's `TensorBoard` callback): pass it to `fit` in `callbacks`, then run
/// `tensorboard --logdir <logDir>`. Each `fit` call writes a new event file in `logDir` (`TensorBoardWriter`)
/// with:
/// - per step (every `scalarEvery` optimizer steps): `batch/loss` and `batch/learning_rate`, at the global step
///   (epoch · batches per epoch + batch + 1, so a resumed run continues its curves);
/// - per epoch (at step epoch + 1): `epoch/<key>` for every value of the epoch's logs (`epoch/loss`,
///   `epoch/accuracy`, `epoch/val_loss`, ...), `epoch/learning_rate` and `epoch/seconds` (the epoch's wall time,
///   validation included);
/// - every `histogramEvery` steps: histograms `weights/<key>` and `gradients/<key>` of every trainable tensor
///   (keys of `stateDict()`).
///
/// The file is flushed after every epoch (and synced to the disk when training ends and at most every 10 s), so a
/// killed run leaves a file TensorBoard reads up to the last finished epoch. A write that fails during training
/// (a full disk) stops the log with a warning on stderr, not the training (`TensorBoardWriter.flushOrStopLogging`). Reading the loss each step is one host read of a scalar (a
/// wait for the device); a histogram reads its tensors back. In data-parallel training only rank 0 writes.
///
/// ```swift
/// let board = TensorBoardLogger(logDir: URL(fileURLWithPath: "runs/cnn"), histogramEvery: 200)
/// try model.fit(train, epochs: 10, loss: .softmaxCrossEntropy, optimizer: opt, metrics: [.accuracy], callbacks: [board])
/// ```
public final class TensorBoardLogger: Callback {
    /// The folder event files go to.
    public let logDir: URL
    /// The step scalars are written every this many optimizer steps (0: never).
    public let scalarEvery: Int
    /// Histograms of weights and gradients are written every this many optimizer steps (0: never).
    public let histogramEvery: Int
    /// The writer of the current (or last) `fit` call's event file; nil before training begins.
    public private(set) var writer: TensorBoardWriter?
    private var epochStart = Date()

    /// A logger writing to `logDir` (created when missing).
    ///
    /// - Parameters:
    ///   - logDir: the folder of the event files; several runs side by side are sibling folders of one
    ///     `tensorboard --logdir`.
    ///   - scalarEvery: write the step loss and learning rate every this many steps (0: never). Default 1.
    ///   - histogramEvery: write weight and gradient histograms every this many steps (0: never). Default 100.
    public init(logDir: URL, scalarEvery: Int = 1, histogramEvery: Int = 100) {
        precondition(scalarEvery >= 0 && histogramEvery >= 0,
                     "TensorBoardLogger: scalarEvery and histogramEvery must be >= 0, got \(scalarEvery) and \(histogramEvery)")
        self.logDir = logDir
        self.scalarEvery = scalarEvery
        self.histogramEvery = histogramEvery
    }

    /// A logger writing to the folder at `logDir`.
    public convenience init(logDir: String, scalarEvery: Int = 1, histogramEvery: Int = 100) {
        self.init(logDir: URL(fileURLWithPath: logDir), scalarEvery: scalarEvery, histogramEvery: histogramEvery)
    }

    /// Opens a new event file (rank 0 only): a folder that cannot be made fails here, before any training.
    public func trainingWillBegin(_ context: TrainingContext) throws {
        guard context.rank == 0 else { return }
        try writer?.flush()
        writer = try TensorBoardWriter(logDir: logDir)
    }

    /// Notes the epoch's start time.
    public func epochWillBegin(_ epoch: Int, _ context: TrainingContext) throws {
        epochStart = Date()
    }

    /// The step's loss and learning rate, and the histograms when their step has come.
    public func batchDidEnd(_ batch: Int, loss: Tensor, _ context: TrainingContext) throws {
        guard let writer else { return }
        let step = context.epoch * context.batchesPerEpoch + batch + 1
        if scalarEvery > 0, step % scalarEvery == 0 {
            writer.scalars([("batch/loss", Double(try loss.item())),
                            ("batch/learning_rate", Double(context.optimizer.learningRate))], step: step)
        }
        if histogramEvery > 0, step % histogramEvery == 0 {
            for (name, t) in context.model.namedTensors where t.requiresGrad {
                writer.histogram("weights/" + name, values: try t.toArray(), step: step)
                if let g = t.grad { writer.histogram("gradients/" + name, values: try g.toArray(), step: step) }
            }
        }
    }

    /// The epoch's logs, learning rate and time; then the file is flushed.
    public func epochDidEnd(_ epoch: Int, logs: [String: Double], _ context: TrainingContext) throws {
        guard let writer else { return }
        let values = logs.keys.sorted(by: History.order).map { ("epoch/" + $0, logs[$0]!) }
            + [("epoch/learning_rate", Double(context.optimizer.learningRate)),
               ("epoch/seconds", Date().timeIntervalSince(epochStart))]
        writer.scalars(values, step: epoch + 1)
        writer.flushOrStopLogging()
    }

    /// Flushes the file and syncs it to the disk.
    public func trainingDidEnd(_ context: TrainingContext) throws {
        writer?.flushOrStopLogging(sync: true)
    }
}
