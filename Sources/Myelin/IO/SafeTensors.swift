import Foundation

/// Errors from reading or writing checkpoints. Each names the file and, where there is one, the tensor.
public enum CheckpointError: Error, CustomStringConvertible, Equatable {
    /// The file is malformed: truncated, bad header, bad ranges, unsupported dtype.
    case corrupt(String, reason: String)
    /// The model has a tensor the checkpoint lacks.
    case missingTensor(String, name: String)
    /// The checkpoint has a tensor the model does not.
    case unexpectedTensor(String, name: String)
    /// A tensor's shape in the checkpoint differs from the model's.
    case shapeMismatch(String, name: String, model: [Int], checkpoint: [Int])
    /// Anything else (bad names, a checkpoint of another kind).
    case invalid(String, reason: String)

    public var description: String {
        switch self {
        case .corrupt(let f, let reason):
            return "\(f): not a valid safetensors file: \(reason)"
        case .missingTensor(let f, let name):
            return "\(f): has no tensor '\(name)', which the model needs"
        case .unexpectedTensor(let f, let name):
            return "\(f): tensor '\(name)' does not belong to the model (load with strict: false to ignore it)"
        case .shapeMismatch(let f, let name, let model, let checkpoint):
            return "\(f): tensor '\(name)' has shape \(checkpoint) in the checkpoint but \(model) in the model"
        case .invalid(let f, let reason):
            return "\(f): \(reason)"
        }
    }
}

/// One tensor read from a safetensors file: its name, shape and values (F32, row-major).
public struct SafeTensorsEntry: Equatable, Sendable {
    public let name: String
    public let shape: [Int]
    public let values: [Float]

    public init(name: String, shape: [Int], values: [Float]) {
        self.name = name; self.shape = shape; self.values = values
    }

    /// The values as a tensor on `device`.
    public func tensor(on device: Device = .default) -> Tensor { try! Tensor(values, shape: shape, on: device) }
}

/// The content of a safetensors file: named F32 tensors (in file order) and the string metadata.
public struct SafeTensorsFile: Sendable {
    public var entries: [SafeTensorsEntry]
    public var metadata: [String: String]

    /// The tensor named `name`, if any.
    public subscript(name: String) -> SafeTensorsEntry? { entries.first { $0.name == name } }
    public var names: [String] { entries.map(\.name) }
}

/// The safetensors format (https://github.com/huggingface/safetensors), byte-compatible with the Python
/// library's `save_file`: an 8-byte little-endian header length N, N bytes of JSON padded with spaces to a
/// multiple of 8 (`{"__metadata__":{...},"name":{"dtype":"F32","shape":[...],"data_offsets":[begin,end]},...}`,
/// tensors sorted by name, offsets relative to the data area), then the tensors' little-endian bytes back to back.
///
/// Myelin writes and reads F32 only. Tensor names follow PyTorch's `state_dict` keys (`0.weight`, `0.bias`, ...).
///
/// **Layout against PyTorch.** Myelin's `Dense` stores its weight as [in, out] so that the forward pass is one
/// GEMM `x · W`; PyTorch's `nn.Linear` stores [out, in] and computes `x · Wᵀ`. A Myelin checkpoint therefore holds
/// the transpose of what `torch.nn.Linear` expects: in Python, `state["0.weight"] = state["0.weight"].T` (for
/// every 2-D Dense weight) before `model.load_state_dict(state)`, and transpose back when going the other way.
/// Biases ([out]) and batch-norm vectors need no change.
///
/// ```swift
/// try SafeTensors.save(model.stateDict(), metadata: ["epoch": "3"], to: URL(fileURLWithPath: "model.safetensors"))
/// let file = try SafeTensors.load(URL(fileURLWithPath: "model.safetensors"))
/// print(file["0.weight"]!.shape)
/// ```
public enum SafeTensors {
    /// The largest header the Python library accepts (100 MB); a bigger length means a corrupt file.
    public static let maxHeaderLength = 100_000_000

    // MARK: writing

    /// The bytes of a safetensors file holding `tensors` (read back from their devices) and `metadata`.
    public static func encode(_ tensors: [(String, Tensor)], metadata: [String: String] = [:]) throws -> Data {
        try encode(entries: tensors.map { SafeTensorsEntry(name: $0.0, shape: $0.1.shape, values: $0.1.toArray()) },
                   metadata: metadata)
    }

    /// The bytes of a safetensors file holding `entries` and `metadata`.
    public static func encode(entries: [SafeTensorsEntry], metadata: [String: String] = [:]) throws -> Data {
        var seen = Set<String>()
        for e in entries {
            guard seen.insert(e.name).inserted else { throw CheckpointError.invalid("safetensors", reason: "tensor name '\(e.name)' appears twice") }
            guard e.name != "__metadata__" else { throw CheckpointError.invalid("safetensors", reason: "'__metadata__' cannot name a tensor") }
            guard e.values.count == e.shape.reduce(1, *) else {
                throw CheckpointError.invalid("safetensors", reason: "tensor '\(e.name)' has \(e.values.count) values for shape \(e.shape)")
            }
        }
        let sorted = entries.sorted { Array($0.name.utf8).lexicographicallyPrecedes(Array($1.name.utf8)) }
        var json = "{"
        var parts: [String] = []
        if !metadata.isEmpty {
            let keys = metadata.keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
            parts.append("\"__metadata__\":{" + keys.map { "\(jsonString($0)):\(jsonString(metadata[$0]!))" }.joined(separator: ",") + "}")
        }
        var offset = 0
        for e in sorted {
            let bytes = e.values.count * 4
            parts.append("\(jsonString(e.name)):{\"dtype\":\"F32\",\"shape\":[\(e.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + bytes)]}")
            offset += bytes
        }
        json += parts.joined(separator: ",") + "}"
        var header = Array(json.utf8)
        header += [UInt8](repeating: 0x20, count: (8 - header.count % 8) % 8)
        var out = Data(capacity: 8 + header.count + offset)
        var n = UInt64(header.count).littleEndian
        withUnsafeBytes(of: &n) { out.append(contentsOf: $0) }
        out.append(contentsOf: header)
        for e in sorted {
            e.values.withUnsafeBufferPointer { p in
                // Little-endian hosts (x86-64, arm64) store Float as safetensors does.
                out.append(UnsafeBufferPointer(start: UnsafeRawPointer(p.baseAddress)?.assumingMemoryBound(to: UInt8.self), count: p.count * 4))
            }
        }
        return out
    }

    /// Writes a safetensors file atomically (a temporary file in the same folder, then a rename): a failure
    /// leaves any previous file intact.
    public static func save(_ tensors: [(String, Tensor)], metadata: [String: String] = [:], to url: URL) throws {
        try AtomicFile.write(encode(tensors, metadata: metadata), to: url)
    }

    /// JSON string literal with the escapes serde_json uses.
    static func jsonString(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }

    // MARK: reading

    /// Reads and validates a safetensors file. Every malformed file is a `CheckpointError.corrupt` naming the file
    /// (and the tensor where one is at fault), never a crash.
    public static func load(_ url: URL) throws -> SafeTensorsFile {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            let exists = FileManager.default.fileExists(atPath: url.path)
            throw CheckpointError.invalid(url.path, reason: exists ? "cannot read the file (\(error.localizedDescription))" : "no such file")
        }
        return try decode(data, source: url.path)
    }

    /// Decodes and validates safetensors bytes; `source` names them in errors.
    public static func decode(_ data: Data, source: String) throws -> SafeTensorsFile {
        let bytes = [UInt8](data)
        func corrupt(_ why: String) -> CheckpointError { .corrupt(source, reason: why) }
        guard bytes.count >= 8 else { throw corrupt("the file has \(bytes.count) bytes, too short for the 8-byte header length (truncated?)") }
        var length: UInt64 = 0
        for i in (0..<8).reversed() { length = length << 8 | UInt64(bytes[i]) }
        guard length <= UInt64(maxHeaderLength) else {
            throw corrupt("header length \(length) is larger than the \(maxHeaderLength)-byte limit")
        }
        let headerLength = Int(length)
        guard 8 + headerLength <= bytes.count else {
            throw corrupt("header length \(headerLength) goes past the end of the file (\(bytes.count) bytes; truncated?)")
        }
        let headerBytes = Array(bytes[8..<(8 + headerLength)])
        guard let parsed = try? JSONSerialization.jsonObject(with: Data(headerBytes)),
              let header = parsed as? [String: Any] else {
            throw corrupt("the \(headerLength)-byte header is not a JSON object")
        }
        let dataStart = 8 + headerLength
        let dataSize = bytes.count - dataStart
        var metadata: [String: String] = [:]
        var ranges: [(name: String, shape: [Int], begin: Int, end: Int)] = []
        for (name, value) in header {
            if name == "__metadata__" {
                guard let m = value as? [String: Any] else { throw corrupt("__metadata__ is not a map of strings") }
                for (k, v) in m {
                    guard let s = v as? String else { throw corrupt("__metadata__ entry '\(k)' is not a string") }
                    metadata[k] = s
                }
                continue
            }
            guard let info = value as? [String: Any] else { throw corrupt("tensor '\(name)' is not described by a JSON object") }
            guard let dtype = info["dtype"] as? String else { throw corrupt("tensor '\(name)' has no dtype") }
            guard dtype == "F32" else {
                throw corrupt("tensor '\(name)' has dtype \(dtype); Myelin reads F32 only (convert with tensor.float() in PyTorch)")
            }
            guard let shapeValues = info["shape"] as? [Any], let shape = wholeNumbers(shapeValues), shape.allSatisfy({ $0 >= 0 }) else {
                throw corrupt("tensor '\(name)' has no valid shape (a list of non-negative whole numbers)")
            }
            guard let offsetValues = info["data_offsets"] as? [Any], let offsets = wholeNumbers(offsetValues), offsets.count == 2 else {
                throw corrupt("tensor '\(name)' has no valid data_offsets (two whole numbers)")
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin >= 0, begin <= end else { throw corrupt("tensor '\(name)' has data_offsets [\(begin), \(end)] that run backwards") }
            guard end <= dataSize else {
                throw corrupt("tensor '\(name)' has data_offsets [\(begin), \(end)] outside the \(dataSize)-byte data area (truncated?)")
            }
            var elements = 1
            for d in shape {
                let (p, overflow) = elements.multipliedReportingOverflow(by: d)
                guard !overflow else { throw corrupt("tensor '\(name)' has a shape \(shape) too large to exist") }
                elements = p
            }
            guard elements.multipliedReportingOverflow(by: 4).partialValue == end - begin, elements <= Int.max / 4 else {
                throw corrupt("tensor '\(name)' has shape \(shape) (\(elements) × 4 bytes) but data_offsets [\(begin), \(end)] hold \(end - begin) bytes")
            }
            ranges.append((name, shape, begin, end))
        }
        ranges.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        for (a, b) in zip(ranges, ranges.dropFirst()) where b.begin < a.end {
            throw corrupt("tensors '\(a.name)' [\(a.begin), \(a.end)] and '\(b.name)' [\(b.begin), \(b.end)] overlap")
        }
        let entries = ranges.map { r -> SafeTensorsEntry in
            let n = (r.end - r.begin) / 4
            let values = [Float](unsafeUninitializedCapacity: n) { out, initialized in
                bytes.withUnsafeBytes { raw in
                    for i in 0..<n {
                        out[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: dataStart + r.begin + 4 * i, as: UInt32.self)))
                    }
                }
                initialized = n
            }
            return SafeTensorsEntry(name: r.name, shape: r.shape, values: values)
        }
        return SafeTensorsFile(entries: entries, metadata: metadata)
    }

    /// JSON numbers that are whole and fit an Int (JSONSerialization gives NSNumber for both ints and doubles).
    private static func wholeNumbers(_ values: [Any]) -> [Int]? {
        var out: [Int] = []
        for v in values {
            // Foundation on Linux gives Int, Double or NSNumber depending on the text; accept whole values only.
            let d: Double
            if let i = v as? Int { out.append(i); continue }
            else if let x = v as? Double { d = x }
            else if let n = v as? NSNumber { d = n.doubleValue }
            else { return nil }
            guard d.rounded() == d, Swift.abs(d) < 9e15 else { return nil }
            out.append(Int(d))
        }
        return out
    }
}

// MARK: models


extension Layer {
    /// Saves every named tensor (`stateDict()`, keyed like PyTorch's `state_dict`) to a safetensors file,
    /// atomically. See `SafeTensors` for how Dense weights map to PyTorch's `Linear`.
    ///
    /// ```swift
    /// try model.save(to: URL(fileURLWithPath: "mlp.safetensors"))
    /// try model.load(from: URL(fileURLWithPath: "mlp.safetensors"))
    /// ```
    public func save(to url: URL, metadata: [String: String] = [:]) throws {
        try SafeTensors.save(stateDict(), metadata: metadata, to: url)
    }

    /// Loads every named tensor from a safetensors file, in place (parameters keep their identity, so an
    /// optimizer built on them stays valid). A tensor missing from the file, or of another shape, is an error
    /// naming it and both shapes; with `strict`, so is a tensor of the file the model does not have
    /// (names under `ignoringPrefixes`, such as a training checkpoint's `optimizer.` state, are skipped).
    public func load(from url: URL, strict: Bool = true) throws {
        try loadState(SafeTensors.load(url), source: url.path, strict: strict)
    }

    /// Loads named tensors already read from a file (see `load(from:strict:)`); `source` names the file in errors.
    public func loadState(_ file: SafeTensorsFile, source: String, strict: Bool = true,
                          ignoringPrefixes: [String] = ["optimizer."]) throws {
        let own = stateDict()
        // Check everything before changing anything.
        for (name, t) in own {
            guard let e = file[name] else { throw CheckpointError.missingTensor(source, name: name) }
            guard e.shape == t.shape else {
                throw CheckpointError.shapeMismatch(source, name: name, model: t.shape, checkpoint: e.shape)
            }
        }
        if strict {
            let names = Set(own.map(\.0))
            for e in file.entries where !names.contains(e.name) && !ignoringPrefixes.contains(where: { e.name.hasPrefix($0) }) {
                throw CheckpointError.unexpectedTensor(source, name: e.name)
            }
        }
        for (name, t) in own { t.assign(file[name]!.values) }
    }
}
