import Foundation

/// A checkpoint to resume training from: one safetensors file holding the model's `stateDict()` under its own
/// keys (`0.weight`, ... — loadable alone by `Layer.load(from:)`, or by PyTorch's `load_state_dict` after dropping
/// the `optimizer.` keys), the optimizer's
/// state under `optimizer.` (`optimizer.0.exp_avg`, `optimizer.step`, ...), and in the metadata the completed
/// epochs, the shuffling seed, the base learning rate, the history so far and each dropout layer's mask counter.
/// Resuming with the same seed then continues exactly as if training had not stopped: the same batches, the same
/// dropout masks, the same optimizer moments, hence the same weights.
///
/// ```swift
/// try TrainingCheckpoint.save(model: model, optimizer: adam, epoch: 3, seed: 1, to: url)
/// let resumed = try TrainingCheckpoint.load(from: url, into: model, optimizer: adam)
/// try model.fit(train, epochs: 10, loss: .softmaxCrossEntropy, optimizer: adam, seed: resumed.seed,
///               initialEpoch: resumed.epoch, history: resumed.history)
/// ```
public struct TrainingCheckpoint {
    /// The prefix of optimizer state tensors in the file.
    public static let optimizerPrefix = "optimizer."
    /// The metadata key of `partialEpoch` (JSON).
    public static let partialEpochKey = "epoch_progress"

    /// The completed epochs.
    public let epoch: Int
    /// The shuffling seed of the run; pass it to `fit(seed:)` to resume with the same batches.
    public let seed: UInt64
    /// The optimizer's learning rate when the checkpoint was saved (nil when it was saved without an optimizer).
    public let learningRate: Float?
    /// The learning rate schedules start from.
    public let baseLearningRate: Float?
    /// The loss and metrics of the completed epochs; pass it to `fit(history:)` to extend it.
    public let history: History
    /// The batches of epoch `epoch` (0-based) done when training stopped inside it (a `StopRequest`); pass it to
    /// `fit(partialEpoch:)`. Nil for a checkpoint saved between epochs.
    public var partialEpoch: PartialEpoch? = nil
    /// All metadata of the file.
    public let metadata: [String: String]

    /// Saves model, optimizer state and training position atomically. A model or optimizer state holding a NaN
    /// or infinite value is not saved (`CheckpointError.nonFinite` names the tensor) unless `allowNonFinite`.
    /// `partialEpoch` is the progress inside epoch `epoch` + 1 when training stopped there (`StopRequest`).
    public static func save(model: any Layer, optimizer: (any Optimizer)?, epoch: Int, seed: UInt64,
                            baseLearningRate: Float? = nil, history: History = History(), partialEpoch: PartialEpoch? = nil,
                            metadata extra: [String: String] = [:], allowNonFinite: Bool = false, to url: URL) throws {
        var tensors = model.namedTensors
        if let optimizer {
            tensors += optimizer.stateTensors().map { (optimizerPrefix + $0.0, $0.1) }
        }
        var metadata = extra
        metadata["format"] = "myelin-training-checkpoint"
        metadata[SafeTensors.layoutKey] = SafeTensors.currentLayout
        metadata["epoch"] = String(epoch)
        metadata["seed"] = String(seed)
        if let optimizer {
            metadata["optimizer"] = String(describing: type(of: optimizer))
            metadata["learning_rate"] = String(optimizer.learningRate)
        }
        if let baseLearningRate { metadata["base_learning_rate"] = String(baseLearningRate) }
        metadata["history"] = history.json().trimmingCharacters(in: .newlines)
        if let partialEpoch { metadata[partialEpochKey] = partialEpoch.json() }
        let calls = dropoutLayers(model).map { String($0.calls) }
        if !calls.isEmpty { metadata["dropout_calls"] = calls.joined(separator: ",") }
        let entries = try SafeTensors.entries(tensors)
        if !allowNonFinite { try SafeTensors.checkFinite(entries, source: url.path, saving: true) }
        try AtomicFile.write(SafeTensors.encode(entries: entries, metadata: metadata), to: url)
    }

    /// Loads a checkpoint into `model` (in place) and `optimizer`, checking everything before changing anything
    /// it can: the metadata (epoch, seed, learning rates with the same rules as the command line's `--lr`, every
    /// history entry, dropout counters), tensor names and shapes (errors name the tensor and both shapes), NaN or
    /// infinite values in the model or the optimizer state (refused unless `allowNonFinite`), then the optimizer
    /// state: refused when stored narrower than F32 or inconsistent (a negative second moment, a zero one beside a
    /// first moment far from zero; see `checkOptimizerState`). A value that breaks a rule is an error naming it,
    /// never dropped or trusted. `fit` resumed with the returned history warns when its first epoch's loss is far
    /// above the history's last (`resumeWarning(epoch:previous:resumed:)`).
    @discardableResult
    public static func load(from url: URL, into model: any Layer, optimizer: (any Optimizer)?,
                            allowNonFinite: Bool = false) throws -> TrainingCheckpoint {
        let file = try SafeTensors.load(url)
        if !allowNonFinite { try SafeTensors.checkFinite(file.entries, source: url.path, saving: false) }
        if optimizer != nil { try checkOptimizerState(file.entries, source: url.path, allowNonFinite: allowNonFinite) }
        let m = file.metadata
        guard let epochText = m["epoch"] else {
            throw CheckpointError.invalid(url.path, reason: "is not a Myelin training checkpoint (no 'epoch' in its metadata)" + SwiftAPIAdvice.plainModelFile)
        }
        guard let epoch = Int(epochText), epoch >= 0 else {
            throw CheckpointError.invalid(url.path, reason: "has epoch '\(epochText)' in its metadata, which is not a whole number >= 0")
        }
        guard let seedText = m["seed"], let seed = UInt64(seedText) else {
            throw CheckpointError.invalid(url.path, reason: "has no valid 'seed' in its metadata")
        }
        let learningRate = try checkedRate(m, "learning_rate", url)
        let baseLearningRate = try checkedRate(m, "base_learning_rate", url)
        let history: History
        if let text = m["history"] {
            do { history = try History(validatingJSON: text) } catch {
                throw CheckpointError.invalid(url.path, reason: "has a bad history in its metadata: \(error)")
            }
            if let last = history.epochs.last, last > epoch, history.epochs.count > 0 {
                throw CheckpointError.invalid(url.path, reason: "has a history up to epoch \(last) but says \(epoch) epochs are done")
            }
        } else {
            history = History()
        }
        let partialEpoch = try m[partialEpochKey].map { text in
            do { return try PartialEpoch(validatingJSON: text) } catch {
                throw CheckpointError.invalid(url.path, reason: "has a bad \(partialEpochKey) in its metadata: \(error)")
            }
        }
        let dropouts = dropoutLayers(model)
        var calls: [UInt64] = []
        if let text = m["dropout_calls"] {
            calls = try text.split(separator: ",", omittingEmptySubsequences: false).map { item in
                guard let c = UInt64(item) else {
                    throw CheckpointError.invalid(url.path, reason: "has dropout counter '\(item)' in its metadata, which is not a whole number >= 0")
                }
                return c
            }
            guard calls.count == dropouts.count else {
                throw CheckpointError.invalid(url.path, reason: "holds \(calls.count) dropout counters, the model has \(dropouts.count) dropout layers")
            }
        }
        var state: [String: Tensor] = [:]
        for e in file.entries where e.name.hasPrefix(optimizerPrefix) {
            state[String(e.name.dropFirst(optimizerPrefix.count))] = e.tensor(on: .cpu)
        }
        try model.loadState(file, source: url.path, strict: true, ignoringPrefixes: [optimizerPrefix], allowNonFinite: allowNonFinite)
        if let optimizer {
            do { try optimizer.loadState(state) } catch {
                throw CheckpointError.invalid(url.path, reason: "optimizer state does not fit: \(error)")
            }
            if let s = state["step"] {
                let v = try s.item()
                guard let step = Int(exactly: v), step >= 0 else {
                    throw CheckpointError.invalid(url.path, reason: "optimizer step count \(v) is not a whole number >= 0")
                }
                optimizer.stepCount = step
            }
            if let learningRate { optimizer.learningRate = learningRate }
        }
        for (d, c) in zip(dropouts, calls) { d.calls = c }
        return TrainingCheckpoint(epoch: epoch, seed: seed, learningRate: learningRate, baseLearningRate: baseLearningRate,
                                  history: history, partialEpoch: partialEpoch, metadata: m)
    }

    /// The learning rate stored under `key`, checked like `--lr` (`ValueCheck.learningRate`); nil when absent.
    private static func checkedRate(_ m: [String: String], _ key: String, _ url: URL) throws -> Float? {
        guard let text = m[key] else { return nil }
        guard let value = Float(text) else {
            throw CheckpointError.invalid(url.path, reason: "has \(key) '\(text)' in its metadata, which is not a number")
        }
        do { try ValueCheck.learningRate(value, name: key) } catch {
            throw CheckpointError.invalid(url.path, reason: "has a bad value in its metadata: \(error)")
        }
        return value
    }

    /// How training continues from this checkpoint when a command line also gives values: the command line wins,
    /// and `note` says what happened (print it). `epochs` counts all epochs (like `fit`'s `epochs` with
    /// `initialEpoch`), so asking for no more than the checkpoint has done is an error that says so; nil means
    /// `defaultEpochs`. `learningRate` from the command line replaces the checkpoint's (and becomes the base of
    /// schedules); nil keeps the checkpoint's. `source` names the checkpoint in the note and errors.
    ///
    /// ```swift
    /// let plan = try checkpoint.resumePlan(epochs: 10, defaultEpochs: 10, learningRate: 0.01, source: "run.safetensors")
    /// print(plan.note)  // resuming from epoch 7 of run.safetensors, training to epoch 10; learning rate 0.01 from
    ///                   // the command line (the checkpoint had 0.001)
    /// optimizer.learningRate = plan.learningRate ?? optimizer.learningRate
    /// ```
    public func resumePlan(epochs requested: Int?, defaultEpochs: Int, learningRate commandLine: Float?,
                           source: String, epochName: String = "epoch") throws -> ResumePlan {
        let total = requested ?? defaultEpochs
        guard total > epoch else {
            // The option counting them: --epochs, or --steps for a run counted in steps (`myelin train text`).
            let name = requested == nil ? "the default --\(epochName)s" : "--\(epochName)s"
            throw InvalidValueError(name: name, value: "\(total)", rule: "counts all \(epochName)s, so it must be more than the \(epoch) \(epochName)s \(source) has already done (ask for \(epoch + 1) or more)")
        }
        var note = "resuming from \(epochName) \(epoch) of \(source), training to \(epochName) \(total)"
        if let partialEpoch {
            note = "resuming from \(source) inside \(epochName) \(epoch + 1), after its batch \(partialEpoch.batches) of \(partialEpoch.batchCount), training to \(epochName) \(total)"
        }
        let rate: Float?
        let base: Float?
        if let commandLine {
            try ValueCheck.learningRate(commandLine, name: "--lr")
            rate = commandLine
            base = commandLine
            note += "; learning rate \(commandLine) from the command line"
            if let learningRate { note += " (the checkpoint had \(learningRate))" }
        } else {
            rate = learningRate
            base = baseLearningRate ?? learningRate
            if let learningRate { note += "; learning rate \(learningRate) from the checkpoint" }
        }
        return ResumePlan(initialEpoch: epoch, epochs: total, learningRate: rate, baseLearningRate: base, note: note)
    }

    /// Every dropout layer inside `layer`, in order (through `Sequential` and `Residual`).
    static func dropoutLayers(_ layer: any Layer) -> [Dropout] {
        if let d = layer as? Dropout { return [d] }
        if let s = layer as? Sequential { return s.layers.flatMap(dropoutLayers) }
        if let r = layer as? Residual { return dropoutLayers(r.inner) + (r.shortcut.map(dropoutLayers) ?? []) }
        return []
    }
}

/// How training continues from a checkpoint (`TrainingCheckpoint.resumePlan`).
public struct ResumePlan: Equatable, Sendable {
    /// The epochs already done: `fit`'s `initialEpoch`.
    public let initialEpoch: Int
    /// All epochs, done and to do: `fit`'s `epochs`.
    public let epochs: Int
    /// The learning rate to set on the optimizer (nil: keep the optimizer's).
    public let learningRate: Float?
    /// The base learning rate of schedules (`fit`'s `baseLearningRate`).
    public let baseLearningRate: Float?
    /// What happened, for people: where training resumes and where each value came from.
    public let note: String
}

extension History {
    /// A history read back from `json()`, every entry checked: an `epoch` list of whole numbers >= 1 in increasing
    /// order, and for each metric a list of the same length holding numbers (or null for a missing value). Throws
    /// an `InvalidValueError` naming the bad entry.
    public init(validatingJSON text: String) throws {
        self.init()
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed]) else {
            throw InvalidValueError(name: "history", value: "'\(text.prefix(60))'", rule: "must be JSON")
        }
        guard let dictionary = object as? [String: Any] else {
            throw InvalidValueError(name: "history", value: "'\(text.prefix(60))'", rule: "must be a JSON object")
        }
        guard let epochs = dictionary["epoch"] as? [Any] else {
            throw InvalidValueError(name: "history", value: "'\(text.prefix(60))'", rule: "must have an 'epoch' list")
        }
        func number(_ v: Any) -> Double? {
            // JSON's true and false come back as NSNumbers of type "c" (char); numbers are "i", "q" or "d".
            guard let n = v as? NSNumber, String(cString: n.objCType) != "c" else { return nil }
            return n.doubleValue
        }
        var epochNumbers: [Int] = []
        for (i, e) in epochs.enumerated() {
            guard let d = number(e), d == d.rounded(), d >= 1, d < 1e15, Int(d) > (epochNumbers.last ?? 0) else {
                throw InvalidValueError(name: "history epoch entry \(i)", value: "\(e)",
                                        rule: "must be a whole number >= 1, larger than the one before")
            }
            epochNumbers.append(Int(d))
        }
        var columns: [String: [Double]] = [:]
        for (key, value) in dictionary where key != "epoch" {
            guard let list = value as? [Any] else {
                throw InvalidValueError(name: "history metric '\(key)'", value: "\(value)", rule: "must be a list")
            }
            guard list.count == epochs.count else {
                throw InvalidValueError(name: "history metric '\(key)'", value: "\(list.count) values",
                                        rule: "must have one value per epoch (\(epochs.count))")
            }
            columns[key] = try list.enumerated().map { i, v in
                if v is NSNull { return .nan }
                guard let d = number(v) else {
                    throw InvalidValueError(name: "history metric '\(key)' entry \(i)", value: "\(v)", rule: "must be a number or null")
                }
                return d
            }
        }
        for (i, e) in epochNumbers.enumerated() {
            append(epoch: e, columns.compactMapValues { $0[i].isNaN ? nil : $0[i] })
        }
    }

    /// A history read back from `json()` (an unreadable text gives an empty history; `init(validatingJSON:)`
    /// says what is wrong instead).
    public init(json text: String) {
        self.init()
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
              let epochs = object["epoch"] as? [Any] else { return }
        let keys = object.keys.filter { $0 != "epoch" }
        for (i, e) in epochs.enumerated() {
            var row: [String: Double] = [:]
            for k in keys {
                guard let values = object[k] as? [Any], i < values.count else { continue }
                if let d = values[i] as? Double { row[k] = d } else if let n = values[i] as? Int { row[k] = Double(n) }
                else if let n = values[i] as? NSNumber { row[k] = n.doubleValue }
            }
            // An epoch that is not a whole number fitting an Int (1e30, 2.5, NaN) is never converted unchecked.
            let epoch = (e as? Int) ?? (e as? NSNumber).flatMap { Int(exactly: $0.doubleValue) } ?? i + 1
            append(epoch: epoch, row)
        }
    }
}
