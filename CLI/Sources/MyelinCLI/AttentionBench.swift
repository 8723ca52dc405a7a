import ArgumentParser
import Foundation
import Myelin

/// `myelin bench attention`: the fused scaled dot-product attention (`Tensor.scaledDotProductAttention`, online
/// softmax, no T×T matrix) against the three-op reference path (q·kᵀ, masked softmax, ·v) of `MultiHeadAttention`,
/// forward and forward + backward, over sequence lengths, per device.
///
/// The extra memory is what each path allocates beyond q, k, v, the output and their gradients, at its peak (at the
/// start of the backward), from the tensors the ops create: the fused op keeps the rows' log-sum-exp [B, H, T] and
/// its backward one more [B, H, T]; the three-op path keeps the scores and the weights [B, H, T, T] for the backward,
/// whose softmax step adds their two gradients.
struct AttentionBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attention",
        abstract: "Times fused attention against the three-op path (forward, forward + backward) over sequence lengths.")

    @Option(help: "Sequence lengths T, comma-separated.") var lengths = "64,128,256,512,1024"
    @Option(help: "Batch, heads and head size: B,H,D.") var shape = "4,4,32"
    @Flag(inversion: .prefixedNo, help: "Causal attention (as in a GPT).") var causal = true
    @Option(parsing: .unconditional, help: "Timed runs per figure (the median is reported).") var runs = 3
    @Option(help: "cpu, opencl[:N] or all (cpu and every OpenCL device).") var device = "all"

    var batch: Int { (try? sizes())?[0] ?? 1 }
    var heads: Int { (try? sizes())?[1] ?? 1 }
    var headSize: Int { (try? sizes())?[2] ?? 1 }

    func validate() throws {
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1, got \(runs)") }
        _ = try sizes()
        _ = try parsedLengths()
        if device != "all" { _ = try DeviceSpec(parsing: device) }
    }

    /// Positive whole numbers separated by commas, or a `ValidationError` naming the option.
    static func numbers(_ text: String, option: String, count: Int? = nil) throws -> [Int] {
        let values = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ ($0 ?? 0) >= 1 }), count.map({ values.count == $0 }) ?? true else {
            throw ValidationError("\(option) must be \(count.map { "\($0) " } ?? "")positive whole numbers separated by commas, got '\(text)'")
        }
        return values.map { $0! }
    }

    func sizes() throws -> [Int] { try Self.numbers(shape, option: "--shape", count: 3) }
    func parsedLengths() throws -> [Int] { try Self.numbers(lengths, option: "--lengths") }

    func devices() throws -> [Device] {
        if device == "all" {
            return [.cpu] + (0..<OpenCLPlatforms.devices().count).compactMap { try? Device.make(.opencl(index: $0)) }
        }
        return [try Device.make(DeviceSpec(parsing: device))]
    }

    /// The attention by `fused` (one op) or the three-op path.
    func attend(_ q: Tensor, _ k: Tensor, _ v: Tensor, fused: Bool) throws -> Tensor {
        if fused { return try Tensor.scaledDotProductAttention(q, k, v, causal: causal) }
        let scores = try q.matmul(k, transposeB: true, alpha: 1 / Float(headSize).squareRoot())
        return try scores.softmax(causal: causal).matmul(v)
    }

    /// Median milliseconds of the forward (no graph) and of forward + backward.
    func time(t: Int, fused: Bool, on device: Device) throws -> (forward: Double, training: Double) {
        let shape = [batch, heads, t, headSize]
        // The inputs (made on the host), their gradients and outputs, and the three-op path's scores, checked first.
        let what = "--lengths \(t) with --shape \(batch),\(heads),\(headSize)"
        try Device.cpu.checkAllocation(shape: [3] + shape, for: "\(what): the inputs \(shape) on the host")
        try device.checkAllocation(shape: [8] + shape, for: "\(what): the inputs \(shape), their gradients and the outputs")
        if !fused { try device.checkAllocation(shape: [3, batch, heads, t, t], for: "\(what): the scores [\(batch), \(heads), \(t), \(t)] of the three-op path") }
        let n = shape.reduce(1, *)
        let x = try (0..<3).map { i in
            try Tensor((0..<n).map { Float(($0 * 7919 + i * 104_729) % 1000) / 1000 - 0.5 }, shape: shape, on: device,
                       requiresGrad: true)
        }
        let gy = Tensor.full(shape, 0.01, on: device)
        func median(_ body: () throws -> Void) throws -> Double {
            try body()   // warm-up: kernels built, buffers pooled
            var times: [Double] = []
            for _ in 0..<runs {
                device.synchronize()
                let t0 = DispatchTime.now().uptimeNanoseconds
                try body()
                device.synchronize()
                times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
            }
            return times.sorted()[times.count / 2]
        }
        let forward = try median { _ = try withNoGrad { try attend(x[0], x[1], x[2], fused: fused) } }
        let training = try median {
            for t in x { t.zeroGrad() }
            try attend(x[0], x[1], x[2], fused: fused).backward(gy)
        }
        return (forward, training)
    }

    /// The peak extra memory in MiB (see the type's comment).
    func extraMiB(t: Int, fused: Bool) -> Double {
        let rows = Double(batch * heads * t)
        return (fused ? 2 * rows : 4 * rows * Double(t)) * 4 / 1_048_576
    }

    func run() throws {
        let ts = try parsedLengths()
        print("Attention B=\(batch) H=\(heads) D=\(headSize)\(causal ? ", causal" : ""): median of \(runs) runs after a warm-up, ms; "
              + "ratio = three-op / fused (above 1: fused faster); extra memory = what each path allocates beyond q, k, v, the "
              + "output and their gradients, at its peak")
        for d in try devices() {
            print("")
            print("\(d.name): \(d.details)")
            print(Self.row(["T", "fused fwd", "3-op fwd", "ratio", "fused f+b", "3-op f+b", "ratio", "fused MiB", "3-op MiB"]))
            for t in ts {
                let fused = try time(t: t, fused: true, on: d), plain = try time(t: t, fused: false, on: d)
                print(Self.row(["\(t)", String(format: "%.2f", fused.forward), String(format: "%.2f", plain.forward),
                                String(format: "%.2f", plain.forward / fused.forward), String(format: "%.2f", fused.training),
                                String(format: "%.2f", plain.training), String(format: "%.2f", plain.training / fused.training),
                                String(format: "%.2f", extraMiB(t: t, fused: true)),
                                String(format: "%.1f", extraMiB(t: t, fused: false))]))
                fflush(nil)
            }
        }
    }

    static func row(_ cells: [String]) -> String {
        cells.enumerated().map { i, c in
            let w = i == 0 ? 5 : 10
            return String(repeating: " ", count: max(0, w - c.count)) + c
        }.joined(separator: " ")
    }
}
