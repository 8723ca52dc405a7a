import Foundation
import Testing
@testable import Myelin

/// What the probe of bad inputs of 2026-12-07 (scripts/probe-cli) found unclear or unbounded, fixed: each case as the
/// built command runs it (the `embed --input` cases are in `EmbedCommandTests`).
@Suite(.enabled(if: MyelinCommandLine.isBuilt, MyelinCommandLine.skipReason))
struct ProbeFindingsTests {
    /// `bench attention --lengths 10000000` and `bench conv --batch 1000000000` ran past any time limit building host
    /// arrays no machine holds: now refused at once, naming the option.
    @Test func benchSizesNoMachineHoldsAreRefusedNamingTheOption() throws {
        let start = Date()
        let attention = try MyelinCommandLine.run(["bench", "attention", "--lengths", "10000000", "--device", "cpu"])
        #expect(attention.status == 1 && attention.errors.contains("Error: --lengths 10000000 with --shape 4,4,32: the inputs")
                && attention.errors.contains("of memory available"), "\(attention.all)")
        let conv = try MyelinCommandLine.run(["bench", "conv", "--batch", "1000000000", "--device", "cpu"])
        #expect(conv.status == 1 && conv.errors.contains("Error: --batch 1000000000: the im2col columns"), "\(conv.all)")
        let model = try MyelinCommandLine.run(["bench", "conv", "--model", "cnn", "--batch", "1000000000", "--device", "cpu"])
        #expect(model.status == 1 && model.errors.contains("Error: --batch 1000000000: training the cnn"), "\(model.all)")
        #expect(Date().timeIntervalSince(start) < 30)
    }

    /// `--logdir` under a regular file said "cannot write the file (error 512)" (Foundation's code): now in words, from
    /// the command and from `TensorBoardWriter`.
    @Test func logdirUnderAFileSaysWhy() throws {
        try inTemporaryFolder { dir in
            let text = dir.appendingPathComponent("text.txt")
            try Data(String(repeating: "a cat sat on a mat.\n", count: 60).utf8).write(to: text)
            let r = try MyelinCommandLine.run(["train", "text", "--device", "cpu", "--data", text.path, "--steps", "1",
                                               "--logdir", text.appendingPathComponent("logs").path])
            #expect(r.status == 1 && r.errors.contains("--logdir: \(text.path)/logs: cannot write the file (a part of the path is not a folder)"),
                    "\(r.all)")
            let library = errorText { _ = try TensorBoardWriter(logDir: text.appendingPathComponent("runs/first")) }
            #expect(library.contains("a part of the path is not a folder") && !library.contains("error 512"), "\(library)")
        }
    }

    /// Resuming `train text` with `--steps` at the checkpoint's count named `--epochs`, an option the user did not give.
    @Test func resumingTextNamesSteps() throws {
        try inTemporaryFolder { dir in
            let text = dir.appendingPathComponent("text.txt"), checkpoint = dir.appendingPathComponent("gpt.safetensors").path
            try Data(String(repeating: "a cat sat on a mat.\n", count: 60).utf8).write(to: text)
            let small = ["--device", "cpu", "--data", text.path, "--layers", "1", "--heads", "2", "--embed-dim", "8", "--block-size", "8",
                         "--sample-tokens", "0", "--eval-interval", "2", "--eval-iters", "1", "--quiet"]
            let train = try MyelinCommandLine.run(["train", "text", "--steps", "2", "--save", checkpoint] + small)
            #expect(train.status == 0, "\(train.all)")
            let again = try MyelinCommandLine.run(["train", "text", "--device", "cpu", "--data", text.path, "--steps", "2", "--load", checkpoint])
            #expect(again.status == 1 && again.errors.contains("Error: --steps counts all steps, so it must be more than the 2 steps"),
                    "\(again.all)")
        }
    }
}
