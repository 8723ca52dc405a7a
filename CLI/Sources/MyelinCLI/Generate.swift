import ArgumentParser
import Foundation
import Myelin

/// `myelin generate`: text sampled from a GPT checkpoint of `myelin train text`, with a key/value cache.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Sample text from a GPT checkpoint (myelin train text --save), one position per new character (KV cache).")
    @OptionGroup var device: DeviceOptions
    @Option(help: "The checkpoint (from myelin train text --save).") var load: String
    @Option(help: "The text to continue (default: a newline). \\n in it is a newline.") var prompt: String = "\n"
    @Option(parsing: .unconditional, help: "Characters to generate (default 300).") var tokens: Int = 300
    @Option(parsing: .unconditional, help: "Softmax temperature; 0 is greedy (default 0.8).") var temperature: Float = 0.8
    @Option(name: .customLong("top-k"), parsing: .unconditional, help: "Draw among the k most likely characters only (default 200).")
    var topK: Int = 200
    @Option(parsing: .unconditional, help: "Seed of the draws.") var seed: UInt64 = 1
    @Flag(name: .customLong("no-cache"), help: "Recompute the whole context for every character (slower; the same text).")
    var noCache = false

    func validate() throws {
        try checkingValues { try ValueCheck.atLeast(0, tokens, name: "--tokens"); try ValueCheck.atLeast(1, topK, name: "--top-k") }
        guard temperature >= 0, temperature.isFinite else { throw ValidationError("--temperature must be >= 0 (0: greedy), got \(temperature)") }
    }

    func run() throws {
        do { _ = try ReadableFile(URL(fileURLWithPath: load)) } catch { throw FileOptionError(message: "--load: \(error)") }
        let device = try self.device.resolve()
        Device.default = device
        let (gpt, vocabulary) = try GPT.load(from: URL(fileURLWithPath: load), device: device)
        let text = prompt.replacingOccurrences(of: "\\n", with: "\n")
        let encoded = try vocabulary.encode(text, source: "--prompt")
        guard !encoded.isEmpty else { throw ValidationError("--prompt is empty; give at least one character") }
        FileHandle.standardError.write(Data("\(gpt.layerDescription) on \(device.name)\n".utf8))
        print(text, terminator: "")
        let start = Date()
        _ = try gpt.generate(prompt: encoded, count: tokens, sampling: SamplingOptions(temperature: temperature, topK: topK, seed: seed),
                             useCache: !noCache) { token in
            print(vocabulary.decode([token]), terminator: "")
            fflush(nil)
        }
        print()
        let seconds = Date().timeIntervalSince(start)
        FileHandle.standardError.write(Data(String(format: "%d characters in %.2f s (%.0f/s)%@\n", tokens, seconds,
                                                   Double(tokens) / Swift.max(seconds, 1e-9), noCache ? ", no cache" : "").utf8))
    }
}
