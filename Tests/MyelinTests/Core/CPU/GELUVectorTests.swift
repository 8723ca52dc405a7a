import Foundation
import Testing
@testable import MyelinCore

/// The exact GELU's vector path on the CPU device (`myelin_gelu_erf`, `myelin_gelu_erf_backward`: erfc through
/// Numerical Recipes' erfcc, Cephes' expf) over a dense grid, its tails included, against the Double reference; on
/// lengths that end in a partial vector and on one split among threads. The OpenCL device runs the same checks with
/// its own kernels, at the looser tolerances of ActivationTests (its 1 + erf cancels in the lower tail).
@Suite struct GELUVectorTests {
    /// −12 … 12 in steps of 1/64, shuffled so that every vector mixes signs and magnitudes, then the special values.
    static let grid: [Float] = {
        var g = SeededGenerator(seed: 91)
        return (-768...768).map { Float($0) / 64 }.shuffled(using: &g) + [0, -0, 1e-7, -1e-7, 30, -30, 1e4, -1e4]
    }()

    static func cdf(_ x: Double) -> Double { 0.5 * (1 + Foundation.erf(x / 2.0.squareRoot())) }

    @Test(arguments: TestDevices.all)
    func forwardAndBackwardMatchTheReference(device: Device) throws {
        for n in [1, 7, 33, Self.grid.count] {
            let xs = Array(Self.grid.prefix(n)), gys = testValues(n, seed: 92, low: -2, high: 2)
            let x = try Tensor(xs, shape: [n], on: device), gy = try Tensor(gys, shape: [n], on: device)
            let y = x.gelu()
            // CPU: a few float ulps of |y|, and 2e-7 absolute (the lower tail, where y is tiny, is relative too).
            let (rtol, atol) = device.isOpenCL ? (2e-5, 1e-6) : (2e-6, 2e-7)
            expectClose(try y.toArray(), xs.map { Double($0) * Self.cdf(Double($0)) }, rtol: rtol, atol: atol, "\(device) gelu, n = \(n)")
            let expected = zip(xs, gys).map { x, g in
                Double(g) * (Self.cdf(Double(x)) + Double(x) * Foundation.exp(-Double(x) * Double(x) / 2) / (2 * Double.pi).squareRoot())
            }
            expectClose(try x.activationGradient(.geluErf, y: y, gy: gy).toArray(), expected, rtol: rtol, atol: atol,
                        "\(device) gelu backward, n = \(n)")
        }
    }

    /// Where a chunk of the parallel loop starts or ends does not change any element: the values of a large tensor
    /// (split among threads) equal those of the same values one small tensor at a time; on the CPU, NaN and ±∞ give
    /// what the scalar formula gives (GELU(−∞) = −∞ · 0 is NaN).
    @Test(arguments: TestDevices.all)
    func resultsDoNotDependOnChunksAndSpecialValuesFollowTheFormula(device: Device) throws {
        let big = (0..<40).flatMap { _ in Self.grid }
        let whole = try Tensor(big, shape: [big.count], on: device).gelu().toArray()
        let alone = try Tensor(Array(Self.grid.prefix(13)), shape: [13], on: device).gelu().toArray()
        #expect(Array(whole.prefix(13)) == alone, "\(device): the first 13 elements alone and in a large tensor")
        let offset = 5 * Self.grid.count + 3
        let shifted = try Tensor(Array(big[offset..<(offset + 11)]), shape: [11], on: device).gelu().toArray()
        #expect(Array(whole[offset..<(offset + 11)]) == shifted, "\(device): 11 elements at offset \(offset)")
        guard !device.isOpenCL else { return }
        let special = try Tensor([.nan, .infinity, -.infinity], shape: [3], on: device).gelu().toArray()
        let scalar = [Float.nan, .infinity, -.infinity].map { Activation.geluErf.apply($0) }
        #expect(zip(special, scalar).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) }, "\(device): GELU(NaN, ∞, −∞) = \(special), the scalar formula \(scalar)")
    }
}
