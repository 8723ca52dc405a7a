import Foundation

/// Errors from reading or writing checkpoints. Each names the file and, where there is one, the tensor.
public enum CheckpointError: Error, CustomStringConvertible, Equatable {
    /// The file is malformed: truncated, bad header, bad ranges, unsupported dtype.
    case corrupt(String, reason: String)
    /// A tensor's shape in the checkpoint differs from the model's (the message says when it is the transpose).
    case shapeMismatch(String, name: String, model: [Int], checkpoint: [Int])
    /// Strict loading: keys of the model absent from the checkpoint, and keys of the checkpoint the model does not
    /// have, all of them (like the message of PyTorch's `load_state_dict`).
    case keysMismatch(String, missing: [String], unexpected: [String])
    /// A Myelin checkpoint written before the PyTorch layout (Dense weights [in, out], keys numbered by Swift
    /// layer): the message says how to convert it (`LegacyCheckpoint`).
    case oldLayout(String, reason: String)
    /// Anything else (bad names, a checkpoint of another kind).
    case invalid(String, reason: String)
    /// A model (or optimizer state) with NaN or infinite values, refused when saving or loading unless
    /// `allowNonFinite` is set: the file, the tensor, how many of its values are non-finite, the first one's
    /// index and value, and whether it was a save or a load.
    case nonFinite(String, name: String, count: Int, index: Int, value: Float, saving: Bool)

    public var description: String {
        switch self {
        case .corrupt(let f, let reason):
            return "\(f): not a valid safetensors file: \(reason)"
        case .shapeMismatch(let f, let name, let model, let checkpoint):
            var text = "\(f): tensor '\(name)' has shape \(checkpoint) in the checkpoint but \(model) in the model"
            if model.count == 2, checkpoint == model.reversed() {
                text += " (the transpose: Myelin stores a Dense weight [out, in] like PyTorch's nn.Linear; a file written"
                    + " by Myelin before that layout stores [in, out]: \(LegacyCheckpoint.howToConvert))"
            }
            return text
        case .keysMismatch(let f, let missing, let unexpected):
            var parts: [String] = []
            if !missing.isEmpty {
                parts.append("missing (the model has, the checkpoint lacks): " + SafeTensors.nameList(missing))
            }
            if !unexpected.isEmpty {
                parts.append("unexpected (the checkpoint has, the model lacks): " + SafeTensors.nameList(unexpected))
            }
            return "\(f): the keys do not match the model: " + parts.joined(separator: "; ")
                + SwiftAPIAdvice.loadNotStrict
        case .oldLayout(let f, let reason):
            return "\(f): \(reason); \(LegacyCheckpoint.howToConvert)"
        case .invalid(let f, let reason):
            return "\(f): \(reason)"
        case .nonFinite(let f, let name, let count, let index, let value, let saving):
            return "\(f): tensor '\(name)' holds \(count) NaN or infinite value\(count == 1 ? "" : "s") (the first, \(value), at index \(index)): "
                + (saving ? "the model is not saved (training diverged or its data held NaN); " + SwiftAPIAdvice.saveNonFinite
                          : "the model is not loaded (it was saved from a diverged run, or the file is damaged); " + SwiftAPIAdvice.loadNonFinite)
        }
    }
}

/// One tensor read from a safetensors file: its name, shape, values (as Float, row-major) and the dtype it had
/// in the file (`F32`, or e.g. `U8`/`I64` for integer labels, converted to Float on reading).
public struct SafeTensorsEntry: Equatable, Sendable {
    /// The key, e.g. `0.weight`.
    public let name: String
    /// The dimensions.
    public let shape: [Int]
    /// The elements, row-major.
    public let values: [Float]
    /// The safetensors dtype the values were stored as (Myelin writes `F32`).
    public let dtype: String

    /// An entry from its parts (`values.count` must be the product of `shape`); `dtype` records the
    /// element type the values were read from (they are always held as `Float`).
    public init(name: String, shape: [Int], values: [Float], dtype: String = "F32") {
        self.name = name; self.shape = shape; self.values = values; self.dtype = dtype
    }

    /// The values as a tensor on `device`.
    public func tensor(on device: Device = .default) -> Tensor { try! Tensor(values, shape: shape, on: device) }
}

/// The content of a safetensors file: named F32 tensors (in file order) and the string metadata.
public struct SafeTensorsFile: Sendable {
    /// The tensors, in the order of the file's data area.
    public var entries: [SafeTensorsEntry]
    /// The `__metadata__` strings (empty when the file has none).
    public var metadata: [String: String]

    /// A file's content from its tensors (in file order) and metadata (`SafeTensors.encode(entries:metadata:)` writes it).
    public init(entries: [SafeTensorsEntry], metadata: [String: String] = [:]) {
        self.entries = entries; self.metadata = metadata
    }

    /// The tensor named `name`, if any.
    public subscript(name: String) -> SafeTensorsEntry? { entries.first { $0.name == name } }
    /// The tensors' names, in entry order.
    public var names: [String] { entries.map(\.name) }
    /// Every tensor by name, on `device` (values as Float, whatever their dtype in the file).
    public func tensors(on device: Device = .default) -> [String: Tensor] {
        Dictionary(entries.map { ($0.name, $0.tensor(on: device)) }, uniquingKeysWith: { first, _ in first })
    }
}

/// What a safetensors header says (`SafeTensors.layout(prefix:fileSize:source:)`): the metadata, and each tensor's
/// dtype, shape and byte range in the data area (in file order, covering it exactly), which starts at `dataStart`.
struct SafeTensorsLayout {
    /// One tensor's place: bytes begin..<end of the data area.
    struct Range {
        let name: String, dtype: String, shape: [Int], begin: Int, end: Int
        /// The number of elements.
        var count: Int { (end - begin) / SafeTensors.elementSizes[dtype]! }
    }
    var metadata: [String: String]
    var ranges: [Range]
    var dataStart: Int
}

/// The safetensors format (https://github.com/huggingface/safetensors), byte-compatible with the Python
/// library's `save_file`: an 8-byte little-endian header length N, N bytes of JSON padded with spaces to a
/// multiple of 8 (`{"__metadata__":{...},"name":{"dtype":"F32","shape":[...],"data_offsets":[begin,end]},...}`,
/// tensors sorted by name, offsets relative to the data area), then the tensors' little-endian bytes back to back.
///
/// Myelin writes F32. It reads F32, F64, F16, BF16, the signed and unsigned integers (I8 ... I64, U8 ... U64) and
/// BOOL, converting every value to Float (integer labels stored as `U8` or `I64` load as whole-number floats;
/// integers beyond 2^24 round). Tensor names follow PyTorch's `state_dict` keys (`0.weight`, `0.bias`, ...).
///
/// **Layout against PyTorch.** A model's file is a PyTorch `state_dict` of the equivalent module: `Dense.weight` is
/// [out, in] like `nn.Linear.weight`, and keys are numbered like `nn.Sequential` (see `Sequential`), so
/// `torch_model.load_state_dict(safetensors.torch.load_file(path), strict=True)` works on Myelin's files and
/// `Layer.load(from:)` on `safetensors.torch.save_file(torch_model.state_dict(), path)`. `Layer.save` marks its
/// files with `"myelin_layout": "2"` in the metadata; files of older Myelin versions are refused with a message
/// naming the conversion (`LegacyCheckpoint`).
///
/// ```swift
/// try SafeTensors.save(model.namedTensors, metadata: ["epoch": "3"], to: URL(fileURLWithPath: "model.safetensors"))
/// let file = try SafeTensors.load(URL(fileURLWithPath: "model.safetensors"))
/// print(file["0.weight"]!.shape)
/// ```
public enum SafeTensors {
    /// The largest header the Python library accepts (100 MB); a bigger length means a corrupt file.
    public static let maxHeaderLength = 100_000_000
    /// The most tensors a file may hold: 100,000, about 100 times a 70-billion-parameter transformer's (Llama 2
    /// 70B has 723) and several times the largest mixture-of-experts shard. A header naming more is refused
    /// before its JSON is parsed (10^6 tiny entries fit in the 100 MB header and took 127 s and 4.3 GB to refuse).
    public static let maxTensors = 100_000
    /// The most names an error message lists (then "... and N more").
    public static let maxNamesListed = 20
    /// The metadata key of the state layout `Layer.save` and `TrainingCheckpoint.save` write.
    public static let layoutKey = "myelin_layout"
    /// Layout 2: Dense weights [out, in] and keys numbered like PyTorch's `nn.Sequential`. (Files of layout 1,
    /// written before, carry no marker.)
    public static let currentLayout = "2"

    // MARK: writing

    /// The bytes of a safetensors file holding `tensors` (read back from their devices) and `metadata`.
    public static func encode(_ tensors: [(String, Tensor)], metadata: [String: String] = [:]) throws -> Data {
        try encode(entries: entries(tensors), metadata: metadata)
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
    /// leaves any previous file intact. Values are written as they are, NaN included; `Layer.save` and
    /// `TrainingCheckpoint.save` refuse non-finite models.
    public static func save(_ tensors: [(String, Tensor)], metadata: [String: String] = [:], to url: URL) throws {
        try AtomicFile.write(encode(tensors, metadata: metadata), to: url)
    }

    /// Writes a state dict (`Layer.stateDict()`) as a safetensors file atomically (tensors sorted by name, as always).
    public static func save(_ tensors: [String: Tensor], metadata: [String: String] = [:], to url: URL) throws {
        try save(tensors.map { ($0.key, $0.value) }, metadata: metadata, to: url)
    }

    /// Throws `CheckpointError.nonFinite` for the first entry holding a NaN or infinite value (names, in order).
    static func checkFinite(_ entries: [SafeTensorsEntry], source: String, saving: Bool) throws {
        for e in entries {
            guard let first = e.values.firstIndex(where: { !$0.isFinite }) else { continue }
            let count = e.values.lazy.filter { !$0.isFinite }.count
            throw CheckpointError.nonFinite(source, name: e.name, count: count, index: first, value: e.values[first], saving: saving)
        }
    }

    /// The host copies of named tensors (one read each), for writing; a copy the host cannot hold is
    /// `DeviceError.outOfMemory` naming the tensor.
    static func entries(_ tensors: [(String, Tensor)]) throws -> [SafeTensorsEntry] {
        try tensors.map { SafeTensorsEntry(name: $0.0, shape: $0.1.shape, values: try $0.1.checkedArray(op: "saving '\($0.0)'")) }
    }

    /// Quoted names for a message, at most `maxNamesListed` of them, then how many more there are.
    static func nameList(_ names: [String]) -> String {
        let shown = names.prefix(maxNamesListed).map { "'\($0)'" }.joined(separator: ", ")
        return names.count > maxNamesListed ? shown + " ... and \(names.count - maxNamesListed) more" : shown
    }

    /// Whether `header` holds more than `limit` JSON objects (braces outside strings), found without parsing it:
    /// a count of every brace first (memchr), then, only when that passes the limit, a scan that skips strings and
    /// stops at the limit.
    static func hasMoreObjects(than limit: Int, _ header: ArraySlice<UInt8>) -> Bool {
        header.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return false }
            let end = base + buffer.count
            var braces = 0, p = base
            while braces <= limit, p < end, let hit = memchr(p, Int32(UInt8(ascii: "{")), end - p) {
                braces += 1
                p = UnsafePointer(hit.assumingMemoryBound(to: UInt8.self)) + 1
            }
            guard braces > limit else { return false }
            var objects = 0, inString = false, escaped = false
            for byte in buffer {
                if inString {
                    if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
                } else if byte == UInt8(ascii: "\"") {
                    inString = true
                } else if byte == UInt8(ascii: "{") {
                    objects += 1
                    if objects > limit { return true }
                }
            }
            return false
        }
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
    /// Unreadable files say why, naming the file: no such file, permission denied, a folder, not a regular
    /// file (a FIFO), a read error.
    public static func load(_ url: URL) throws -> SafeTensorsFile {
        let bytes: [UInt8]
        do { bytes = try ReadableFile.contents(of: url) } catch let e as FileError {
            throw CheckpointError.invalid(url.path, reason: "cannot read the file (\(e.reason))")
        }
        return try decode(bytes: bytes, source: url.path)
    }

    /// Decodes and validates safetensors bytes; `source` names them in errors.
    ///
    /// As strict as Python's `safetensors`: the tensors' `data_offsets`, in order, cover the data area exactly —
    /// the first starts at 0, each starts where the one before ends (no gap, no overlap), and the last ends where
    /// the file ends (no bytes after it).
    public static func decode(_ data: Data, source: String) throws -> SafeTensorsFile {
        try decode(bytes: [UInt8](data), source: source)
    }

    static func decode(bytes: [UInt8], source: String) throws -> SafeTensorsFile {
        let layout = try layout(prefix: bytes[...], fileSize: bytes.count, source: source)
        let entries = layout.ranges.map { r -> SafeTensorsEntry in
            let values = [Float](unsafeUninitializedCapacity: r.count) { out, initialized in
                bytes.withUnsafeBytes { convert(r.dtype, UnsafeRawBufferPointer(rebasing: $0[(layout.dataStart + r.begin)...]),
                                                count: r.count, into: out.baseAddress!) }
                initialized = r.count
            }
            return SafeTensorsEntry(name: r.name, shape: r.shape, values: values, dtype: r.dtype)
        }
        return SafeTensorsFile(entries: entries, metadata: layout.metadata)
    }

    /// The header length a file's first 8 bytes give (little-endian), which `bytes` must hold.
    static func headerLength(_ bytes: ArraySlice<UInt8>) -> UInt64 {
        var length: UInt64 = 0
        for i in (0..<8).reversed() { length = length << 8 | UInt64(bytes[bytes.startIndex + i]) }
        return length
    }

    /// The header of a safetensors file of `fileSize` bytes, from a `prefix` of the file that holds at least its
    /// first 8 bytes and, when the length they give fits the file, the whole header: the metadata and every tensor's
    /// place, checked as `decode` checks them (each a `CheckpointError.corrupt` naming `source`).
    static func layout(prefix bytes: ArraySlice<UInt8>, fileSize: Int, source: String) throws -> SafeTensorsLayout {
        func corrupt(_ why: String) -> CheckpointError { .corrupt(source, reason: why) }
        guard fileSize >= 8, bytes.count >= 8 else { throw corrupt("the file has \(fileSize) bytes, too short for the 8-byte header length (truncated?)") }
        let length = headerLength(bytes)
        guard length <= UInt64(maxHeaderLength) else {
            throw corrupt("header length \(length) is larger than the \(maxHeaderLength)-byte limit")
        }
        let headerLength = Int(length)
        guard 8 + headerLength <= fileSize else {
            throw corrupt("header length \(headerLength) goes past the end of the file (\(fileSize) bytes; truncated?)")
        }
        precondition(bytes.count >= 8 + headerLength, "SafeTensors.layout: the prefix does not hold the header")
        let header = bytes[(bytes.startIndex + 8)..<(bytes.startIndex + 8 + headerLength)]
        // Counted before parsing (the header's own braces, and __metadata__'s, come on top of one per tensor): a
        // header of a million tiny entries is refused in well under a second.
        guard !hasMoreObjects(than: maxTensors + 2, header) else {
            throw corrupt("the header describes more than the \(maxTensors) tensors Myelin reads from one file (SafeTensors.maxTensors)")
        }
        let headerBytes = Array(header)
        guard let parsed = try? JSONSerialization.jsonObject(with: Data(headerBytes)),
              let header = parsed as? [String: Any] else {
            throw corrupt("the \(headerLength)-byte header is not a JSON object")
        }
        let dataStart = 8 + headerLength
        let dataSize = fileSize - dataStart
        var metadata: [String: String] = [:]
        var ranges: [SafeTensorsLayout.Range] = []
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
            guard let elementSize = elementSizes[dtype] else {
                throw corrupt("tensor '\(name)' has dtype \(dtype); Myelin reads \(readableDTypes) (convert with tensor.float() in PyTorch)")
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
            guard elements <= Int.max / 8, elements * elementSize == end - begin else {
                throw corrupt("tensor '\(name)' has shape \(shape) (\(elements) × \(elementSize) bytes of \(dtype)) but data_offsets [\(begin), \(end)] hold \(end - begin) bytes")
            }
            ranges.append(SafeTensorsLayout.Range(name: name, dtype: dtype, shape: shape, begin: begin, end: end))
        }
        ranges.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        // Like Python's safetensors: the tensors cover the data area exactly, in order.
        if let first = ranges.first, first.begin != 0 {
            throw corrupt("\(first.begin) bytes before the first tensor '\(first.name)' [\(first.begin), \(first.end)] belong to no tensor (the data must start at offset 0)")
        }
        for (a, b) in zip(ranges, ranges.dropFirst()) {
            if b.begin < a.end {
                throw corrupt("tensors '\(a.name)' [\(a.begin), \(a.end)] and '\(b.name)' [\(b.begin), \(b.end)] overlap")
            }
            if b.begin > a.end {
                throw corrupt("\(b.begin - a.end) bytes between tensors '\(a.name)' [\(a.begin), \(a.end)] and '\(b.name)' [\(b.begin), \(b.end)] belong to no tensor")
            }
        }
        let covered = ranges.last?.end ?? 0
        guard covered == dataSize else {
            throw corrupt("\(dataSize - covered) bytes after the end of the last tensor's data (the data area holds \(dataSize) bytes, the tensors \(covered); Python's safetensors refuses such a file too)")
        }
        return SafeTensorsLayout(metadata: metadata, ranges: ranges, dataStart: dataStart)
    }

    /// Converts `count` little-endian elements of `dtype` at the start of `raw` to Float into `out`.
    static func convert(_ dtype: String, _ raw: UnsafeRawBufferPointer, count n: Int, into out: UnsafeMutablePointer<Float>) {
        guard n > 0 else { return }
        if dtype == "F32" && UInt32(littleEndian: 1) == 1 {
            // The file's bytes are the host's Floats: one copy.
            UnsafeMutableRawPointer(out).copyMemory(from: raw.baseAddress!, byteCount: n * 4)
            return
        }
        func load<T: FixedWidthInteger>(_ i: Int, _: T.Type) -> T {
            T(littleEndian: raw.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self))
        }
        for i in 0..<n {
            switch dtype {
            case "F32": out[i] = Float(bitPattern: load(i, UInt32.self))
            case "F64": out[i] = Float(Double(bitPattern: load(i, UInt64.self)))
            case "F16": out[i] = floatFromHalf(load(i, UInt16.self))
            case "BF16": out[i] = Float(bitPattern: UInt32(load(i, UInt16.self)) << 16)
            case "I64": out[i] = Float(load(i, Int64.self))
            case "I32": out[i] = Float(load(i, Int32.self))
            case "I16": out[i] = Float(load(i, Int16.self))
            case "I8": out[i] = Float(load(i, Int8.self))
            case "U64": out[i] = Float(load(i, UInt64.self))
            case "U32": out[i] = Float(load(i, UInt32.self))
            case "U16": out[i] = Float(load(i, UInt16.self))
            case "U8": out[i] = Float(load(i, UInt8.self))
            default: out[i] = load(i, UInt8.self) == 0 ? 0 : 1   // BOOL
            }
        }
    }

    /// Bytes per element of each dtype Myelin reads.
    static let elementSizes: [String: Int] = ["F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2,
                                               "I8": 1, "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1]
    static let readableDTypes = "F32, F64, F16, BF16, I8, I16, I32, I64, U8, U16, U32, U64 and BOOL"

    /// An IEEE half (binary16) as Float, exactly (subnormals, infinities and NaN included).
    static func floatFromHalf(_ h: UInt16) -> Float {
        let sign = UInt32(h >> 15) << 31
        let exponent = Int(h >> 10) & 0x1F
        let mantissa = UInt32(h & 0x3FF)
        if exponent == 0x1F { return Float(bitPattern: sign | 0x7F80_0000 | mantissa << 13) }
        if exponent == 0 {
            let magnitude = Float(mantissa) * 0x1p-24
            return sign == 0 ? magnitude : -magnitude
        }
        return Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | mantissa << 13)
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
    /// atomically, with `"myelin_layout": "2"` added to `metadata`. The file loads into the equivalent PyTorch
    /// module with `load_state_dict(safetensors.torch.load_file(path), strict=True)` (see `SafeTensors`).
    ///
    /// A model holding a NaN or infinite value is not saved (`CheckpointError.nonFinite` names the tensor) unless
    /// `allowNonFinite` is true.
    ///
    /// ```swift
    /// try model.save(to: URL(fileURLWithPath: "mlp.safetensors"))
    /// try model.load(from: URL(fileURLWithPath: "mlp.safetensors"))
    /// ```
    public func save(to url: URL, metadata: [String: String] = [:], allowNonFinite: Bool = false) throws {
        var metadata = metadata
        metadata[SafeTensors.layoutKey] = SafeTensors.currentLayout
        let entries = try SafeTensors.entries(namedTensors)
        if !allowNonFinite { try SafeTensors.checkFinite(entries, source: url.path, saving: true) }
        try AtomicFile.write(SafeTensors.encode(entries: entries, metadata: metadata), to: url)
    }

    /// Loads every named tensor from a safetensors file, in place (parameters keep their identity, so an
    /// optimizer built on them stays valid): a file `Layer.save` wrote, or a PyTorch `state_dict` of the
    /// equivalent module saved with `safetensors.torch.save_file`. Checked before anything changes: a tensor of
    /// another shape is an error naming it and both shapes; with `strict` (the default) so are missing and
    /// unexpected keys, all named. An old-layout Myelin file is refused with the way to convert it, and so is a
    /// tensor with a NaN or infinite value (`CheckpointError.nonFinite`) unless `allowNonFinite` is true.
    public func load(from url: URL, strict: Bool = true, allowNonFinite: Bool = false) throws {
        try loadState(SafeTensors.load(url), source: url.path, strict: strict, allowNonFinite: allowNonFinite)
    }

    /// Loads named tensors already read from a file (see `load(from:strict:)`); `source` names the file in errors.
    /// Names under `ignoringPrefixes` (a training checkpoint's `optimizer.` state) are never unexpected. Without
    /// `strict`, only the tensors both sides have are copied (shapes must still agree). A tensor to be copied that
    /// holds a NaN or infinite value is refused unless `allowNonFinite`.
    public func loadState(_ file: SafeTensorsFile, source: String, strict: Bool = true,
                          ignoringPrefixes: [String] = ["optimizer."], allowNonFinite: Bool = false) throws {
        try LegacyCheckpoint.checkLayoutMarker(file, source: source)
        let own = namedTensors
        let byName = Dictionary(file.entries.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let mismatch = StateMismatch(model: own, checkpoint: file.entries.map { ($0.name, $0.shape) },
                                     ignoring: { name in ignoringPrefixes.contains { name.hasPrefix($0) } })
        // Check everything before changing anything.
        if let error = mismatch.error(source: source, strict: strict) {
            if file.metadata[SafeTensors.layoutKey] == nil, LegacyCheckpoint.matchesOldLayout(file, model: self) {
                throw CheckpointError.oldLayout(source, reason: "is a Myelin checkpoint in the old layout (Dense weights [in, out], keys numbered by Swift layer), written before Myelin used PyTorch's layout")
            }
            throw error
        }
        if !allowNonFinite { try SafeTensors.checkFinite(own.compactMap { byName[$0.0] }, source: source, saving: false) }
        for (name, t) in own {
            if let e = byName[name] { t.assign(e.values) }
        }
    }
}

extension Dataset {
    /// A data set from two tensors of a safetensors file (e.g. one written by `safetensors.numpy.save_file`):
    /// features named `features` ([N, ...]) and targets named `targets` ([N] class labels or [N, ...] values).
    /// Integer tensors (`U8` images, `I64` labels, ...) become Float on load. With `classes`, the targets are
    /// class labels: shape [N], each a whole number in 0..<classes. NaN and infinite values are refused, naming the
    /// file, the tensor, the sample and the element, unless `nonFinite` replaces them; all checks run on the host
    /// before the upload.
    ///
    /// ```swift
    /// let data = try Dataset(safetensors: URL(fileURLWithPath: "train.safetensors"), features: "x", targets: "y", classes: 10)
    /// ```
    public init(safetensors url: URL, features: String, targets: String, classes: Int? = nil,
                nonFinite: NonFiniteValues = .refuse, on device: Device = .default) throws {
        let file = try SafeTensors.load(url)
        guard let x = file[features] else {
            throw CheckpointError.invalid(url.path, reason: "has no tensor '\(features)' for the features (it has \(file.names.sorted()))")
        }
        guard let y = file[targets] else {
            throw CheckpointError.invalid(url.path, reason: "has no tensor '\(targets)' for the targets (it has \(file.names.sorted()))")
        }
        guard x.shape.count >= 1, y.shape.count >= 1 else {
            throw DataError.invalid(url.path, reason: "features '\(features)' \(x.shape) and targets '\(targets)' \(y.shape) need a first (sample) dimension")
        }
        var xValues = x.values, yValues = y.values
        try nonFinite.apply(to: &xValues, sampleSize: Swift.max(1, x.shape.dropFirst().reduce(1, *)), source: url.path, part: "features '\(features)'")
        try nonFinite.apply(to: &yValues, sampleSize: Swift.max(1, y.shape.dropFirst().reduce(1, *)), source: url.path, part: "targets '\(targets)'")
        if let classes {
            guard classes > 0, y.shape.count == 1 else {
                throw DataError.invalid(url.path, reason: "class labels need classes > 0 and targets '\(targets)' of shape [N], got classes \(classes), shape \(y.shape)")
            }
            if let i = yValues.firstIndex(where: { v in Int(exactly: v).map { !(0..<classes).contains($0) } ?? true }) {
                throw DataError.invalid(url.path, reason: "label \(i) of '\(targets)' is \(yValues[i]), expected a whole number in 0..<\(classes)")
            }
        }
        let labels = try Tensor(yValues, shape: y.shape, on: device)
        if let classes { labels.labelClasses = classes }   // checked above
        try self.init(unchecked: Tensor(xValues, shape: x.shape, on: device), targets: labels)
    }
}

/// How a checkpoint's tensor names and shapes compare with a model's: strict loading's check (`Layer.loadState`,
/// and `BertEncoder`'s reader, which checks a file's header before reading its data).
struct StateMismatch {
    /// The first of the model's tensors, in the model's order, that the checkpoint holds in another shape.
    let badShape: (name: String, model: [Int], checkpoint: [Int])?
    /// The model's names the checkpoint lacks.
    let missing: [String]
    /// The checkpoint's names the model does not have, less those `ignoring` accepts.
    let unexpected: [String]

    init(model: [(String, Tensor)], checkpoint: [(name: String, shape: [Int])], ignoring: (String) -> Bool) {
        let shapes = Dictionary(checkpoint.map { ($0.name, $0.shape) }, uniquingKeysWith: { first, _ in first })
        let ownNames = Set(model.map(\.0))
        missing = model.map(\.0).filter { shapes[$0] == nil }
        unexpected = checkpoint.map(\.name).filter { !ownNames.contains($0) && !ignoring($0) }
        badShape = model.lazy.compactMap { name, t in
            shapes[name].flatMap { $0 != t.shape ? (name: name, model: t.shape, checkpoint: $0) : nil }
        }.first
    }

    /// The error strict loading throws: the misshapen tensor first, else every missing and unexpected name (only
    /// when `strict`); nil when the checkpoint fits.
    func error(source: String, strict: Bool) -> CheckpointError? {
        if let b = badShape { return .shapeMismatch(source, name: b.name, model: b.model, checkpoint: b.checkpoint) }
        guard strict, !(missing.isEmpty && unexpected.isEmpty) else { return nil }
        return .keysMismatch(source, missing: missing, unexpected: unexpected)
    }
}
