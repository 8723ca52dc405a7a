import Foundation

// BERT's tokenizer, as Hugging Face's `tokenizers` runs it (BertNormalizer, BertPreTokenizer, WordPiece,
// the [CLS] ... [SEP] template): written in Swift, checked against Hugging Face's ids (WordPieceTokenizerTests).

/// Token ids of a batch of texts, padded to the longest, with the attention mask (1 for a token, 0 for padding).
public struct TokenBatch: Equatable, Sendable {
    /// Each text's ids, [CLS] ... [SEP], unpadded.
    public let sequences: [[Int]]
    /// The padded length: the longest sequence's.
    public let length: Int
    /// The padding id ([PAD]).
    public let paddingID: Int

    /// A batch of `sequences`, padded with `paddingID` to the longest.
    public init(sequences: [[Int]], paddingID: Int) {
        self.sequences = sequences
        self.paddingID = paddingID
        length = sequences.map(\.count).max() ?? 0
    }

    /// The ids, row-major [count, length], padded with `paddingID`.
    public var ids: [Int] { sequences.flatMap { $0 + Array(repeating: paddingID, count: length - $0.count) } }
    /// The attention mask, row-major [count, length]: 1 for a token, 0 for padding.
    public var attentionMask: [Int] { sequences.flatMap { Array(repeating: 1, count: $0.count) + Array(repeating: 0, count: length - $0.count) } }

    /// The ids and the mask as tensors [count, length] on `device` (whole numbers stored as Float).
    public func tensors(on device: Device = .default) throws -> (ids: Tensor, attentionMask: Tensor) {
        let shape = [sequences.count, length]
        return (try Tensor(ids.map(Float.init), shape: shape, on: device),
                try Tensor(attentionMask.map(Float.init), shape: shape, on: device))
    }
}

/// BERT's WordPiece tokenizer (Hugging Face's `BertTokenizerFast`), from a vocab.txt:
///
/// 1. The special tokens ([CLS], [SEP], [PAD], [UNK], [MASK]) written in the text are kept as they are.
/// 2. The rest is normalized: NUL, U+FFFD and control/format/unassigned characters dropped, whitespace made a
///    space, CJK ideographs spaced out, then (with `lowercase`) accents stripped (NFD, marks Mn dropped) and the
///    text lower-cased.
/// 3. It is split at whitespace, and each punctuation character (ASCII punctuation and Unicode P*) is a word.
/// 4. Each word becomes the longest vocabulary prefixes, left to right, the later ones with `##`; a word that
///    cannot be covered, or longer than `maxCharactersPerWord`, is [UNK].
/// 5. `encode` adds [CLS] and [SEP] and truncates to `maxSequenceLength` tokens.
///
/// ```swift
/// let tokenizer = try WordPieceTokenizer(vocabulary: folder.appendingPathComponent("vocab.txt"))
/// tokenizer.encode("Hello, world!")   // [101, 7592, 1010, 2088, 999, 102]
/// ```
public struct WordPieceTokenizer: Sendable {
    /// The tokens, by id (line order of vocab.txt).
    public let tokens: [String]
    /// The id of each token.
    public let ids: [String: Int]
    /// The ids of [UNK], [CLS], [SEP] and [PAD].
    public let unknownID: Int, classID: Int, separatorID: Int, paddingID: Int
    /// The longest sequence `encode` gives, [CLS] and [SEP] included.
    public var maxSequenceLength: Int
    /// Whether text is lower-cased and its accents stripped (uncased models).
    public var lowercase: Bool
    /// Words longer than this (in Unicode scalars) are [UNK].
    public var maxCharactersPerWord = 100
    /// The special tokens of the vocabulary, kept whole when they appear in a text, longest first.
    let specialTokens: [[Unicode.Scalar]]

    /// The special tokens a vocabulary must hold.
    public static let requiredSpecialTokens = ["[UNK]", "[CLS]", "[SEP]", "[PAD]"]

    /// A tokenizer over the vocabulary of `url` (one token a line, the id its line number from 0). Throws
    /// `PretrainedModelError` naming the file when it is missing, empty, holds a token twice (naming both lines)
    /// or lacks one of [UNK], [CLS], [SEP], [PAD].
    public init(vocabulary url: URL, maxSequenceLength: Int = 512, lowercase: Bool = true) throws {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw PretrainedModelError.missingFile(url.path, what: "the WordPiece vocabulary, vocab.txt")
        }
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw PretrainedModelError.invalidVocabulary(url.path, reason: "cannot be read: \(error.localizedDescription)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw PretrainedModelError.invalidVocabulary(url.path, reason: "is not UTF-8 text")
        }
        // Split at "\n" scalars (a "\r\n" is one Character) and drop trailing whitespace, as `tokenizers` does.
        var lines = text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            var view = String.UnicodeScalarView(line)
            while let last = view.last, last.properties.isWhitespace { view.removeLast() }
            return String(view)
        }
        if lines.last == "" { lines.removeLast() }
        try self.init(tokens: lines, maxSequenceLength: maxSequenceLength, lowercase: lowercase, source: url.path)
    }

    /// A tokenizer over `tokens` (id = index); `source` names them in errors.
    public init(tokens: [String], maxSequenceLength: Int = 512, lowercase: Bool = true, source: String = "vocabulary") throws {
        guard !tokens.isEmpty else { throw PretrainedModelError.invalidVocabulary(source, reason: "it holds no token") }
        guard maxSequenceLength >= 2 else {
            throw PretrainedModelError.invalidVocabulary(source, reason: "maxSequenceLength \(maxSequenceLength) leaves no room for [CLS] and [SEP]")
        }
        var ids: [String: Int] = [:]
        for (i, token) in tokens.enumerated() {
            if let first = ids[token] {
                throw PretrainedModelError.invalidVocabulary(source, reason: "the token '\(token)' is on lines \(first + 1) and \(i + 1)")
            }
            guard !token.isEmpty else { throw PretrainedModelError.invalidVocabulary(source, reason: "line \(i + 1) is empty") }
            ids[token] = i
        }
        let missing = Self.requiredSpecialTokens.filter { ids[$0] == nil }
        guard missing.isEmpty else {
            throw PretrainedModelError.invalidVocabulary(source, reason: "it lacks the special token\(missing.count == 1 ? "" : "s") \(missing.joined(separator: ", "))")
        }
        self.tokens = tokens
        self.ids = ids
        unknownID = ids["[UNK]"]!; classID = ids["[CLS]"]!; separatorID = ids["[SEP]"]!; paddingID = ids["[PAD]"]!
        self.maxSequenceLength = maxSequenceLength
        self.lowercase = lowercase
        specialTokens = (Self.requiredSpecialTokens + ["[MASK]"]).filter { ids[$0] != nil }
            .map { Array($0.unicodeScalars) }.sorted { $0.count > $1.count }
    }

    /// The ids of `text`: [CLS], its word pieces (at most maxSequenceLength − 2, the rest dropped), [SEP].
    public func encode(_ text: String) -> [Int] {
        [classID] + tokenIDs(text).prefix(maxSequenceLength - 2) + [separatorID]
    }

    /// The ids of `texts` (see `encode(_:)`), padded to the longest, with the attention mask.
    public func encode(batch texts: [String]) -> TokenBatch {
        TokenBatch(sequences: texts.map(encode), paddingID: paddingID)
    }

    /// The word pieces of `text` as strings (no [CLS]/[SEP], no truncation).
    public func tokenize(_ text: String) -> [String] { tokenIDs(text).map { tokens[$0] } }

    /// The word pieces of `text` as ids (no [CLS]/[SEP], no truncation).
    public func tokenIDs(_ text: String) -> [Int] {
        var out: [Int] = []
        var segment: [Unicode.Scalar] = []
        let scalars = Array(text.unicodeScalars)
        var i = 0
        while i < scalars.count {
            if let special = specialTokens.first(where: { scalars[i...].starts(with: $0) }) {
                out += wordPieces(of: segment)
                segment.removeAll()
                out.append(ids[String(String.UnicodeScalarView(special))]!)
                i += special.count
            } else {
                segment.append(scalars[i])
                i += 1
            }
        }
        return out + wordPieces(of: segment)
    }

    /// The ids of a stretch of text without special tokens: normalized, split into words, each word's pieces.
    func wordPieces(of text: [Unicode.Scalar]) -> [Int] {
        guard !text.isEmpty else { return [] }
        return BertTextNormalizer.words(BertTextNormalizer.normalize(text, lowercase: lowercase)).flatMap(pieces)
    }

    /// The greedy longest-match WordPiece ids of one word, or [UNK].
    func pieces(of word: [Unicode.Scalar]) -> [Int] {
        guard word.count <= maxCharactersPerWord else { return [unknownID] }
        var out: [Int] = []
        var start = 0
        while start < word.count {
            var end = word.count
            var found: Int?
            while end > start {
                var piece = start > 0 ? "##" : ""
                piece.unicodeScalars.append(contentsOf: word[start..<end])
                if let id = ids[piece] { found = id; break }
                end -= 1
            }
            guard let id = found else { return [unknownID] }
            out.append(id)
            start = end
        }
        return out
    }
}

/// BERT's text normalization and pre-tokenization (Hugging Face's `BertNormalizer` and `BertPreTokenizer`).
enum BertTextNormalizer {
    /// Cleaned (controls dropped, whitespace made spaces), CJK spaced out, and with `lowercase` accent-stripped and
    /// lower-cased, in that order (as `tokenizers`).
    static func normalize(_ text: [Unicode.Scalar], lowercase: Bool) -> [Unicode.Scalar] {
        var cleaned = String.UnicodeScalarView()
        for c in text {
            if c.value == 0 || c.value == 0xFFFD || isControl(c) { continue }
            if isWhitespace(c) {
                cleaned.append(" ")
            } else if isCJK(c) {
                cleaned.append(" "); cleaned.append(c); cleaned.append(" ")
            } else {
                cleaned.append(c)
            }
        }
        guard lowercase else { return Array(cleaned) }
        var out: [Unicode.Scalar] = []
        for c in String(cleaned).decomposedStringWithCanonicalMapping.unicodeScalars
        where c.properties.generalCategory != .nonspacingMark {
            out.append(contentsOf: c.properties.lowercaseMapping.unicodeScalars)
        }
        return out
    }

    /// The words of normalized text: split at whitespace, each punctuation character a word of its own.
    static func words(_ text: [Unicode.Scalar]) -> [[Unicode.Scalar]] {
        var words: [[Unicode.Scalar]] = []
        var current: [Unicode.Scalar] = []
        for c in text {
            if isWhitespace(c) {
                if !current.isEmpty { words.append(current); current.removeAll() }
            } else if isPunctuation(c) {
                if !current.isEmpty { words.append(current); current.removeAll() }
                words.append([c])
            } else {
                current.append(c)
            }
        }
        if !current.isEmpty { words.append(current) }
        return words
    }

    /// Rust's `char::is_whitespace` (Unicode White_Space), as `tokenizers` uses it.
    static func isWhitespace(_ c: Unicode.Scalar) -> Bool { c.properties.isWhitespace }

    /// Control, format, private-use, surrogate and unassigned characters (Unicode C*), except tab, newline and return.
    static func isControl(_ c: Unicode.Scalar) -> Bool {
        if c == "\t" || c == "\n" || c == "\r" { return false }
        switch c.properties.generalCategory {
        case .control, .format, .privateUse, .surrogate, .unassigned: return true
        default: return false
        }
    }

    /// ASCII punctuation (which includes $ + < = > ^ ` | ~) and Unicode punctuation (P*).
    static func isPunctuation(_ c: Unicode.Scalar) -> Bool {
        if c.isASCII, (33...47).contains(c.value) || (58...64).contains(c.value) || (91...96).contains(c.value)
            || (123...126).contains(c.value) {
            return true
        }
        switch c.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation,
             .finalPunctuation, .otherPunctuation:
            return true
        default: return false
        }
    }

    /// The CJK Unified Ideographs blocks BERT spaces out (not Hangul, Hiragana or Katakana).
    static func isCJK(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
             0x2B920...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default: return false
        }
    }
}
