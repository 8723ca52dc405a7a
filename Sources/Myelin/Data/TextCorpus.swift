import Foundation

// A character-level text corpus for a language model (nanoGPT's shakespeare_char): the vocabulary is every distinct
// Unicode scalar of the text, sorted; each scalar is one token.

/// The tokens of a character-level model: the distinct Unicode scalars of a text, sorted (as Python's
/// `sorted(set(text))`), token i being the i-th.
///
/// ```swift
/// let vocabulary = CharacterVocabulary(text: "hello")   // "ehlo": 4 tokens
/// let tokens = try vocabulary.encode("hole")            // [2, 3, 1, 0]
/// ```
public struct CharacterVocabulary: Equatable, Sendable {
    /// The characters, token i being `characters[i]`.
    public let characters: [Unicode.Scalar]
    private let index: [Unicode.Scalar: Int]

    /// The vocabulary of every scalar that occurs in `text`.
    public init(text: String) { self.init(characters: Array(Set(text.unicodeScalars))) }

    /// The vocabulary of `characters` (sorted and made unique).
    public init(characters: [Unicode.Scalar]) {
        self.characters = Array(Set(characters)).sorted { $0.value < $1.value }
        index = Dictionary(uniqueKeysWithValues: self.characters.enumerated().map { ($0.element, $0.offset) })
    }

    /// The number of tokens.
    public var count: Int { characters.count }

    /// The tokens of `text`; throws `TextCorpusError.unknownCharacter` for a character not in the vocabulary.
    public func encode(_ text: String, source: String = "the text") throws -> [Int] {
        var out: [Int] = []
        out.reserveCapacity(text.unicodeScalars.count)
        for (position, scalar) in text.unicodeScalars.enumerated() {
            guard let i = index[scalar] else {
                throw TextCorpusError.unknownCharacter(source: source, character: scalar, position: position)
            }
            out.append(i)
        }
        return out
    }

    /// The text of `tokens` (a token outside 0..<count becomes U+FFFD).
    public func decode(_ tokens: [Int]) -> String {
        var s = String.UnicodeScalarView()
        for t in tokens { s.append(characters.indices.contains(t) ? characters[t] : "\u{FFFD}") }
        return String(s)
    }

    /// The vocabulary as JSON: an array of one-character strings (a checkpoint's `vocabulary` metadata).
    public func json() -> String {
        String(decoding: try! JSONEncoder().encode(characters.map { String($0) }), as: UTF8.self)
    }

    /// A vocabulary read from `json()`'s form; throws `TextCorpusError.invalidVocabulary` for anything else.
    public init(json text: String) throws {
        guard let strings = try? JSONDecoder().decode([String].self, from: Data(text.utf8)) else {
            throw TextCorpusError.invalidVocabulary("is not a JSON array of strings")
        }
        var scalars: [Unicode.Scalar] = []
        for s in strings {
            guard s.unicodeScalars.count == 1 else {
                throw TextCorpusError.invalidVocabulary("has the entry \(String(reflecting: s)), which is not one character")
            }
            scalars.append(s.unicodeScalars.first!)
        }
        guard Set(scalars).count == scalars.count, !scalars.isEmpty else {
            throw TextCorpusError.invalidVocabulary("is empty or repeats a character")
        }
        self.init(characters: scalars)
    }
}

/// Why a text cannot be a corpus, naming the file.
public enum TextCorpusError: Error, CustomStringConvertible, Equatable {
    /// The file or text has no characters.
    case empty(source: String)
    /// The bytes are not UTF-8; `offset` is the first bad byte.
    case notUTF8(source: String, offset: Int)
    /// The file holds binary data (NUL bytes or mostly control characters).
    case binary(source: String, reason: String)
    /// The text has only one distinct character: nothing to predict.
    case oneCharacter(source: String, character: Unicode.Scalar)
    /// The text has fewer tokens than training needs.
    case tooShort(source: String, tokens: Int, needed: Int, why: String)
    /// `character` (at scalar `position`) is not in the vocabulary.
    case unknownCharacter(source: String, character: Unicode.Scalar, position: Int)
    /// A stored vocabulary cannot be read.
    case invalidVocabulary(String)

    public var description: String {
        switch self {
        case .empty(let s): return "\(s): the text is empty; a language model needs a text to learn from"
        case .notUTF8(let s, let offset):
            return "\(s): is not UTF-8 text (byte \(offset) starts no valid UTF-8 character); convert it, e.g. iconv -t UTF-8"
        case .binary(let s, let why): return "\(s): looks like a binary file, not text (\(why))"
        case .oneCharacter(let s, let c):
            return "\(s): the text has only one distinct character (\(String(reflecting: String(c)))); there is nothing to predict"
        case .tooShort(let s, let n, let needed, let why): return "\(s): has \(n) characters, \(why) needs at least \(needed)"
        case .unknownCharacter(let s, let c, let position):
            return "\(s): character \(String(reflecting: String(c))) (U+\(String(c.value, radix: 16, uppercase: true))) at position \(position) is not in the model's vocabulary"
        case .invalidVocabulary(let why): return "the stored vocabulary \(why)"
        }
    }
}

/// A text as tokens of its character vocabulary, split into training and validation parts.
///
/// ```swift
/// let corpus = try TextCorpus(contentsOf: URL(fileURLWithPath: "input.txt"))
/// let (train, validation) = corpus.split(validationFraction: 0.1)
/// ```
public struct TextCorpus: Sendable {
    /// The characters of the text.
    public let vocabulary: CharacterVocabulary
    /// The text as tokens.
    public let tokens: [Int]

    /// The corpus of `text` with its own vocabulary (or `vocabulary`, which must hold every character);
    /// `source` names it in errors. Throws for an empty text or one with a single distinct character.
    public init(text: String, vocabulary: CharacterVocabulary? = nil, source: String = "the text") throws {
        guard let first = text.unicodeScalars.first else { throw TextCorpusError.empty(source: source) }
        let own = vocabulary ?? CharacterVocabulary(text: text)
        if vocabulary == nil, own.count == 1 { throw TextCorpusError.oneCharacter(source: source, character: first) }
        self.vocabulary = own
        tokens = try own.encode(text, source: source)
    }

    /// The corpus of a UTF-8 text file; throws for an unreadable, empty, binary or non-UTF-8 file.
    public init(contentsOf url: URL, vocabulary: CharacterVocabulary? = nil) throws {
        try self.init(text: TextCorpus.readText(url), vocabulary: vocabulary, source: url.path)
    }

    /// The text of a file, checked to be UTF-8 text (not a binary file).
    public static func readText(_ url: URL) throws -> String {
        let bytes = try ReadableFile.contents(of: url)
        return try text(bytes, source: url.path)
    }

    /// `bytes` as text, checked to be UTF-8 text (not a binary file); `source` names them in errors.
    public static func text(_ bytes: [UInt8], source: String) throws -> String {
        guard !bytes.isEmpty else { throw TextCorpusError.empty(source: source) }
        if let nul = bytes.firstIndex(of: 0) {
            throw TextCorpusError.binary(source: source, reason: "it has a NUL byte at offset \(nul)")
        }
        var decoder = UTF8()
        var iterator = bytes.makeIterator()
        var scalars = String.UnicodeScalarView()
        var offset = 0, controls = 0
        decoding: while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let s):
                if s.value < 32 && ![9, 10, 12, 13].contains(s.value) { controls += 1 }
                scalars.append(s)
                offset += String(s).utf8.count
            case .emptyInput: break decoding
            case .error: throw TextCorpusError.notUTF8(source: source, offset: offset)
            }
        }
        if controls * 10 > scalars.count {
            throw TextCorpusError.binary(source: source, reason: "\(controls) of its \(scalars.count) characters are control characters")
        }
        return String(scalars)
    }

    /// The first (1 − `validationFraction`) of the tokens for training and the rest for validation, as nanoGPT.
    public func split(validationFraction: Double = 0.1) -> (train: [Int], validation: [Int]) {
        let cut = Int((Double(tokens.count) * (1 - validationFraction)).rounded())
        return (Array(tokens[..<cut]), Array(tokens[cut...]))
    }

    /// A batch of `batchSize` windows of `blockSize` tokens at random places of `tokens` (nanoGPT's `get_batch`):
    /// inputs [batchSize, blockSize] and the next tokens as targets, the same shape. `tokens` must have more than
    /// `blockSize` tokens.
    public static func batch(_ tokens: [Int], batchSize: Int, blockSize: Int, generator: inout SeededGenerator,
                             on device: Device = .default) throws -> (inputs: Tensor, targets: Tensor) {
        guard tokens.count > blockSize else {
            throw TextCorpusError.tooShort(source: "the token sequence", tokens: tokens.count, needed: blockSize + 1,
                                           why: "a window of block size \(blockSize) and its next token")
        }
        guard batchSize >= 1 else { throw InvalidValueError(name: "batchSize", value: "\(batchSize)", rule: "must be at least 1") }
        // The windows and their targets, on the host and then on the device: sizes checked before either is made.
        let what = "TextCorpus.batch: \(batchSize) windows of \(blockSize) tokens and their targets"
        try Device.cpu.checkLargeAllocation(shape: [2, batchSize, blockSize], for: what + " (on the host)")
        try device.checkLargeAllocation(shape: [2, batchSize, blockSize], for: what)
        var x: [Float] = [], y: [Float] = []
        x.reserveCapacity(batchSize * blockSize); y.reserveCapacity(batchSize * blockSize)
        for _ in 0..<batchSize {
            let start = Int(generator.next() % UInt64(tokens.count - blockSize))
            for j in 0..<blockSize {
                x.append(Float(tokens[start + j])); y.append(Float(tokens[start + j + 1]))
            }
        }
        return (try Tensor(x, shape: [batchSize, blockSize], on: device), try Tensor(y, shape: [batchSize, blockSize], on: device))
    }
}
