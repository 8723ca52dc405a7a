import Foundation
import Testing
@testable import Myelin

/// `myelin finetune-embed` on a tiny model folder: held-out scores before and after, frozen layers reported, the
/// written folder loads with `myelin embed`, and option and file errors.
@Suite(.enabled(if: MyelinCommandLine.isBuilt, MyelinCommandLine.skipReason))
struct FinetuneEmbedCommandTests {
    @Test func trainsReportsAndWritesAFolder() throws {
        try inTemporaryFolder { dir in
            let model = dir.appendingPathComponent("model"), out = dir.appendingPathComponent("tuned")
            try FileManager.default.createDirectory(at: model, withIntermediateDirectories: true)
            try SentenceEncoderTests.writeTinyFolder(model)
            let train = dir.appendingPathComponent("train.tsv")
            try "hello\thello , world !\ncafe\tcafe .\n中\t中 文\nun ##aff\ts ' s\n".write(to: train, atomically: true, encoding: .utf8)
            let run = try MyelinCommandLine.run(["finetune-embed", "--model", model.path, "--train", train.path, "--eval", train.path,
                                                 "--epochs", "2", "--learning-rate", "0.01", "--freeze-layers", "1",
                                                 "--output", out.path, "--device", "cpu"])
            #expect(run.status == 0, "\(run.all)")
            let lines = run.output.split(separator: "\n").map(String.init)
            #expect(lines.first?.hasPrefix("4 training pairs, 4 held-out pairs") == true && lines[0].contains("frozen"), "\(run.output)")
            #expect(lines.contains { $0.hasPrefix("before: held-out accuracy@1 ") } && lines.contains { $0.hasPrefix("epoch 2: held-out") },
                    "\(run.output)")
            #expect(lines.contains { $0.hasPrefix("epoch 1: mean loss ") && $0.contains("over 1 steps") }, "\(run.output)")
            let embedded = try MyelinCommandLine.run(["embed", "--model", out.path, "--device", "cpu", "hello"])
            #expect(embedded.status == 0 && embedded.output.split(separator: " ").count == 8, "\(embedded.all)")
            let tuned = try SentenceEncoder(directory: out, device: .cpu).encode(["hello"]).toArray()
            #expect(tuned != (try SentenceEncoder(directory: model, device: .cpu).encode(["hello"]).toArray()))

            let bad = dir.appendingPathComponent("bad.tsv")
            try "only one column\n".write(to: bad, atomically: true, encoding: .utf8)
            let badRun = try MyelinCommandLine.run(["finetune-embed", "--model", model.path, "--train", bad.path])
            #expect(badRun.status == 1 && badRun.errors.contains("bad.tsv: line 1 is not 'anchor<TAB>positive'"), "\(badRun.all)")
            let tooMany = try MyelinCommandLine.run(["finetune-embed", "--model", model.path, "--train", train.path, "--freeze-layers", "3"])
            #expect(tooMany.status != 0 && tooMany.errors.contains("--freeze-layers 3 exceeds the model's 2 layers"), "\(tooMany.all)")
            let small = try MyelinCommandLine.run(["finetune-embed", "--train", train.path, "--batch-size", "1"])
            #expect(small.status == 64 && small.errors.contains("--batch-size must be at least 2"), "\(small.all)")
        }
    }

    /// `myelin bench embed`: one JSON line with the sentences and their rate; a missing file is named.
    @Test func benchEmbedPrintsOneJSONLine() throws {
        try inTemporaryFolder { dir in
            try SentenceEncoderTests.writeTinyFolder(dir)
            let input = dir.appendingPathComponent("sentences.txt")
            try "hello world\ncafe\n中 文\n".write(to: input, atomically: true, encoding: .utf8)
            let run = try MyelinCommandLine.run(["bench", "embed", "--model", dir.path, "--input", input.path, "--device", "cpu",
                                                 "--batch-size", "2", "--runs", "3"])
            #expect(run.status == 0, "\(run.all)")
            let row = try #require(try JSONSerialization.jsonObject(with: Data(run.output.utf8)) as? [String: Any], "\(run.output)")
            #expect(row["sentences"] as? Int == 3 && row["batch_size"] as? Int == 2 && (row["sentences_per_s"] as? Double ?? 0) > 0, "\(row)")
            let missing = try MyelinCommandLine.run(["bench", "embed", "--model", dir.path, "--input", dir.appendingPathComponent("none.txt").path])
            #expect(missing.status == 1 && missing.errors.contains("none.txt"), "\(missing.all)")
        }
    }
}
