import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// The commands scripts/gpu-check runs in a GPU window (issue 21): `devices --json` with the extension list,
/// `build-kernels`, `bench peers --profile-kernels` and `--batches` for the MLP, `tune --seconds`.
@Suite(.enabled(if: MyelinCommandLine.isBuilt && TestDevices.openCLAvailable, "needs the built myelin command and an OpenCL device"))
struct GpuWindowCommandTests {
    func jsonLines(_ text: String) -> [[String: Any]] {
        text.split(separator: "\n").filter { $0.hasPrefix("{") }.compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    @Test func devicesListsTheExtensions() throws {
        let r = try MyelinCommandLine.run(["devices", "--json"])
        #expect(r.status == 0, "\(r.all)")
        let info = OpenCLPlatforms.devices()[0]
        let line = try #require(jsonLines(r.output).first { $0["device"] as? String == "opencl:0" }, "\(r.output)")
        #expect(line["extensions"] as? [String] == info.extensions)
        #expect(line["command_buffer"] as? Bool == info.extensions.contains("cl_khr_command_buffer"))
        #expect(!info.extensions.isEmpty)
        #expect(r.output.contains("cl_khr_command_buffer: \(info.hasCommandBuffer ? "yes" : "no"); extensions (\(info.extensions.count)):"))
    }

    /// A tiny export (8 training images, batches of 4) for `bench peers`.
    func export(in folder: URL) throws -> URL {
        let dir = folder.appendingPathComponent("export")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try Data(#"{"batch": 4, "batches": 2, "train": 8, "test": 4}"#.utf8).write(to: dir.appendingPathComponent("meta.json"))
        func write(_ name: String, _ values: [Float]) throws {
            try values.withUnsafeBytes { try Data($0).write(to: dir.appendingPathComponent(name)) }
        }
        try write("train-x.f32", (0..<(8 * 784)).map { Float($0 % 251) / 251 })
        try write("train-y.f32", (0..<8).map { Float($0 % 10) })
        try write("test-x.f32", (0..<(4 * 784)).map { Float($0 % 13) / 13 })
        try write("test-y.f32", [1, 2, 3, 4])
        try write("batches.f32", [3, 1, 4, 0, 5, 2, 6, 7])
        return dir
    }

    /// The MLP with `--batches 1` of the epoch's 2, profiled: one JSON line per kernel whose counts add up to the
    /// launches of the timed step, then the result row; the table on stderr.
    @Test func peersProfilesTheTimedStepsAndTakesBatchesForTheMLP() throws {
        let folder = temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let data = try export(in: folder)
        let r = try MyelinCommandLine.run(["bench", "peers", "--workload", "mlp", "--data", data.path, "--device", "opencl:0",
                                           "--capture", "--warmup", "1", "--batches", "1", "--profile-kernels", "--eval-batch", "4"],
                                          environment: ["MYELIN_PROFILE_KERNELS": nil])
        #expect(r.status == 0, "\(r.all)")
        let lines = jsonLines(r.output)
        let result = try #require(lines.last, "\(r.output)")
        #expect(result["batches"] as? Int == 1, "\(result)")
        let launches = try #require(result["launches_per_step"] as? Double)
        let kernels = lines.filter { $0["kernel"] != nil }
        #expect(!kernels.isEmpty && kernels.allSatisfy { ($0["total_ms"] as? Double ?? -1) >= 0 })
        #expect(Double(kernels.compactMap { $0["count"] as? Int }.reduce(0, +)) == launches, "\(r.output)")
        #expect(kernels.contains { $0["kernel"] as? String == "adam_step" }, "\(r.output)")
        #expect(r.errors.contains("Kernel device times on opencl:0"), "\(r.errors)")

        let cpu = try MyelinCommandLine.run(["bench", "peers", "--workload", "mlp", "--data", data.path, "--device", "cpu",
                                             "--profile-kernels"])
        #expect(cpu.status != 0 && cpu.errors.contains("--profile-kernels needs an OpenCL device"), "\(cpu.all)")
    }

    @Test func buildKernelsAndTuneSeconds() throws {
        let folder = temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let environment: [String: String?] = ["MYELIN_CACHE_DIR": folder.path]
        let built = try MyelinCommandLine.run(["build-kernels", "--device", "opencl:0", "--files", "reduce.cl,layout.cl",
                                               "--no-gemm-variants", "--threads", "2"], environment: environment)
        #expect(built.status == 0, "\(built.all)")
        let report = try #require(jsonLines(built.output).first, "\(built.output)")
        #expect(report["programs"] as? Int == 2 && report["from_cache"] as? Int == 0 && report["threads"] as? Int == 2, "\(report)")
        let again = try MyelinCommandLine.run(["build-kernels", "--device", "opencl:0", "--files", "reduce.cl,layout.cl",
                                               "--no-gemm-variants"], environment: environment)
        #expect(jsonLines(again.output).first?["from_cache"] as? Int == 2, "\(again.all)")
        let unknown = try MyelinCommandLine.run(["build-kernels", "--device", "opencl:0", "--files", "nowhere.cl"], environment: environment)
        #expect(unknown.status == 1 && unknown.errors.contains("nowhere.cl: no such kernel file"), "\(unknown.all)")

        let badSeconds = try MyelinCommandLine.run(["tune", "--device", "opencl:0", "--seconds", "0"], environment: environment)
        #expect(badSeconds.status != 0 && badSeconds.errors.contains("--seconds (--budget) must be a positive number"), "\(badSeconds.all)")
    }
}
