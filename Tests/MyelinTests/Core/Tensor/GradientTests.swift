import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// Finite-difference checks of every differentiable op's backward, and the rules of `backward()`.
@Suite struct GradientTests {
    /// Values on a 0.1 grid and values on the grid shifted by 0.05: pairs never tie within a step of 1e-2,
    /// so maximum/minimum are differentiable at every test point.
    static func gridValues(_ n: Int, seed: UInt64, shifted: Bool) -> [Float] {
        testValues(n, seed: seed).map { ($0 * 10).rounded() / 10 + (shifted ? 0.05 : 0) }
    }

    static let broadcastPairs: [([Int], [Int])] = [([3, 4], [3, 4]), ([3, 4], [4]), ([3, 1], [1, 4]), ([2, 3, 2], [3, 1]), ([], [2, 3])]

    @Test(arguments: TestDevices.all)
    func binaryOpsWithBroadcasting(device: Device) throws {
        for (sa, sb) in Self.broadcastPairs {
            let na = sa.reduce(1, *), nb = sb.reduce(1, *)
            let a = testValues(na, seed: 1), b = testValues(nb, seed: 2)
            let inputs = [(a, sa), (b, sb)]
            try gradientCheck(device: device, inputs: inputs, "add \(sa) \(sb)") { try $0[0] + $0[1] }
            try gradientCheck(device: device, inputs: inputs, "subtract \(sa) \(sb)") { try $0[0] - $0[1] }
            try gradientCheck(device: device, inputs: inputs, "multiply \(sa) \(sb)") { try $0[0] * $0[1] }
            try gradientCheck(device: device, inputs: [(a, sa), (valuesAwayFromZero(nb, seed: 3, margin: 0.5), sb)],
                              "divide \(sa) \(sb)") { try $0[0] / $0[1] }
            try gradientCheck(device: device, inputs: [(testValues(na, seed: 4, low: 0.5, high: 2), sa),
                                                       (testValues(nb, seed: 5, low: -1.5, high: 1.5), sb)],
                              "pow \(sa) \(sb)") { try $0[0].pow($0[1]) }
            let grid = [(Self.gridValues(na, seed: 6, shifted: false), sa), (Self.gridValues(nb, seed: 7, shifted: true), sb)]
            try gradientCheck(device: device, inputs: grid, "maximum \(sa) \(sb)") { try $0[0].maximum($0[1]) }
            try gradientCheck(device: device, inputs: grid, "minimum \(sa) \(sb)") { try $0[0].minimum($0[1]) }
        }
    }

    @Test(arguments: TestDevices.all)
    func opsWithAScalar(device: Device) throws {
        let x = [(valuesAwayFromZero(12, seed: 8, margin: 0.3), [3, 4])]
        try gradientCheck(device: device, inputs: x, "x + s") { $0[0] + 1.5 }
        try gradientCheck(device: device, inputs: x, "s + x") { 1.5 + $0[0] }
        try gradientCheck(device: device, inputs: x, "x - s") { $0[0] - 1.5 }
        try gradientCheck(device: device, inputs: x, "s - x") { 1.5 - $0[0] }
        try gradientCheck(device: device, inputs: x, "x * s") { $0[0] * -2.5 }
        try gradientCheck(device: device, inputs: x, "s * x") { -2.5 * $0[0] }
        try gradientCheck(device: device, inputs: x, "x / s") { $0[0] / 0.75 }
        try gradientCheck(device: device, inputs: x, "s / x") { 0.75 / $0[0] }
        try gradientCheck(device: device, inputs: x, "-x") { -$0[0] }
        let grid = [(Self.gridValues(12, seed: 9, shifted: true), [3, 4])]
        try gradientCheck(device: device, inputs: grid, "maximum(s)") { $0[0].maximum(0.2) }
        try gradientCheck(device: device, inputs: grid, "minimum(s)") { $0[0].minimum(0.2) }
    }

    @Test(arguments: TestDevices.all)
    func unaryOps(device: Device) throws {
        let x = [(valuesAwayFromZero(12, seed: 10, margin: 0.1), [3, 4])]
        let positive = [(testValues(12, seed: 11, low: 0.3, high: 2), [3, 4])]
        try gradientCheck(device: device, inputs: x, "exp") { $0[0].exp() }
        try gradientCheck(device: device, inputs: positive, "log") { $0[0].log() }
        try gradientCheck(device: device, inputs: positive, "sqrt") { $0[0].sqrt() }
        try gradientCheck(device: device, inputs: positive, "rsqrt") { $0[0].rsqrt() }
        try gradientCheck(device: device, inputs: x, "abs") { $0[0].abs() }
        try gradientCheck(device: device, inputs: x, "square") { $0[0].square() }
        try gradientCheck(device: device, inputs: [(Self.gridValues(12, seed: 12, shifted: true), [3, 4])], "clamp") {
            $0[0].clamp(min: -0.5, max: 0.5)
        }
        try gradientCheck(device: device, inputs: x, "pow 3") { $0[0].pow(3) }
        try gradientCheck(device: device, inputs: positive, "pow -1.5") { $0[0].pow(-1.5) }
        try gradientCheck(device: device, inputs: positive, "pow 0.5") { $0[0].pow(0.5) }
    }

    @Test(arguments: TestDevices.all)
    func activations(device: Device) throws {
        let x = [(valuesAwayFromZero(12, seed: 13, margin: 0.05).map { $0 * 3 }, [3, 4])]
        for act in TestActivations.differentiable {
            try gradientCheck(device: device, inputs: x, "\(act)") { $0[0].activation(act) }
        }
    }

    @Test(arguments: TestDevices.all)
    func softmaxAndLogSoftmax(device: Device) throws {
        for shape in [[3, 5], [1, 1], [7], [2, 2, 3]] {
            let x = [(testValues(shape.reduce(1, *), seed: 14, low: -2, high: 2), shape)]
            try gradientCheck(device: device, inputs: x, "softmax \(shape)") { $0[0].softmax() }
            try gradientCheck(device: device, inputs: x, "logSoftmax \(shape)") { $0[0].logSoftmax() }
        }
    }

    @Test(arguments: TestDevices.all)
    func reductions(device: Device) throws {
        for shape in [[3, 4], [2, 3, 5], [7]] {
            // Distinct values 0.1 apart: max/min have a single winner that a step of 1e-2 does not change.
            let x = [(distinctValues(shape.reduce(1, *), seed: 15).map { $0 * Float(shape.reduce(1, *)) / 10 }, shape)]
            for axis in 0..<shape.count {
                for keep in [false, true] {
                    try gradientCheck(device: device, inputs: x, "sum \(shape) axis \(axis)") { try $0[0].sum(axis: axis, keepDims: keep) }
                    try gradientCheck(device: device, inputs: x, "mean \(shape) axis \(axis)") { try $0[0].mean(axis: axis, keepDims: keep) }
                    try gradientCheck(device: device, inputs: x, "max \(shape) axis \(axis)") { try $0[0].max(axis: axis, keepDims: keep) }
                    try gradientCheck(device: device, inputs: x, "min \(shape) axis \(axis)") { try $0[0].min(axis: axis, keepDims: keep) }
                }
            }
            try gradientCheck(device: device, inputs: x, "sum() \(shape)") { $0[0].sum() }
            try gradientCheck(device: device, inputs: x, "mean() \(shape)") { $0[0].mean() }
            try gradientCheck(device: device, inputs: x, "max() \(shape)") { try $0[0].max() }
            try gradientCheck(device: device, inputs: x, "min() \(shape)") { try $0[0].min() }
        }
    }

    /// Ties share the gradient of max and min equally (a subgradient: the total stays that of the output).
    @Test(arguments: TestDevices.all)
    func maxAndMinSplitTheGradientAmongTies(device: Device) throws {
        let v: [Float] = [1, 3, 3, 0,   2, 2, 2, 2,   -1, 5, 0, 0]
        let x = try Tensor(v, shape: [3, 4], on: device, requiresGrad: true)
        try x.max(axis: 1).sum().backward()
        #expect(try #require(x.grad).toArray() == [0, 0.5, 0.5, 0,  0.25, 0.25, 0.25, 0.25,  0, 1, 0, 0])
        x.zeroGrad()
        try x.min(axis: 1).sum().backward()
        #expect(try #require(x.grad).toArray() == [0, 0, 0, 1,  0.25, 0.25, 0.25, 0.25,  1, 0, 0, 0])
        x.zeroGrad()
        try x.max().backward()
        #expect(try #require(x.grad).toArray() == [0, 0, 0, 0,  0, 0, 0, 0,  0, 1, 0, 0])
        x.zeroGrad()
        try x.min(axis: 0).sum().backward()
        #expect(try #require(x.grad).toArray() == [0, 0, 0, 0.5,  0, 1, 0, 0,  1, 0, 1, 0.5])
        // A relu output full of zeros: max over it hands out exactly one unit of gradient per row.
        let z = try Tensor([-1, -2, -3, 4, -5, -6], shape: [2, 3], on: device, requiresGrad: true)
        try z.relu().max(axis: 1).sum().backward()
        #expect(try #require(z.grad).toArray() == [0, 0, 0, 1, 0, 0])
    }

    @Test(arguments: TestDevices.all)
    func matmulWithTransposesAndBatches(device: Device) throws {
        let (m, n, k) = (3, 2, 4)
        for transA in [false, true] {
            for transB in [false, true] {
                let inputs = [(testValues(m * k, seed: 16), transA ? [k, m] : [m, k]), (testValues(k * n, seed: 17), transB ? [n, k] : [k, n])]
                try gradientCheck(device: device, inputs: inputs, "matmul transA \(transA) transB \(transB)") {
                    try $0[0].matmul($0[1], transposeA: transA, transposeB: transB, alpha: 1.5)
                }
                let batched = [(testValues(2 * m * k, seed: 18), transA ? [2, k, m] : [2, m, k]),
                               (testValues(2 * k * n, seed: 19), transB ? [2, n, k] : [2, k, n])]
                try gradientCheck(device: device, inputs: batched, "batched 3D·3D transA \(transA) transB \(transB)") {
                    try $0[0].matmul($0[1], transposeA: transA, transposeB: transB)
                }
                let left = [(testValues(2 * m * k, seed: 20), transA ? [2, k, m] : [2, m, k]), inputs[1]]
                try gradientCheck(device: device, inputs: left, "batched 3D·2D transA \(transA) transB \(transB)") {
                    try $0[0].matmul($0[1], transposeA: transA, transposeB: transB)
                }
                let right = [inputs[0], batched[1]]
                try gradientCheck(device: device, inputs: right, "batched 2D·3D transA \(transA) transB \(transB)") {
                    try $0[0].matmul($0[1], transposeA: transA, transposeB: transB)
                }
            }
        }
    }

    @Test(arguments: TestDevices.all)
    func denseWithBiasAndEveryActivation(device: Device) throws {
        let (batch, inputs, outputs) = (3, 4, 5)
        let x = testValues(batch * inputs, seed: 21), w = testValues(inputs * outputs, seed: 22), b = testValues(outputs, seed: 23)
        for act in TestActivations.differentiable {
            try gradientCheck(device: device, inputs: [(x, [batch, inputs]), (w, [inputs, outputs]), (b, [outputs])], "dense \(act)") {
                try $0[0].dense(weight: $0[1], bias: $0[2], activation: act)
            }
            try gradientCheck(device: device, inputs: [(x, [batch, inputs]), (w, [inputs, outputs])], "dense \(act) without bias") {
                try $0[0].dense(weight: $0[1], bias: nil, activation: act)
            }
        }
    }

    @Test(arguments: TestDevices.all)
    func linearWithBiasAndEveryActivation(device: Device) throws {
        let (batch, inputs, outputs) = (3, 4, 5)
        let x = testValues(batch * inputs, seed: 31), w = testValues(outputs * inputs, seed: 32), b = testValues(outputs, seed: 33)
        for act in TestActivations.differentiable {
            try gradientCheck(device: device, inputs: [(x, [batch, inputs]), (w, [outputs, inputs]), (b, [outputs])], "linear \(act)") {
                try $0[0].linear(weight: $0[1], bias: $0[2], activation: act)
            }
            try gradientCheck(device: device, inputs: [(x, [batch, inputs]), (w, [outputs, inputs])], "linear \(act) without bias") {
                try $0[0].linear(weight: $0[1], bias: nil, activation: act)
            }
        }
        // A wide layer takes the blocked GEMM paths (B transposed into scratch) in the forward pass.
        let (m, k, n) = (9, 6, 20)
        try gradientCheck(device: device, inputs: [(testValues(m * k, seed: 34), [m, k]), (testValues(n * k, seed: 35), [n, k]),
                                                   (testValues(n, seed: 36), [n])], "linear 9x6 -> 20 tanh") {
            try $0[0].linear(weight: $0[1], bias: $0[2], activation: .tanh)
        }
    }

    @Test(arguments: TestDevices.all)
    func layoutOps(device: Device) throws {
        let x = testValues(24, seed: 24)
        try gradientCheck(device: device, inputs: [(x, [2, 3, 4])], "reshape") { try $0[0].reshaped([4, -1]).square() }
        try gradientCheck(device: device, inputs: [(x, [2, 3, 4])], "transposed") { try $0[0].transposed().square() }
        try gradientCheck(device: device, inputs: [(Array(x[0..<6]), [3, 2])], "transposed 2-D") { try $0[0].transposed() }
        try gradientCheck(device: device, inputs: [(Array(x[0..<6]), [2, 3]), (Array(x[6..<15]), [3, 3]), (Array(x[15..<18]), [1, 3])],
                          "concat") { try Tensor.concat($0).square() }
        try gradientCheck(device: device, inputs: [(x, [6, 4])], "slice") { try $0[0].slice(1..<4).square() }
        let indices = try Tensor([2, 0, 2, 3, 2], shape: [5], on: device)
        try gradientCheck(device: device, inputs: [(Array(x[0..<12]), [4, 3])], "gather") { try $0[0].gather(rows: indices).square() }
        try gradientCheck(device: device, inputs: [(Array(x[0..<3]), [3])], "broadcast") { try $0[0].broadcast(to: [4, 3]).square() }
        try gradientCheck(device: device, inputs: [(Array(x[0..<4]), [4, 1])], "broadcast [4, 1]") {
            try $0[0].broadcast(to: [2, 4, 3]).square()
        }
        try gradientCheck(device: device, inputs: [(x, [2, 3, 4])], "flattened") { $0[0].flattened().square() }
    }

    /// A small network-like chain of several ops at once.
    @Test(arguments: TestDevices.all)
    func composedGraph(device: Device) throws {
        let x = testValues(12, seed: 25), w = testValues(20, seed: 26), b = testValues(5, seed: 27)
        try gradientCheck(device: device, inputs: [(x, [3, 4]), (w, [4, 5]), (b, [5])], "mlp + logSoftmax") { t in
            let h = try t[0].matmul(t[1]) + t[2]
            return try (h.tanh() * h).logSoftmax().mean(axis: 0)
        }
    }

    // MARK: rules of backward()

    @Test(arguments: TestDevices.all)
    func backwardOnANonScalarNeedsASeed(device: Device) throws {
        let x = try Tensor([1, 2, 3], shape: [3], on: device, requiresGrad: true)
        let y = x * 2
        expectError(containing: ["[3]", "seed"]) { try y.backward() }
        expectError(containing: ["backward", "[2]", "[3]"]) { try y.backward(Tensor.ones([2], on: device)) }
        let elsewhere: Device = device.isOpenCL ? .cpu : (TestDevices.all.last ?? .cpu)
        if elsewhere !== device {
            expectError(containing: ["backward", "cpu", "opencl:0"]) { try y.backward(Tensor.ones([3], on: elsewhere)) }
        }
        try y.backward(Tensor([1, 0, -1], shape: [3], on: device))
        #expect(try #require(x.grad).toArray() == [2, 0, -2])
    }

    @Test(arguments: TestDevices.all)
    func backwardOnATensorWithoutGradientThrows(device: Device) throws {
        let x = try Tensor([1, 2, 3], shape: [3], on: device)
        expectError(containing: ["does not require a gradient"]) { try x.sum().backward() }
    }

    @Test(arguments: TestDevices.all)
    func gradientsOfASharedInputAddUp(device: Device) throws {
        let v: [Float] = [0.5, -1, 2]
        let x = try Tensor(v, shape: [3], on: device, requiresGrad: true)
        // y = x·x + 3x + x: dy/dx = 2x + 4.
        let y = try x * x + x * 3 + x
        try y.sum().backward()
        #expect(try #require(x.grad).toArray() == v.map { 2 * $0 + 4 })
        // A second backward adds to the gradient already there.
        try (x * 2).sum().backward()
        #expect(try #require(x.grad).toArray() == v.map { 2 * $0 + 6 })
        x.zeroGrad()
        #expect(x.grad == nil)
        // A diamond: both branches from one intermediate.
        let h = x.exp()
        try (h * 2 + h).sum().backward()
        expectClose(try #require(x.grad).toArray(), v.map { 3 * Foundation.exp(Double($0)) }, rtol: 1e-5, atol: 1e-6, "diamond")
    }

    @Test(arguments: TestDevices.all)
    func graphIsFreedUnlessRetained(device: Device) throws {
        let x = try Tensor([1, 2], shape: [2], on: device, requiresGrad: true)
        let loss = try (x * x).sum()
        try loss.backward(retainGraph: true)
        try loss.backward()
        #expect(try #require(x.grad).toArray() == [4, 8])
        expectError(containing: ["already used", "retainGraph"]) { try loss.backward() }
    }

    @Test(arguments: TestDevices.all)
    func stepInAGraphThrowsAtBackward(device: Device) throws {
        let x = try Tensor([-1, 2], shape: [2], on: device, requiresGrad: true)
        let y = try x.step() * x   // forward works
        #expect(try y.toArray() == [0, 2])
        expectError(containing: ["step", "no gradient", "sigmoid"]) { try y.sum().backward() }
    }

    @Test(arguments: TestDevices.all)
    func noGradRecordsNothingAndDetachCuts(device: Device) throws {
        let x = try Tensor([1, 2, 3], shape: [3], on: device, requiresGrad: true)
        let y = withNoGrad { (x * 2).exp() }
        #expect(!y.requiresGrad && y.isLeaf)
        #expect(GradMode.isEnabled)
        let nested: Tensor = withNoGrad { withNoGrad { x + 1 } }
        #expect(!nested.requiresGrad)
        #expect((x + 1).requiresGrad)

        let d = x.detach()
        #expect(try !d.requiresGrad && d.isLeaf && d.toArray() == [1, 2, 3])
        // Gradient flows only through the attached path: d(x·detach(x))/dx = detach(x).
        try (x * d).sum().backward()
        #expect(try #require(x.grad).toArray() == [1, 2, 3])
        #expect(d.grad == nil)
    }

    /// `withNoGrad` on one thread must not switch off recording on another (tests and data loaders run in parallel).
    @Test func noGradIsPerThread() throws {
        let entered = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0), done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            withNoGrad {
                entered.signal()
                release.wait()
            }
            done.signal()
        }
        entered.wait()
        let x = try Tensor([1, 2], shape: [2], on: .cpu, requiresGrad: true)
        let recording = GradMode.isEnabled
        let y = x * 3
        release.signal()
        done.wait()
        #expect(recording, "withNoGrad on another thread switched off gradients here")
        #expect(y.requiresGrad && !y.isLeaf)
    }
}

