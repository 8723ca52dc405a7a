import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// The sequence ops (batched products over leading axes, permutes, the causal and masked softmax, embedding
/// lookups, `linear` on any rank) against Double references on odd shapes, and their gradients.
@Suite struct SequenceOpTests {
    /// The attention shapes of issue #24: T = 1, 7, 33; heads 1 and 3; head size 5 and 16.
    static let attentionShapes: [(t: Int, heads: Int, d: Int)] = [(1, 1, 5), (7, 3, 5), (33, 3, 16), (7, 1, 16), (33, 1, 5)]

    @Test(arguments: TestDevices.all)
    func batchedMatmulOverLeadingAxes(device: Device) throws {
        let b = 2
        for (t, h, d) in Self.attentionShapes {
            let q = testValues(b * h * t * d, seed: 1), k = testValues(b * h * t * d, seed: 2)
            let qt = try Tensor(q, shape: [b, h, t, d], on: device), kt = try Tensor(k, shape: [b, h, t, d], on: device)
            let scores = try qt.matmul(kt, transposeB: true, alpha: 0.5)
            #expect(scores.shape == [b, h, t, t])
            var expected: [Double] = []
            for s in 0..<(b * h) {
                let a = Array(q[(s * t * d)..<((s + 1) * t * d)]), c = Array(k[(s * t * d)..<((s + 1) * t * d)])
                expected += Reference.gemm(a, c, m: t, n: t, k: d, transB: true).map { $0 * 0.5 }
            }
            expectClose(try scores.toArray(), expected, rtol: 1e-4, atol: 1e-5, "\(device) q·kᵀ t=\(t) h=\(h) d=\(d)")
            // Both transposed ([B, H, D, T]ᵀ·[B, H, T, D]ᵀ) and a shared right operand (no leading axes).
            let w = testValues(t * 3, seed: 3)
            let shared = try qt.matmul(Tensor(w, shape: [t, 3], on: device), transposeA: true)
            var sharedExpected: [Double] = []
            for s in 0..<(b * h) {
                sharedExpected += Reference.gemm(Array(q[(s * t * d)..<((s + 1) * t * d)]), w, m: d, n: 3, k: t, transA: true)
            }
            #expect(shared.shape == [b, h, d, 3])
            expectClose(try shared.toArray(), sharedExpected, rtol: 1e-4, atol: 1e-5, "\(device) qᵀ·w t=\(t)")
        }
        expectError(containing: ["matmul", "leading"]) {
            _ = try Tensor.zeros([2, 3, 4, 5], on: device).matmul(Tensor.zeros([3, 2, 5, 4], on: device))
        }
    }

    /// Devices with counters of their own (tests running in parallel do not move them).
    static func privateDevices() throws -> [Device] {
        [DeviceTests.privateCPUDevice()] + (TestDevices.openCLAvailable ? [try DeviceTests.privateOpenCLDevice()] : [])
    }

    @Test func batchedProductAndCausalSoftmaxLaunchesDoNotGrowWithTheBatch() throws {
        for device in try Self.privateDevices() {
            func launches(batch: Int) throws -> (product: Int, softmax: Int) {
                let q = try Tensor(testValues(batch * 3 * 33 * 16, seed: 1), shape: [batch, 3, 33, 16], on: device)
                _ = try q.matmul(q, transposeB: true).softmax(causal: true).toArray()   // warm-up (programs, pools)
                let before = device.stats.launches
                let scores = try q.matmul(q, transposeB: true)
                let middle = device.stats.launches
                _ = try scores.softmax(causal: true)
                return (middle - before, device.stats.launches - middle)
            }
            // 12 and 48 products of [33, 16]·[16, 33]: one strided-batched product (with its packing launches).
            let small = try launches(batch: 4), large = try launches(batch: 16)
            #expect(small.product == large.product && small.product <= 3, "\(device): \(small.product) and \(large.product) launches")
            #expect(small.softmax == 1 && large.softmax == 1, "\(device): the causal mask is part of the one softmax launch")
        }
    }

    @Test(arguments: TestDevices.all)
    func batchedMatmulGradients(device: Device) throws {
        let a = (testValues(2 * 2 * 3 * 4, seed: 4), [2, 2, 3, 4]), b = (testValues(2 * 2 * 4 * 3, seed: 5), [2, 2, 4, 3])
        try gradientCheck(device: device, inputs: [a, b], "matmul [2,2,3,4]·[2,2,4,3]") { try $0[0].matmul($0[1]) }
        let bt = (testValues(2 * 2 * 5 * 4, seed: 6), [2, 2, 5, 4])
        try gradientCheck(device: device, inputs: [a, bt], "matmul transposeB") { try $0[0].matmul($0[1], transposeB: true, alpha: 0.7) }
        try gradientCheck(device: device, inputs: [a, (testValues(12, seed: 7), [3, 4])], "matmul transposeA, shared") {
            try $0[0].matmul($0[1], transposeA: true)
        }
    }

    static func referencePermute(_ x: [Float], shape: [Int], axes: [Int]) -> [Double] {
        let outShape = axes.map { shape[$0] }
        var strides = [Int](repeating: 1, count: shape.count)
        for i in stride(from: shape.count - 2, through: 0, by: -1) { strides[i] = strides[i + 1] * shape[i + 1] }
        return (0..<x.count).map { i in
            var rest = i, source = 0
            for j in stride(from: outShape.count - 1, through: 0, by: -1) {
                source += (rest % outShape[j]) * strides[axes[j]]
                rest /= outShape[j]
            }
            return Double(x[source])
        }
    }

    @Test(arguments: TestDevices.all)
    func permuteMatchesReference(device: Device) throws {
        let cases: [([Int], [Int])] = [([2, 7, 3, 5], [0, 2, 1, 3]), ([2, 33, 3, 3, 16], [2, 0, 3, 1, 4]),
                                       ([1, 7, 1, 5], [0, 2, 1, 3]), ([3, 5, 7], [2, 0, 1]), ([4, 6], [1, 0]),
                                       ([2, 3, 2, 3, 2, 3, 2], [6, 5, 4, 3, 2, 1, 0])]
        for (shape, axes) in cases {
            let values = testValues(shape.reduce(1, *), seed: 8)
            let x = try Tensor(values, shape: shape, on: device)
            if let layout = PermuteLayout.make(shape: shape, axes: axes) {
                let y = try x.permuted(axes)
                #expect(y.shape == axes.map { shape[$0] })
                expectClose(try y.toArray(), Self.referencePermute(values, shape: shape, axes: axes), rtol: 0, atol: 0,
                            "\(device) permute \(shape) by \(axes) (layout \(layout.dims))")
            } else {
                expectError(containing: ["permuted", "not supported"]) { _ = try x.permuted(axes) }
            }
        }
        // Moving only axes of size 1 is a reshape: the same buffer.
        let x = try Tensor(testValues(35, seed: 9), shape: [1, 7, 1, 5], on: device)
        #expect(try x.permuted([2, 1, 0, 3]).buffer === x.buffer)
        expectClose(try x.transposed(-1, -3).toArray(), Self.referencePermute(try x.toArray(), shape: [1, 7, 1, 5], axes: [0, 3, 2, 1]),
                    rtol: 0, atol: 0, "\(device) transposed(-1, -3)")
        expectError(containing: ["permuted", "permutation"]) { _ = try x.permuted([0, 1, 1, 3]) }
        try gradientCheck(device: device, inputs: [(testValues(2 * 3 * 4 * 5, seed: 10), [2, 3, 4, 5])], "permute") {
            try $0[0].permuted([2, 0, 3, 1])
        }
    }

    /// Row softmax over the first `q + cols − queries + 1` entries (zeros after), and an additive mask first.
    static func referenceSoftmax(_ x: [Float], cols: Int, queries: Int, causal: Bool, mask: [Float]? = nil) -> [Double] {
        var out: [Double] = []
        for r in 0..<(x.count / cols) {
            let keys = causal ? Swift.min(cols, r % queries + cols - queries + 1) : cols
            let row = (0..<keys).map { Double(x[r * cols + $0]) + Double(mask?[r * cols + $0] ?? 0) }
            let m = row.max()!
            let s = row.reduce(0) { $0 + Foundation.exp($1 - m) }
            out += row.map { Foundation.exp($0 - m) / s } + [Double](repeating: 0, count: cols - keys)
        }
        return out
    }

    @Test(arguments: TestDevices.all)
    func causalSoftmaxMatchesReference(device: Device) throws {
        for (t, h, _) in Self.attentionShapes {
            let values = testValues(2 * h * t * t, seed: UInt64(t + h)).map { $0 * 4 }
            let x = try Tensor(values, shape: [2, h, t, t], on: device)
            let y = try x.softmax(causal: true)
            expectClose(try y.toArray(), Self.referenceSoftmax(values, cols: t, queries: t, causal: true), rtol: 1e-5, atol: 1e-6,
                        "\(device) causal softmax t=\(t) h=\(h)")
        }
        // Fewer queries than keys (a decoder with cached keys): the mask is aligned to the last key.
        let values = testValues(3 * 7, seed: 11)
        let y = try Tensor(values, shape: [3, 7], on: device).softmax(causal: true)
        expectClose(try y.toArray(), Self.referenceSoftmax(values, cols: 7, queries: 3, causal: true), rtol: 1e-5, atol: 1e-6,
                    "\(device) causal softmax, 3 queries, 7 keys")
        expectError(containing: ["softmax(causal: true)", "queries"]) { _ = try Tensor.zeros([7, 3], on: device).softmax(causal: true) }
        // A padding mask [B, 1, 1, T]: the last two keys of the second sequence are padding.
        let t = 7
        var mask = [Float](repeating: 0, count: 2 * t)
        mask[2 * t - 1] = -.infinity; mask[2 * t - 2] = -.infinity
        let scores = testValues(2 * 3 * t * t, seed: 12)
        let masked = try Tensor(scores, shape: [2, 3, t, t], on: device)
            .softmax(causal: false, mask: Tensor(mask, shape: [2, 1, 1, t], on: device))
        let broadcastMask = (0..<(2 * 3 * t * t)).map { i in mask[(i / (3 * t * t)) * t + i % t] }
        expectClose(try masked.toArray(), Self.referenceSoftmax(scores, cols: t, queries: t, causal: false, mask: broadcastMask),
                    rtol: 1e-5, atol: 1e-6, "\(device) softmax with a padding mask")
    }

    @Test(arguments: TestDevices.all)
    func attentionGradientsWithAndWithoutMask(device: Device) throws {
        let shape = [1, 2, 4, 3]
        let inputs = (0..<3).map { (testValues(24, seed: 20 + UInt64($0)), shape) }
        for causal in [false, true] {
            try gradientCheck(device: device, inputs: inputs, "attention causal=\(causal)") { qkv in
                try qkv[0].matmul(qkv[1], transposeB: true, alpha: 0.6).softmax(causal: causal).matmul(qkv[2])
            }
        }
        let mask = try Tensor([0, 0, 0, -Float.infinity], shape: [1, 1, 1, 4], on: device)
        try gradientCheck(device: device, inputs: inputs, "attention with a padding mask") { qkv in
            try qkv[0].matmul(qkv[1], transposeB: true).softmax(causal: true, mask: mask).matmul(qkv[2])
        }
    }

    @Test(arguments: TestDevices.all)
    func embeddingGathersAndScatterAddsRepeatedIndices(device: Device) throws {
        let rows = 5, dim = 3
        let table = testValues(rows * dim, seed: 30)
        let indices: [Float] = [2, 0, 2, 4, 2, 1]
        let idx = try Tensor(indices, shape: [2, 3], on: device)
        let y = try Tensor(table, shape: [rows, dim], on: device).embedding(idx)
        #expect(y.shape == [2, 3, dim])
        expectClose(try y.toArray(), indices.flatMap { i in (0..<dim).map { Double(table[Int(i) * dim + $0]) } }, rtol: 0, atol: 0,
                    "\(device) embedding forward")
        try gradientCheck(device: device, inputs: [(table, [rows, dim])], "embedding, index 2 three times") {
            try $0[0].embedding(idx)
        }
        // padding_idx: the row is looked up as it is but gets no gradient.
        let w = try Tensor(table, shape: [rows, dim], on: device, requiresGrad: true)
        try w.embedding(idx, paddingIndex: 2).sum().backward()
        let counts: [Double] = [1, 1, 0, 0, 1]   // index 2 (padding) used 3 times, 3 never
        expectClose(try w.grad!.toArray(), counts.flatMap { [Double](repeating: $0, count: dim) }, rtol: 0, atol: 0,
                    "\(device) embedding gradient with paddingIndex 2")
        expectError(containing: ["embedding", "row 5"]) { _ = try w.embedding(idx, paddingIndex: 5) }
    }

    /// Weight tying (GPT-2's token embedding as the output projection): one table used by `embedding` and by
    /// `linear` gets the sum of both gradients.
    @Test(arguments: TestDevices.all)
    func tiedEmbeddingAndOutputProjection(device: Device) throws {
        let idx = try Tensor([3, 0, 3, 1], shape: [2, 2], on: device)
        try gradientCheck(device: device, inputs: [(testValues(4 * 3, seed: 43), [4, 3])], "tied embedding") { table in
            try table[0].embedding(idx).linear(weight: table[0], bias: nil)   // [2, 2, 3] -> logits [2, 2, 4]
        }
    }

    @Test(arguments: TestDevices.all)
    func linearOnAnyRank(device: Device) throws {
        let (i, o) = (5, 4)
        let xv = testValues(2 * 7 * i, seed: 40), wv = testValues(o * i, seed: 41), bv = testValues(o, seed: 42)
        let w = try Tensor(wv, shape: [o, i], on: device), b = try Tensor(bv, shape: [o], on: device)
        let y = try Tensor(xv, shape: [2, 7, i], on: device).linear(weight: w, bias: b)
        #expect(y.shape == [2, 7, o])
        let expected = Reference.gemm(xv, wv, m: 14, n: o, k: i, transB: true).enumerated().map { $0.element + Double(bv[$0.offset % o]) }
        expectClose(try y.toArray(), expected, rtol: 1e-5, atol: 1e-6, "\(device) linear [2, 7, 5]")
        let one = try Tensor(Array(xv[0..<i]), shape: [i], on: device).linear(weight: w, bias: b)
        #expect(one.shape == [o])
        expectClose(try one.toArray(), Array(expected[0..<o]), rtol: 1e-5, atol: 1e-6, "\(device) linear [5]")
        try gradientCheck(device: device, inputs: [(Array(xv[0..<(3 * 2 * i)]), [3, 2, i]), (wv, [o, i]), (bv, [o])],
                          "linear [3, 2, 5], gelu") { try $0[0].linear(weight: $0[1], bias: $0[2], activation: .geluErf) }
    }

    /// Without gradients the CPU applies GELU as the GEMM stores C (no pre-activation kept): the same values as
    /// the recorded op's separate activation, and the Double reference, on 33 rows of 7 to 17 (the own kernel's
    /// shapes) and 600 rows of 9 to 1100 (OpenBLAS's).
    @Test(arguments: TestDevices.all)
    func linearWithGELUWithoutGradients(device: Device) throws {
        for (m, i, o) in [(33, 7, 17), (600, 9, 1100)] {
            let xv = testValues(m * i, seed: 43), wv = testValues(o * i, seed: 44), bv = testValues(o, seed: 45)
            let x = try Tensor(xv, shape: [m, i], on: device), b = try Tensor(bv, shape: [o], on: device)
            let w = try Tensor(wv, shape: [o, i], on: device)
            w.requiresGrad = true
            let recorded = try x.linear(weight: w, bias: b, activation: .geluErf)
            let inference = try withNoGrad { try x.linear(weight: w, bias: b, activation: .geluErf) }
            #expect(recorded.requiresGrad && !inference.requiresGrad)
            #expect(try inference.toArray() == recorded.toArray(), "\(device) \(m)×\(i)·\(o): fused GELU differs from the launch")
            let expected = Reference.gemm(xv, wv, m: m, n: o, k: i, transB: true).enumerated()
                .map { Reference.activation(.geluErf, $0.element + Double(bv[$0.offset % o])) }
            expectClose(try inference.toArray(), expected, rtol: 1e-5, atol: 1e-6, "\(device) gelu(linear) \(m)×\(i)·\(o)")
        }
    }
}
