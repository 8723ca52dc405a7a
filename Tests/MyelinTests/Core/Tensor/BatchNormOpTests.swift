import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// The fused batch normalization op (`Tensor.batchNorm`, used by `BatchNorm`) against a Double reference of its
/// forward and closed-form backward, on odd shapes, in train and eval mode, on every device.
@Suite struct BatchNormOpTests {
    /// y and the gradients of x, weight and bias for x [n, c, inner] and the output gradient gy, in Double.
    /// `statistics` nil means the batch's (biased variance, gradient through them).
    static func reference(_ x: [Float], _ gy: [Float], weight: [Float], bias: [Float], n: Int, c: Int, inner: Int,
                          statistics: (mean: [Float], variance: [Float])?, epsilon: Double)
        -> (y: [Double], gx: [Double], gw: [Double], gb: [Double]) {
        let m = Double(n * inner)
        var y = [Double](repeating: 0, count: x.count), gx = y
        var gw = [Double](repeating: 0, count: c), gb = gw
        for ch in 0..<c {
            let at = (0..<n).flatMap { b in (0..<inner).map { (b * c + ch) * inner + $0 } }
            let mean: Double, variance: Double
            if let statistics {
                (mean, variance) = (Double(statistics.mean[ch]), Double(statistics.variance[ch]))
            } else {
                mean = at.map { Double(x[$0]) }.reduce(0, +) / m
                variance = at.map { (Double(x[$0]) - mean) * (Double(x[$0]) - mean) }.reduce(0, +) / m
            }
            let invstd = 1 / (variance + epsilon).squareRoot()
            let xhat = at.map { (Double(x[$0]) - mean) * invstd }
            for (k, i) in at.enumerated() {
                y[i] = xhat[k] * Double(weight[ch]) + Double(bias[ch])
                gb[ch] += Double(gy[i])
                gw[ch] += Double(gy[i]) * xhat[k]
            }
            for (k, i) in at.enumerated() {
                var g = Double(gy[i])
                if statistics == nil { g -= (gb[ch] + xhat[k] * gw[ch]) / m }
                gx[i] = Double(weight[ch]) * invstd * g
            }
        }
        return (y, gx, gw, gb)
    }

    @Test(arguments: TestDevices.all)
    func forwardAndBackwardMatchADoubleReferenceOnOddShapes(device: Device) throws {
        // [5, 1, 31, 33]: one channel of m = 5115 values, which a device with two or more compute units splits over
        // work-groups (5115 is odd: the parts differ in size); [2, 3, 33, 65]: m = 4290, rows longer than a group.
        for (n, c, h, w) in [(1, 1, 7, 9), (3, 3, 7, 9), (3, 5, 7, 9), (1, 5, 1, 3), (7, 3, 1, 1), (5, 1, 31, 33),
                             (2, 3, 33, 65)] {
            let count = n * c * h * w
            let xv = testValues(count, seed: UInt64(count + c)).map { $0 * 3 + 0.5 }
            let gyv = testValues(count, seed: UInt64(count + 7))
            let wv = testValues(c, seed: 3).map { $0 + 1.5 }, bv = testValues(c, seed: 4)
            let runningMean = testValues(c, seed: 5), runningVar = testValues(c, seed: 6).map { $0 * $0 + 0.5 }
            for training in [true, false] {
                let what = "\(device) [\(n), \(c), \(h), \(w)] training \(training)"
                let shape = h * w == 1 ? [n, c] : [n, c, h, w]
                let x = try Tensor(xv, shape: shape, on: device, requiresGrad: true)
                let weight = try Tensor(wv, shape: [c], on: device, requiresGrad: true)
                let bias = try Tensor(bv, shape: [c], on: device, requiresGrad: true)
                let statistics = training ? nil : (try Tensor(runningMean, shape: [c], on: device),
                                                   try Tensor(runningVar, shape: [c], on: device))
                let (y, mean, variance) = try x.batchNorm(weight: weight, bias: bias, statistics: statistics, epsilon: 1e-5)
                try y.backward(try Tensor(gyv, shape: shape, on: device))
                let r = Self.reference(xv, gyv, weight: wv, bias: bv, n: n, c: c, inner: h * w,
                                       statistics: training ? nil : (runningMean, runningVar), epsilon: 1e-5)
                expectClose(try y.toArray(), r.y, rtol: 1e-4, atol: 1e-4, "\(what) forward")
                expectClose(try x.grad!.toArray(), r.gx, rtol: 1e-3, atol: 1e-4, "\(what) input gradient")
                expectClose(try weight.grad!.toArray(), r.gw, rtol: 1e-4, atol: 1e-4, "\(what) weight gradient")
                expectClose(try bias.grad!.toArray(), r.gb, rtol: 1e-4, atol: 1e-4, "\(what) bias gradient")
                if training {
                    let columns = (0..<c).map { ch in (0..<n).flatMap { b in (0..<(h * w)).map { Double(xv[(b * c + ch) * h * w + $0]) } } }
                    let means = columns.map { $0.reduce(0, +) / Double($0.count) }
                    let variances = zip(columns, means).map { col, mu in col.map { ($0 - mu) * ($0 - mu) }.reduce(0, +) / Double(col.count) }
                    expectClose(try mean.toArray(), means, rtol: 1e-5, atol: 1e-5, "\(what) batch mean")
                    expectClose(try variance.toArray(), variances, rtol: 1e-4, atol: 1e-5, "\(what) batch variance")
                } else {
                    #expect(try mean.toArray() == runningMean && variance.toArray() == runningVar, "\(what): eval returns the given statistics")
                }
            }
        }
    }

    @Test(arguments: TestDevices.all)
    func gradientsMatchFiniteDifferencesInTrainAndEval(device: Device) throws {
        for training in [true, false] {
            let bn = BatchNorm(features: 3, device: device)
            try bn.setTensor("weight", Tensor([0.5, 2, -1], on: device))
            try bn.setTensor("bias", Tensor([0.1, -0.2, 0.3], on: device))
            try bn.setTensor("running_mean", Tensor([0.2, -0.1, 0.4], on: device))
            try bn.setTensor("running_var", Tensor([0.8, 1.5, 0.6], on: device))
            bn.isTraining = training
            let x = try Tensor(testValues(2 * 3 * 3 * 5, seed: 19).map { $0 * 2 }, shape: [2, 3, 3, 5], on: device,
                               requiresGrad: true)
            try GradientCheck.check([("x", x)] + bn.parameters.map { ("p", $0) }, eps: 5e-3,
                                    "\(device) BatchNorm 4-D training \(training)") {
                try weightedSum(bn(x), seed: 33)
            }
        }
    }

    @Test(arguments: TestDevices.all)
    func mismatchedParametersAreShapeErrors(device: Device) throws {
        let x = Tensor.zeros([2, 3, 4], on: device)
        #expect(throws: TensorError.self) {
            try x.batchNorm(weight: Tensor.ones([4], on: device), bias: Tensor.zeros([3], on: device), statistics: nil, epsilon: 1e-5)
        }
        #expect(throws: TensorError.self) {
            try Tensor.zeros([3], on: device).batchNorm(weight: Tensor.ones([3], on: device), bias: Tensor.zeros([3], on: device),
                                                        statistics: nil, epsilon: 1e-5)
        }
    }
}
