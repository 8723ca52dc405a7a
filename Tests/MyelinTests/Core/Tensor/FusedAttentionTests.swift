import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// The fused scaled dot-product attention (`Tensor.scaledDotProductAttention`): against a Double reference, against
/// the three-op path (product, masked softmax, product) forward and in every gradient, by finite differences, and in
/// `MultiHeadAttention` and a captured step.
@Suite struct FusedAttentionTests {
    enum MaskKind: String { case none, padding, bias }

    /// One attention problem: q [b, h, tq, d], k and v [b, h, tk, d].
    struct Case: CustomStringConvertible {
        var b: Int, h: Int, tq: Int, tk: Int, d: Int, causal: Bool, mask: MaskKind
        var description: String { "b\(b) h\(h) tq\(tq) tk\(tk) d\(d)\(causal ? " causal" : "") mask \(mask)" }
    }

    /// T = 1, 7, 33, 129 (and 9, 17, 70); heads 1 and 3; head size 5, 16, 64 (and 8, 24, 32, 80); causal, padding and
    /// additive masks; Tq ≠ Tk.
    static let cases: [Case] = [
        Case(b: 1, h: 1, tq: 1, tk: 1, d: 5, causal: false, mask: .none),
        Case(b: 2, h: 3, tq: 7, tk: 7, d: 5, causal: true, mask: .none),
        Case(b: 2, h: 1, tq: 33, tk: 33, d: 16, causal: true, mask: .padding),
        Case(b: 2, h: 3, tq: 33, tk: 33, d: 16, causal: false, mask: .bias),
        Case(b: 1, h: 3, tq: 129, tk: 129, d: 64, causal: true, mask: .none),
        Case(b: 1, h: 1, tq: 129, tk: 129, d: 5, causal: false, mask: .padding),
        Case(b: 2, h: 1, tq: 7, tk: 33, d: 16, causal: true, mask: .padding),
        Case(b: 1, h: 3, tq: 1, tk: 33, d: 64, causal: true, mask: .bias),
        Case(b: 2, h: 3, tq: 33, tk: 7, d: 5, causal: false, mask: .padding),
        Case(b: 2, h: 1, tq: 7, tk: 129, d: 64, causal: false, mask: .none),
        // More than the OpenCL kernels' 64 head dimensions per pass.
        Case(b: 1, h: 1, tq: 33, tk: 33, d: 80, causal: true, mask: .bias),
        // The CPU's row kernel (head sizes that are multiples of 8): 8 and 24 columns of the head (one vector, and
        // two then one), 9 and 17 keys (one pair of key vectors, then a single one), and BERT's head size over
        // more than one 64-row block of queries.
        Case(b: 2, h: 2, tq: 9, tk: 9, d: 8, causal: false, mask: .padding),
        Case(b: 1, h: 3, tq: 17, tk: 17, d: 24, causal: true, mask: .bias),
        Case(b: 2, h: 1, tq: 70, tk: 70, d: 32, causal: false, mask: .padding),
    ]

    /// The mask's values and shape: padding masks every third key but key 0 with −∞ ([b, 1, 1, tk]); bias is a
    /// finite additive mask [1, h, tq, tk].
    static func mask(_ c: Case) -> ([Float], [Int])? {
        switch c.mask {
        case .none: return nil
        case .padding:
            return ((0..<(c.b * c.tk)).map { i in i % c.tk % 3 == 2 ? -Float.infinity : 0 }, [c.b, 1, 1, c.tk])
        case .bias:
            return (testValues(c.h * c.tq * c.tk, seed: 99), [1, c.h, c.tq, c.tk])
        }
    }

    static func inputs(_ c: Case) -> [([Float], [Int])] {
        [(testValues(c.b * c.h * c.tq * c.d, seed: 1), [c.b, c.h, c.tq, c.d]),
         (testValues(c.b * c.h * c.tk * c.d, seed: 2), [c.b, c.h, c.tk, c.d]),
         (testValues(c.b * c.h * c.tk * c.d, seed: 3), [c.b, c.h, c.tk, c.d])]
    }

    /// softmax(q·kᵀ/√d + mask, causal)·v in Double.
    static func reference(_ c: Case) -> [Double] {
        let x = inputs(c), mask = Self.mask(c), scale = 1 / Double(c.d).squareRoot()
        var out = [Double](repeating: 0, count: c.b * c.h * c.tq * c.d)
        for g in 0..<(c.b * c.h) {
            let bi = g / c.h, hi = g % c.h
            for i in 0..<c.tq {
                let visible = c.causal ? min(c.tk, i + c.tk - c.tq + 1) : c.tk
                var s = [Double](repeating: -.infinity, count: c.tk)
                for j in 0..<visible {
                    var dot = 0.0
                    for e in 0..<c.d { dot += Double(x[0].0[(g * c.tq + i) * c.d + e]) * Double(x[1].0[(g * c.tk + j) * c.d + e]) }
                    s[j] = dot * scale
                    if let (m, _) = mask {
                        s[j] += Double(c.mask == .padding ? m[bi * c.tk + j] : m[(hi * c.tq + i) * c.tk + j])
                    }
                }
                let top = s.max()!
                let p = s.map { Foundation.exp($0 - top) }, sum = p.reduce(0, +)
                for e in 0..<c.d {
                    var acc = 0.0
                    for j in 0..<c.tk { acc += p[j] / sum * Double(x[2].0[(g * c.tk + j) * c.d + e]) }
                    out[(g * c.tq + i) * c.d + e] = acc
                }
            }
        }
        return out
    }

    @Test("fused attention against a Double reference", arguments: TestDevices.all)
    func matchesDoubleReference(device: Device) throws {
        for c in Self.cases where c.tq * c.tk * c.d * c.h * c.b <= 1 << 20 {
            let x = try Self.inputs(c).map { try Tensor($0.0, shape: $0.1, on: device) }
            let mask = try Self.mask(c).map { try Tensor($0.0, shape: $0.1, on: device) }
            let y = try Tensor.scaledDotProductAttention(x[0], x[1], x[2], causal: c.causal, mask: mask)
            #expect(y.shape == [c.b, c.h, c.tq, c.d])
            expectClose(try y.toArray(), Self.reference(c), rtol: 1e-4, atol: 2e-5, "\(device) \(c)")
        }
    }

    /// The output and the gradients of q, k and v (from a weighted sum of the output) by the fused op or the
    /// three-op path.
    static func run(_ c: Case, fused: Bool, device: Device) throws -> [[Float]] {
        let x = try inputs(c).map { try Tensor($0.0, shape: $0.1, on: device, requiresGrad: true) }
        let mask = try Self.mask(c).map { try Tensor($0.0, shape: $0.1, on: device) }
        let y: Tensor
        if fused {
            y = try Tensor.scaledDotProductAttention(x[0], x[1], x[2], causal: c.causal, mask: mask)
        } else {
            let scores = try x[0].matmul(x[1], transposeB: true, alpha: 1 / Float(c.d).squareRoot())
            y = try scores.softmax(causal: c.causal, mask: mask).matmul(x[2])
        }
        let w = try Tensor(testValues(y.count, seed: 7), shape: y.shape, on: device)
        try (y * w).sum().backward()
        return [try y.toArray()] + (try x.map { try #require($0.grad).toArray() })
    }

    @Test("fused attention equals the three-op path, forward and every gradient", arguments: TestDevices.all)
    func matchesThreeOpPath(device: Device) throws {
        for c in Self.cases {
            let fused = try Self.run(c, fused: true, device: device), plain = try Self.run(c, fused: false, device: device)
            for (i, name) in ["output", "dq", "dk", "dv"].enumerated() {
                expectClose(fused[i], plain[i], rtol: 1e-3, atol: 3e-5, "\(device) \(c): \(name)")
            }
        }
    }

    @Test("the fused op's gradients match finite differences", arguments: TestDevices.all)
    func finiteDifferences(device: Device) throws {
        for c in [Case(b: 1, h: 2, tq: 5, tk: 5, d: 3, causal: true, mask: .padding),
                  Case(b: 2, h: 1, tq: 3, tk: 7, d: 4, causal: true, mask: .bias),
                  Case(b: 1, h: 1, tq: 6, tk: 4, d: 5, causal: false, mask: .none)] {
            let mask = try Self.mask(c).map { try Tensor($0.0, shape: $0.1, on: device) }
            try gradientCheck(device: device, inputs: Self.inputs(c), eps: 1e-2, rtol: 2e-2, atol: 2e-3, "attention \(c)") {
                try Tensor.scaledDotProductAttention($0[0], $0[1], $0[2], causal: c.causal, mask: mask, scale: 0.7)
            }
        }
    }

    @Test("one launch forward and two backward on OpenCL, however long the sequence")
    func launchCounts() throws {
        guard TestDevices.openCLAvailable else { return }
        let device = try DeviceTests.privateOpenCLDevice()
        for t in [7, 129] {
            let x = try (0..<3).map { try Tensor(testValues(2 * 3 * t * 16, seed: UInt64($0)), shape: [2, 3, t, 16],
                                                 on: device, requiresGrad: true) }
            _ = try Tensor.scaledDotProductAttention(x[0], x[1], x[2], causal: true).toArray()   // builds the program
            let before = device.stats.launches
            let y = try Tensor.scaledDotProductAttention(x[0], x[1], x[2], causal: true)
            #expect(device.stats.launches - before == 1, "T = \(t): forward")
            let g = Tensor.ones(y.shape, on: device)
            let middle = device.stats.launches
            try y.backward(g)
            #expect(device.stats.launches - middle == 2, "T = \(t): backward")
        }
    }

    @Test("bad shapes are refused with the op's name", arguments: TestDevices.all)
    func refusesBadShapes(device: Device) throws {
        let q = Tensor.zeros([2, 3, 7, 5], on: device), k = Tensor.zeros([2, 3, 4, 5], on: device)
        expectError(containing: ["scaledDotProductAttention", "keys"]) {
            _ = try Tensor.scaledDotProductAttention(q, Tensor.zeros([2, 3, 4, 6], on: device), k)
        }
        expectError(containing: ["scaledDotProductAttention", "values"]) {
            _ = try Tensor.scaledDotProductAttention(q, k, Tensor.zeros([2, 3, 5, 5], on: device))
        }
        expectError(containing: ["causal", "more queries"]) { _ = try Tensor.scaledDotProductAttention(q, k, k, causal: true) }
        expectError(containing: ["mask", "broadcast"]) {
            _ = try Tensor.scaledDotProductAttention(q, k, k, mask: Tensor.zeros([2, 1, 1, 5], on: device))
        }
        expectError(containing: ["scaledDotProductAttention", "queries"]) {
            _ = try Tensor.scaledDotProductAttention(Tensor.zeros([3, 7, 5], on: device), k, k)
        }
    }

    @Test("MultiHeadAttention gives the same output and gradients fused or on the three-op path",
          arguments: TestDevices.all)
    func layerFusedEqualsReference(device: Device) throws {
        for (causal, withMask) in [(true, false), (false, true)] {
            var results: [[[Float]]] = []
            for fused in [true, false] {
                let layer = MultiHeadAttention(embedDim: 12, heads: 3, causal: causal, seed: 5, device: device)
                layer.useFusedAttention = fused
                let x = try Tensor(testValues(2 * 9 * 12, seed: 6), shape: [2, 9, 12], on: device, requiresGrad: true)
                let mask = withMask ? try Tensor((0..<18).map { $0 % 9 >= 7 ? -Float.infinity : 0 }, shape: [2, 1, 1, 9],
                                                 on: device) : nil
                let y = try layer(x, mask: mask)
                try (y * Tensor(testValues(y.count, seed: 8), shape: y.shape, on: device)).sum().backward()
                results.append([try y.toArray(), try #require(x.grad).toArray()]
                               + (try layer.parameters.map { try #require($0.grad).toArray() }))
            }
            for i in results[0].indices {
                expectClose(results[0][i], results[1][i], rtol: 1e-3, atol: 1e-5, "\(device) causal \(causal): tensor \(i)")
            }
        }
    }

    @Test("MultiHeadAttention takes the fused op (one call) unless told not to, or when attention dropout is on in training")
    func layerChoosesThePath() throws {
        let device = DeviceTests.privateCPUDevice()
        let x = try Tensor(testValues(2 * 5 * 8, seed: 1), shape: [2, 5, 8], on: device)
        func calls(fused: Bool, dropout: Float = 0, training: Bool = true) throws -> Int {
            let layer = MultiHeadAttention(embedDim: 8, heads: 2, causal: true, dropout: dropout, seed: 2, device: device)
            layer.useFusedAttention = fused
            layer.isTraining = training
            _ = try layer(x)   // warm-up
            let before = device.stats.launches
            _ = try layer(x)
            return device.stats.launches - before
        }
        let fused = try calls(fused: true), reference = try calls(fused: false)
        // On the CPU the fused path is c_attn's product, the packed attention and c_proj's product. The three-op
        // path: for each of q, k, v, c_attn's weight and bias rows (two copies), a product and a permute; then
        // product, causal softmax, product, the permute merging the heads and c_proj.
        #expect(fused == 3 && reference == 17, "fused \(fused), three-op \(reference) calls")
        #expect(try calls(fused: true, dropout: 0.5, training: false) == fused, "eval mode with dropout: fused")
        #expect(try calls(fused: true, dropout: 0.5) > reference, "attention dropout in training: the three-op path and dropout")
    }

    @Test("a captured transformer step with fused attention trains as the eager one", arguments: TestDevices.all)
    func capturedStepMatchesEager(device: Device) throws {
        try CaptureTests().expectIdenticalTraining(device, steps: 4, n: 10, batch: 4,
                                                   makeModel: { device in Sequential {
                                                       Reshape([4, 6])
                                                       TransformerBlock(embedDim: 6, heads: 2, seed: 7, device: device)
                                                       Flatten()
                                                       Dense(inputSize: 24, outputSize: 3, seed: 8, device: device)
                                                   } },
                                                   inputs: 24, classes: 3,
                                                   makeOptimizer: { try AdamW(parameters: $0, learningRate: 0.01) })
    }
}
