import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// The CPU device's own SGEMM kernel (CMyelinMath/myelin_gemm.c), called directly whatever shapes `gemm` routes
/// to it, against the naive Double reference: odd sizes, every transpose, padded row strides, alpha and beta,
/// the fused bias and ReLU, K and M past one cache block, and both ways of splitting C across threads.
@Suite(.enabled(if: CPUBackend.ownGemmAvailable, "the CPU has no AVX2 and FMA: the CPU device uses OpenBLAS only"))
struct CPUGemmKernelTests {
    func check(m: Int, n: Int, k: Int, transA: Bool, transB: Bool, pad: Int = 0) {
        CPUGemmCheck.check(.own, m: m, n: n, k: k, transA: transA, transB: transB, pad: pad)
    }

    @Test(arguments: [false, true])
    func oddShapesEveryTransposeAndEpilogue(transA: Bool) {
        let sizes = [1, 7, 33, 129]
        for transB in [false, true] {
            for m in sizes {
                for n in sizes {
                    for k in sizes { check(m: m, n: n, k: k, transA: transA, transB: transB) }
                }
            }
        }
    }

    /// Row strides wider than the rows; K over one 256-deep block (equal blocks, and a thin last one);
    /// M over one 144-row block; a product split across threads by rows (one 16-column panel).
    @Test(arguments: [(17, 40, 33), (150, 40, 600), (300, 17, 257), (129, 7, 1200), (128, 10, 784), (33, 129, 513)])
    func stridesBlocksAndThreadSplits(shape: (Int, Int, Int)) {
        for transA in [false, true] {
            for transB in [false, true] {
                check(m: shape.0, n: shape.1, k: shape.2, transA: transA, transB: transB, pad: 3)
            }
        }
    }

    /// Split in 2 and 3 parts (`ownGemm(parts:)`): C split by column panels (uneven
    /// ranges, more parts than panels), by row panels (one column panel), one row, K = 1, K and M past one block.
    @Test(arguments: [2, 3])
    func threadPoolParts(parts: Int) {
        for (m, n, k) in [(33, 129, 257), (300, 7, 129), (1, 40, 33), (7, 17, 33), (129, 33, 1), (150, 40, 600)] {
            for transA in [false, true] {
                for transB in [false, true] {
                    CPUGemmCheck.check(.own, m: m, n: n, k: k, transA: transA, transB: transB, pad: 3, poolParts: parts)
                }
            }
        }
    }

    /// Through the device interface with `gemm`'s own choice of kernel: a batch with strides, the bias, and
    /// an activation the kernel does not fuse (applied afterwards) or does (ReLU).
    @Test(arguments: [Activation.identity, .relu, .sigmoid, .tanh])
    func deviceGemmWithBiasAndActivation(activation: Activation) throws {
        let device = Device.cpu
        let (batch, m, n, k) = (2, 33, 40, 129)
        let a = testValues(batch * m * k, seed: 41), b = testValues(k * n, seed: 42), bias = testValues(n, seed: 43)
        let ta = try Tensor(a, shape: [batch * m * k], on: device), tb = try Tensor(b, shape: [n * k], on: device)
        let tbias = try Tensor(bias, shape: [n], on: device)
        let tc = Tensor.zeros([batch, m, n], on: device)
        let shape = GemmShape(m: m, n: n, k: k, transB: true, batch: batch, strideA: m * k, strideB: 0)
        device.backend.gemm(shape, a: ta.buffer, b: tb.buffer, c: tc.buffer, bias: tbias.buffer, activation: activation)
        var expected: [Double] = []
        for i in 0..<batch {
            let ab = Reference.gemm(Array(a[(i * m * k)..<((i + 1) * m * k)]), b, m: m, n: n, k: k, transB: true)
            expected += (0..<(m * n)).map { j -> Double in
                let z = ab[j] + Double(bias[j % n])
                switch activation {
                case .relu: return Swift.max(z, 0)
                case .sigmoid: return 1 / (1 + Foundation.exp(-z))
                case .tanh: return Foundation.tanh(z)
                default: return z
                }
            }
        }
        expectClose(try tc.toArray(), expected, rtol: 1e-4, atol: 1e-4, "cpu gemm batch \(batch) with bias and \(activation)")
    }

    /// Under the default choice an MLP's products at batch 128 (784-512-256-10), a GPT's forward products over 768
    /// tokens with K ≤ 256 and BERT's forward products with 384 and 1152 outputs go to the own kernel, larger ones
    /// (and BERT's 1536 outputs) to oneDNN (OpenBLAS where it did not load).
    @Test func shapeClassesUnderTheDefaultChoice() {
        guard CPUBackend.gemmChoice == .auto else { return }
        let library = CPUBackend.largeGemmDefault.isAvailable ? CPUBackend.largeGemmDefault : .openBLAS
        for (m, n, k, tA, tB) in [(128, 512, 784, false, true), (128, 256, 512, false, true), (128, 512, 256, false, false),
                                  (512, 784, 128, true, false), (256, 512, 128, true, false),
                                  (768, 384, 128, false, true), (768, 113, 128, false, true),
                                  (768, 384, 1536, false, true), (2112, 384, 1536, false, true), (768, 1152, 384, false, true)] {
            #expect(CPUBackend.shared.gemmEngine(GemmShape(m: m, n: n, k: k, transA: tA, transB: tB)) == .own,
                    "\(m)x\(n)x\(k) transA \(tA) transB \(tB)")
        }
        for (m, n, k, tB) in [(1024, 1024, 1024, false), (512, 512, 512, false), (768, 128, 512, true), (768, 128, 384, false),
                              (768, 1536, 384, true), (2112, 1152, 384, true), (4096, 1024, 1024, true)] {
            #expect(CPUBackend.shared.gemmEngine(GemmShape(m: m, n: n, k: k, transB: tB)) == library, "\(m)x\(n)x\(k) transB \(tB)")
        }
    }
}
