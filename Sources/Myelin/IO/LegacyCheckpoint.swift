import Foundation

/// Converts Myelin checkpoints of the old layout (layout 1, written before Myelin followed PyTorch) to the current
/// one, which `Layer.load(from:)` and PyTorch's `load_state_dict` read directly.
///
/// Layout 1 stored each `Dense` weight [in, out] (the transpose of `nn.Linear.weight`), numbered a `Sequential`'s
/// keys by Swift layer (a `Dense(activation: .relu)` took one index where PyTorch's `Linear` + `ReLU` take two) and
/// had no `num_batches_tracked` in `BatchNorm`. Such a file cannot be read without knowing the model, so the
/// conversion takes the model whose structure wrote it (its values are not used or changed): Dense weights (and
/// their optimizer moments in a training checkpoint) are transposed, keys renumbered, `num_batches_tracked` set
/// to 0, and the metadata kept with `"myelin_layout": "2"` added.
///
/// Loading refuses an old file it can recognize (a training checkpoint without the marker, or a file whose keys
/// and shapes are exactly the old layout of the model) with a message that points here. A file without metadata
/// whose Dense layers are all square and have no fused activation looks the same in both layouts: convert it
/// explicitly.
///
/// ```swift
/// let model = Sequential { Dense(inputSize: 4, outputSize: 8, activation: .relu); Dense(inputSize: 8, outputSize: 3) }
/// try LegacyCheckpoint.convert(from: URL(fileURLWithPath: "old.safetensors"),
///                              to: URL(fileURLWithPath: "new.safetensors"), for: model)
/// ```
/// On the command line, for the sample models: `myelin convert-checkpoint OLD NEW --model fashion-mnist`.
public enum LegacyCheckpoint {
    /// The instructions errors give for an old-layout file.
    public static let howToConvert = "convert it once with `myelin convert-checkpoint OLD NEW --model NAME` (the sample models) or, in Swift, `LegacyCheckpoint.convert(from: old, to: new, for: model)` with a model of the same structure"

    /// One tensor of a model in both layouts.
    struct KeyMapping {
        /// The key in the current layout.
        let name: String
        /// The key in the old layout, nil for a tensor old files lack (`num_batches_tracked`).
        let legacyName: String?
        /// Stored transposed in the old layout (a Dense weight).
        let transposed: Bool
    }

    /// Every named tensor of `layer`, in `namedTensors` order, with its old-layout key. Walks `Sequential`
    /// and `Residual`; any other layer keeps its keys (only Myelin's own containers ever renumbered).
    static func mapping(_ layer: any Layer) -> [KeyMapping] {
        func prefixed(_ m: [KeyMapping], _ new: String, _ old: String) -> [KeyMapping] {
            m.map { KeyMapping(name: new + $0.name, legacyName: $0.legacyName.map { old + $0 }, transposed: $0.transposed) }
        }
        if let s = layer as? Sequential {
            return zip(s.torchIndices, s.layers).enumerated().flatMap { position, pair in
                prefixed(mapping(pair.1), "\(pair.0).", "\(position).")
            }
        }
        if let r = layer as? Residual {
            return prefixed(mapping(r.inner), "inner.", "inner.") + (r.shortcut.map { prefixed(mapping($0), "shortcut.", "shortcut.") } ?? [])
        }
        return layer.namedTensors.map { name, _ in
            KeyMapping(name: name,
                       legacyName: layer is BatchNorm && name == "num_batches_tracked" ? nil : name,
                       transposed: layer is Dense && name == "weight")
        }
    }

    /// Throws `oldLayout` for a Myelin training checkpoint without the layout marker, and `invalid` for an
    /// unknown marker; anything else (a marked file, a PyTorch file) passes.
    static func checkLayoutMarker(_ file: SafeTensorsFile, source: String) throws {
        if let layout = file.metadata[SafeTensors.layoutKey] {
            guard layout == SafeTensors.currentLayout else {
                throw CheckpointError.invalid(source, reason: "has state layout '\(layout)' (metadata '\(SafeTensors.layoutKey)'); this Myelin reads layout \(SafeTensors.currentLayout)")
            }
            return
        }
        if file.metadata["format"] == "myelin-training-checkpoint" {
            throw CheckpointError.oldLayout(source, reason: "is a Myelin training checkpoint in the old layout (no '\(SafeTensors.layoutKey)' in its metadata: Dense weights [in, out], keys numbered by Swift layer)")
        }
    }

    /// True when the file holds exactly `model`'s tensors in the old layout (optimizer state aside), and that
    /// layout differs from the current one for this model (so the file cannot be a current one).
    static func matchesOldLayout(_ file: SafeTensorsFile, model: any Layer) -> Bool {
        let maps = mapping(model)
        let own = model.namedTensors
        guard maps.count == own.count else { return false }
        var expected: [String: [Int]] = [:]
        var differs = false
        for (m, (_, t)) in zip(maps, own) {
            guard let old = m.legacyName else { differs = true; continue }
            let shape = m.transposed ? Array(t.shape.reversed()) : t.shape
            expected[old] = shape
            if old != m.name || shape != t.shape { differs = true }
        }
        let fileTensors = file.entries.filter { !$0.name.hasPrefix(TrainingCheckpoint.optimizerPrefix) }
        guard differs, fileTensors.count == expected.count else { return false }
        return fileTensors.allSatisfy { expected[$0.name] == $0.shape }
    }

    /// The current-layout version of `file`, an old-layout checkpoint (model file or training checkpoint) written
    /// for a model of `model`'s structure. Throws, naming the tensor and both shapes, when the file does not hold
    /// that model's tensors in the old layout; `source` names the file in errors.
    public static func convert(_ file: SafeTensorsFile, source: String, for model: any Layer) throws -> SafeTensorsFile {
        if let layout = file.metadata[SafeTensors.layoutKey] {
            throw CheckpointError.invalid(source, reason: "is already in state layout '\(layout)' (metadata '\(SafeTensors.layoutKey)'); only files without it need converting")
        }
        let maps = mapping(model)
        let own = model.namedTensors
        let byName = Dictionary(file.entries.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        var out: [SafeTensorsEntry] = []
        var used = Set<String>()
        var transposedParameters: Set<Int> = []
        var parameterIndex = 0
        for (m, (name, t)) in zip(maps, own) {
            defer { if t.requiresGrad { parameterIndex += 1 } }
            guard let old = m.legacyName else {
                out.append(SafeTensorsEntry(name: name, shape: t.shape, values: [Float](repeating: 0, count: t.count)))
                continue
            }
            let oldShape = m.transposed ? Array(t.shape.reversed()) : t.shape
            guard let e = byName[old] else {
                throw CheckpointError.invalid(source, reason: "has no tensor '\(old)' (the old-layout key of '\(name)' \(oldShape)); is it a checkpoint of this model?")
            }
            guard e.shape == oldShape else {
                throw CheckpointError.shapeMismatch(source, name: old, model: oldShape, checkpoint: e.shape)
            }
            used.insert(old)
            if m.transposed {
                out.append(SafeTensorsEntry(name: name, shape: t.shape, values: transpose(e.values, rows: oldShape[0], columns: oldShape[1])))
                if t.requiresGrad { transposedParameters.insert(parameterIndex) }
            } else {
                out.append(SafeTensorsEntry(name: name, shape: e.shape, values: e.values))
            }
        }
        for e in file.entries where !used.contains(e.name) {
            guard e.name.hasPrefix(TrainingCheckpoint.optimizerPrefix) else {
                throw CheckpointError.invalid(source, reason: "has a tensor '\(e.name)' that the model's old layout does not have; is it a checkpoint of this model?")
            }
            // optimizer.<parameter index>.<slot>: a transposed parameter's slots (its shape) are transposed too.
            let parts = e.name.dropFirst(TrainingCheckpoint.optimizerPrefix.count).split(separator: ".", maxSplits: 1)
            if parts.count == 2, let i = Int(parts[0]), transposedParameters.contains(i), e.shape.count == 2 {
                out.append(SafeTensorsEntry(name: e.name, shape: [e.shape[1], e.shape[0]],
                                            values: transpose(e.values, rows: e.shape[0], columns: e.shape[1])))
            } else {
                out.append(e)
            }
        }
        var metadata = file.metadata
        metadata[SafeTensors.layoutKey] = SafeTensors.currentLayout
        return SafeTensorsFile(entries: out, metadata: metadata)
    }

    /// Reads the old-layout file `old`, converts it for `model`'s structure (see `convert(_:source:for:)`) and
    /// writes the result to `new` atomically (`new` may be `old`).
    public static func convert(from old: URL, to new: URL, for model: any Layer) throws {
        let converted = try convert(SafeTensors.load(old), source: old.path, for: model)
        try AtomicFile.write(SafeTensors.encode(entries: converted.entries, metadata: converted.metadata), to: new)
    }

    /// x [rows, columns] row-major as [columns, rows].
    static func transpose(_ x: [Float], rows: Int, columns: Int) -> [Float] {
        var out = [Float](repeating: 0, count: x.count)
        for r in 0..<rows { for c in 0..<columns { out[c * rows + r] = x[r * columns + c] } }
        return out
    }
}
