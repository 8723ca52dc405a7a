import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// Correctness of matrix products (plain, transposed, scaled, accumulating, batched, fused dense) on every device.
@Suite struct GemmTests {
    /// (m, n, k): odd sizes, tile multiples, skinny and degenerate products.
    static let shapes: [(Int, Int, Int)] = [
        (1, 1, 1), (7, 3, 33), (33, 129, 7), (129, 33, 65), (128, 10, 784), (64, 64, 64), (32, 96, 16),
        (3, 1, 129), (1, 129, 3), (65, 65, 1),
    ]

    @Test(arguments: TestDevices.all)
    func allTransposeCombinations(device: Device) throws {
        for (m, n, k) in Self.shapes {
            for transA in [false, true] {
                for transB in [false, true] {
                    let a = testValues(m * k, seed: 11), b = testValues(k * n, seed: 12)
                    let ta = try Tensor(a, shape: transA ? [k, m] : [m, k], on: device)
                    let tb = try Tensor(b, shape: transB ? [n, k] : [k, n], on: device)
                    let c = try ta.matmul(tb, transposeA: transA, transposeB: transB)
                    #expect(c.shape == [m, n])
                    expectClose(try c.toArray(), Reference.gemm(a, b, m: m, n: n, k: k, transA: transA, transB: transB),
                                rtol: 1e-4, atol: 1e-4, "\(device) gemm \(m)x\(n)x\(k) transA \(transA) transB \(transB)")
                }
            }
        }
    }

    /// An empty inner dimension gives zeros (plus bias and activation).
    @Test(arguments: TestDevices.all)
    func emptyInnerDimension(device: Device) throws {
        let a = Tensor.zeros([3, 0], on: device), b = Tensor.zeros([0, 4], on: device)
        let c = try a.matmul(b)
        #expect(try c.shape == [3, 4] && c.toArray() == [Float](repeating: 0, count: 12))
        let bias = try Tensor([1, -2, 3, -4], shape: [4], on: device)
        #expect(try a.dense(weight: b, bias: bias, activation: .relu).toArray() == [1, 0, 3, 0, 1, 0, 3, 0, 1, 0, 3, 0])
    }

    @Test(arguments: TestDevices.all)
    func alphaScalesTheProduct(device: Device) throws {
        for (m, n, k) in [(7, 3, 33), (129, 33, 65)] {
            let a = testValues(m * k, seed: 1), b = testValues(k * n, seed: 2)
            let c = try Tensor(a, shape: [m, k], on: device).matmul(Tensor(b, shape: [k, n], on: device), alpha: -0.75)
            expectClose(try c.toArray(), Reference.gemm(a, b, m: m, n: n, k: k).map { -0.75 * $0 },
                        rtol: 1e-4, atol: 1e-4, "\(device) alpha \(m)x\(n)x\(k)")
        }
    }

    /// C = alpha·op(A)·op(B) + beta·C with C filled beforehand, through the device interface.
    @Test(arguments: TestDevices.all)
    func betaAccumulatesIntoC(device: Device) throws {
        for (m, n, k) in [(1, 1, 1), (7, 3, 33), (33, 129, 7), (64, 64, 64), (129, 33, 65), (3, 4, 0), (65, 66, 0)] {
            for (transA, transB) in [(false, false), (true, false), (false, true), (true, true)] {
                let a = testValues(m * k, seed: 3), b = testValues(k * n, seed: 4), c0 = testValues(m * n, seed: 5)
                let ta = try Tensor(a, shape: [m * k], on: device), tb = try Tensor(b, shape: [k * n], on: device)
                let tc = try Tensor(c0, shape: [m, n], on: device)
                let shape = GemmShape(m: m, n: n, k: k, transA: transA, transB: transB, alpha: 0.5, beta: -2)
                device.backend.gemm(shape, a: ta.buffer, b: tb.buffer, c: tc.buffer, bias: nil, activation: .identity)
                let ab = Reference.gemm(a, b, m: m, n: n, k: k, transA: transA, transB: transB)
                let expected = (0..<(m * n)).map { 0.5 * ab[$0] - 2 * Double(c0[$0]) }
                expectClose(try tc.toArray(), expected, rtol: 1e-4, atol: 1e-4,
                            "\(device) beta gemm \(m)x\(n)x\(k) transA \(transA) transB \(transB)")
            }
        }
    }

    /// beta = 1 with bias and an activation: act(A·B + C + bias).
    @Test(arguments: TestDevices.all)
    func betaWithBiasAndActivation(device: Device) throws {
        let (m, n, k) = (33, 65, 17)
        let a = testValues(m * k, seed: 6), b = testValues(k * n, seed: 7), c0 = testValues(m * n, seed: 8)
        let bias = testValues(n, seed: 9)
        let ta = try Tensor(a, shape: [m, k], on: device), tb = try Tensor(b, shape: [k, n], on: device)
        let tc = try Tensor(c0, shape: [m, n], on: device), tbias = try Tensor(bias, shape: [n], on: device)
        device.backend.gemm(GemmShape(m: m, n: n, k: k, beta: 1), a: ta.buffer, b: tb.buffer, c: tc.buffer,
                            bias: tbias.buffer, activation: .tanh)
        let ab = Reference.gemm(a, b, m: m, n: n, k: k)
        let expected = (0..<(m * n)).map { Foundation.tanh(ab[$0] + Double(c0[$0]) + Double(bias[$0 % n])) }
        expectClose(try tc.toArray(), expected, rtol: 1e-4, atol: 1e-4, "\(device) beta + bias + tanh")
    }

    @Test(arguments: TestDevices.all)
    func batchedThreeDByTwoD(device: Device) throws {
        for (batch, m, n, k) in [(3, 7, 3, 33), (2, 33, 129, 7), (5, 1, 1, 1), (2, 65, 64, 33)] {
            for transB in [false, true] {
                let a = testValues(batch * m * k, seed: 21), b = testValues(k * n, seed: 22)
                let c = try Tensor(a, shape: [batch, m, k], on: device)
                    .matmul(Tensor(b, shape: transB ? [n, k] : [k, n], on: device), transposeB: transB)
                #expect(c.shape == [batch, m, n])
                var expected: [Double] = []
                for i in 0..<batch {
                    expected += Reference.gemm(Array(a[(i * m * k)..<((i + 1) * m * k)]), b, m: m, n: n, k: k, transB: transB)
                }
                expectClose(try c.toArray(), expected, rtol: 1e-4, atol: 1e-4, "\(device) batched 3D·2D \(batch)x\(m)x\(n)x\(k)")
            }
        }
    }

    @Test(arguments: TestDevices.all)
    func batchedThreeDByThreeD(device: Device) throws {
        for (batch, m, n, k) in [(3, 7, 3, 33), (2, 33, 129, 7), (4, 1, 5, 1), (2, 64, 65, 32)] {
            for (transA, transB) in [(false, false), (true, false), (false, true), (true, true)] {
                let a = testValues(batch * m * k, seed: 31), b = testValues(batch * k * n, seed: 32)
                let c = try Tensor(a, shape: transA ? [batch, k, m] : [batch, m, k], on: device)
                    .matmul(Tensor(b, shape: transB ? [batch, n, k] : [batch, k, n], on: device),
                            transposeA: transA, transposeB: transB)
                #expect(c.shape == [batch, m, n])
                var expected: [Double] = []
                for i in 0..<batch {
                    expected += Reference.gemm(Array(a[(i * m * k)..<((i + 1) * m * k)]),
                                               Array(b[(i * k * n)..<((i + 1) * k * n)]),
                                               m: m, n: n, k: k, transA: transA, transB: transB)
                }
                expectClose(try c.toArray(), expected, rtol: 1e-4, atol: 1e-4,
                            "\(device) batched 3D·3D \(batch)x\(m)x\(n)x\(k) transA \(transA) transB \(transB)")
            }
        }
    }

    /// A 2-D left operand against a batch of right operands repeats the left matrix.
    @Test(arguments: TestDevices.all)
    func batchedTwoDByThreeD(device: Device) throws {
        let (batch, m, n, k) = (3, 7, 5, 33)
        let a = testValues(m * k, seed: 41), b = testValues(batch * k * n, seed: 42)
        let c = try Tensor(a, shape: [m, k], on: device).matmul(Tensor(b, shape: [batch, k, n], on: device))
        #expect(c.shape == [batch, m, n])
        var expected: [Double] = []
        for i in 0..<batch { expected += Reference.gemm(a, Array(b[(i * k * n)..<((i + 1) * k * n)]), m: m, n: n, k: k) }
        expectClose(try c.toArray(), expected, rtol: 1e-4, atol: 1e-4, "\(device) batched 2D·3D")
    }

    static let activations: [Activation] = TestActivations.all

    /// `dense` = act(x·W + b) for every activation, with and without bias, against the naive product.
    @Test(arguments: TestDevices.all)
    func denseFusesBiasAndEveryActivation(device: Device) throws {
        for (m, n, k) in [(1, 1, 1), (7, 3, 33), (33, 129, 7), (128, 10, 784), (64, 64, 64)] {
            let x = testValues(m * k, seed: 51), w = testValues(k * n, seed: 52), b = testValues(n, seed: 53)
            let tx = try Tensor(x, shape: [m, k], on: device), tw = try Tensor(w, shape: [k, n], on: device)
            let tb = try Tensor(b, shape: [n], on: device)
            let z = Reference.gemm(x, w, m: m, n: n, k: k)
            for act in Self.activations {
                for withBias in [true, false] {
                    let y = try tx.dense(weight: tw, bias: withBias ? tb : nil, activation: act)
                    #expect(y.shape == [m, n])
                    let expected = (0..<(m * n)).map { Reference.activation(act, z[$0] + (withBias ? Double(b[$0 % n]) : 0)) }
                    // step jumps at 0: values within rounding of 0 may land on either side.
                    let got = try y.toArray()
                    if act == .step {
                        let sure = (0..<(m * n)).filter { Swift.abs(z[$0] + (withBias ? Double(b[$0 % n]) : 0)) > 1e-4 }
                        expectClose(sure.map { got[$0] }, sure.map { expected[$0] }, rtol: 0, atol: 0, "\(device) dense step")
                    } else {
                        expectClose(got, expected, rtol: 1e-4, atol: 1e-4,
                                    "\(device) dense \(m)x\(n)x\(k) \(act) bias \(withBias)")
                    }
                }
            }
        }
    }

    /// `linear` = act(x·Wᵀ + b) with W [out, in] (PyTorch's layout), against the naive product with W transposed,
    /// on shapes that take every GEMM path (skinny n <= 16, direct m < 8, blocks, edges).
    @Test(arguments: TestDevices.all)
    func linearTakesTheWeightOutByIn(device: Device) throws {
        for (m, n, k) in [(1, 1, 1), (7, 3, 33), (33, 129, 7), (128, 10, 784), (64, 64, 64), (9, 17, 5)] {
            let x = testValues(m * k, seed: 61), w = testValues(n * k, seed: 62), b = testValues(n, seed: 63)
            var wt = [Float](repeating: 0, count: k * n)   // [k, n] for the reference
            for o in 0..<n { for i in 0..<k { wt[i * n + o] = w[o * k + i] } }
            let tx = try Tensor(x, shape: [m, k], on: device), tw = try Tensor(w, shape: [n, k], on: device)
            let tb = try Tensor(b, shape: [n], on: device)
            let z = Reference.gemm(x, wt, m: m, n: n, k: k)
            for act in Self.activations where act != .step {
                for withBias in [true, false] {
                    let y = try tx.linear(weight: tw, bias: withBias ? tb : nil, activation: act)
                    #expect(y.shape == [m, n])
                    let expected = (0..<(m * n)).map { Reference.activation(act, z[$0] + (withBias ? Double(b[$0 % n]) : 0)) }
                    expectClose(try y.toArray(), expected, rtol: 1e-4, atol: 1e-4, "\(device) linear \(m)x\(n)x\(k) \(act) bias \(withBias)")
                }
            }
        }
        let a = Tensor.zeros([3, 4], on: device)
        expectError(containing: ["linear", "[3, 4]", "[4, 2]", "[out, in]"], "linear weight") {
            _ = try a.linear(weight: Tensor.zeros([4, 2], on: device), bias: nil)
        }
        expectError(containing: ["linear", "[4]", "[2]"], "linear bias") {
            _ = try a.linear(weight: Tensor.zeros([2, 4], on: device), bias: Tensor.zeros([4], on: device))
        }
    }

    @Test(arguments: TestDevices.all)
    func mismatchedShapesThrowNamingBothShapes(device: Device) throws {
        let a = Tensor.zeros([3, 4], on: device), b = Tensor.zeros([5, 2], on: device)
        expectError(containing: ["matmul", "[3, 4]", "[5, 2]"], "matmul") { _ = try a.matmul(b) }
        expectError(containing: ["matmul", "[3, 4]", "[5, 2]"], "matmul transposed") { _ = try a.matmul(b, transposeB: true) }
        let v = Tensor.zeros([4], on: device)
        expectError(containing: ["matmul", "[4]", "[3, 4]"], "matmul of a vector") { _ = try v.matmul(a) }
        let a3 = Tensor.zeros([2, 3, 4], on: device), b3 = Tensor.zeros([3, 4, 5], on: device)
        expectError(containing: ["matmul", "[2, 3, 4]", "[3, 4, 5]", "batch"], "batched matmul") { _ = try a3.matmul(b3) }
        expectError(containing: ["dense", "[3, 4]", "[5, 2]"], "dense weight") { _ = try a.dense(weight: b, bias: nil) }
        let w = Tensor.zeros([4, 2], on: device), badBias = Tensor.zeros([3], on: device)
        expectError(containing: ["dense", "[3]", "[2]"], "dense bias") { _ = try a.dense(weight: w, bias: badBias) }
        // Any rank is accepted (the last axis is the features), but it must fit the weight.
        #expect(try a3.dense(weight: w, bias: nil).shape == [2, 3, 2])
        expectError(containing: ["dense", "[2, 3, 4]", "[5, 2]"], "dense of a 3-D input") { _ = try a3.dense(weight: b, bias: nil) }
    }
}
