internal import CMyelinMath
import Foundation

/// The fused softmax cross-entropy backward, a step's optimizer updates one by one, and `fit`'s per-batch
/// bookkeeping as loops, the same results as the kernels at the end of Kernels/optimizers.cl.
extension CPUBackend {
    func softmaxCrossEntropyBackward(logProbabilities: DeviceBuffer, oneHot: DeviceBuffer, seed: DeviceBuffer,
                                     gx: DeviceBuffer, count n: Int, scale: Float) {
        guard allocated("softmaxCrossEntropyBackward", logProbabilities, oneHot, seed, gx) else { return }
        guard n > 0 else { return }
        let lp = logProbabilities.host!, oh = oneHot.host!, out = gx.host!
        let s = seed.host![0] * scale
        parallelFor(n) { lo, hi in
            for i in lo..<hi { out[i] = (Foundation.exp(lp[i]) - oh[i]) * s }
        }
        count { $0.launches += 1 }
    }

    func optimizerSteps(_ updates: [OptimizerUpdate]) { optimizerStepsOneByOne(updates) }

    func flagNonFinite(_ tensors: [(buffer: DeviceBuffer, count: Int)], flag: DeviceBuffer) {
        guard allocated("flagNonFinite", flag), tensors.allSatisfy({ allocated("flagNonFinite", $0.buffer) })
        else { return }
        // A vectorized scan in C (a closure per element here took 10% of an MLP's fit step).
        let bad = tensors.contains { myelin_any_nonfinite($0.buffer.host!, $0.count) != 0 }
        if bad { flag.host![0] = 1 }
        count { $0.launches += 1 }
    }

    func fitNote(firstBad: DeviceBuffer, parametersBad: DeviceBuffer, loss: DeviceBuffer, lossSum: DeviceBuffer,
                 count n: Float, batch: Int, none: Float) {
        guard allocated("fitNote", firstBad, parametersBad, loss, lossSum) else { return }
        let l = loss.host![0]
        let weighted = l * n
        lossSum.host![0] = lossSum.host![0] + weighted
        let lossGood = l.isFinite
        let allGood = lossGood && parametersBad.host![0] == 0
        let code = allGood ? none : Float(2 * batch) + (lossGood ? 1 : 0)
        firstBad.host![0] = Swift.min(firstBad.host![0], code)
        parametersBad.host![0] = 0
        count { $0.launches += 1 }
    }

    func accuracyAdd(x: DeviceBuffer, labels: DeviceBuffer, rows: Int, cols: Int, sum: DeviceBuffer) {
        guard allocated("accuracyAdd", x, labels, sum) else { return }
        guard rows > 0, cols > 0 else { return }
        let px = x.host!, pl = labels.host!
        var hits = 0
        for r in 0..<rows {
            let row = px + r * cols
            var best = row[0], at = 0
            for c in 1..<Swift.max(cols, 1) where row[c] > best { best = row[c]; at = c }
            if Float(at) == pl[r] { hits += 1 }
        }
        sum.host![0] = sum.host![0] + Float(hits)
        count { $0.launches += 1 }
    }
}
