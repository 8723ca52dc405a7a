internal import CMyelinMath
import Foundation

/// The CPU device's own SGEMM (CMyelinMath/myelin_gemm.c: a 6×16 AVX2 register-block kernel over packed
/// panels, with the bias and ReLU applied as C is stored), used instead of OpenBLAS for the product shapes
/// where it measured faster: the small-M products of dense layers at batch sizes around 128.
extension CPUBackend {
    /// Which SGEMM the CPU device uses: `MYELIN_CPU_GEMM` = `blas` (OpenBLAS always), `own` (this kernel
    /// whenever the CPU has AVX2 and FMA) or unset/`auto` (this kernel for the shapes where it is faster).
    enum GemmChoice: String { case auto, blas, own }

    static let gemmChoice = environmentChoice("MYELIN_CPU_GEMM", default: GemmChoice.auto)

    /// Whether this CPU can run the kernel (AVX2 and FMA).
    static let ownGemmAvailable = myelin_sgemm_available() != 0

    /// Whether `gemm` runs this shape on the own kernel rather than OpenBLAS.
    func usesOwnGemm(_ s: GemmShape) -> Bool {
        guard Self.ownGemmAvailable, s.k > 0 else { return false }
        switch Self.gemmChoice {
        case .blas: return false
        case .own: return true
        case .auto: return Self.ownGemmIsFaster(m: s.m, n: s.n, k: s.k)
        }
    }

    /// The shape classes where the kernel measured at least as fast as OpenBLAS (`myelin bench gemm`, one
    /// thread, 2026-12-01): up to 512 rows and 1024 columns and 2²⁶ multiply-adds (an MLP's products at batch
    /// 128: 1.0-1.5× OpenBLAS, and no separate pass for beta = 0, the bias or ReLU). Larger products go to
    /// OpenBLAS, whose cache blocking is better there (1024×1024×1024: 0.9×; 1024×256×1024: 0.7×).
    static func ownGemmIsFaster(m: Int, n: Int, k: Int) -> Bool {
        m <= 512 && n <= 1024 && m * n * k <= 1 << 26
    }

    /// C = alpha·op(A)·op(B) + beta·C for one product of `s` (its batch ignored), then the bias row and,
    /// when `relu`, ReLU; split across threads by blocks of whole 16-column (or 6-row) panels.
    func ownGemm(_ s: GemmShape, a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>,
                 bias: UnsafePointer<Float>?, relu: Bool) {
        precondition(s.k > 0, "ownGemm: k must be at least 1, got \(s.k)")
        let transA: Int32 = s.transA ? 1 : 0, transB: Int32 = s.transB ? 1 : 0, useRelu: Int32 = relu ? 1 : 0
        let m = s.m, n = s.n, k = s.k, lda = s.lda, ldb = s.ldb, ldc = s.ldc, alpha = s.alpha, beta = s.beta
        func block(_ r0: Int, _ r1: Int, _ c0: Int, _ c1: Int) {
            myelin_sgemm_block(transA, transB, k, alpha, a, lda, b, ldb, beta, c, ldc, bias, useRelu, r0, r1, c0, c1)
        }
        let flops = 2 * m * n * k
        let columnPanels = (n + 15) / 16, rowPanels = (m + 5) / 6
        if threads == 1 || flops < Self.ownGemmParallelFlops || (columnPanels == 1 && rowPanels == 1) {
            block(0, m, 0, n)
        } else if columnPanels >= threads || columnPanels >= rowPanels {
            parallelFor(columnPanels, minimum: 2) { lo, hi in block(0, m, lo * 16, Swift.min(n, hi * 16)) }
        } else {
            parallelFor(rowPanels, minimum: 2) { lo, hi in block(lo * 6, Swift.min(m, hi * 6), 0, n) }
        }
    }

    /// Below this many floating-point operations a product runs on the calling thread.
    static let ownGemmParallelFlops = 1 << 21
}
