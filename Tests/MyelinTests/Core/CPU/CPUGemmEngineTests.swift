import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// Every SGEMM engine the CPU device can choose (`MYELIN_CPU_GEMM`: the own kernel, OpenBLAS, oneDNN, BLIS),
/// each one that is available here called directly, against the naive Double reference: odd shapes, every
/// transpose, padded row strides, alpha and beta (overwrite, accumulate, scale), K = 0.
struct CPUGemmEngineTests {
    static let engines = CPUBackend.GemmEngine.allCases.filter(\.isAvailable)

    @Test(arguments: engines)
    func oddShapesEveryTranspose(engine: CPUBackend.GemmEngine) {
        let sizes = [1, 7, 33, 130]
        for transA in [false, true] {
            for transB in [false, true] {
                for m in sizes {
                    for n in sizes {
                        for k in sizes { CPUGemmCheck.check(engine, m: m, n: n, k: k, transA: transA, transB: transB) }
                    }
                }
            }
        }
    }

    /// Padded strides, and products large enough for the libraries' blocked, threaded paths.
    @Test(arguments: engines)
    func stridesAndLargerProducts(engine: CPUBackend.GemmEngine) {
        for (m, n, k) in [(300, 17, 257), (129, 520, 301), (257, 263, 530)] {
            for transA in [false, true] {
                for transB in [false, true] {
                    CPUGemmCheck.check(engine, m: m, n: n, k: k, transA: transA, transB: transB, pad: 3)
                }
            }
        }
    }

    /// K = 0: C = beta·C (0 when beta = 0), on every engine.
    @Test(arguments: engines)
    func emptyInnerDimension(engine: CPUBackend.GemmEngine) {
        let (m, n) = (5, 9)
        for beta: Float in [0, 1, 0.5] {
            var c = testValues(m * n, seed: 7)
            let expected = c.map { beta == 0 ? 0 : Double(beta * $0) }
            let none: [Float] = [0]
            none.withUnsafeBufferPointer { p in
                c.withUnsafeMutableBufferPointer { pc in
                    CPUBackend.shared.engineGemm(engine, GemmShape(m: m, n: n, k: 0, beta: beta), a: p.baseAddress!,
                                                 b: p.baseAddress!, c: pc.baseAddress!)
                }
            }
            expectClose(c, expected, rtol: 0, atol: 0, "\(engine) gemm with K = 0, beta \(beta)")
        }
    }

    /// The configured choice picks an engine that can run here, for small and large products; a library
    /// named but missing falls back to OpenBLAS rather than failing.
    @Test func theChosenEngineIsAvailable() {
        for (m, n, k) in [(128, 512, 784), (1024, 1024, 1024), (4096, 64, 4096), (3, 3, 0)] {
            let engine = CPUBackend.shared.gemmEngine(GemmShape(m: m, n: n, k: k))
            #expect(engine.isAvailable, "\(m)x\(n)x\(k) went to \(engine), which is not available")
        }
        if !CPUBackend.GemmEngine.oneDNN.isAvailable { #expect(!CPUBackend.gemmLibraryError(.oneDNN).isEmpty) }
        if !CPUBackend.GemmEngine.blis.isAvailable { #expect(!CPUBackend.gemmLibraryError(.blis).isEmpty) }
    }
}
