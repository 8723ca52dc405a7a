import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// The CPU's vectorized GELU (CMyelinMath/myelin_activations.c: a rational erf) against GELU in Double, on a dense
/// grid and odd lengths (the 8-lane AVX2 or 16-lane AVX-512 loop, two vectors at a time, and the tails), with NaN
/// and the infinities; and the fused attention's
/// vectorized exp through padding masks of every length against the three-op path.
@Suite struct CPUActivationKernelTests {
    static func gelu(_ x: Double) -> Double { 0.5 * x * (1 + erf(x / 2.0.squareRoot())) }

    @Test func geluErfMatchesDoubleWithinItsBound() throws {
        for n in [1, 7, 8, 16, 17, 31, 33, 47, 200_001] {
            let xs = (0..<n).map { n == 1 ? Float(0.3) : Float(-12 + 24 * Double($0) / Double(n - 1)) }
            let ys = try Tensor(xs, shape: [n], on: .cpu).gelu().toArray()
            var worst = 0.0
            for (x, y) in zip(xs, ys) { worst = max(worst, abs(Double(y) - Self.gelu(Double(x))) / max(abs(Double(x)), 1)) }
            #expect(worst <= 3e-7, "n \(n): |error| / max(|x|, 1) up to \(worst)")
        }
        let special = try Tensor([.nan, .infinity, -.infinity, 0, -0.0, 40, -40, 1e-20], shape: [8], on: .cpu).gelu().toArray()
        #expect(special[0].isNaN && special[1] == .infinity && special[3] == 0 && special[4] == 0, "\(special)")
        #expect(special[5] == 40 && special[6] == 0 && abs(special[7] - 5e-21) < 1e-26, "\(special)")
    }

    /// Padding masks (−Float.greatestFiniteMagnitude, as BERT's) of each length from 1 to T: the fused op (vectorized
    /// exp, 8 lanes and a tail) against the three-op softmax path.
    /// Head size 5 runs the blocked path, 8 the row kernel (myelin_attention.c) where the CPU has AVX2 and FMA.
    @Test(arguments: [5, 8]) func fusedAttentionExpUnderPaddingMasks(d: Int) throws {
        let b = 9, h = 2, t = 9
        let shape = AttentionShape(batch: b, heads: h, queries: t, keys: t, headSize: d, scale: 1, causal: false)
        #expect(CPUBackend.rowAttentionApplies(shape) == (d == 8 && CPUBackend.ownGemmAvailable))
        let q = try Tensor(testValues(b * h * t * d, seed: 1).map { $0 * 4 }, shape: [b, h, t, d], on: .cpu)
        let k = try Tensor(testValues(b * h * t * d, seed: 2).map { $0 * 4 }, shape: [b, h, t, d], on: .cpu)
        let v = try Tensor(testValues(b * h * t * d, seed: 3), shape: [b, h, t, d], on: .cpu)
        let keep = (0..<b).flatMap { row in (0..<t).map { Float($0 <= row ? 1 : 0) } }
        let mask = try BertEncoder.additiveMask(Tensor(keep, shape: [b, t], on: .cpu))
        let fused = try Tensor.scaledDotProductAttention(q, k, v, mask: mask).toArray()
        let reference = try q.matmul(k, transposeB: true, alpha: 1 / Float(d).squareRoot()).softmax(causal: false, mask: mask).matmul(v).toArray()
        expectClose(fused, reference, rtol: 1e-5, atol: 1e-6, "fused attention with padding masks, head size \(d)")
    }
}
