// The fuzz harnesses: what each fuzz target does with one input. Shared by the libFuzzer executables in
// Fuzz/Sources/Fuzz* and by the regression test (Tests/MyelinTests/Support/FuzzHarness.swift is a link to
// this file), so a reproducer goes through exactly the same code in both.
//
// The contract of every reader: for any bytes, it returns a value or throws its error (DataError, CheckpointError,
// PretrainedModelError, TextCorpusError) naming the source; it never crashes, hangs or allocates without bound. On top of that, each harness checks a
// property of what a reader accepts (it reads back what Myelin writes from it). A broken contract or property is
// a `FuzzHarness.Violation` (the fuzz targets turn it into a crash; the regression test into a failed test).
import Foundation
import Myelin

/// The fuzz targets and their harnesses.
public enum FuzzHarness {
    /// The fuzz targets, by the name of their folders in Fuzz/corpus and Tests/MyelinTests/Regressions.
    public enum Target: String, CaseIterable, Sendable {
        /// IDX bytes (raw or gzip), alone and as the images or labels file of an MNIST split.
        case idx
        /// CSV text, parsed as a table, its columns made a data set.
        case csv
        /// safetensors bytes, decoded and written back.
        case safetensors
        /// A training checkpoint (a safetensors file) loaded into a small model and Adam.
        case checkpoint
        /// A Hugging Face config.json, read as a `BertConfig`.
        case bertconfig
        /// A WordPiece vocab.txt made a tokenizer, which then tokenizes a few fixed texts.
        case vocab
        /// A text file made a character-level corpus (the GPT trainer's vocabulary, tokens and split).
        case text
    }

    /// A reader broke its contract: a crash-class bug the harness found without crashing.
    public struct Violation: Error, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    /// Bugs the fuzzers found that are not fixed yet. The fuzz targets step around the inputs that trigger them
    /// (so that a run keeps looking for new bugs instead of finding the same one again); the regression test runs
    /// their reproducers (Tests/MyelinTests/Regressions) in full, as known issues. Remove an entry with its fix.
    /// (None open: the first one, float labels converted with `Int(_:)`, was fixed by checked conversions of
    /// untrusted numbers; its reproducer Regressions/idx/float-label-overflow now runs as a plain regression.)
    public struct KnownIssue: Hashable, Sendable {
        /// A short name, shown when the regression test records the issue.
        public let rawValue: String
    }

    /// The known issues the fuzz targets step around.
    public static let knownIssues: Set<KnownIssue> = []

    /// Runs `target`'s harness on one input: returns when the input is accepted, throws the reader's error when
    /// it is refused, throws `Violation` when a contract is broken. Inputs that trigger one of `skipping` return
    /// early.
    public static func run(_ target: Target, _ bytes: [UInt8], skipping: Set<KnownIssue> = []) throws {
        switch target {
        case .idx: try idx(bytes, skipping: skipping)
        case .csv: try csv(bytes)
        case .safetensors: try safetensors(bytes)
        case .checkpoint: try checkpoint(bytes)
        case .bertconfig: try bertConfig(bytes)
        case .vocab: try vocabulary(bytes)
        case .text: try textCorpus(bytes)
        }
    }

    /// The fuzzers' entry: runs the harness (stepping around `knownIssues`), crashes on a violation, ignores
    /// refusals.
    public static func fuzz(_ target: Target, _ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
        do {
            try run(target, Array(UnsafeBufferPointer(start: data, count: size)), skipping: knownIssues)
        } catch let violation as Violation {
            fatalError("fuzz target \(target.rawValue): \(violation)")
        } catch {}
        return 0
    }

    /// With MYELIN_FUZZ_WRITE_SEEDS=<folder> in the environment, writes the target's seeds there and exits (how
    /// `scripts/fuzz --seeds` makes Fuzz/corpus/<target>/); else returns.
    public static func writeSeedsIfAsked(_ target: Target) {
        guard let folder = ProcessInfo.processInfo.environment["MYELIN_FUZZ_WRITE_SEEDS"] else { return }
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            for (name, bytes) in try seeds(target) {
                try Data(bytes).write(to: URL(fileURLWithPath: folder).appendingPathComponent(name))
            }
        } catch {
            fatalError("cannot write the seeds of \(target.rawValue) to \(folder): \(error)")
        }
        exit(0)
    }

    // MARK: the harnesses

    /// The name inputs have in errors (a path when the reader reads a file).
    static let sourceName = "fuzz-input"

    /// Decodes IDX bytes (through zlib when gzip) and converts them to Float; then, as an MNIST split with a
    /// matching generated partner file, loads the split on the CPU: a rank-1 input as the labels, a rank-3 input
    /// as the images.
    static func idx(_ bytes: [UInt8], skipping: Set<KnownIssue>) throws {
        let array = try refusal(from: sourceName) { try IDX.decode(bytes, source: sourceName) }
        let elements = array.shape.reduce(1, *)
        guard array.payload.count == elements * array.type.size else {
            throw Violation("IDX.decode accepted shape \(array.shape) of \(array.type) with \(array.payload.count) payload bytes")
        }
        guard array.floats().count == elements else { throw Violation("IDXArray.floats() has the wrong count") }

        guard array.count <= 4096, array.shape.count == 1 || array.shape.count == 3 else { return }
        try withWorkFolder { folder in try mnistSplit(bytes, array, folder: folder, skipping: skipping) }
    }

    /// The input as the labels (rank 1) or images (rank 3) of an MNIST split in `folder`, loaded on the CPU.
    static func mnistSplit(_ bytes: [UInt8], _ array: IDXArray, folder: URL, skipping: Set<KnownIssue>) throws {
        let imagesURL = folder.appendingPathComponent("train-images-idx3-ubyte")
        let labelsURL = folder.appendingPathComponent("train-labels-idx1-ubyte")
        // The labels as stored (the input's values when it is the labels file).
        var labels = (0..<array.count).map { Float($0 % 10) }
        if array.shape.count == 1 {
            labels = array.floats()
            try write(IDX.encode(uint8: [UInt8](repeating: 7, count: array.count), shape: [array.count, 1, 1]), to: imagesURL)
            try write(bytes, to: labelsURL)
        } else {
            try write(bytes, to: imagesURL)
            try write(IDX.encode(uint8: (0..<array.count).map { UInt8($0 % 10) }, shape: [array.count]), to: labelsURL)
        }
        let data = try refusal(from: folder.path) { try MNIST.load(directory: folder, split: .train, on: .cpu) }
        guard data.count == array.count, data.targets.count == array.count else {
            throw Violation("MNIST.load made \(data.count) samples of a split of \(array.count)")
        }
        guard try data.targets.toArray() == labels, labels.allSatisfy({ $0 >= 0 && $0 < 10 }) else {
            throw Violation("MNIST.load turned the labels \(labels.prefix(16)) into \(try data.targets.toArray().prefix(16)) (a label outside 0..<10 or not a whole number must be refused)")
        }
    }

    /// Parses CSV text as `CSVTable.read` does (UTF-8 only), makes every column a tensor and, with two columns
    /// or more, a data set of all but the last column against the last; then writes the numbers back as CSV and
    /// parses them again: the same rows must come back.
    static func csv(_ bytes: [UInt8]) throws {
        guard let text = String(bytes: bytes, encoding: .utf8) else { return }   // CSVTable.read refuses it first
        let table = try refusal(from: sourceName) { try CSVTable(parsing: text, source: sourceName) }
        guard table.rows.allSatisfy({ $0.count == table.header.count && $0.allSatisfy(\.isFinite) }) else {
            throw Violation("CSVTable accepted a row of the wrong length or a non-finite value")
        }
        let all = try refusal(from: sourceName) { try table.tensor(table.header, on: .cpu) }
        guard all.shape == [table.rowCount, table.header.count] else { throw Violation("CSVTable.tensor has shape \(all.shape)") }
        if table.header.count >= 2, table.rowCount >= 1 {
            let features = try refusal(from: sourceName) { try table.tensor(Array(table.header.dropLast()), on: .cpu) }
            let targets = try refusal(from: sourceName) { try table.tensor([table.header.last!], on: .cpu) }
            _ = try refusal(from: "Dataset") { try Dataset(features: features, targets: targets) }
        }
        let names = table.header.indices.map { "c\($0)" }
        let written = ([names.joined(separator: ",")] + table.rows.map { $0.map { "\($0)" }.joined(separator: ",") })
            .joined(separator: "\n")
        let again: CSVTable
        do { again = try CSVTable(parsing: written, source: "rewritten") } catch {
            throw Violation("CSVTable refuses the numbers it read, written back: \(error)")
        }
        guard again.rows == table.rows else { throw Violation("CSVTable reads different numbers when they are written back") }
    }

    /// Decodes safetensors bytes, makes every tensor a CPU tensor, then encodes the entries again (as F32) and
    /// decodes that: the same names, shapes, values (bit for bit, or both NaN) and metadata must come back.
    static func safetensors(_ bytes: [UInt8]) throws {
        let file = try refusal(from: sourceName) { try SafeTensors.decode(Data(bytes), source: sourceName) }
        for e in file.entries {
            guard e.values.count == e.shape.reduce(1, *) else {
                throw Violation("tensor '\(e.name)' has \(e.values.count) values for shape \(e.shape)")
            }
        }
        _ = file.tensors(on: .cpu)
        let encoded: Data
        do { encoded = try SafeTensors.encode(entries: file.entries, metadata: file.metadata) } catch {
            throw Violation("SafeTensors.encode refuses what SafeTensors.decode accepted: \(error)")
        }
        let again: SafeTensorsFile
        do { again = try SafeTensors.decode(encoded, source: "re-encoded") } catch {
            throw Violation("SafeTensors.decode refuses what SafeTensors.encode wrote from an accepted file: \(error)")
        }
        guard again.metadata == file.metadata else { throw Violation("the metadata changed in a round trip") }
        let before = Dictionary(file.entries.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        guard again.entries.count == file.entries.count, before.count == file.entries.count else {
            throw Violation("a round trip changed the number of tensors (\(file.entries.count) → \(again.entries.count))")
        }
        for e in again.entries {
            guard let old = before[e.name], old.shape == e.shape, old.values.count == e.values.count,
                  zip(old.values, e.values).allSatisfy({ $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) }) else {
                throw Violation("tensor '\(e.name)' changed in a round trip")
            }
        }
    }

    /// The model the checkpoint harness loads into: Dense(3→4, ReLU), BatchNorm(4), Dropout, Dense(4→2), on the
    /// CPU, with fixed seeds (PyTorch keys 0.weight/0.bias, 2.*, 4.weight/4.bias).
    public static func checkpointModel() -> (model: Sequential, optimizer: Adam) {
        let model = Sequential {
            Dense(inputSize: 3, outputSize: 4, activation: .relu, seed: 1, device: .cpu)
            BatchNorm(features: 4, device: .cpu)
            Dropout(rate: 0.25, seed: 2)
            Dense(inputSize: 4, outputSize: 2, seed: 3, device: .cpu)
        }
        return (model, try! Adam(parameters: model.parameters, learningRate: 0.01))
    }

    /// Writes the bytes to a file and loads it as a plain model file (`Layer.load(from:strict: false)`), through
    /// the old-layout converter, and as `myelin --resume` does (`TrainingCheckpoint.load`) into a fresh
    /// `checkpointModel()` and Adam; throws the last refusal when none of them accepts it. A training checkpoint
    /// that loads must save, and that file must load back to the same tensors, epoch, seed and step.
    static func checkpoint(_ bytes: [UInt8]) throws {
        try withWorkFolder { folder in try checkpoint(bytes, folder: folder) }
    }

    static func checkpoint(_ bytes: [UInt8], folder: URL) throws {
        let url = folder.appendingPathComponent("checkpoint.safetensors")
        try write(bytes, to: url)
        // Accepted as a model file, or as an old-layout file to convert? (A violation ends the harness at once.)
        func accepts(_ body: () throws -> Void) throws -> Bool {
            do { try refusal(from: url.path, body); return true } catch let violation as Violation { throw violation } catch { return false }
        }
        let (plain, _) = checkpointModel()
        var accepted = try accepts { try plain.load(from: url, strict: false) }
        if let file = try? SafeTensors.decode(Data(bytes), source: url.path) {
            accepted = try accepts { _ = try LegacyCheckpoint.convert(file, source: url.path, for: checkpointModel().model) } || accepted
        }
        let (model, optimizer) = checkpointModel()
        let loaded: TrainingCheckpoint
        do {
            loaded = try refusal(from: url.path) { try TrainingCheckpoint.load(from: url, into: model, optimizer: optimizer) }
        } catch let error where accepted && !(error is Violation) {
            return   // not a training checkpoint, but a model file one of the other loaders took
        }

        let savedURL = folder.appendingPathComponent("resaved.safetensors")
        do {
            try TrainingCheckpoint.save(model: model, optimizer: optimizer, epoch: loaded.epoch, seed: loaded.seed,
                                        baseLearningRate: loaded.baseLearningRate, history: loaded.history, to: savedURL)
        } catch {
            return   // a refusal to save (e.g. non-finite weights) is an answer, not a crash
        }
        let (model2, optimizer2) = checkpointModel()
        let reloaded: TrainingCheckpoint
        do { reloaded = try TrainingCheckpoint.load(from: savedURL, into: model2, optimizer: optimizer2) } catch {
            throw Violation("a checkpoint saved from a loaded one does not load: \(error)")
        }
        guard reloaded.epoch == loaded.epoch, reloaded.seed == loaded.seed, optimizer2.stepCount == optimizer.stepCount else {
            throw Violation("epoch, seed or step changed in a save and load")
        }
        for ((name, a), (_, b)) in zip(model.namedTensors, model2.namedTensors) {
            guard zip(try a.toArray(), try b.toArray()).allSatisfy({ $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) }) else {
                throw Violation("tensor '\(name)' changed in a save and load")
            }
        }
    }

    /// Writes the bytes as a config.json and reads it as a `BertConfig`: what it accepts has every size ≥ 1,
    /// heads dividing the hidden size, and a positive epsilon.
    static func bertConfig(_ bytes: [UInt8]) throws {
        try withWorkFolder { folder in
            let url = folder.appendingPathComponent("config.json")
            try write(bytes, to: url)
            let c = try refusal(from: url.path) { try BertConfig(contentsOf: url) }
            guard [c.hiddenSize, c.layers, c.heads, c.intermediateSize, c.maxPositions, c.typeVocabularySize,
                   c.vocabularySize].allSatisfy({ $0 >= 1 }), c.hiddenSize % c.heads == 0,
                  c.layerNormEpsilon > 0, c.layerNormEpsilon.isFinite else {
                throw Violation("BertConfig accepted \(c)")
            }
        }
    }

    /// Texts the vocab harness tokenizes with the input's vocabulary (special tokens, punctuation, accents, CJK,
    /// controls, a word over `maxCharactersPerWord`).
    static let vocabularyTexts = [
        "Hello, world! [CLS] naïve CAFÉ 日本語 [MASK]x[SEP][PAD]", "", "  \t\n\u{0}\u{FFFD}\u{200B} [UNK",
        "unaffable ##ing don't e\u{301}\u{301} ß İ ﬃ 😀", String(repeating: "ab", count: 60),
    ]

    /// Writes the bytes as a vocab.txt and makes a tokenizer of it (cased and uncased, a short maximum length);
    /// it tokenizes `vocabularyTexts` and its own first tokens: every id is in the vocabulary, `encode` gives
    /// [CLS] … [SEP] within the maximum length, and a token of lower-case ASCII letters and digits alone is itself.
    static func vocabulary(_ bytes: [UInt8]) throws {
        try withWorkFolder { folder in
            let url = folder.appendingPathComponent("vocab.txt")
            try write(bytes, to: url)
            for lowercase in [true, false] {
                let t = try refusal(from: url.path) { try WordPieceTokenizer(vocabulary: url, maxSequenceLength: 8, lowercase: lowercase) }
                guard t.ids.count == t.tokens.count, t.tokens.enumerated().allSatisfy({ t.ids[$0.element] == $0.offset }) else {
                    throw Violation("WordPieceTokenizer's ids do not match its tokens")
                }
                let own = t.tokens.prefix(32)
                for text in vocabularyTexts + [own.joined(separator: " ")] {
                    let ids = t.tokenIDs(text), encoded = t.encode(text)
                    guard ids.allSatisfy(t.tokens.indices.contains), encoded.count <= 8, encoded.first == t.classID,
                          encoded.last == t.separatorID, encoded.dropFirst().dropLast().elementsEqual(ids.prefix(6)) else {
                        throw Violation("WordPieceTokenizer gave ids \(ids) (encoded \(encoded)) for \(String(reflecting: text)) with \(t.tokens.count) tokens")
                    }
                }
                for token in own where token.utf8.count <= t.maxCharactersPerWord && token.utf8.allSatisfy({ (97...122).contains($0) || (48...57).contains($0) }) {
                    guard t.tokenize(token) == [token] else { throw Violation("the token '\(token)' is tokenized as \(t.tokenize(token))") }
                }
                let batch = t.encode(batch: vocabularyTexts)
                guard batch.ids.count == vocabularyTexts.count * batch.length, batch.attentionMask.count == batch.ids.count else {
                    throw Violation("a TokenBatch of \(vocabularyTexts.count) texts has \(batch.ids.count) ids for length \(batch.length)")
                }
            }
        }
    }

    /// Writes the bytes as a text file and reads it as `myelin train-text --data` does (checked UTF-8 text, its
    /// character vocabulary, tokens, a 90/10 split): the tokens decode back to the text, the split covers them in
    /// order, and the vocabulary survives its JSON form (a checkpoint's metadata) and encodes the text the same.
    static func textCorpus(_ bytes: [UInt8]) throws {
        try withWorkFolder { folder in
            let url = folder.appendingPathComponent("input.txt")
            try write(bytes, to: url)
            let text = try refusal(from: url.path) { try TextCorpus.readText(url) }
            guard Array(text.utf8) == bytes else { throw Violation("TextCorpus.readText changed the bytes of the text") }
            let corpus = try refusal(from: url.path) { try TextCorpus(text: text, source: url.path) }
            let v = corpus.vocabulary
            guard v.count >= 2, corpus.tokens.allSatisfy(v.characters.indices.contains), v.decode(corpus.tokens) == text,
                  corpus.tokens.count == text.unicodeScalars.count else {
                throw Violation("TextCorpus's \(corpus.tokens.count) tokens of \(v.count) characters do not decode to the text")
            }
            let (train, validation) = corpus.split(validationFraction: 0.1)
            guard train + validation == corpus.tokens else { throw Violation("TextCorpus.split does not cover the tokens in order") }
            let stored: CharacterVocabulary
            do { stored = try CharacterVocabulary(json: v.json()) } catch {
                throw Violation("CharacterVocabulary refuses its own JSON: \(error)")
            }
            guard stored == v else { throw Violation("CharacterVocabulary changed in a JSON round trip") }
            let again = try refusal(from: url.path) { try TextCorpus(text: text, vocabulary: stored, source: url.path) }
            guard again.tokens == corpus.tokens else { throw Violation("the stored vocabulary encodes the text differently") }
        }
    }

    // MARK: support

    /// Runs a reader: its value, or its error when that error is one of Myelin's reader errors (DataError,
    /// CheckpointError, PretrainedModelError, TextCorpusError) naming `source`; any other error, or one that does
    /// not name the source, is a violation.
    static func refusal<T>(from source: String, _ body: () throws -> T) throws -> T {
        do { return try body() } catch let violation as Violation { throw violation } catch {
            guard error is DataError || error is CheckpointError || error is PretrainedModelError || error is TextCorpusError else {
                throw Violation("an error of type \(type(of: error)) where a reader's error naming \(source) was due: \(error)")
            }
            guard "\(error)".contains(source) else { throw Violation("the error does not name \(source): \(error)") }
            throw error
        }
    }

    /// Runs `body` with a new empty folder (under $TMPDIR) for the files a harness writes, then removes it.
    static func withWorkFolder<T>(_ body: (URL) throws -> T) throws -> T {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("myelin-fuzz-\(getpid())-\(UUID().uuidString)")
        do { try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) } catch {
            throw Violation("cannot make the work folder \(url.path): \(error)")
        }
        defer { try? FileManager.default.removeItem(at: url) }
        return try body(url)
    }

    static func write(_ bytes: [UInt8], to url: URL) throws {
        do { try Data(bytes).write(to: url) } catch { throw Violation("cannot write the work file \(url.path): \(error)") }
    }

    // MARK: seeds

    /// Small valid inputs of each target, written by Myelin's own writers (`scripts/fuzz --seeds` puts them in
    /// Fuzz/corpus/<target>/).
    public static func seeds(_ target: Target) throws -> [(name: String, bytes: [UInt8])] {
        switch target {
        case .idx:
            let images = IDX.encode(uint8: (0..<24).map { UInt8($0 * 10) }, shape: [4, 2, 3])
            let labels = IDX.encode(uint8: [3, 1, 4, 1], shape: [4])
            var floats: [UInt8] = [0, 0, 0x0D, 1, 0, 0, 0, 3]
            for v: Float in [1, 0, 9] { floats += withUnsafeBytes(of: v.bitPattern.bigEndian, Array.init) }
            var int16: [UInt8] = [0, 0, 0x0B, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2]
            int16 += [0, 1, 0xFF, 0xFE, 0x7F, 0xFF, 0x80, 0x00]
            return [("images-u8", images), ("labels-u8", labels), ("images-u8.gz", Gzip.compress(images)),
                    ("labels-u8.gz", Gzip.compress(labels)), ("labels-f32", floats), ("images-i16", int16),
                    ("two-members.gz", Gzip.compress(Array(labels[0..<6])) + Gzip.compress(Array(labels[6...])))]
        case .csv:
            return [("apartments.csv", Array(ToyTable.apartments.csvText.utf8)),
                    ("xor.csv", Array(ToyTable.xor.csvText.utf8)),
                    ("quoted.csv", Array("# a comment\r\n\"x 1\", \"y,2\" ,z\r\n1,-2.5e3,0x1p-2\r\n\r\n  3 ,\"4\",5\n".utf8))]
        case .safetensors:
            let f32 = try SafeTensors.encode(entries: [
                SafeTensorsEntry(name: "0.weight", shape: [2, 3], values: [1, -2, 0.5, 3e-8, .infinity, 0]),
                SafeTensorsEntry(name: "0.bias", shape: [2], values: [0.25, -1]),
                SafeTensorsEntry(name: "empty", shape: [0, 4], values: []),
                SafeTensorsEntry(name: "scalar", shape: [], values: [42]),
            ], metadata: ["epoch": "3"])
            return [("f32.safetensors", [UInt8](f32)), ("dtypes.safetensors", dtypesFile())]
        case .bertconfig:
            // all-MiniLM-L6-v2's config.json as Hugging Face ships it; the fields Myelin needs, alone; a tanh GELU.
            let miniLM = """
                {"_name_or_path": "nreimers/MiniLM-L6-H384-uncased", "architectures": ["BertModel"],
                 "attention_probs_dropout_prob": 0.1, "gradient_checkpointing": false, "hidden_act": "gelu",
                 "hidden_dropout_prob": 0.1, "hidden_size": 384, "initializer_range": 0.02, "intermediate_size": 1536,
                 "layer_norm_eps": 1e-12, "max_position_embeddings": 512, "model_type": "bert",
                 "num_attention_heads": 12, "num_hidden_layers": 6, "pad_token_id": 0,
                 "position_embedding_type": "absolute", "transformers_version": "4.8.2", "type_vocab_size": 2,
                 "use_cache": true, "vocab_size": 30522}
                """
            let minimal = #"{"hidden_act":"gelu","hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":16,"layer_norm_eps":1e-5,"max_position_embeddings":4,"type_vocab_size":1,"vocab_size":10}"#
            let tanh = minimal.replacingOccurrences(of: #""gelu""#, with: #""gelu_pytorch_tanh""#)
            return [("minilm.json", Array(miniLM.utf8)), ("minimal.json", Array(minimal.utf8)), ("tanh.json", Array(tanh.utf8))]
        case .vocab:
            let bert = ["[PAD]", "[unused0]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "!", ",", "the", "hello", "world",
                        "un", "##aff", "##able", "##ing", "caf", "##e", "日", "本", "語", "a", "##b", "x", "'", "t", "don"]
            let crlf = ["[CLS]", "[SEP]", "[UNK]", "[PAD]", "naïve", "Ünïcode", "##s", "ß", "😀", "tab\t"]
            return [("bert.txt", Array((bert.joined(separator: "\n") + "\n").utf8)),
                    ("crlf.txt", Array(crlf.joined(separator: "\r\n").utf8))]
        case .text:
            let verse = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n"
            return [("shakespeare.txt", Array(verse.utf8)), ("unicode.txt", Array("naïve café\r\n\t日本語 😀 e\u{301}\u{FEFF}\n".utf8)),
                    ("two.txt", Array("ab".utf8))]
        case .checkpoint:
            let (model, optimizer) = checkpointModel()
            var state: [String: Tensor] = ["step": Tensor(scalar: 2, on: .cpu)]
            for (i, p) in model.parameters.enumerated() {
                state["\(i).step"] = Tensor(scalar: 2, on: .cpu)
                state["\(i).exp_avg"] = try Tensor([Float](repeating: 0.01, count: p.count), shape: p.shape, on: .cpu)
                state["\(i).exp_avg_sq"] = try Tensor([Float](repeating: 1e-4, count: p.count), shape: p.shape, on: .cpu)
            }
            try optimizer.loadState(state)
            var history = History()
            history.append(epoch: 1, ["loss": 0.5, "val_accuracy": 0.75])
            history.append(epoch: 2, ["loss": 0.25, "val_accuracy": 0.8])
            let (training, plain) = try withWorkFolder { folder in
                let url = folder.appendingPathComponent("seed.safetensors")
                try TrainingCheckpoint.save(model: model, optimizer: optimizer, epoch: 2, seed: 7, baseLearningRate: 0.01,
                                            history: history, to: url)
                let training = try [UInt8](Data(contentsOf: url))
                try model.save(to: url)
                return (training, try [UInt8](Data(contentsOf: url)))
            }
            // The same model in the old layout (Dense weights [in, out], keys numbered by Swift layer, no marker).
            var old: [SafeTensorsEntry] = []
            for (name, t) in model.namedTensors where !name.hasSuffix("num_batches_tracked") {
                let index = ["0": "0", "2": "1", "4": "3"][String(name.prefix(1))]!
                let key = index + name.dropFirst(1)
                if name.hasSuffix("weight"), t.shape.count == 2 {
                    let (r, c) = (t.shape[0], t.shape[1])
                    let v = try t.toArray()
                    old.append(SafeTensorsEntry(name: key, shape: [c, r], values: (0..<(r * c)).map { v[($0 % r) * c + $0 / r] }))
                } else {
                    old.append(SafeTensorsEntry(name: key, shape: t.shape, values: try t.toArray()))
                }
            }
            let legacy = try [UInt8](SafeTensors.encode(entries: old))
            return [("training.safetensors", training), ("model.safetensors", plain), ("old-layout.safetensors", legacy)]
        }
    }

    /// A safetensors file with one tensor of every dtype Myelin reads, written by hand (Myelin writes only F32).
    static func dtypesFile() -> [UInt8] {
        let tensors: [(String, [UInt8])] = [
            ("BF16", [0x80, 0x3F, 0x00, 0xC0]), ("BOOL", [0, 1]), ("F16", [0x00, 0x3C, 0x00, 0x7C]),
            ("F64", [0, 0, 0, 0, 0, 0, 0xF0, 0x3F]), ("I16", [0xFF, 0xFF]), ("I32", [5, 0, 0, 0]),
            ("I64", [0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]), ("I8", [0x80]), ("U16", [0xFF, 0xFF]),
            ("U32", [1, 0, 0, 0]), ("U64", [2, 0, 0, 0, 0, 0, 0, 0]), ("U8", [255, 9]),
        ]
        var header = "{\"__metadata__\":{\"format\":\"pt\"}"
        var data: [UInt8] = []
        for (dtype, bytes) in tensors {
            let size = ["BF16": 2, "BOOL": 1, "F16": 2, "F64": 8, "I16": 2, "I32": 4, "I64": 8, "I8": 1,
                        "U16": 2, "U32": 4, "U64": 8, "U8": 1][dtype]!
            header += ",\"\(dtype.lowercased())\":{\"dtype\":\"\(dtype)\",\"shape\":[\(bytes.count / size)],\"data_offsets\":[\(data.count),\(data.count + bytes.count)]}"
            data += bytes
        }
        header += "}"
        var headerBytes = Array(header.utf8)
        headerBytes += [UInt8](repeating: 0x20, count: (8 - headerBytes.count % 8) % 8)
        return withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian, Array.init) + headerBytes + data
    }
}
