import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// `myelin bench gpt` (the Myelin side of bench-peers' GPT rows): one JSON line per mode, with positive tokens/s and
/// a finite loss near ln(vocab) after a few steps from random weights, and option errors naming the option.
@Suite(.enabled(if: MyelinCommandLine.isBuilt, MyelinCommandLine.skipReason))
struct GPTBenchTests {
    /// The JSON object of the one line of `output` that starts with `{`.
    static func row(_ output: String) throws -> [String: Any] {
        let line = try #require(output.split(separator: "\n").first { $0.hasPrefix("{") }, "no JSON line in \(output)")
        return try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }

    @Test func trainAndGeneratePrintOneJSONLineEach() throws {
        let train = try MyelinCommandLine.run(["bench", "gpt", "--device", "cpu", "--vocab", "7", "--batch", "2",
                                               "--warmup", "1", "--steps", "2"])
        #expect(train.status == 0, "\(train.all)")
        let t = try Self.row(train.output)
        let tokensPerSecond = try #require(t["tokens_per_s"] as? Double, "\(t)")
        let loss = try #require(t["final_loss"] as? Double, "\(t)")
        #expect(tokensPerSecond > 0 && t["steps"] as? Int == 2 && t["mode"] as? String == "train", "\(t)")
        // Random tokens from near-uniform predictions: the loss stays near ln 7 ≈ 1.95 over three steps.
        #expect(abs(loss - Foundation.log(7)) < 0.3, "loss \(loss)")
        for cache in [true, false] {
            let run = try MyelinCommandLine.run(["bench", "gpt", "--device", "cpu", "--vocab", "7", "--mode", "generate",
                                                 "--warmup", "0", "--tokens", "3"] + (cache ? [] : ["--no-cache"]))
            #expect(run.status == 0, "\(run.all)")
            let g = try Self.row(run.output)
            #expect(g["tokens"] as? Int == 3 && g["cache"] as? Bool == cache && (g["tokens_per_s"] as? Double ?? 0) > 0, "\(g)")
        }
    }

    @Test func badOptionsNameTheOption() throws {
        let mode = try MyelinCommandLine.run(["bench", "gpt", "--mode", "sample"])
        #expect(mode.status == 64 && mode.errors.contains("--mode must be train or generate, got 'sample'"), "\(mode.all)")
        let steps = try MyelinCommandLine.run(["bench", "gpt", "--steps", "0"])
        #expect(steps.status == 64 && steps.errors.contains("--steps"), "\(steps.all)")
    }
}
