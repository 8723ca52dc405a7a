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

    /// The completed epochs.
    public let epoch: Int
    public let seed: UInt64
    /// The learning rate schedules start from.
    public let baseLearningRate: Float?
    public let history: History
    /// All metadata of the file.
    public let metadata: [String: String]

    /// Saves model, optimizer state and training position atomically. A model or optimizer state holding a NaN
    /// or infinite value is not saved (`CheckpointError.nonFinite` names the tensor) unless `allowNonFinite`.
    public static func save(model: any Layer, optimizer: (any Optimizer)?, epoch: Int, seed: UInt64,
                            baseLearningRate: Float? = nil, history: History = History(),
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
        let calls = dropoutLayers(model).map { String($0.calls) }
        if !calls.isEmpty { metadata["dropout_calls"] = calls.joined(separator: ",") }
        let entries = SafeTensors.entries(tensors)
        if !allowNonFinite { try SafeTensors.checkFinite(entries, source: url.path, saving: true) }
        try AtomicFile.write(SafeTensors.encode(entries: entries, metadata: metadata), to: url)
    }

    /// Loads a checkpoint into `model` (in place) and `optimizer`, checking everything before changing anything
    /// it can: tensor names and shapes (errors name the tensor and both shapes), NaN or infinite values in the
    /// model or the optimizer state (refused unless `allowNonFinite`), then the optimizer state.
    @discardableResult
    public static func load(from url: URL, into model: any Layer, optimizer: (any Optimizer)?,
                            allowNonFinite: Bool = false) throws -> TrainingCheckpoint {
        let file = try SafeTensors.load(url)
        if !allowNonFinite { try SafeTensors.checkFinite(file.entries, source: url.path, saving: false) }
        let m = file.metadata
        guard let epochText = m["epoch"], let epoch = Int(epochText), epoch >= 0 else {
            throw CheckpointError.invalid(url.path, reason: "is not a Myelin training checkpoint (no 'epoch' in its metadata); load a plain model file with Layer.load(from:)")
        }
        guard let seedText = m["seed"], let seed = UInt64(seedText) else {
            throw CheckpointError.invalid(url.path, reason: "has no valid 'seed' in its metadata")
        }
        let dropouts = dropoutLayers(model)
        var calls: [UInt64] = []
        if let text = m["dropout_calls"] {
            calls = text.split(separator: ",").compactMap { UInt64($0) }
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
            if let lr = m["learning_rate"].flatMap(Float.init) { optimizer.learningRate = lr }
        }
        for (d, c) in zip(dropouts, calls) { d.calls = c }
        return TrainingCheckpoint(epoch: epoch, seed: seed, baseLearningRate: m["base_learning_rate"].flatMap(Float.init),
                                  history: m["history"].map(History.init(json:)) ?? History(), metadata: m)
    }

    /// Every dropout layer inside `layer`, in order (through `Sequential` and `Residual`).
    static func dropoutLayers(_ layer: any Layer) -> [Dropout] {
        if let d = layer as? Dropout { return [d] }
        if let s = layer as? Sequential { return s.layers.flatMap(dropoutLayers) }
        if let r = layer as? Residual { return dropoutLayers(r.inner) + (r.shortcut.map(dropoutLayers) ?? []) }
        return []
    }
}

extension History {
    /// A history read back from `json()` (an unreadable text gives an empty history).
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
