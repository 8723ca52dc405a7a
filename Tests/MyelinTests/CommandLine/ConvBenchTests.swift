import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// `myelin bench conv --torch`: PyTorch's figures beside the CPU device's per shape, a clear line instead of them
/// when the Python is missing, and the options it refuses.
@Suite(.enabled(if: MyelinCommandLine.isBuilt, MyelinCommandLine.skipReason))
struct ConvBenchTests {
    /// The cells of the table row of `shape` after its name and uses (nine: three per pass), or nil.
    static func cells(_ output: String, shape: String) -> [String]? {
        guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix(shape) }) else { return nil }
        return Array(line.dropFirst(shape.count).split(separator: " ").map(String.init).dropFirst())
    }

    @Test func withoutPythonTheRowsKeepMyelinsFiguresAndSaySo() throws {
        let r = try MyelinCommandLine.run(["bench", "conv", "--torch", "--python", "/nonexistent/python", "--only", "64->64",
                                           "--batch", "2", "--runs", "1"], in: repositoryRoot)
        #expect(r.status == 0, "\(r.all)")
        #expect(r.output.contains("PyTorch skipped: no Python at --python /nonexistent/python"), "\(r.output)")
        let row = try #require(Self.cells(r.output, shape: "resnet 64->64 3x3 @7"), "\(r.output)")
        #expect(row.count == 9, "\(row)")
        for pass in 0..<3 {
            #expect(Double(row[3 * pass]).map { $0 > 0 } == true && row[3 * pass + 1] == "-" && row[3 * pass + 2] == "-", "\(row)")
        }
        #expect(!r.output.contains("ms per training step"), "no model totals without PyTorch: \(r.output)")
    }

    @Test func refusesOtherDevicesAndModels() throws {
        let device = try MyelinCommandLine.run(["bench", "conv", "--torch", "--device", "opencl"])
        #expect(device.status == 64 && device.errors.contains("--torch compares the cpu device with PyTorch's CPU; use --device cpu"),
                "\(device.all)")
        let model = try MyelinCommandLine.run(["bench", "conv", "--torch", "--model", "cnn"])
        #expect(model.status == 64 && model.errors.contains("--torch compares single convolutions; leave out --model"), "\(model.all)")
    }

    /// With a Python that imports torch, every pass of the shape has PyTorch's GFLOP/s and a ratio that agrees
    /// with the two figures (to the cells' rounding).
    @Test(.enabled(if: pythonTorchAvailable, "python3 cannot import torch"))
    func withTorchEachPassHasBothFiguresAndTheirRatio() throws {
        // The python3 on PATH, the one `pythonTorchAvailable` asked.
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin"
        let python = try #require(path.split(separator: ":").map { "\($0)/python3" }.first { FileManager.default.isExecutableFile(atPath: $0) })
        let r = try MyelinCommandLine.run(["bench", "conv", "--torch", "--python", python, "--only", "1x1 s2 @14",
                                           "--batch", "3", "--runs", "1"], environment: ["BENCH_THREADS": "1"], in: repositoryRoot)
        #expect(r.status == 0 && !r.output.contains("skipped"), "\(r.all)")
        let row = try #require(Self.cells(r.output, shape: "resnet 32->64 1x1 s2 @14"), "\(r.output)")
        #expect(row.count == 9, "\(row)")
        for pass in 0..<3 {
            let values = row[(3 * pass)..<(3 * pass + 3)].compactMap(Double.init)
            #expect(values.count == 3 && values[0] > 0 && values[1] > 0, "\(row)")
            if values.count == 3, values[0] >= 1, values[1] >= 1 {
                // The cells are rounded to 0.1 GFLOP/s: the ratio within that rounding of their quotient.
                let low = (values[0] - 0.05) / (values[1] + 0.05), high = (values[0] + 0.05) / (values[1] - 0.05)
                #expect(values[2] >= low - 0.005 && values[2] <= high + 0.005, "\(row)")
            }
        }
    }
}
