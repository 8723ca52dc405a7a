import ArgumentParser
import Foundation
import Myelin

/// `myelin tune`: measures the GEMM kernel variants that fit an OpenCL device, one product per shape class,
/// within a time budget (`--seconds`, also spelt `--budget`), and writes the fastest per class (after each class) to the device's tuning table (in the program cache
/// folder: `MYELIN_CACHE_DIR`, else `~/.cache/myelin`). Later runs on that device use the table
/// (`MYELIN_TUNING=off` ignores it); `myelin devices` says whether a device is tuned.
struct TuneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tune",
        abstract: "Measure the GEMM kernels on an OpenCL device and write its tuning table (build with -c release).")

    @OptionGroup var deviceOptions: DeviceOptions
    @Option(name: [.customLong("seconds"), .customLong("budget")],
            help: "Seconds to spend at most; classes that would not fit keep the built-in default. The table is written after each class, so a run cut short keeps what it measured.")
    var budget: Double = 60
    @Flag(help: "Print every measurement as it is made.") var verbose = false

    func validate() throws {
        guard budget > 0, budget.isFinite else {
            throw ValidationError("--seconds (--budget) must be a positive number of seconds, got \(budget)")
        }
    }

    func run() throws {
        let device = try deviceOptions.resolve()
        guard device.isOpenCL else {
            throw ValidationError("myelin tune needs an OpenCL device (--device opencl:N); \(device.name) is the CPU (OpenBLAS)")
        }
        print("Tuning GEMM on \(device.name): \(device.details), budget \(Int(budget)) s")
        fflush(nil)
        let report = try device.tuneGEMM(budget: budget, progress: verbose ? { line in print("  " + line); fflush(nil) } : nil)
        print("")
        let header = ["shape class", "measured on", "chosen kernel", "GFLOP/s", "default kernel", "GFLOP/s", "speed-up"]
        let widths = [12, 22, 30, 9, 30, 9, 8]
        func row(_ cells: [String]) -> String {
            zip(cells, widths).map { c, w in c.count >= w ? c : c + String(repeating: " ", count: w - c.count) }
                .joined(separator: " ")
        }
        print(row(header))
        print(row(widths.map { String(repeating: "-", count: $0) }))
        for r in report.results {
            print(row([r.shapeClass, r.shape, r.kernel, String(format: "%.1f", r.gflops), r.defaultKernel,
                       String(format: "%.1f", r.defaultGflops),
                       r.defaultGflops > 0 ? String(format: "%.2f×", r.gflops / r.defaultGflops) : "-"]))
            for note in r.notes { print("    note: \(note)") }
        }
        if !report.skippedClasses.isEmpty {
            print("Not measured within the budget (built-in defaults stay): \(report.skippedClasses.joined(separator: ", "))")
        }
        print(String(format: "Wrote %@ (%.1f s).", report.file.path, report.seconds))
    }
}
