import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// One product on one of the CPU device's SGEMM engines against the naive Double reference (CPUGemmKernelTests,
/// CPUGemmEngineTests).
enum CPUGemmCheck {
    /// The store variants: (alpha, beta, bias, relu).
    static let epilogues: [(Float, Float, Bool, Bool)] = [(1, 0, false, false), (0.5, 0.25, true, false),
                                                          (1, 0, false, true), (-1.5, 1, true, true)]
    /// The variants of an engine without the fused epilogue: beta 0, 1 (accumulate) and another.
    static let libraryEpilogues: [(Float, Float, Bool, Bool)] = [(1, 0, false, false), (-1.5, 1, false, false),
                                                                 (2, -0.5, false, false)]

    /// Runs `engine` on one product with row strides `pad` past the minimum and checks every element of C,
    /// padding included (it must be left alone). With `poolParts`, the own kernel runs split into that many parts
    /// (`ownGemm(parts:)`, on the thread pool or, while another test holds it, on GCD).
    static func check(_ engine: CPUBackend.GemmEngine, m: Int, n: Int, k: Int, transA: Bool, transB: Bool, pad: Int = 0,
                      poolParts: Int? = nil) {
        let aRows = transA ? k : m, aCols = transA ? m : k
        let bRows = transB ? n : k, bCols = transB ? k : n
        let lda = aCols + pad, ldb = bCols + pad, ldc = n + pad
        let a = testValues(aRows * lda, seed: UInt64(m * 31 + k)), b = testValues(bRows * ldb, seed: UInt64(n * 17 + k))
        // The dense (unpadded) operands for the reference.
        let aDense = (0..<aRows).flatMap { r in a[(r * lda)..<(r * lda + aCols)] }
        let bDense = (0..<bRows).flatMap { r in b[(r * ldb)..<(r * ldb + bCols)] }
        let product = Reference.gemm(Array(aDense), Array(bDense), m: m, n: n, k: k, transA: transA, transB: transB)
        let bias = testValues(n, seed: 99)
        let c0 = testValues(m * ldc, seed: 5)
        // The libraries take no bias or ReLU (`gemm` applies them afterwards).
        for (alpha, beta, withBias, relu) in engine == .own ? epilogues : libraryEpilogues {
            var shape = GemmShape(m: m, n: n, k: k, transA: transA, transB: transB, alpha: alpha, beta: beta)
            shape.lda = lda; shape.ldb = ldb; shape.ldc = ldc
            var c = c0
            a.withUnsafeBufferPointer { pa in
                b.withUnsafeBufferPointer { pb in
                    bias.withUnsafeBufferPointer { pbias in
                        c.withUnsafeMutableBufferPointer { pc in
                            let biasPointer = withBias ? pbias.baseAddress! : nil
                            if let poolParts {
                                CPUBackend.shared.ownGemm(shape, a: pa.baseAddress!, b: pb.baseAddress!,
                                                          c: pc.baseAddress!, bias: biasPointer, relu: relu,
                                                          parts: poolParts)
                            } else {
                                CPUBackend.shared.engineGemm(engine, shape, a: pa.baseAddress!, b: pb.baseAddress!,
                                                             c: pc.baseAddress!, bias: biasPointer, relu: relu)
                            }
                        }
                    }
                }
            }
            var expected = c0.map(Double.init)
            for i in 0..<m {
                for j in 0..<n {
                    var v = Double(alpha) * product[i * n + j] + (beta == 0 ? 0 : Double(beta) * Double(c0[i * ldc + j]))
                    if withBias { v += Double(bias[j]) }
                    if relu { v = Swift.max(v, 0) }
                    expected[i * ldc + j] = v
                }
            }
            expectClose(c, expected, rtol: 1e-4, atol: 1e-4 * Double(Swift.max(1, k / 64)),
                        "\(engine) gemm \(m)x\(n)x\(k) transA \(transA) transB \(transB) pad \(pad) alpha \(alpha) beta \(beta) bias \(withBias) relu \(relu)")
        }
    }
}
