import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// Messages of the `myelin` command a user can act on (issue 28, item 5): each runs the built command.
@Suite(.enabled(if: MyelinCommandLine.isBuilt, MyelinCommandLine.skipReason))
struct CommandLineMessageTests {
    @Test(.enabled(if: OpenCLPlatforms.poclIsInstalled(ProcessInfo.processInfo.environment), "PoCL is not installed"))
    func pocLWithoutACacheFolderIsNamedNotJustNoDevice() throws {
        let folder = temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("a-file")
        try Data("x".utf8).write(to: file)
        let home = file.path + "/home"   // under a regular file: no user, root included, can create it
        let environment: [String: String?] = ["HOME": home, "XDG_CACHE_HOME": nil, "POCL_CACHE_DIR": nil, "MYELIN_DEVICE": nil]
        let train = try MyelinCommandLine.run(["train", "xor", "--device", "opencl", "--epochs", "2"], environment: environment)
        #expect(train.status == 1, "\(train.all)")
        #expect(train.errors.contains("no OpenCL device found: PoCL") && train.errors.contains("\(home)/.cache/pocl/kcache")
                && train.errors.contains("POCL_CACHE_DIR"), "\(train.all)")
        let devices = try MyelinCommandLine.run(["devices"], environment: environment)
        #expect(devices.output.contains("No OpenCL platform found: PoCL") && devices.output.contains("POCL_CACHE_DIR"), "\(devices.all)")
        // The advice works: a cache folder of its own brings the device back.
        var fixed = environment
        fixed["POCL_CACHE_DIR"] = folder.appendingPathComponent("pocl-cache").path
        let again = try MyelinCommandLine.run(["devices"], environment: fixed)
        #expect(again.output.contains("opencl:0"), "\(again.all)")
    }

    @Test func benchPeersDataErrorsNameTheFileAndTheProblem() throws {
        let folder = temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        func peers() throws -> String {
            let r = try MyelinCommandLine.run(["bench", "peers", "--workload", "mlp", "--device", "cpu", "--data", folder.path])
            #expect(r.status == 1, "\(r.all)")
            #expect(!r.errors.contains("NSCocoaErrorDomain") && !r.errors.contains("Error Domain"), "\(r.errors)")
            return r.errors
        }
        let missing = try MyelinCommandLine.run(["bench", "peers", "--workload", "mlp", "--data", folder.path + "/nowhere"])
        #expect(missing.errors.contains("--data \(folder.path)/nowhere: no such folder") && missing.errors.contains("fashion_mnist.py export"),
                "\(missing.all)")
        #expect(try peers().contains("cannot read meta.json (no such file"))
        try Data(#"{"batch": 2"#.utf8).write(to: folder.appendingPathComponent("meta.json"))
        #expect(try peers().contains("meta.json is not valid JSON"))
        try Data(#"{"batch": 2, "batches": 2, "train": 4}"#.utf8).write(to: folder.appendingPathComponent("meta.json"))
        #expect(try peers().contains("meta.json's 'test' is missing, it must be a whole number >= 1"))
        try Data(#"{"batch": 2, "batches": 2, "train": 4, "test": 2}"#.utf8).write(to: folder.appendingPathComponent("meta.json"))
        let short = try peers()
        #expect(short.contains("train-x.f32") && short.contains("4×784 float32 values"), "\(short)")
        for (name, count) in [("train-x", 4 * 784), ("train-y", 4), ("test-x", 2 * 784), ("test-y", 2)] {
            try Data(count: count * 4).write(to: folder.appendingPathComponent("\(name).f32"))
        }
        try [Float(0), 1, 2, 9].withUnsafeBytes { try Data($0).write(to: folder.appendingPathComponent("batches.f32")) }
        #expect(try peers().contains("batches.f32 holds 9.0 at position 3, which is not the index of one of the 4 training images"))
    }

    @Test func errorsGiveCommandLineAdviceNotSwiftArguments() throws {
        let folder = temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let swiftAdvice = ["allowNonFinite", "strict: false", "divergence: nil", "Layer.load"]
        // The xor lab's model is 0.weight [3, 2] and 2.weight [1, 3] (no biases).
        func xorFile(_ name: String, first: Float, extra: Bool, metadata: [String: String] = [:]) throws -> URL {
            let url = folder.appendingPathComponent(name)
            var tensors = [("0.weight", try Tensor([first, 0, 0, 0, 0, 0], shape: [3, 2], on: .cpu)),
                           ("2.weight", try Tensor([0, 0, 0], shape: [1, 3], on: .cpu))]
            if extra { tensors.append(("extra.weight", try Tensor([0], shape: [1], on: .cpu))) }
            try SafeTensors.save(tensors, metadata: metadata, to: url)
            return url
        }
        // A file of another model: the keys differ.
        let other = try MyelinCommandLine.run(["train", "xor", "--device", "cpu", "--epochs", "2", "--load",
                                               xorFile("other.safetensors", first: 0, extra: true).path])
        #expect(other.status == 1 && other.errors.contains("--load needs a file saved for the same model")
                && other.errors.contains("no option to load only the tensors both have"), "\(other.all)")
        // NaN weights.
        let nanLoad = try MyelinCommandLine.run(["train", "xor", "--device", "cpu", "--epochs", "2", "--load",
                                                 xorFile("nan.safetensors", first: .nan, extra: false).path])
        #expect(nanLoad.status == 1 && nanLoad.errors.contains("no option to load it anyway"), "\(nanLoad.all)")
        // A training checkpoint without its position.
        let noEpoch = try MyelinCommandLine.run(["train", "xor", "--device", "cpu", "--epochs", "2", "--load",
                                                 xorFile("no-epoch.safetensors", first: 0, extra: false,
                                                         metadata: ["format": "myelin-training-checkpoint"]).path])
        #expect(noEpoch.status == 1 && noEpoch.errors.contains("(no 'epoch' in its metadata), although its metadata says it is one: the file is damaged"),
                "\(noEpoch.all)")
        // A diverging run.
        let diverged = try MyelinCommandLine.run(["train", "regression", "--device", "cpu", "--lr", "1e6", "--optimizer", "adam",
                                                  "--epochs", "30"])
        #expect(diverged.status == 1 && diverged.errors.contains("training diverged")
                && diverged.errors.contains("lower the learning rate with --lr; the myelin command has no option to turn this check off"),
                "\(diverged.all)")
        for run in [other, nanLoad, noEpoch, diverged] {
            for advice in swiftAdvice { #expect(!run.errors.contains(advice), "\(run.errors)") }
        }
    }

    @Test func anErrorAfterParsingShowsTheSubcommandsUsage() throws {
        let r = try MyelinCommandLine.run(["bench", "peers", "--workload", "mlp", "--device", "cpu"])
        #expect(r.status == 64, "\(r.all)")
        #expect(r.errors.contains("Error: --workload mlp needs --data") && r.errors.contains("Usage: myelin bench peers [--device <device>]")
                && r.errors.contains("See 'myelin bench peers --help'"), "\(r.errors)")
        #expect(!r.errors.contains("myelin <subcommand>"), "\(r.errors)")
        let folder = temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let data = try MyelinCommandLine.tinyFashionMNIST(train: 40, test: 8, in: folder)
        let warmup = try MyelinCommandLine.run(["train", "fashion-mnist", "--device", "cpu", "--data", data.path, "--validation", "8",
                                                "--model", "cnn", "--warmup", "5", "--epochs", "2"])
        #expect(warmup.status == 64 && warmup.errors.contains("--warmup 5.0 must be shorter than the 2 epochs")
                && warmup.errors.contains("Usage: myelin train fashion-mnist"), "\(warmup.all)")
    }

    /// `--help` after a subcommand prints that subcommand's help and succeeds (the parser's own help request is not
    /// an error of ours).
    @Test func helpAfterASubcommandIsHelp() throws {
        for (arguments, usage) in [(["train", "fashion-mnist", "--help"], "USAGE: myelin train fashion-mnist"),
                                   (["bench", "gemm", "--help"], "USAGE: myelin bench gemm"),
                                   (["help", "tune"], "USAGE: myelin tune")] {
            let r = try MyelinCommandLine.run(arguments)
            #expect(r.status == 0 && r.output.contains(usage) && !r.all.contains("CommandError"), "\(arguments): \(r.all)")
        }
    }

    @Test(.enabled(if: TestDevices.openCLAvailable, TestDevices.skipReason))
    func benchGemmJSONIsJSON() throws {
        for extra in [["--opencl-only"], ["--no-clblast"]] {
            let r = try MyelinCommandLine.run(["bench", "gemm", "--json", "--sizes", "7", "--shapes", "3x5x2:tB", "--runs", "1"] + extra)
            #expect(r.status == 0, "\(r.all)")
            let lines = r.output.split(separator: "\n")
            #expect(lines.count == 2, "\(r.output)")
            for line in lines {
                let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                #expect(object?["myelin_opencl_gflops"] is NSNumber, "\(line)")
                #expect(!line.contains("nan") && !line.contains("inf"), "\(line)")
                if extra == ["--opencl-only"] { #expect(object?["cpu_over_openblas"] is NSNull, "\(line)") }
            }
        }
    }
}
