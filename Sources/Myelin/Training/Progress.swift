import Foundation

// What `fit` prints: a live progress bar or one line per epoch.

/// How much `fit` prints.
public enum Verbosity: Sendable {
    /// A progress bar when standard output is a terminal, else one line per epoch.
    case auto
    /// A live progress bar (epoch, batches, ETA, running loss and metrics, samples/s), then a line per epoch.
    case progressBar
    /// One line per epoch.
    case epochLines
    /// Nothing.
    case silent
}

/// Prints a live progress bar or one line per epoch.
final class ProgressPrinter {
    let mode: Verbosity
    let epochs: Int
    let output: (String) -> Void
    var batches = 0
    var epoch = 0

    init(mode: Verbosity, epochs: Int, output: @escaping (String) -> Void) {
        self.mode = mode; self.epochs = epochs; self.output = output
    }

    func epochBegan(_ epoch: Int, batches: Int) {
        self.epoch = epoch
        self.batches = batches
    }

    func batchDone(_ done: Int, samples: Int, elapsed: Double, running: [String: Double]) {
        guard mode == .progressBar else { return }
        let width = 24
        let filled = Swift.min(width, done * width / Swift.max(batches, 1))
        let bar = String(repeating: "=", count: filled) + (filled < width ? ">" + String(repeating: ".", count: width - filled - 1) : "")
        let eta = elapsed / Double(done) * Double(batches - done)
        let values = ProgressPrinter.format(running, order: ["loss", "accuracy", "binary_accuracy", "rmse", "mae"])
        output("\r\u{1B}[2KEpoch \(epoch + 1)/\(epochs) [\(bar)] \(done)/\(batches)  ETA \(ProgressPrinter.time(eta))  \(values)  \(Int(Double(samples) / Swift.max(elapsed, 1e-9))) samples/s")
    }

    func epochEnded(_ epoch: Int, logs: [String: Double], samples: Int, seconds: Double, totalSeconds: Double, learningRate: Float) {
        guard mode != .silent else { return }
        let values = ProgressPrinter.format(logs, order: History().keysOrdered(logs))
        let rate = Int(Double(samples) / Swift.max(seconds, 1e-9))
        let prefix = mode == .progressBar ? "\r\u{1B}[2K" : ""
        output("\(prefix)Epoch \(epoch + 1)/\(epochs)  \(batches)/\(batches)  \(String(format: "%.1f", totalSeconds))s  \(rate) samples/s  \(values)  lr \(String(format: "%.3g", learningRate))\n")
    }

    /// Training stopped by a `StopRequest` at `position`: ends the progress bar's line and says where.
    func stopped(at position: TrainingPosition) {
        guard mode != .silent else { return }
        output((mode == .progressBar ? "\r\u{1B}[2K" : "") + "Training stopped \(position.description)\n")
    }

    static func format(_ values: [String: Double], order: [String]) -> String {
        order.compactMap { k in values[k].map { "\(k) \(String(format: "%.4f", $0))" } }.joined(separator: "  ")
    }

    static func time(_ s: Double) -> String {
        guard s.isFinite, Swift.abs(s) < 1e12 else { return "?" }
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60) : String(format: "%d:%02d", t / 60, t % 60)
    }
}

extension History {
    /// The keys of `logs` in History's column order.
    func keysOrdered(_ logs: [String: Double]) -> [String] { logs.keys.sorted(by: History.order) }
}
