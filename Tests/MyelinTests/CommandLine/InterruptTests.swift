import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// Ctrl-C keeps the work: SIGINT (or SIGTERM) during epoch 2 of `myelin train` finishes the batch, saves a checkpoint
/// that resumes there, and exits with 130 (143); the resumed run ends with the parameters of a run never stopped.
@Suite(.serialized, .enabled(if: MyelinCommandLine.isBuilt, MyelinCommandLine.skipReason))
struct InterruptTests {
    /// Fashion-MNIST-shaped random data, a small MLP, 3 epochs of 184 batches of 4 on the CPU device.
    static func arguments(data: URL) -> [String] {
        ["train", "fashion-mnist", "--device", "cpu", "--data", data.path, "--validation", "64", "--hidden", "32",
         "--batch-size", "4", "--epochs", "3", "--seed", "3", "--quiet"]
    }

    /// Every tensor of two checkpoints (model and optimizer state) agrees within `atol`.
    static func expectSameTensors(_ a: URL, _ b: URL, atol: Double = 1e-6, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let x = try SafeTensors.load(a), y = try SafeTensors.load(b)
        #expect(x.names.sorted() == y.names.sorted(), sourceLocation: sourceLocation)
        for e in x.entries {
            guard let other = y[e.name] else { continue }
            expectClose(other.values, e.values, rtol: 0, atol: atol, "\(e.name)", sourceLocation: sourceLocation)
        }
    }

    /// Starts a training run with its progress bar (`--verbose` in place of `--quiet`), sends `signal` once the bar
    /// shows epoch 2 under way (so it arrives inside epoch 2, whatever the machine's load), with `again` a second
    /// time once the command said it received the first, and returns the finished run. The bar only reads the
    /// running sums: the parameters are those of a `--quiet` run.
    static func interrupted(_ arguments: [String], signal: Int32, again: Bool = false, in folder: URL) throws -> MyelinCommandLine.Result {
        let run = try MyelinCommandLine.start(arguments.map { $0 == "--quiet" ? "--verbose" : $0 }, in: folder)
        let reached = run.wait(for: "Epoch 2/3 [", timeout: 240)
        #expect(reached, "epoch 2 never started: \(run.outputSoFar)")
        run.send(signal)
        if again {
            #expect(run.wait(for: "received: finishing the current batch", timeout: 60), "\(run.outputSoFar)")
            run.send(signal)
        }
        return try run.finish()
    }

    @Test func sigintAndSigtermDuringEpoch2SaveACheckpointThatResumesExactly() throws {
        let folder = temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let data = try MyelinCommandLine.tinyFashionMNIST(train: 800, test: 32, in: folder)
        let base = Self.arguments(data: data)
        let full = folder.appendingPathComponent("full.safetensors")
        let uninterrupted = try MyelinCommandLine.run(base + ["--save", full.path], in: folder)
        #expect(uninterrupted.status == 0, "\(uninterrupted.all)")

        // SIGINT, with --save: the checkpoint goes there, with the history so far; exit 130.
        let saved = folder.appendingPathComponent("stopped.safetensors")
        let history = folder.appendingPathComponent("stopped.csv")
        let int = try Self.interrupted(base + ["--save", saved.path, "--history", history.path], signal: SIGINT, in: folder)
        #expect(int.status == 130, "\(int.all)")
        #expect(int.all.contains("Stopped by SIGINT (Ctrl-C) after batch") && int.all.contains("of 184 of epoch 2")
                && int.all.contains("--load \(saved.path)"), "\(int.all)")
        let checkpoint = try SafeTensors.load(saved)
        #expect(checkpoint.metadata["epoch"] == "1" && checkpoint.metadata[TrainingCheckpoint.partialEpochKey] != nil,
                "\(checkpoint.metadata)")
        #expect(try String(contentsOf: history, encoding: .utf8).split(separator: "\n").count == 2, "the history holds epoch 1")
        let resumedFile = folder.appendingPathComponent("resumed.safetensors")
        let resumed = try MyelinCommandLine.run(base + ["--load", saved.path, "--save", resumedFile.path], in: folder)
        #expect(resumed.status == 0 && resumed.output.contains("inside epoch 2, after its batch"), "\(resumed.all)")
        try Self.expectSameTensors(full, resumedFile)

        // SIGTERM, without --save: a rescue file in the current folder, named in the message; exit 143.
        let term = try Self.interrupted(base, signal: SIGTERM, in: folder)
        #expect(term.status == 143, "\(term.all)")
        let rescue = try #require(try FileManager.default.contentsOfDirectory(atPath: folder.path)
            .first { $0.hasPrefix("rescued-") && $0.hasSuffix("-interrupted-fashion-mnist.safetensors") }, "\(term.all)")
        #expect(term.all.contains("Stopped by SIGTERM") && term.all.contains(rescue) && term.all.contains("of epoch 2"), "\(term.all)")
        let fromRescue = folder.appendingPathComponent("from-rescue.safetensors")
        let resumed2 = try MyelinCommandLine.run(base + ["--load", folder.appendingPathComponent(rescue).path, "--save", fromRescue.path],
                                                 in: folder)
        #expect(resumed2.status == 0, "\(resumed2.all)")
        try Self.expectSameTensors(full, fromRescue)
    }

    @Test func aSecondSignalStopsAtOnceAndLeavesNoTornFile() throws {
        let folder = temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let data = try MyelinCommandLine.tinyFashionMNIST(train: 200, test: 32, in: folder)
        let target = folder.appendingPathComponent("kept.safetensors")
        let before = Data("not a checkpoint yet".utf8)
        try before.write(to: target)
        // A wide layer (3.2 million parameters, a 39 MB checkpoint with Adam's moments) makes the save take a while,
        // so that the second signal reliably comes before the first one's save is over.
        let arguments = Self.arguments(data: data).map { $0 == "32" ? "4096" : $0 }
        let run = try Self.interrupted(arguments + ["--save", target.path], signal: SIGINT, again: true, in: folder)
        #expect(run.status == 130, "\(run.all)")
        #expect(run.all.contains("received again: stopping at once"), "\(run.all)")
        // The file is the old one or a whole checkpoint, never a part of one.
        let after = try Data(contentsOf: target)
        #expect(after == before || (try? SafeTensors.load(target)) != nil, "a torn file: \(after.count) bytes")
    }
}
