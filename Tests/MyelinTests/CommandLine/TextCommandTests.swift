import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// `myelin train text` and `myelin generate` end to end on a small text: the checkpoint holds what `generate` needs,
/// the cached and uncached generations agree, and bad texts and prompts get messages naming the file or option.
@Suite(.enabled(if: MyelinCommandLine.isBuilt, MyelinCommandLine.skipReason))
struct TextCommandTests {
    @Test func trainTextThenGenerate() throws {
        try inTemporaryFolder { folder in
            let text = folder.appendingPathComponent("text.txt")
            try Data(String(repeating: "a cat sat on a mat.\n", count: 60).utf8).write(to: text)
            let checkpoint = folder.appendingPathComponent("gpt.safetensors").path
            let train = try MyelinCommandLine.run([
                "train", "text", "--device", "cpu", "--data", text.path, "--steps", "30", "--eval-interval", "15",
                "--eval-iters", "2", "--layers", "1", "--heads", "2", "--embed-dim", "16", "--block-size", "16",
                "--sample-tokens", "10", "--save", checkpoint, "--quiet"])
            #expect(train.status == 0, "\(train.all)")
            #expect(train.output.contains("vocabulary 10") && train.output.contains("step 30/30: train loss")
                    && train.output.contains("val loss") && train.output.contains("Saved checkpoint"), "\(train.all)")
            func generate(_ extra: [String]) throws -> String {
                let r = try MyelinCommandLine.run(["generate", "--device", "cpu", "--load", checkpoint, "--prompt", "a c",
                                                   "--tokens", "40", "--seed", "3"] + extra)
                #expect(r.status == 0, "\(r.all)")
                return r.output
            }
            let cached = try generate([]), uncached = try generate(["--no-cache"])
            #expect(cached.hasPrefix("a c") && cached.count == 3 + 40 + 1, "\(cached)")
            #expect(cached == uncached)
            let bad = try MyelinCommandLine.run(["generate", "--load", checkpoint, "--prompt", "xyz"])
            #expect(bad.status == 1 && bad.errors.contains("--prompt: character \"x\""), "\(bad.all)")
            let empty = folder.appendingPathComponent("empty.txt")
            try Data().write(to: empty)
            let refused = try MyelinCommandLine.run(["train", "text", "--device", "cpu", "--data", empty.path])
            #expect(refused.status == 1 && refused.errors.contains("empty.txt: the text is empty"), "\(refused.all)")
            let binary = try MyelinCommandLine.run(["train", "text", "--device", "cpu", "--data", checkpoint])
            #expect(binary.status == 1 && binary.errors.contains("gpt.safetensors: looks like a binary file"), "\(binary.all)")
        }
    }

    /// Sizes no machine holds are refused before the model is built, at once, naming the option (issue 28, item 2).
    @Test func hugeSizesAreRefusedNamingTheOption() throws {
        try inTemporaryFolder { folder in
            let text = folder.appendingPathComponent("text.txt")
            try Data(String(repeating: "a cat sat on a mat.\n", count: 60).utf8).write(to: text)
            for (options, named) in [(["--layers", "1000000000"], "--layers 1000000000, "),
                                     (["--embed-dim", "1048576", "--heads", "1"], "--embed-dim 1048576, "),
                                     (["--batch-size", "1000000000", "--block-size", "16"], "--batch-size 1000000000, "),
                                     (["--dropout", "0.1", "--heads", "1024", "--embed-dim", "1024", "--block-size", "8192"], "--heads 1024, ")] {
                let start = Date()
                let r = try MyelinCommandLine.run(["train", "text", "--device", "cpu", "--data", text.path] + options)
                #expect(r.status == 1 && r.errors.contains("Error: \(named)") && r.errors.contains("training a GPT of ")
                        && r.errors.contains("of memory available"), "\(options): \(r.all)")
                #expect(Date().timeIntervalSince(start) < 30, "\(options)")
            }
        }
    }
}
