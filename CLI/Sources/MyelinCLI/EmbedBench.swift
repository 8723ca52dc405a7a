import ArgumentParser
import Foundation
import Myelin

/// `myelin bench embed`: sentence-embedding throughput of a sentence-transformers model (all-MiniLM-L6-v2 by
/// default) on a file of sentences, as `Benchmarks/st_embed.py` times sentence-transformers on the same file: the
/// model loaded, `--warmup` sentences embedded untimed, then `SentenceEncoder.encode` of every sentence (tokenizing,
/// sorting by length, batches of `--batch-size`) timed `--runs` times. One JSON line: the median's sentences/s.
///
/// ```sh
/// python3 Benchmarks/embed_sentences.py /tmp/sentences.txt && myelin bench embed --input /tmp/sentences.txt --device cpu
/// ```
struct EmbedBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "Times sentence embedding (SentenceEncoder.encode) of a file of sentences; one JSON line.")

    @Option(help: "A text file with one sentence a line.") var input: String
    @Option(help: "The model's folder (default: the installed \(SentenceEncoder.packageName)).") var model: String?
    @Option(help: "Sentences per batch.") var batchSize = 32
    @Option(help: "Sentences embedded untimed first.") var warmup = 64
    @Option(help: "Timed passes over the file (the median is reported).") var runs = 1
    @OptionGroup var deviceOptions: DeviceOptions

    func validate() throws {
        guard batchSize >= 1, warmup >= 0, runs >= 1 else {
            throw ValidationError("--batch-size and --runs must be at least 1 and --warmup at least 0, got \(batchSize), \(runs), \(warmup)")
        }
    }

    func run() throws {
        let text: String
        do { text = try String(contentsOfFile: input, encoding: .utf8) } catch {
            throw FileOptionError(message: "--input: \(input): cannot be read as UTF-8 text (\(error.localizedDescription))")
        }
        let sentences = text.split(whereSeparator: \.isNewline).map(String.init)
        guard !sentences.isEmpty else { throw FileOptionError(message: "--input: \(input): holds no sentence") }
        guard let folder = model.map({ URL(fileURLWithPath: $0) }) ?? SentenceEncoder.installedModelDirectory() else {
            throw FileOptionError(message: "no --model folder given, and the model package is not installed; install it with: \(SentenceEncoder.installCommand)")
        }
        let device = try deviceOptions.resolve()
        let encoder = try SentenceEncoder(directory: folder, device: device)
        if warmup > 0 { _ = try encoder.encode(Array(sentences.prefix(warmup)), batchSize: batchSize).toArray() }
        var seconds: [Double] = []
        for _ in 0..<runs {
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try encoder.encode(sentences, batchSize: batchSize).toArray()
            seconds.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        let median = seconds.sorted()[seconds.count / 2]
        let row: [String: Any] = ["device": device.name, "sentences": sentences.count, "batch_size": batchSize,
                                  "seconds": median, "sentences_per_s": Double(sentences.count) / median]
        let data = try JSONSerialization.data(withJSONObject: row, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }
}
