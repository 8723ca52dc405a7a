import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// The fusions of `Tensor.batchNorm` (LayerBackends.swift): the running statistics' update in the moments' launch,
/// and relu(bn(x) + residual) in the apply with the ReLU's backward in the backward launches. Each against the
/// Double reference on odd shapes, against the separate ops it replaces (the same values, bit for bit), and by
/// finite differences, on every device.
@Suite struct BatchNormFusionTests {
    static let shapes = [(1, 1, 7, 9), (3, 5, 7, 9), (1, 5, 1, 3), (7, 3, 1, 1), (5, 1, 31, 33), (2, 3, 33, 65)]

    @Test(arguments: TestDevices.all)
    func residualAndReluMatchADoubleReferenceOnOddShapes(device: Device) throws {
        for (n, c, h, w) in Self.shapes {
            let count = n * c * h * w, inner = h * w
            let xv = testValues(count, seed: UInt64(count + c)).map { $0 * 3 + 0.5 }
            let rv = testValues(count, seed: UInt64(count + 11))
            let gyv = testValues(count, seed: UInt64(count + 7))
            let wv = testValues(c, seed: 3).map { $0 + 1.5 }, bv = testValues(c, seed: 4)
            let runningMean = testValues(c, seed: 5), runningVar = testValues(c, seed: 6).map { $0 * $0 + 0.5 }
            for training in [true, false] {
                for (withResidual, relu) in [(false, true), (true, true), (true, false)] {
                    let what = "\(device) [\(n), \(c), \(h), \(w)] training \(training) residual \(withResidual) relu \(relu)"
                    let shape = inner == 1 ? [n, c] : [n, c, h, w]
                    let x = try Tensor(xv, shape: shape, on: device, requiresGrad: true)
                    let r = try Tensor(rv, shape: shape, on: device, requiresGrad: true)
                    let weight = try Tensor(wv, shape: [c], on: device, requiresGrad: true)
                    let bias = try Tensor(bv, shape: [c], on: device, requiresGrad: true)
                    let statistics = training ? nil : (try Tensor(runningMean, shape: [c], on: device),
                                                       try Tensor(runningVar, shape: [c], on: device))
                    let y = try x.batchNorm(weight: weight, bias: bias, statistics: statistics, epsilon: 1e-5,
                                            residual: withResidual ? r : nil, relu: relu).output
                    try y.backward(try Tensor(gyv, shape: shape, on: device))
                    let yv = try y.toArray()
                    // The ReLU's mask from the output (a value within rounding of 0 could go either way).
                    let maskedGy = zip(gyv, yv).map { relu && !($1 > 0) ? 0 : $0 }
                    let ref = BatchNormOpTests.reference(xv, maskedGy, weight: wv, bias: bv, n: n, c: c, inner: inner,
                                                         statistics: training ? nil : (runningMean, runningVar), epsilon: 1e-5)
                    let expectedY = ref.y.indices.map { i -> Double in
                        let v = ref.y[i] + (withResidual ? Double(rv[i]) : 0)
                        return relu ? max(v, 0) : v
                    }
                    expectClose(yv, expectedY, rtol: 1e-4, atol: 1e-4, "\(what) forward")
                    expectClose(try x.grad!.toArray(), ref.gx, rtol: 1e-3, atol: 1e-4, "\(what) input gradient")
                    expectClose(try weight.grad!.toArray(), ref.gw, rtol: 1e-4, atol: 1e-4, "\(what) weight gradient")
                    expectClose(try bias.grad!.toArray(), ref.gb, rtol: 1e-4, atol: 1e-4, "\(what) bias gradient")
                    if withResidual {
                        #expect(try r.grad?.toArray() == maskedGy, "\(what): the residual's gradient is the masked output gradient")
                    } else {
                        #expect(r.grad == nil, "\(what): no residual, no gradient")
                    }
                }
            }
        }
    }

    /// relu(bn(x) + residual) fused and as the separate ops (`batchNorm`, `+`, `relu()`): the same output and
    /// gradients to the last bit.
    @Test(arguments: TestDevices.all)
    func fusedEqualsTheSeparateOps(device: Device) throws {
        for (n, c, h, w) in [(3, 5, 7, 9), (2, 3, 33, 65)] {
            let shape = [n, c, h, w], count = n * c * h * w
            let xv = testValues(count, seed: 21).map { $0 * 2 - 0.3 }, rv = testValues(count, seed: 22)
            let gyv = testValues(count, seed: 23)
            func run(fused: Bool) throws -> [[Float]] {
                let x = try Tensor(xv, shape: shape, on: device, requiresGrad: true)
                let r = try Tensor(rv, shape: shape, on: device, requiresGrad: true)
                let weight = try Tensor(testValues(c, seed: 24).map { $0 + 1 }, shape: [c], on: device, requiresGrad: true)
                let bias = try Tensor(testValues(c, seed: 25), shape: [c], on: device, requiresGrad: true)
                let y = fused
                    ? try x.batchNorm(weight: weight, bias: bias, statistics: nil, epsilon: 1e-5, residual: r, relu: true).output
                    : try (x.batchNorm(weight: weight, bias: bias, statistics: nil, epsilon: 1e-5).output + r).relu()
                try y.backward(try Tensor(gyv, shape: shape, on: device))
                return [try y.toArray(), try x.grad!.toArray(), try r.grad!.toArray(), try weight.grad!.toArray(), try bias.grad!.toArray()]
            }
            let (a, b) = (try run(fused: true), try run(fused: false))
            for (i, name) in ["output", "input gradient", "residual gradient", "weight gradient", "bias gradient"].enumerated() {
                #expect(a[i] == b[i], "\(device) \(shape): fused \(name) differs from the separate ops'")
            }
        }
    }

    /// The running statistics updated in the moments' launch equal `running·(1 − m) + statistic·m` (and the
    /// unbiased variance's factor) computed in Float, bit for bit, and the batch count goes up by one per batch.
    @Test(arguments: TestDevices.all)
    func runningStatisticsMatchTheSeparateUpdate(device: Device) throws {
        for (n, c, h, w) in [(3, 5, 7, 9), (5, 1, 31, 33), (7, 3, 1, 1)] {
            let shape = h * w == 1 ? [n, c] : [n, c, h, w], count = n * c * h * w, m: Float = 0.1
            let bn = BatchNorm(features: c, momentum: m, device: device)
            var expectedMean = testValues(c, seed: 31), expectedVar = testValues(c, seed: 32).map { $0 * $0 + 0.5 }
            try bn.setTensor("running_mean", Tensor(expectedMean, on: device))
            try bn.setTensor("running_var", Tensor(expectedVar, on: device))
            for step in 1...2 {
                let x = try Tensor(testValues(count, seed: UInt64(40 + step)).map { $0 * 3 + 1 }, shape: shape, on: device)
                let (_, mean, variance) = try x.batchNorm(weight: bn.weight, bias: bn.bias, statistics: nil, epsilon: 1e-5)
                _ = try bn(x)
                let mv = try mean.toArray(), vv = try variance.toArray(), factor = m * Float(count / c) / Float(count / c - 1)
                for ch in 0..<c {
                    let a = expectedMean[ch] * (1 - m), b = mv[ch] * m
                    expectedMean[ch] = a + b
                    let d = expectedVar[ch] * (1 - m), e = vv[ch] * factor
                    expectedVar[ch] = d + e
                }
                let what = "\(device) \(shape) step \(step)"
                #expect(try bn.runningMean.toArray() == expectedMean, "\(what): running mean")
                #expect(try bn.runningVar.toArray() == expectedVar, "\(what): running variance")
                #expect(try bn.numBatchesTracked.toArray() == [Float(step)], "\(what): batches tracked")
            }
        }
    }

    /// Sequential runs BatchNorm + ReLU fused, ResidualBlock its sum and ReLUs: the same outputs, gradients and
    /// running statistics as the layers one by one.
    @Test(arguments: TestDevices.all)
    func layersGiveTheSameValuesAsTheSeparateOps(device: Device) throws {
        let x = try Tensor(testValues(3 * 4 * 7 * 9, seed: 51).map { $0 * 2 }, shape: [3, 4, 7, 9], on: device)
        let gy = try Tensor(testValues(3 * 8 * 4 * 5, seed: 52), shape: [3, 8, 4, 5], on: device)
        func run(fused: Bool) throws -> [[Float]] {
            let block = ResidualBlock(inChannels: 4, outChannels: 8, stride: 2, seed: 7, device: device)
            let input = x.detach()
            input.requiresGrad = true
            let y: Tensor
            if fused {
                y = try block(input)
            } else {
                let h = try block.bn1(block.conv1(input)).relu()
                y = try (block.bn2(block.conv2(h)) + block.downsample!(input)).relu()
            }
            try y.backward(gy)
            return try [y.toArray(), input.grad!.toArray()] + block.parameters.map { try $0.grad!.toArray() }
                + block.namedTensors.filter { $0.0.contains("running") }.map { try $0.1.toArray() }
        }
        let (a, b) = (try run(fused: true), try run(fused: false))
        #expect(a.count == b.count)
        for i in a.indices { #expect(a[i] == b[i], "\(device) ResidualBlock: value set \(i) differs from the separate ops'") }

        let input = try Tensor(testValues(2 * 3 * 5 * 5, seed: 53), shape: [2, 3, 5, 5], on: device)
        func sequential(fused: Bool) throws -> [[Float]] {
            let bn = BatchNorm(features: 3, device: device)
            try bn.setTensor("weight", Tensor([0.5, 2, -1], on: device))
            let model = Sequential { bn; ReLU() }
            let y = fused ? try model(input) : try bn(input).relu()
            try weightedSum(y, seed: 54).backward()
            return [try y.toArray(), try bn.weight.grad!.toArray(), try bn.bias.grad!.toArray(), try bn.runningMean.toArray(), try bn.runningVar.toArray()]
        }
        #expect(try sequential(fused: true) == sequential(fused: false), "\(device) Sequential BatchNorm + ReLU")
    }

    /// Finite differences of relu(bn(x) + residual) with respect to x, the residual, weight and bias, in train and
    /// eval mode. The channels' biases keep every output clear of the ReLU's kink (one channel all above it, one
    /// all below, whose gradient is zero).
    @Test(arguments: TestDevices.all)
    func gradientsMatchFiniteDifferences(device: Device) throws {
        for training in [true, false] {
            let x = try Tensor(testValues(2 * 3 * 2 * 3, seed: 61).map { $0 * 2 }, shape: [2, 3, 2, 3], on: device,
                               requiresGrad: true)
            let r = try Tensor(testValues(2 * 3 * 2 * 3, seed: 62).map { $0 * 0.5 }, shape: [2, 3, 2, 3], on: device,
                               requiresGrad: true)
            let weight = Tensor([0.5, 0.4, 1], on: device, requiresGrad: true)
            let bias = Tensor([3, -3, 5], on: device, requiresGrad: true)
            let statistics = training ? nil : (Tensor([0.2, -0.1, 0.4], on: device), Tensor([0.8, 1.5, 0.6], on: device))
            try GradientCheck.check([("x", x), ("residual", r), ("weight", weight), ("bias", bias)], eps: 5e-3,
                                    "\(device) fused batch norm training \(training)") {
                try weightedSum(x.batchNorm(weight: weight, bias: bias, statistics: statistics, epsilon: 1e-5,
                                            residual: r, relu: true).output, seed: 63)
            }
        }
    }
}
