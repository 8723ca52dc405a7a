import ArgumentParser
import CTerminal
import Foundation
import Myelin

@main
struct MyelinCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "myelin",
        abstract: "Myelin: deep learning in Swift on OpenCL GPUs or the CPU.",
        subcommands: [DevicesCommand.self, BenchCommand.self, TrainCommand.self, ConvertCheckpointCommand.self,
                      TuneCommand.self, ExportONNXCommand.self, BuildKernelsCommand.self, GenerateCommand.self,
                      EmbedCommand.self, FinetuneEmbedCommand.self]
    )

    /// Standard output line-buffered first, so a log file shows each epoch as it ends; then the command, whose
    /// errors print the failing subcommand's usage (`parseAndRun`).
    static func main() {
        myelin_line_buffered_stdout()
        parseAndRun()
    }
}

/// `--device auto|cpu|opencl[:N]`, shared by every command; `MYELIN_DEVICE` when absent.
struct DeviceOptions: ParsableArguments {
    @Option(name: .long, help: "Device: auto, cpu, opencl or opencl:N (default: $MYELIN_DEVICE, else auto).")
    var device: String?

    /// The device named by `--device`, else `MYELIN_DEVICE`, else `auto`. It does not change `Device.default`:
    /// a command that wants tensors and layers made without a device to land there sets it itself.
    func resolve() throws -> Device {
        let spec = try device.map { try DeviceSpec(parsing: $0) } ?? DeviceSpec.fromEnvironment()
        return try Device.make(spec)
    }
}

struct DevicesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devices", abstract: "List OpenCL platforms and devices (with their extensions), and the one `auto` picks.")

    @Flag(help: "Also one JSON line per OpenCL device: name, vendor, driver, compute units, memory, extensions, command_buffer.")
    var json = false

    func run() throws {
        let all = OpenCLPlatforms.devices()
        print("cpu: \(Device.cpu.details)")
        if all.isEmpty { print("No OpenCL platform found" + (OpenCLPlatforms.noDeviceReason().map { ": \($0)." } ?? ".")) }
        var lastPlatform = ""
        for (i, d) in all.enumerated() {
            if d.platformName != lastPlatform {
                print("Platform: \(d.platformName) (\(d.platformVersion))")
                lastPlatform = d.platformName
            }
            let mem = String(format: "%.1f GiB", Double(d.globalMemory) / 1_073_741_824)
            print("  opencl:\(i): \(d.name)")
            print("    vendor: \(d.vendor), type: \(d.isGPU ? "GPU" : "other"), compute units: \(d.computeUnits), memory: \(mem)")
            print("    \(d.openCLCVersion), driver \(d.driverVersion)")
            let tuning = GemmTuningStatus.of(d)
            print("    GEMM: \(tuning.summary), table \(tuning.file.path)")
            print("    cl_khr_command_buffer: \(d.hasCommandBuffer ? "yes" : "no"); extensions (\(d.extensions.count)): \(d.extensions.joined(separator: " "))")
            if json { DeviceJSON.print(d, index: i) }
        }
        let auto = try Device.make(.auto)
        print("auto picks: \(auto.name)\(auto.isOpenCL ? " (\(auto.details))" : " (no OpenCL GPU)")")
    }
}

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Benchmarks (build with -c release).",
        subcommands: [GemmBench.self, MLPBench.self, TrainBench.self, OptimizerBench.self, PeerBench.self, ConvBench.self,
                      AllreduceBench.self, AttentionBench.self, EmbedBench.self, GPTBench.self])
}

/// `myelin devices --json`: one line per OpenCL device (scripts/gpu-check records it).
enum DeviceJSON {
    static func print(_ d: OpenCLDeviceInfo, index: Int) {
        let object: [String: Any] = [
            "device": "opencl:\(index)", "name": d.name, "vendor": d.vendor, "platform": d.platformVersion,
            "driver": d.driverVersion, "opencl_c": d.openCLCVersion, "gpu": d.isGPU, "compute_units": d.computeUnits,
            "memory_bytes": d.globalMemory, "extensions": d.extensions, "command_buffer": d.hasCommandBuffer]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        Swift.print(String(decoding: data, as: UTF8.self))
    }
}
