internal import CMyelinMath
internal import CMyelinDNNL
import CBLAS
import Foundation

/// The CPU device's own SGEMM (CMyelinMath/myelin_gemm.c: a 6×16 AVX2 register-block kernel over packed
/// panels, with the bias and ReLU applied as C is stored), used instead of OpenBLAS for the product shapes
/// where it measured faster: the small-M products of dense layers at batch sizes around 128.
extension CPUBackend {
    /// Which SGEMM the CPU device uses: `MYELIN_CPU_GEMM` = `blas` (Debian's OpenBLAS), `own` (this kernel, where
    /// the CPU has AVX2 and FMA), `onednn` or `blis` (that library) for every product, or unset/`auto` (this kernel
    /// for the shapes where it is faster, `largeGemmDefault` for the rest). A library that does not load falls
    /// back to OpenBLAS.
    enum GemmChoice: String { case auto, blas, own, onednn, blis }

    /// The implementations one product can run on.
    enum GemmEngine: String, CaseIterable, Sendable {
        /// The 6×16 kernel of CMyelinMath/myelin_gemm.c (bias and ReLU fused).
        case own
        /// Debian's OpenBLAS (`cblas_sgemm`, linked).
        case openBLAS
        /// oneDNN's `dnnl_sgemm` (libdnnl.so.2, dlopen).
        case oneDNN
        /// BLIS's `cblas_sgemm` (libblis.so.4, dlopen).
        case blis

        /// The name `details` and the benchmarks print.
        var label: String {
            switch self {
            case .own: return "own kernel"
            case .openBLAS: return "OpenBLAS"
            case .oneDNN: return "oneDNN"
            case .blis: return "BLIS"
            }
        }

        /// Whether this engine can run here: the CPU's instructions, or the library loaded (tried on the first ask).
        var isAvailable: Bool {
            switch self {
            case .own: return CPUBackend.ownGemmAvailable
            case .openBLAS: return true
            case .oneDNN: return CPUBackend.oneDNNGemmAvailable
            case .blis: return CPUBackend.blisGemmAvailable
            }
        }
    }

    static let gemmChoice = environmentChoice("MYELIN_CPU_GEMM", default: GemmChoice.auto)

    /// Whether this CPU can run the kernel (AVX2 and FMA).
    static let ownGemmAvailable = myelin_sgemm_available() != 0

    /// Whether oneDNN's SGEMM loaded (tried once, on the first ask); when not, `gemmLibraryError` says why.
    static let oneDNNGemmAvailable = myelin_gemm_library_load(Int32(MYELIN_GEMM_DNNL), Int32(clamping: configuredThreads)) != 0
    /// Whether BLIS's SGEMM loaded (tried once, on the first ask).
    static let blisGemmAvailable = myelin_gemm_library_load(Int32(MYELIN_GEMM_BLIS), Int32(clamping: configuredThreads)) != 0

    /// Why `engine`'s library did not load ("" when it did or was not tried).
    static func gemmLibraryError(_ engine: GemmEngine) -> String {
        switch engine {
        case .oneDNN: return String(cString: myelin_gemm_library_error(Int32(MYELIN_GEMM_DNNL)))
        case .blis: return String(cString: myelin_gemm_library_error(Int32(MYELIN_GEMM_BLIS)))
        case .own, .openBLAS: return ""
        }
    }

    /// The library for the products the own kernel does not take under `auto`, by measurement (README's
    /// "Devices"). The MLP's batch-128 products stay on the own kernel: with every product on oneDNN the MLP
    /// trained 2.5× faster on 2 cores at load 15, but 0.9-1.0× at load 3.5 (2026-12-07, AVX-512 EPYC).
    static let largeGemmDefault = GemmEngine.oneDNN

    /// The engines products run on, for `details`: e.g. "own kernel (small products), oneDNN".
    var gemmSummary: String {
        let small = gemmEngine(GemmShape(m: 128, n: 128, k: 128)), large = gemmEngine(GemmShape(m: 4096, n: 4096, k: 4096))
        return small == large ? large.label : "\(small.label) (small products), \(large.label)"
    }

    /// The engine that runs `s` under the configured choice, after falling back from a library that did not load.
    func gemmEngine(_ s: GemmShape) -> GemmEngine {
        guard s.k > 0 else { return .openBLAS }
        let wanted: GemmEngine
        switch Self.gemmChoice {
        case .blas: wanted = .openBLAS
        case .own: wanted = .own
        case .onednn: wanted = .oneDNN
        case .blis: wanted = .blis
        case .auto:
            wanted = Self.ownGemmAvailable && Self.ownGemmIsFaster(m: s.m, n: s.n, k: s.k, transA: s.transA, transB: s.transB)
                ? .own : Self.largeGemmDefault
        }
        return wanted.isAvailable ? wanted : .openBLAS
    }

    /// Whether `gemm` runs this shape on the own kernel.
    func usesOwnGemm(_ s: GemmShape) -> Bool { gemmEngine(s) == .own }

    /// C = alpha·op(A)·op(B) + beta·C for one product of `s` (its batch ignored) on `engine`, which must be
    /// available; the own kernel also adds the bias and applies ReLU when asked (the others leave them to the
    /// caller). K = 0 gives C = beta·C on every engine.
    func engineGemm(_ engine: GemmEngine, _ s: GemmShape, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                    c: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>? = nil, relu: Bool = false) {
        if s.k == 0 {
            // BLAS leaves C untouched when K = 0 only if beta = 1; make it alpha·0 + beta·C.
            for i in 0..<s.m { for j in 0..<s.n { c[i * s.ldc + j] = s.beta == 0 ? 0 : s.beta * c[i * s.ldc + j] } }
            return
        }
        switch engine {
        case .own:
            ownGemm(s, a: a, b: b, c: c, bias: bias, relu: relu)
        case .oneDNN, .blis:
            let library = Int32(engine == .oneDNN ? MYELIN_GEMM_DNNL : MYELIN_GEMM_BLIS)
            if myelin_gemm_library_sgemm(library, s.transA ? 1 : 0, s.transB ? 1 : 0, s.m, s.n, s.k, s.alpha,
                                         a, s.lda, b, s.ldb, s.beta, c, s.ldc) != 0 {
                engineGemm(.openBLAS, s, a: a, b: b, c: c)
            }
        case .openBLAS:
            cblas_sgemm(CblasRowMajor, s.transA ? CblasTrans : CblasNoTrans, s.transB ? CblasTrans : CblasNoTrans,
                        Int32(s.m), Int32(s.n), Int32(s.k), s.alpha, a, Int32(s.lda), b, Int32(s.ldb), s.beta, c, Int32(s.ldc))
        }
    }

    /// The shape classes where the kernel measured at least as fast as OpenBLAS (`myelin bench gemm`, one
    /// thread, 2026-12-01): up to 512 rows and 1024 columns and 2²⁶ multiply-adds (an MLP's products at batch
    /// 128: 1.0-1.5× OpenBLAS, and no separate pass for beta = 0, the bias or ReLU). Larger products go to
    /// OpenBLAS, whose cache blocking is better there (1024×1024×1024: 0.9×; 1024×256×1024: 0.7×).
    /// A weight gradient (A transposed) over 256 or more rows goes to the library too: oneDNN's AVX-512 SGEMM ran
    /// the GPT's (128…512)×768×(128…512) ones at 112-116 GFLOP/s on one thread against 88-100 for this kernel
    /// (2026-12-07, AVX-512 EPYC, `myelin bench gemm --best`).
    /// A linear layer's forward (B transposed) over up to 1024 rows with K ≤ 256 stays on this kernel too: it ran
    /// the GPT's 768×128×(113…512) ones at 100-115 GFLOP/s against oneDNN's 89-103, and adds the bias as C is stored
    /// where oneDNN needs C filled with the bias rows first (2% of the GPT's CPU step; 2026-12-07, AVX-512 EPYC,
    /// `myelin bench gemm --best`). With K = 512 oneDNN stays ahead (92 against 84-89).
    /// A linear layer's forward with 256-512 outputs and K ≤ 2048 (any number of rows), or with up to 1152 outputs
    /// over up to 1024 rows, stays on this kernel too: on two threads oneDNN splits such products poorly (BERT's
    /// 768×1536→384: 106-181 GFLOP/s against 204-218; 224×384→384: 173-177 against 209-210; 768×384→1152: 207-209
    /// against 215-218), where wider outputs over more rows go better on oneDNN (2112×384→1536: 217-224 against
    /// 175-201; 4096×1024→1024: 212-217 against 182-190). One thread is about even (2026-12-08, AVX-512 EPYC,
    /// `MYELIN_THREADS=2 myelin bench gemm --best`, `MYELIN_CPU_GEMM=own` against `onednn`).
    static func ownGemmIsFaster(m: Int, n: Int, k: Int, transA: Bool = false, transB: Bool = false) -> Bool {
        if transB && !transA && k <= 2048 && n >= 256 && (n <= 512 || (n <= 1152 && m <= 1024)) { return true }
        let rows = transB && !transA && k <= 256 ? 1024 : 512
        return m <= rows && n <= 1024 && m * n * k <= 1 << 26 && !(transA && k >= 256)
    }

    /// C = alpha·op(A)·op(B) + beta·C for one product of `s` (its batch ignored), then the bias row and,
    /// when `relu`, ReLU; split by `parallelFor` (the CPU device's thread pool, whose workers spin briefly between
    /// jobs: each half of a 256×256×256 product is only about 160 µs of work) into blocks of whole 16-column (or
    /// 6-row) panels: `parts` of them, or by default one below `ownGemmParallelFlops` and else the device's threads.
    func ownGemm(_ s: GemmShape, a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>,
                 bias: UnsafePointer<Float>?, relu: Bool, parts: Int? = nil) {
        precondition(s.k > 0, "ownGemm: k must be at least 1, got \(s.k)")
        let transA: Int32 = s.transA ? 1 : 0, transB: Int32 = s.transB ? 1 : 0, useRelu: Int32 = relu ? 1 : 0
        let m = s.m, n = s.n, k = s.k, lda = s.lda, ldb = s.ldb, ldc = s.ldc, alpha = s.alpha, beta = s.beta
        func block(_ r0: Int, _ r1: Int, _ c0: Int, _ c1: Int) {
            myelin_sgemm_block(transA, transB, k, alpha, a, lda, b, ldb, beta, c, ldc, bias, useRelu, r0, r1, c0, c1)
        }
        let chunks = parts ?? (2 * m * n * k < Self.ownGemmParallelFlops ? 1 : threads)
        let columnPanels = (n + 15) / 16, rowPanels = (m + 5) / 6
        if chunks <= 1 || (columnPanels == 1 && rowPanels == 1) {
            block(0, m, 0, n)
        } else if columnPanels >= chunks || columnPanels >= rowPanels {
            parallelFor(columnPanels, minimum: 2, parts: chunks) { lo, hi in block(0, m, lo * 16, Swift.min(n, hi * 16)) }
        } else {
            parallelFor(rowPanels, minimum: 2, parts: chunks) { lo, hi in block(lo * 6, Swift.min(m, hi * 6), 0, n) }
        }
    }

    /// Below this many floating-point operations a product runs on the calling thread.
    static let ownGemmParallelFlops = 1 << 21
}
