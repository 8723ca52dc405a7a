import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// all-MiniLM-L6-v2's embeddings against sentence-transformers' (fixtures of scripts/minilm_fixtures.py) on both
/// devices, and a tiny model folder: encoding, and the errors of corrupt or mismatched folders.
@Suite struct SentenceEncoderTests {
    /// Writes a tiny sentence-transformers folder (the small vocabulary, `BertEncoderTests.tinyModel`) into `dir`.
    static func writeTinyFolder(_ dir: URL) throws {
        let config = """
            {"architectures": ["BertModel"], "hidden_act": "gelu", "hidden_size": 8, "intermediate_size": 12,
             "layer_norm_eps": 1e-12, "max_position_embeddings": 16, "model_type": "bert", "num_attention_heads": 2,
             "num_hidden_layers": 2, "pad_token_id": 0, "position_embedding_type": "absolute", "type_vocab_size": 2,
             "vocab_size": 20}
            """
        try config.write(to: dir.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
        try WordPieceTokenizerTests.smallVocabulary.joined(separator: "\n").write(to: dir.appendingPathComponent("vocab.txt"), atomically: true, encoding: .utf8)
        try #"{"max_seq_length": 8, "do_lower_case": false}"#.write(to: dir.appendingPathComponent("sentence_bert_config.json"), atomically: true, encoding: .utf8)
        try #"""
            [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
             {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
             {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]
            """#.write(to: dir.appendingPathComponent("modules.json"), atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("1_Pooling"), withIntermediateDirectories: true)
        try pooling().write(to: dir.appendingPathComponent("1_Pooling/config.json"), atomically: true, encoding: .utf8)
        try writeWeights(dir)
    }

    static func pooling(mean: Bool = true, cls: Bool = false, dimension: Int = 8) -> String {
        #"{"word_embedding_dimension": \#(dimension), "pooling_mode_cls_token": \#(cls), "pooling_mode_mean_tokens": \#(mean), "pooling_mode_max_tokens": false}"#
    }

    /// model.safetensors of the tiny model as Hugging Face writes it (with the position_ids buffer), changed by `edit`.
    static func writeWeights(_ dir: URL, edit: (inout [(String, Tensor)]) throws -> Void = { _ in }) throws {
        var tensors = try BertEncoderTests.tinyModel().namedTensors
        tensors.append(("embeddings.position_ids", try Tensor((0..<16).map(Float.init), shape: [1, 16])))
        try edit(&tensors)
        try SafeTensors.save(tensors, metadata: ["format": "pt"], to: dir.appendingPathComponent("model.safetensors"))
    }

    static func expectFolderError(_ dir: URL, _ parts: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        let text = errorText({ _ = try SentenceEncoder(directory: dir, device: .cpu) }, sourceLocation: sourceLocation)
        for part in parts { #expect(text.contains(part), "\(text) lacks \(part)", sourceLocation: sourceLocation) }
    }

    @Test(arguments: TestDevices.all)
    func tinyFolderEncodes(device: Device) throws {
        try inTemporaryFolder { dir in
            try Self.writeTinyFolder(dir)
            let encoder = try SentenceEncoder(directory: dir, device: device)
            #expect(encoder.tokenizer.maxSequenceLength == 8 && encoder.normalizes && encoder.dimension == 8)
            let sentences = ["hello world", "", "unaffable cafe, hello! a b a b a b a b", "中文", "hello"]
            let all = try encoder.encode(sentences, batchSize: 2)
            #expect(all.shape == [5, 8])
            // Each row equals the sentence encoded alone (batching, sorting and padding change nothing).
            for (i, s) in sentences.enumerated() {
                expectClose(Array(try all.toArray()[(i * 8)..<((i + 1) * 8)]), try encoder.encode([s]).toArray(), rtol: 1e-5, atol: 1e-6, "\(device) \(s)")
            }
            let rows = try all.toArray2D()
            for row in rows { #expect(abs(row.reduce(0) { $0 + $1 * $1 } - 1) < 1e-5) }
            #expect(try encoder.encode([]).shape == [0, 8])
        }
    }

    /// model.safetensors read a few values at a time (chunks that split every tensor and the position_ids buffer)
    /// gives the file's tensors, and a NaN in a later chunk is refused, naming the tensor, the count and the first index.
    @Test func weightsReadInChunksEqualTheFile() throws {
        try inTemporaryFolder { dir in
            try Self.writeTinyFolder(dir)
            let url = dir.appendingPathComponent("model.safetensors")
            let file = try SafeTensors.load(url)
            let model = try BertEncoder.readWeights(url, config: BertEncoderTests.config, device: .cpu, chunkElements: 7)
            #expect(model.pooler != nil && !model.isTraining)
            for (name, t) in model.namedTensors { #expect(try t.toArray() == file[name]?.values, "\(name)") }
            var entries = file.entries
            let i = try #require(entries.firstIndex { $0.name == "encoder.layer.1.output.dense.weight" })
            var values = entries[i].values
            values[9] = .nan; values[11] = .infinity
            entries[i] = SafeTensorsEntry(name: entries[i].name, shape: entries[i].shape, values: values)
            try SafeTensors.encode(entries: entries, metadata: file.metadata).write(to: url)
            let text = errorText { _ = try BertEncoder.readWeights(url, config: BertEncoderTests.config, device: .cpu, chunkElements: 7) }
            for part in [url.path, "'encoder.layer.1.output.dense.weight'", "2 NaN or infinite values", "at index 9"] {
                #expect(text.contains(part), "\(text) lacks \(part)")
            }
        }
    }

    @Test func corruptOrMismatchedFoldersNameTheFile() throws {
        try inTemporaryFolder { dir in
            try Self.writeTinyFolder(dir)
            let weights = dir.appendingPathComponent("model.safetensors").path, configPath = dir.appendingPathComponent("config.json").path
            try Self.writeWeights(dir) { $0.removeAll { $0.0 == "encoder.layer.1.output.dense.bias" } }
            Self.expectFolderError(dir, [weights, "missing", "'encoder.layer.1.output.dense.bias'"])
            try Self.writeWeights(dir) { $0.append(("classifier.weight", Tensor.zeros([2, 8]))) }
            Self.expectFolderError(dir, [weights, "unexpected", "'classifier.weight'"])
            try Self.writeWeights(dir) { t in t = t.map { $0.0 == "encoder.layer.0.intermediate.dense.weight" ? ($0.0, Tensor.zeros([12, 7])) : $0 } }
            Self.expectFolderError(dir, [weights, "'encoder.layer.0.intermediate.dense.weight'", "[12, 7]", "[12, 8]"])
            try Self.writeWeights(dir) { t in t = t.map { $0.0 == "embeddings.position_ids" ? ($0.0, Tensor.zeros([1, 16])) : $0 } }
            Self.expectFolderError(dir, [weights, "embeddings.position_ids"])
            let bytes = try Data(contentsOf: URL(fileURLWithPath: weights))
            try bytes.prefix(bytes.count - 10).write(to: URL(fileURLWithPath: weights))
            Self.expectFolderError(dir, [weights, "not a valid safetensors file"])
            try FileManager.default.removeItem(atPath: weights)
            Self.expectFolderError(dir, [weights, "no such file"])
            try Self.writeWeights(dir)

            let config = try String(contentsOfFile: configPath, encoding: .utf8)
            try config.replacingOccurrences(of: #""hidden_size": 8,"#, with: "").write(toFile: configPath, atomically: true, encoding: .utf8)
            Self.expectFolderError(dir, [configPath, "'hidden_size'"])
            try config.replacingOccurrences(of: #""num_attention_heads": 2"#, with: #""num_attention_heads": 3"#)
                .write(toFile: configPath, atomically: true, encoding: .utf8)
            Self.expectFolderError(dir, [configPath, "'num_attention_heads' (3) does not divide 'hidden_size' (8)"])
            try config.replacingOccurrences(of: #""vocab_size": 20"#, with: #""vocab_size": 21"#)
                .write(toFile: configPath, atomically: true, encoding: .utf8)
            Self.expectFolderError(dir, [dir.appendingPathComponent("vocab.txt").path, "holds 20 tokens", "'vocab_size'", "21"])
            try config.replacingOccurrences(of: #""hidden_act": "gelu""#, with: #""hidden_act": "relu""#)
                .write(toFile: configPath, atomically: true, encoding: .utf8)
            Self.expectFolderError(dir, [configPath, "'hidden_act' is 'relu'"])
            try "not json".write(toFile: configPath, atomically: true, encoding: .utf8)
            Self.expectFolderError(dir, [configPath, "not a JSON object"])
            try config.write(toFile: configPath, atomically: true, encoding: .utf8)

            let poolingPath = dir.appendingPathComponent("1_Pooling/config.json")
            try Self.pooling(mean: false, cls: true).write(to: poolingPath, atomically: true, encoding: .utf8)
            Self.expectFolderError(dir, [poolingPath.path, "pooling_mode_mean_tokens"])
            try Self.pooling(dimension: 9).write(to: poolingPath, atomically: true, encoding: .utf8)
            Self.expectFolderError(dir, [poolingPath.path, "'word_embedding_dimension' is 9"])
            try Self.pooling().write(to: poolingPath, atomically: true, encoding: .utf8)
            try #"{"max_seq_length": 17}"#.write(to: dir.appendingPathComponent("sentence_bert_config.json"), atomically: true, encoding: .utf8)
            Self.expectFolderError(dir, ["sentence_bert_config.json", "'max_seq_length' 17 exceeds 'max_position_embeddings' 16"])
            try #"{"max_seq_length": 8}"#.write(to: dir.appendingPathComponent("sentence_bert_config.json"), atomically: true, encoding: .utf8)
            _ = try SentenceEncoder(directory: dir, device: .cpu)   // whole again
            try FileManager.default.removeItem(at: dir.appendingPathComponent("vocab.txt"))
            Self.expectFolderError(dir, [dir.appendingPathComponent("vocab.txt").path, "no such file"])
            Self.expectFolderError(dir.appendingPathComponent("absent"), ["absent", "no such file", "the model's folder"])
        }
    }

    /// scripts/minilm_fixtures.py --check: the checked-in fixtures are still what Hugging Face's tokenizers and
    /// sentence-transformers give (where they and torch are installed).
    @Test(.enabled(if: installedMiniLM != nil && pythonCanImport("torch, sentence_transformers, tokenizers"),
                   "sentence-transformers, tokenizers or the model package is not installed (scripts/setup --test)"))
    func fixturesAreWhatHuggingFaceGives() throws {
        let (status, output) = try runPythonScript("scripts/minilm_fixtures.py", ["--check", "--model", installedMiniLM!.path])
        #expect(status == 0 && output.contains("fixtures agree"), "\(output)")
    }

    /// Cosine ≥ 0.99999 and max abs difference ≤ 1e-5 against sentence-transformers, for each fixture sentence.
    @Test(.enabled(if: installedMiniLM != nil, miniLMSkipReason), arguments: TestDevices.all)
    func miniLMMatchesSentenceTransformers(device: Device) throws {
        let fixture = try miniLMFixture("embeddings.json")
        let sentences = try #require(fixture["sentences"] as? [String])
        let expected = try #require(fixture["embeddings"] as? [[Double]])
        let encoder = try SentenceEncoder(directory: installedMiniLM!, device: device)
        #expect(encoder.dimension == 384 && encoder.tokenizer.maxSequenceLength == 256 && encoder.normalizes)
        let rows = try encoder.encode(sentences, batchSize: 4).toArray2D()
        var worstCosine = 1.0, worstDifference = 0.0
        for (i, (row, reference)) in zip(rows, expected).enumerated() {
            let dot = zip(row, reference).reduce(0.0) { $0 + Double($1.0) * $1.1 }
            let norms = row.reduce(0.0) { $0 + Double($1 * $1) }.squareRoot() * reference.reduce(0.0) { $0 + $1 * $1 }.squareRoot()
            let cosine = dot / norms, difference = zip(row, reference).map { abs(Double($0) - $1) }.max()!
            #expect(cosine >= 0.99999 && difference <= 1e-5, "\(device) sentence \(i): cosine \(cosine), max abs \(difference)")
            worstCosine = min(worstCosine, cosine); worstDifference = max(worstDifference, difference)
        }
        print("MiniLM vs sentence-transformers on \(device): \(rows.count) sentences, min cosine \(worstCosine), max abs difference \(worstDifference)")
    }
}
