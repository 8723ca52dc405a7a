import Foundation
import Testing
@testable import Myelin

/// The fuzzers' findings and seeds, through the same harnesses as the fuzz targets (Support/FuzzHarness.swift, a
/// link to Fuzz/Sources/FuzzHarness/FuzzHarness.swift). Every file in Tests/MyelinTests/Regressions/<target>/ (a
/// reproducer `scripts/fuzz` found) must be read without a crash or a broken property: refused with an error naming
/// it, or accepted. Each runs in a child process (an exit test), so a crash fails that file's test instead of ending
/// the test run.
@Suite struct FuzzRegressionTests {
    static let regressions = repositoryRoot.appendingPathComponent("Tests/MyelinTests/Regressions")
    static let corpus = repositoryRoot.appendingPathComponent("Fuzz/corpus")

    /// Reproducers of bugs not fixed yet, by "<target>/<file>": they still crash, and are recorded as known issues.
    /// Remove an entry (and the FuzzHarness.KnownIssue) with the fix; the test fails while an entry outlives its bug.
    static let knownIssues: [String: FuzzHarness.KnownIssue] = [:]

    /// "<target>/<file>" for every file under `folder`/<target>/.
    static func files(in folder: URL) -> [String] {
        FuzzHarness.Target.allCases.flatMap { target -> [String] in
            let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent(target.rawValue).path)) ?? []
            return names.filter { !$0.hasPrefix(".") }.sorted().map { "\(target.rawValue)/\($0)" }
        }
    }

    static func target(of file: String) -> FuzzHarness.Target {
        FuzzHarness.Target(rawValue: String(file.prefix { $0 != "/" }))!
    }

    @Test func everyKnownIssueHasAReproducer() {
        let present = Set(Self.files(in: Self.regressions))
        for file in Self.knownIssues.keys { #expect(present.contains(file), "no reproducer Regressions/\(file)") }
        #expect(Set(Self.knownIssues.values) == FuzzHarness.knownIssues)
    }

    @Test(arguments: files(in: regressions))
    func reproducerIsReadWithoutACrash(_ file: String) async {
        let check = { () async -> Void in
            await #expect(processExitsWith: .success, "Regressions/\(file)") { [file = file as String] in
                let bytes = [UInt8]((try? Data(contentsOf: FuzzRegressionTests.regressions.appendingPathComponent(file))) ?? Data())
                do { try FuzzHarness.run(FuzzRegressionTests.target(of: file), bytes) } catch let violation as FuzzHarness.Violation {
                    print("Regressions/\(file): \(violation)")
                    exit(1)
                } catch {}
            }
        }
        if let issue = Self.knownIssues[file] {
            await withKnownIssue("\(issue.rawValue): not fixed yet") { await check() }
        } else {
            await check()
        }
    }

    /// Found by the idx fuzzer: images [0, 4294933154, 3291279360] (no pixels, so the file is complete) made
    /// `MNIST.load` overflow computing the pixels per image. Now an error naming the file.
    @Test func emptyImagesOfOverflowingSizeAreRefused() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("myelin-regression-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let images = folder.appendingPathComponent("t10k-images-idx3-ubyte")
        try Data(contentsOf: Self.regressions.appendingPathComponent("idx/zero-images-of-overflowing-size")).write(to: images)
        try Data(IDX.encode(uint8: [], shape: [0])).write(to: folder.appendingPathComponent("t10k-labels-idx1-ubyte"))
        expectDataError({ _ = try MNIST.load(directory: folder, split: .test, on: .cpu) },
                        contains: [images.path, "4294933154×3291279360", "too large"])
    }

    /// The seeds of the fuzzers (Fuzz/corpus, written by `scripts/fuzz --seeds` from `FuzzHarness.seeds`) are
    /// valid inputs: each is accepted, with its properties (a format change that made them invalid would leave the
    /// fuzzers mutating refused files).
    @Test(arguments: files(in: corpus))
    func seedIsAccepted(_ file: String) throws {
        let bytes = [UInt8](try Data(contentsOf: Self.corpus.appendingPathComponent(file)))
        #expect(throws: Never.self, "Fuzz/corpus/\(file)") { try FuzzHarness.run(Self.target(of: file), bytes) }
    }
}
