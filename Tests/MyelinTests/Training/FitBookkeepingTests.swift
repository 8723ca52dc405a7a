import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// fit's per-batch bookkeeping ops (the finiteness scan, the batch note, the accuracy sum) against plain loops in
/// Double on odd shapes, on every device, and the launches they save in a `fit` step.
@Suite struct FitBookkeepingTests {
    /// The scan sets the flag exactly when a tensor holds a NaN or an infinity, whatever the tensor (first, 8th of
    /// a launch, 9th: the second launch) and however many tensors; it never clears a set flag.
    @Test(arguments: TestDevices.all) func nonFiniteScanMatchesTheReference(device: Device) throws {
        let sizes = [1, 7, 33, 2, 5, 3, 64, 19, 37, 1]
        for bad in [nil, 0, 7, 8, 9] as [Int?] {
            for value in [Float.nan, .infinity, -.infinity] {
                let values = sizes.enumerated().map { (i, n) -> [Float] in
                    var v = testValues(n, seed: UInt64(i + 1)).map { $0 * 1e30 }   // large but finite
                    if i == bad { v[(n * 2) / 3] = value }
                    return v
                }
                let expected: Float = values.joined().map(Double.init).contains { !$0.isFinite } ? 1 : 0
                let flag = Tensor.zeros([], on: device)
                flag.flagNonFinite(in: try values.enumerated().map { try Tensor($1, shape: [sizes[$0]], on: device) })
                #expect(try flag.item() == expected, "\(device.name): bad tensor \(String(describing: bad)), \(value)")
            }
        }
        let set = Tensor.ones([], on: device)
        set.flagNonFinite(in: [try Tensor([1, 2, 3], shape: [3], on: device)])
        #expect(try set.item() == 1, "a set flag stays set")
    }

    /// The CPU device's vectorized scan (a maximum over magnitude bit patterns, CMyelinMath) on lengths around its
    /// vector widths and beyond, with one odd value at the start, inside the vectorized part or in the tail, against
    /// Double's `isFinite`: NaNs of either sign and any payload and ±infinity are flagged; the largest finite Float,
    /// −0 and subnormals are not.
    @Test func cpuNonFiniteScanOnVectorLengths() throws {
        let odd: [Float] = [.nan, -.nan, Float(bitPattern: 0x7FC0_1234), Float(bitPattern: 0xFF80_0001), .infinity, -.infinity,
                            .greatestFiniteMagnitude, -.greatestFiniteMagnitude, -0.0, .leastNonzeroMagnitude]
        for n in [1, 7, 8, 31, 32, 33, 63, 65, 1000, 4099] {
            for position in Set([0, n / 2, n - 1]) {
                for value in odd {
                    var values = testValues(n, seed: UInt64(n)).map { $0 * 1e30 }
                    values[position] = value
                    let expected: Float = values.map(Double.init).contains { !$0.isFinite } ? 1 : 0
                    let flag = Tensor.zeros([], on: .cpu)
                    flag.flagNonFinite(in: [try Tensor(values, shape: [n], on: .cpu)])
                    #expect(try flag.item() == expected, "n \(n), position \(position), \(value.bitPattern)")
                }
            }
        }
    }

    /// The note adds loss × count to the sum and keeps the smallest code: none, 2b + 1 or 2b.
    @Test(arguments: TestDevices.all) func batchNoteMatchesTheReference(device: Device) throws {
        let none = Float(1 << 24)
        var referenceCode = Double(none), referenceSum = 0.0
        let flag = Tensor.full([], none, on: device), bad = Tensor.zeros([], on: device), sum = Tensor.zeros([], on: device)
        let batches: [(loss: Float, parametersBad: Bool)] = [(0.5, false), (1.25, false), (0.75, true), (.nan, false), (0.25, true)]
        for (b, batch) in batches.enumerated() {
            if batch.parametersBad { bad.assign([1]) }
            try flag.noteFitBatch(parametersBad: bad, loss: Tensor(scalar: batch.loss, on: device), lossSum: sum,
                                  count: 7, batch: b, none: none)
            let lossGood = Double(batch.loss).isFinite
            let code = lossGood && !batch.parametersBad ? Double(none) : Double(2 * b) + (lossGood ? 1 : 0)
            referenceCode = Swift.min(referenceCode, code)
            referenceSum += Double(batch.loss) * 7
            #expect(try flag.item() == Float(referenceCode), "\(device.name) batch \(b)")
            #expect(try bad.item() == 0, "the note resets the scan's flag")
            if referenceSum.isFinite { #expect(Double(try sum.item()) == referenceSum, "\(device.name) batch \(b)") }
        }
        let finalSum = try sum.item()
        #expect(referenceCode == 5 && finalSum.isNaN)
    }

    /// The accuracy sum counts rows whose first largest value is at the label (ties, NaN rows, one column).
    @Test(arguments: TestDevices.all) func accuracyHitsMatchTheReference(device: Device) throws {
        for (rows, cols) in [(1, 1), (1, 7), (33, 7), (130, 10), (7, 2)] {
            var x = testValues(rows * cols, seed: UInt64(rows * 31 + cols)).map { ($0 * 3).rounded() }
            if rows > 2 { x[2 * cols + 1] = .nan }
            let labels = (0..<rows).map { Float(($0 * 3) % cols) }
            var hits = 0.0
            for r in 0..<rows {
                var best = Double(x[r * cols]), at = 0
                for c in 1..<cols where Double(x[r * cols + c]) > best { best = Double(x[r * cols + c]); at = c }
                if Double(at) == Double(labels[r]) { hits += 1 }
            }
            let sum = Tensor.full([], 3, on: device)
            try sum.addAccuracyHits(output: try Tensor(x, shape: [rows, cols], on: device), labels: Tensor(labels, on: device))
            #expect(Double(try sum.item()) == 3 + hits, "\(device.name) \(rows)x\(cols)")
            // The same as the metric's own ops.
            let viaOps = try withNoGrad { try Metric.accuracy.batchSum(output: try Tensor(x, shape: [rows, cols], on: device),
                                                                       target: Tensor(labels, on: device)).0.item() }
            #expect(Double(viaOps) == hits)
        }
    }

    /// The fused softmax cross-entropy gradient: the Double reference on odd shapes, and the same bits as the four
    /// ops it replaced, (exp(logp) − oneHot) · (g / N), on the same device.
    @Test(arguments: TestDevices.all) func softmaxCrossEntropyGradientMatchesTheOps(device: Device) throws {
        for (rows, cols) in [(1, 1), (1, 7), (33, 7), (130, 10)] {
            let logits = try Tensor(testValues(rows * cols, seed: UInt64(rows + cols)).map { $0 * 4 }, shape: [rows, cols], on: device)
            let labels = Tensor((0..<rows).map { Float(($0 * 3) % cols) }, on: device)
            let lp = withNoGrad { logits.logSoftmax() }
            let oneHot = try labels.oneHot(classes: cols)
            let g = Tensor(scalar: 0.75, on: device)
            let fused = try lp.softmaxCrossEntropyGradient(oneHot: oneHot, seed: g, scale: 1 / Float(rows)).toArray()
            let ops = try withNoGrad { try (lp.exp() - oneHot) * (g / Float(rows)) }.toArray()
            #expect(fused.map(\.bitPattern) == ops.map(\.bitPattern), "\(device.name) \(rows)x\(cols)")
            let p = try lp.toArray(), h = try oneHot.toArray()
            let reference = (0..<rows * cols).map { (Foundation.exp(Double(p[$0])) - Double(h[$0])) * 0.75 / Double(rows) }
            expectClose(fused, reference, rtol: 1e-5, atol: 1e-7, "\(device.name) \(rows)x\(cols)")
        }
    }

    /// Counts the device's launches over epoch `epoch` (from its start to its end).
    final class EpochLaunches: Callback {
        let device: Device, epoch: Int
        var start = 0, count = 0
        init(device: Device, epoch: Int) { self.device = device; self.epoch = epoch }
        func epochWillBegin(_ e: Int, _ context: TrainingContext) throws { if e == epoch { start = device.stats.launches } }
        func epochDidEnd(_ e: Int, logs: [String: Double], _ context: TrainingContext) throws {
            if e == epoch { count = device.stats.launches - start }
        }
    }

    /// A fit step's bookkeeping is a few launches, whatever the number of parameters: an 8-parameter MLP's epoch
    /// of 16 batches against the same captured steps without `fit` (on a device of its own, whose counters no
    /// other test touches).
    @Test(.enabled(if: TestDevices.openCLAvailable, TestDevices.skipReason))
    func fitBookkeepingAddsFewLaunches() throws {
        let device = try OptimizerTests.privateOpenCLDevice()
        let data = try FitTests.blobs(on: device, count: 128)
        func model() -> Sequential {
            Sequential {
                Dense(inputSize: 2, outputSize: 8, activation: .relu, seed: 1, device: device)
                Dense(inputSize: 8, outputSize: 8, activation: .relu, seed: 2, device: device)
                Dense(inputSize: 8, outputSize: 8, activation: .relu, seed: 3, device: device)
                Dense(inputSize: 8, outputSize: 3, seed: 4, device: device)
            }
        }
        let m = model()
        let counter = EpochLaunches(device: device, epoch: 1)
        try m.fit(data, epochs: 2, batchSize: 8, loss: .softmaxCrossEntropy, optimizer: try Adam(parameters: m.parameters),
                  metrics: [.accuracy], callbacks: [counter], shuffle: false, verbosity: .silent)
        let plain = model()
        let step = try plain.captureStep(loss: .softmaxCrossEntropy, optimizer: try Adam(parameters: plain.parameters))
        let batches = Array(data.batches(size: 8))
        try step(batches[0].features, batches[0].targets)
        let stepBefore = device.stats.launches
        for b in batches { try step(b.features, b.targets) }
        let stepLaunches = device.stats.launches - stepBefore
        // Per batch: the batch's two gathers, the loss's copy for the callback, the finiteness scan (one launch for
        // 8 parameters), the note and the accuracy sum; per epoch, the end of epoch's read (a few launches). The
        // ops per parameter these replaced took over 25.
        let extra = Double(counter.count - stepLaunches) / Double(batches.count)
        #expect(extra <= 7, "fit adds \(extra) launches per batch to a captured step")
    }
}
