import Foundation

// The configuration of a Hugging Face BERT model (config.json) and the errors of loading a pretrained model's folder.

/// Errors from loading a pretrained model's folder: each names the file and what is wrong with it.
public enum PretrainedModelError: Error, CustomStringConvertible, Equatable {
    /// A file the model needs is not there: its path and what it holds.
    case missingFile(String, what: String)
    /// A configuration file (config.json, modules.json, a pooling config, ...) that cannot be used: why.
    case invalidConfig(String, reason: String)
    /// A vocabulary file (vocab.txt) that cannot be used: why.
    case invalidVocabulary(String, reason: String)
    /// Files of the folder that do not agree with each other (e.g. the vocabulary's size and config.json's).
    case mismatch(String, reason: String)

    public var description: String {
        switch self {
        case .missingFile(let path, let what): return "\(path): no such file (\(what))"
        case .invalidConfig(let path, let reason): return "\(path): \(reason)"
        case .invalidVocabulary(let path, let reason): return "\(path): not a usable WordPiece vocabulary: \(reason)"
        case .mismatch(let path, let reason): return "\(path): \(reason)"
        }
    }
}

/// The JSON object of a configuration file, with typed reads that name the file and the field in their errors.
struct JSONConfigFile {
    let path: String
    let object: [String: Any]

    /// The object in `url`; a missing file is `PretrainedModelError.missingFile` described by `what`.
    init(_ url: URL, what: String) throws {
        path = url.path
        guard FileManager.default.fileExists(atPath: url.path) else { throw PretrainedModelError.missingFile(url.path, what: what) }
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw PretrainedModelError.invalidConfig(url.path, reason: "cannot be read: \(error.localizedDescription)")
        }
        guard let parsed = try? JSONSerialization.jsonObject(with: data), let object = parsed as? [String: Any] else {
            throw PretrainedModelError.invalidConfig(url.path, reason: "is not a JSON object")
        }
        self.object = object
    }

    init(path: String, object: [String: Any]) { self.path = path; self.object = object }

    func error(_ reason: String) -> PretrainedModelError { .invalidConfig(path, reason: reason) }

    /// A whole number ≥ `minimum`, required unless `default` is given.
    func int(_ key: String, minimum: Int = 1, default fallback: Int? = nil) throws -> Int {
        guard let raw = object[key] else {
            if let fallback { return fallback }
            throw error("has no '\(key)' (a whole number ≥ \(minimum))")
        }
        guard !Self.isBoolean(raw), let number = raw as? NSNumber, let value = Int(exactly: number.doubleValue), value >= minimum else {
            throw error("'\(key)' is \(raw), expected a whole number ≥ \(minimum)")
        }
        return value
    }

    /// A finite number > 0, required unless `default` is given.
    func positive(_ key: String, default fallback: Double? = nil) throws -> Double {
        guard let raw = object[key] else {
            if let fallback { return fallback }
            throw error("has no '\(key)' (a number > 0)")
        }
        guard !Self.isBoolean(raw), let number = raw as? NSNumber, number.doubleValue.isFinite, number.doubleValue > 0 else {
            throw error("'\(key)' is \(raw), expected a finite number > 0")
        }
        return number.doubleValue
    }

    /// A string, required unless `default` is given.
    func string(_ key: String, default fallback: String? = nil) throws -> String {
        guard let raw = object[key] else {
            if let fallback { return fallback }
            throw error("has no '\(key)' (a string)")
        }
        guard let value = raw as? String else { throw error("'\(key)' is \(raw), expected a string") }
        return value
    }

    /// A Boolean, `fallback` when absent.
    func bool(_ key: String, default fallback: Bool) throws -> Bool {
        guard let raw = object[key] else { return fallback }
        guard Self.isBoolean(raw), let value = raw as? Bool else { throw error("'\(key)' is \(raw), expected true or false") }
        return value
    }

    /// Whether a parsed JSON value is `true` or `false`. (`is Bool` is not the test: on Linux the numbers 0 and 1
    /// cast to Bool too, which refused `"num_hidden_layers": 1`.) JSONSerialization's Booleans are NSNumbers of
    /// Objective-C type `c`; its numbers never are.
    static func isBoolean(_ raw: Any) -> Bool {
        guard let number = raw as? NSNumber else { return raw is Bool }
        return String(cString: number.objCType) == "c"
    }
}

/// The shape of a BERT encoder, as Hugging Face's `BertConfig` (config.json) gives it.
///
/// ```swift
/// let config = try BertConfig(contentsOf: folder.appendingPathComponent("config.json"))
/// print(config.hiddenSize, config.layers)   // 384 6 for all-MiniLM-L6-v2
/// ```
public struct BertConfig: Equatable, Sendable {
    /// The size of each token's vector (`hidden_size`).
    public var hiddenSize: Int
    /// The number of transformer layers (`num_hidden_layers`).
    public var layers: Int
    /// The attention heads of each layer (`num_attention_heads`); they divide `hiddenSize`.
    public var heads: Int
    /// The width of each layer's feed-forward part (`intermediate_size`).
    public var intermediateSize: Int
    /// Whether the feed-forward activation is the tanh approximation of GELU (`hidden_act` `gelu_new` or
    /// `gelu_pytorch_tanh`) rather than the exact erf form (`gelu`).
    public var approximateGELU: Bool
    /// The epsilon of every layer normalization (`layer_norm_eps`, 1e-12 for BERT).
    public var layerNormEpsilon: Float
    /// The number of position embeddings, the longest sequence (`max_position_embeddings`).
    public var maxPositions: Int
    /// The number of token types (segments) (`type_vocab_size`).
    public var typeVocabularySize: Int
    /// The number of tokens in the vocabulary (`vocab_size`).
    public var vocabularySize: Int

    /// A configuration from its values (`heads` must divide `hiddenSize`).
    public init(hiddenSize: Int, layers: Int, heads: Int, intermediateSize: Int, approximateGELU: Bool = false,
                layerNormEpsilon: Float = 1e-12, maxPositions: Int = 512, typeVocabularySize: Int = 2,
                vocabularySize: Int) {
        self.hiddenSize = hiddenSize; self.layers = layers; self.heads = heads
        self.intermediateSize = intermediateSize; self.approximateGELU = approximateGELU
        self.layerNormEpsilon = layerNormEpsilon; self.maxPositions = maxPositions
        self.typeVocabularySize = typeVocabularySize; self.vocabularySize = vocabularySize
    }

    /// The configuration in a Hugging Face config.json. Throws `PretrainedModelError` naming the file and the field
    /// when one is missing or invalid, when `num_attention_heads` does not divide `hidden_size`, or when the model is
    /// not a BERT with absolute positions and a GELU activation.
    public init(contentsOf url: URL) throws {
        try self.init(JSONConfigFile(url, what: "the model's configuration, config.json"))
    }

    init(_ file: JSONConfigFile) throws {
        let modelType = try file.string("model_type", default: "bert")
        guard modelType == "bert" else {
            throw file.error("'model_type' is '\(modelType)'; Myelin's BertEncoder runs BERT models ('bert') only")
        }
        let positions = try file.string("position_embedding_type", default: "absolute")
        guard positions == "absolute" else {
            throw file.error("'position_embedding_type' is '\(positions)'; only 'absolute' is supported")
        }
        let activation = try file.string("hidden_act")
        switch activation {
        case "gelu": approximateGELU = false
        case "gelu_new", "gelu_pytorch_tanh": approximateGELU = true
        default: throw file.error("'hidden_act' is '\(activation)'; supported: gelu, gelu_new, gelu_pytorch_tanh")
        }
        hiddenSize = try file.int("hidden_size")
        layers = try file.int("num_hidden_layers")
        heads = try file.int("num_attention_heads")
        intermediateSize = try file.int("intermediate_size")
        let epsilon = try file.positive("layer_norm_eps")
        layerNormEpsilon = Float(epsilon)
        guard layerNormEpsilon > 0, layerNormEpsilon.isFinite else {
            throw file.error("'layer_norm_eps' is \(epsilon), \(layerNormEpsilon > 0 ? "above" : "below") Float's range")
        }
        maxPositions = try file.int("max_position_embeddings")
        typeVocabularySize = try file.int("type_vocab_size")
        vocabularySize = try file.int("vocab_size")
        guard hiddenSize % heads == 0 else {
            throw file.error("'num_attention_heads' (\(heads)) does not divide 'hidden_size' (\(hiddenSize))")
        }
    }
}
