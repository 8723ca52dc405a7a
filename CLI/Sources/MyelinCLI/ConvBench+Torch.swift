import Foundation
import Myelin

/// `myelin bench conv --torch`: the CPU device's convolutions beside PyTorch's (`torch.nn.functional.conv2d` on
/// oneDNN), shape by shape in the same run. For each shape Myelin is timed, then Benchmarks/torch_conv_layers.py
/// (run by `--python`, with `--only` that shape) times PyTorch right after, so that the two see the same load.
/// When the Python or torch is missing, one line says so and the table keeps Myelin's figures alone.
///
///     MYELIN_THREADS=2 myelin bench conv --torch --runs 5
///
/// With `--cpu-time` both sides are timed on their process's CPU time (all threads), which other jobs on busy
/// cores disturb far less than the wall clock.
extension ConvBench {
    /// PyTorch's milliseconds for one shape (forward, backward data, backward weights), or why there are none.
    enum TorchResult {
        case times(forward: Double, backwardData: Double, backwardWeight: Double)
        case skipped(String)
    }

    /// The Python child's thread count: `BENCH_THREADS`, else `MYELIN_THREADS` (the CPU device's), else the cores.
    static var torchThreads: String {
        let env = ProcessInfo.processInfo.environment
        return env["BENCH_THREADS"] ?? env["MYELIN_THREADS"] ?? String(ProcessInfo.processInfo.activeProcessorCount)
    }

    /// Runs Benchmarks/torch_conv_layers.py for one shape and reads its JSON line.
    func torchTimes(_ shape: Shape) -> TorchResult {
        let script = "Benchmarks/torch_conv_layers.py"
        guard FileManager.default.isExecutableFile(atPath: python) else {
            return .skipped("no Python at --python \(python) (run from the repository's top; scripts/setup --bench makes .venv-bench)")
        }
        guard FileManager.default.fileExists(atPath: script) else {
            return .skipped("no \(script) here (run from the repository's top)")
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = [script, "--batch", String(batch), "--runs", String(runs), "--only", shape.name] + (best ? ["--best"] : [])
            + (cpuTime ? ["--cpu-time"] : [])
        var environment = ProcessInfo.processInfo.environment
        environment["BENCH_THREADS"] = Self.torchThreads
        // As the CPU device's oneDNN runs (CMyelinDNNL sets it unless the user did): idle OpenMP workers sleep. With
        // the default (spinning) policy PyTorch ran 2-4× slower on 2 busy cores.
        if environment["OMP_WAIT_POLICY"] == nil { environment["OMP_WAIT_POLICY"] = "passive" }
        p.environment = environment
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        do { try p.run() } catch { return .skipped("cannot run \(python): \(error.localizedDescription)") }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errors = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        let lastLine = String(decoding: data, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? ""
        guard p.terminationStatus == 0,
              let row = try? JSONSerialization.jsonObject(with: Data(lastLine.utf8)) as? [String: Any] else {
            let why = errors.split(separator: "\n").last.map(String.init) ?? "no output"
            return .skipped("\(script) failed (exit \(p.terminationStatus)): \(why)")
        }
        if let why = row["skipped"] as? String { return .skipped(why) }
        guard let f = row["forward_ms"] as? Double, let d = row["backward_data_ms"] as? Double,
              let w = row["backward_weights_ms"] as? Double else { return .skipped("\(script) printed no times: \(lastLine)") }
        return .times(forward: f / 1e3, backwardData: d / 1e3, backwardWeight: w / 1e3)
    }

    static func torchRow(_ cells: [String]) -> String {
        let widths = [26, 8] + Array(repeating: [8, 8, 6], count: 3).joined()
        return zip(cells, widths).enumerated().map { i, cw in
            let (c, w) = cw
            let pad = String(repeating: " ", count: max(0, w - c.count))
            return i == 0 ? c + pad : pad + c
        }.joined(separator: " ")
    }

    /// The table of the CPU device against PyTorch, then each model's convolution milliseconds per step.
    func compareWithTorch() throws {
        print("Convolutions of the cnn, ResNet-8 and ResNet-14, batch \(batch): the CPU device against PyTorch (torch.nn.functional.conv2d, "
              + "oneDNN), each shape timed by both in turn, \(best ? "fastest" : "median") of \(runs) runs after a warm-up; GFLOP/s "
              + "(2·N·O·C·kh·kw·outH·outW per pass) and the ratio Myelin / PyTorch (above 1: Myelin faster)"
              + (cpuTime ? "; both on the CPU time of their process (all threads), not wall time" : ""))
        print("Myelin: \(Device.cpu.details); PyTorch: \(Self.torchThreads) threads (BENCH_THREADS), OMP_WAIT_POLICY="
              + (ProcessInfo.processInfo.environment["OMP_WAIT_POLICY"] ?? "passive"))
        print("uses: layers of this shape in the cnn / ResNet-8 / ResNet-14")
        print(Self.torchRow(["", "", "forward", "", "", "bwd-data", "", "", "bwd-weight", "", ""]))
        print(Self.torchRow(["shape", "uses", "Myelin", "PyTorch", "ratio", "Myelin", "PyTorch", "ratio", "Myelin", "PyTorch", "ratio"]))
        // Per model, per-step milliseconds of its convolutions: Myelin's and PyTorch's (the first layer has no
        // backward-data pass in training: its input needs no gradient).
        var totals = Array(repeating: (myelin: 0.0, torch: 0.0), count: 3)
        var skipped: String?
        for shape in Self.shapes where only.map({ shape.name.contains($0) }) ?? true {
            let mine = try time(shape, path: "conv2d", on: .cpu)
            let theirs = skipped == nil ? torchTimes(shape) : .skipped(skipped!)
            let f = shape.flops(batch: batch)
            let ours = [mine.forward, mine.backwardData, mine.backwardWeight]
            var cells = [shape.name, shape.uses.map(String.init).joined(separator: "/")]
            switch theirs {
            case .times(let tf, let td, let tw):
                let peers = [tf, td, tw]
                for (a, b) in zip(ours, peers) {
                    cells += [String(format: "%.1f", f / a / 1e9), String(format: "%.1f", f / b / 1e9), String(format: "%.2f", b / a)]
                }
                for m in 0..<3 {
                    let n = Double(shape.uses[m]), data = shape.c == 1 ? 0.0 : 1.0
                    totals[m].myelin += n * (ours[0] + data * ours[1] + ours[2]) * 1e3
                    totals[m].torch += n * (peers[0] + data * peers[1] + peers[2]) * 1e3
                }
            case .skipped(let why):
                if skipped == nil {
                    skipped = why
                    print("PyTorch skipped: \(why)")
                }
                for a in ours { cells += [String(format: "%.1f", f / a / 1e9), "-", "-"] }
            }
            print(Self.torchRow(cells))
            fflush(nil)
        }
        if skipped == nil && only == nil {
            print("Convolution ms per training step (forward + backward; no backward-data for the first layer), Myelin / PyTorch:")
            for (m, name) in ["cnn", "ResNet-8", "ResNet-14"].enumerated() {
                print(String(format: "  %@ %8.1f ms  %8.1f ms  ratio %.2f", name.padding(toLength: 9, withPad: " ", startingAt: 0), totals[m].myelin, totals[m].torch,
                             totals[m].torch / totals[m].myelin))
            }
        }
        print(String(format: "Peak resident memory of this process: %.0f MiB", TrainBench.peakMiB()))
    }
}
