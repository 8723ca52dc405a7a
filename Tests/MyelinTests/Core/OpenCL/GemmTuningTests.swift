import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// Every OpenCL GEMM kernel (direct, register-blocked, A·Bᵀ dot products, skinny, and the parameterised panels,
/// tiles and K-splits) against a Double
/// reference on odd shapes, all transposes, batches (with a broadcast operand), alpha/beta and the fused
/// bias + activation epilogue; and the automatic kernel choice through `Tensor.matmul`/`dense` on every device.
@Suite struct GemmTuningTests {
    static let kernels: [GemmKernelChoice.Kernel] =
        [.direct, .block(GemmKernelChoice.defaultBlock), .nt(GemmKernelChoice.ntBlock), .skinny(rows: 4), .skinny(rows: 8)]
        + (GemmVariant.panelCandidates + GemmVariant.tileCandidates.filter { !isFrag($0) } + GemmVariant.splitCandidates
           + [kBlockedPanel, smallSplit] + fragsInKernelList + smallFrags).map { .variant($0) }

    static func isFrag(_ v: GemmVariant) -> Bool { if case .frag = v { return true } else { return false } }

    /// `MYELIN_LONG_TESTS=1`: every GPU-grade tile the tuner measures, in every list below. Otherwise (CI) the ones
    /// the defaults use, here and on PoCL, and the smallest of them in the kernel list, which Oclgrind also runs:
    /// the large tiles differ from the small ones only in constants of the same source, and each of their programs
    /// (one per transpose) costs PoCL and Oclgrind tens of seconds to build.
    static let longTests = ProcessInfo.processInfo.environment["MYELIN_LONG_TESTS"] == "1"
    static let fragsInKernelList: [GemmVariant] = longTests ? GemmVariant.fragCandidates : [GemmDefaults.fragTiles.last!]
    static let fragsOnPoCL: [GemmVariant] = longTests ? GemmVariant.fragCandidates : GemmDefaults.fragTiles

    /// GPU-grade tiles small enough that the shapes here have interior tiles (unchecked, aligned vector loads where
    /// the leading dimensions allow) and several K tiles: vector widths 2 and 1, with and without prefetch, and a
    /// K-split into at most 3 slices; all fit 16 work-items and Oclgrind's small-GPU mode.
    static let smallFrags: [GemmVariant] = [
        .frag(8, 8, k: 4, w: 2, 2, vector: 2), .frag(8, 8, k: 4, w: 2, 2, vector: 1, prefetch: false),
        .frag(16, 8, k: 8, w: 4, 2, vector: 2, prefetch: false), .frag(8, 8, k: 4, w: 4, 4, vector: 4, slices: 3),
    ]

    /// A panel variant with K blocks of 8, so that the small shapes here run several K blocks and a remainder.
    static let kBlockedPanel = GemmVariant.panel(mr: 3, nv: 1, kc: 8, mb: 2, nb: 2)

    /// A K-split into at most 3 slices of whole steps of 4, so that the small K here runs several slices whose
    /// count does not divide K (e.g. K = 33: slices of 12, 12 and 9).
    static let smallSplit = GemmVariant.tile(tm: 8, tn: 8, tk: 4, wm: 2, wn: 2, slices: 3)

    /// (m, n, k): 1, 7, 33, 129, non-square, exact block multiples and one past them.
    static let shapes: [(Int, Int, Int)] = [(1, 1, 1), (7, 33, 5), (33, 7, 129), (129, 65, 33), (48, 64, 17),
                                            (17, 129, 64), (24, 96, 8), (25, 97, 3)]

    /// Runs one product on opencl:0 with `kernel`: C = act(alpha·op(A)·op(B) + beta·C0 + bias), batched, and
    /// checks it against the reference.
    func check(_ kernel: GemmKernelChoice.Kernel, m: Int, n: Int, k: Int, transA: Bool, transB: Bool,
               batch: Int = 1, broadcastA: Bool = false, alpha: Float = 1, beta: Float = 0,
               withBias: Bool = false, activation: Activation = .identity) throws {
        let device = TestDevices.openCL
        let cl = device.backend as! OpenCLBackend
        let batchA = broadcastA ? 1 : batch
        let a = testValues(m * k * batchA, seed: UInt64(m * 131 + k))
        let b = testValues(k * n * batch, seed: UInt64(n * 17 + k + 5))
        let c0 = testValues(m * n * batch, seed: 99)
        let biasValues = testValues(n, seed: 7)
        let ta = try Tensor(a, shape: [a.count], on: device)
        let tb = try Tensor(b, shape: [b.count], on: device)
        let tc = try Tensor(c0, shape: [c0.count], on: device)
        let tbias = try Tensor(biasValues, shape: [n], on: device)
        var s = GemmShape(m: m, n: n, k: k, transA: transA, transB: transB, alpha: alpha, beta: beta, batch: batch,
                          strideA: broadcastA ? 0 : m * k, strideB: k * n)
        s.strideC = m * n
        cl.gemm(s, a: ta.buffer, b: tb.buffer, c: tc.buffer, bias: withBias ? tbias.buffer : nil,
                activation: activation, kernel: kernel)
        let actual = try tc.toArray()

        var expected = [Double]()
        for bi in 0..<batch {
            let aSlice = Array(a[(broadcastA ? 0 : bi * m * k)..<(broadcastA ? m * k : (bi + 1) * m * k)])
            let bSlice = Array(b[(bi * k * n)..<((bi + 1) * k * n)])
            let prod = Reference.gemm(aSlice, bSlice, m: m, n: n, k: k, transA: transA, transB: transB)
            for i in 0..<m {
                for j in 0..<n {
                    var v = Double(alpha) * prod[i * n + j] + Double(beta) * Double(c0[bi * m * n + i * n + j])
                    if withBias { v += Double(biasValues[j]) }
                    switch activation {
                    case .relu: v = max(v, 0)
                    case .sigmoid: v = 1 / (1 + Foundation.exp(-v))
                    default: break
                    }
                    expected.append(v)
                }
            }
        }
        expectClose(actual, expected, rtol: 1e-4, atol: 1e-4,
                    "\(kernel) m=\(m) n=\(n) k=\(k) tA=\(transA) tB=\(transB) batch=\(batch)")
    }

    @Test(.enabled(if: TestDevices.openCLAvailable, TestDevices.skipReason), arguments: kernels)
    func everyKernelOnOddShapesAndTransposes(kernel: GemmKernelChoice.Kernel) throws {
        for (m, n, k) in Self.shapes {
            for transA in [false, true] {
                for transB in [false, true] {
                    try check(kernel, m: m, n: n, k: k, transA: transA, transB: transB)
                }
            }
        }
    }

    @Test(.enabled(if: TestDevices.openCLAvailable, TestDevices.skipReason), arguments: kernels)
    func everyKernelBatchedWithEpilogue(kernel: GemmKernelChoice.Kernel) throws {
        for (transA, transB) in [(false, false), (true, false), (false, true), (true, true)] {
            try check(kernel, m: 19, n: 37, k: 23, transA: transA, transB: transB, batch: 3)
            try check(kernel, m: 19, n: 37, k: 23, transA: transA, transB: transB, batch: 2, broadcastA: true)
        }
        try check(kernel, m: 33, n: 40, k: 9, transA: false, transB: false, alpha: 0.5, beta: -1.5)
        try check(kernel, m: 33, n: 40, k: 9, transA: false, transB: true, withBias: true, activation: .relu)
        try check(kernel, m: 9, n: 35, k: 70, transA: true, transB: false, alpha: 2, beta: 0.25, withBias: true,
                  activation: .sigmoid)
    }

    /// The GPU-grade tiles on products larger than their tiles, so that interior tiles (no bounds checks; aligned
    /// vector loads at 256 x 128 x 32, vloadn at 129 x 129 x 33) and edge tiles both run, for all four transposes
    /// (one program each), 1-wide products, batches with a broadcast operand and the fused epilogue.
    @Test(.enabled(if: TestDevices.openCLAvailable, TestDevices.skipReason),
          arguments: fragsOnPoCL + smallFrags)
    func gpuGradeTilesOnInteriorAndEdgeTiles(variant: GemmVariant) throws {
        for (m, n, k) in [(129, 129, 33), (256, 128, 32), (1, 7, 129), (7, 1, 1)] {
            for (transA, transB) in [(false, false), (true, false), (false, true), (true, true)] {
                try check(.variant(variant), m: m, n: n, k: k, transA: transA, transB: transB)
            }
        }
        try check(.variant(variant), m: 130, n: 131, k: 20, transA: false, transB: true, batch: 2, broadcastA: true,
                  alpha: 0.5, beta: -1, withBias: true, activation: .relu)
        try check(.variant(variant), m: 128, n: 64, k: 48, transA: true, transB: false, batch: 2, alpha: 2, beta: 0.25,
                  withBias: true, activation: .sigmoid)
        // Every transpose ran its own program (the variant fits opencl:0, so nothing fell back).
        let cl = TestDevices.openCL.backend as! OpenCLBackend
        for program in variant.programs {
            #expect(cl.lastLocalSize[KernelReference(.gemmVariant(program), variant.mainKernel)] != nil, "\(program.defines) ran")
        }
    }

    /// The panel kernels with op(A) read in place and, on products wide enough (`GemmDefaults.panelPacksA`), packed:
    /// partial row panels, a K that is not a multiple of the pack's 64 steps or of the K block, a partial last
    /// column panel, every transpose, batches with a broadcast A, and the epilogue. `scripts/oclgrind-check
    /// GemmTuningTests/panelsWithAInPlaceAndPacked` runs it under Oclgrind.
    @Test(.enabled(if: TestDevices.openCLAvailable, TestDevices.skipReason),
          arguments: GemmVariant.panelCandidates + [kBlockedPanel])
    func panelsWithAInPlaceAndPacked(variant: GemmVariant) throws {
        let wide = GemmDefaults.panelPackAColumns + 3
        #expect(GemmDefaults.panelPacksA(GemmShape(m: 7, n: wide, k: 5)))
        #expect(!GemmDefaults.panelPacksA(GemmShape(m: 13, n: 35, k: 70)))
        for (m, n, k) in [(7, wide, 5), (13, 35, 70)] {
            for (transA, transB) in [(false, false), (true, false), (false, true), (true, true)] {
                try check(.variant(variant), m: m, n: n, k: k, transA: transA, transB: transB)
            }
        }
        try check(.variant(variant), m: 13, n: wide, k: 67, transA: false, transB: false)
        try check(.variant(variant), m: 9, n: wide, k: 11, transA: false, transB: false, batch: 2, broadcastA: true,
                  alpha: 0.5, beta: -1, withBias: true, activation: .relu)
        try check(.variant(variant), m: 8, n: wide, k: 9, transA: true, transB: true, batch: 2, alpha: 2, beta: 0.25,
                  withBias: true, activation: .sigmoid)
        try check(.variant(variant), m: 9, n: 37, k: 70, transA: true, transB: false, batch: 2, broadcastA: true,
                  alpha: 0.5, beta: -1, withBias: true, activation: .relu)
    }

    /// The K-split variants on deep products (small M x N, long K) of odd sizes, with K split into slices that do
    /// not divide it, batches, alpha/beta and the bias + activation epilogue (applied once, after the slices are
    /// added); and the result is the same on every run (the slices are added in a fixed order).
    @Test(.enabled(if: TestDevices.openCLAvailable, TestDevices.skipReason),
          arguments: GemmVariant.splitCandidates + [smallSplit])
    func kSplitOnDeepProducts(variant: GemmVariant) throws {
        for (m, n, k) in [(7, 33, 1031), (1, 1, 300), (33, 17, 2049), (40, 24, 1500)] {
            #expect(variant.kSlices(k: k).count > 1, "\(variant) splits K = \(k)")
            for (transA, transB) in [(false, false), (true, false), (false, true), (true, true)] {
                try check(.variant(variant), m: m, n: n, k: k, transA: transA, transB: transB)
            }
        }
        try check(.variant(variant), m: 9, n: 35, k: 700, transA: true, transB: false, batch: 3, alpha: 2, beta: 0.25,
                  withBias: true, activation: .sigmoid)
        try check(.variant(variant), m: 19, n: 37, k: 515, transA: false, transB: true, batch: 2, broadcastA: true,
                  beta: -1, withBias: true, activation: .relu)
        // Deterministic: two runs give the same bits.
        let cl = TestDevices.openCL.backend as! OpenCLBackend
        let s = GemmShape(m: 13, n: 21, k: 3001, transA: true)
        let a = KernelExercise.upload(cl, testValues(13 * 3001, seed: 1))
        let b = KernelExercise.upload(cl, testValues(3001 * 21, seed: 2))
        var runs: [[Float]] = []
        for _ in 0..<2 {
            let c = cl.allocate(13 * 21)
            cl.gemm(s, a: a, b: b, c: c, bias: nil, activation: .identity, kernel: .variant(variant))
            runs.append(KernelExercise.download(cl, c, 13 * 21))
        }
        #expect(runs[0] == runs[1])
        let program = variant.specialised(transA: true, transB: false)
        #expect(cl.lastLocalSize[KernelReference(.gemmVariant(program), variant.mainKernel)] != nil, "the split kernel ran")
    }

    /// The automatic choice at sizes where the tuned kernels run, through the public ops, on every device.
    @Test(arguments: TestDevices.all)
    func automaticChoiceThroughMatmulAndDense(device: Device) throws {
        for (m, n, k) in [(65, 72, 40), (96, 130, 31), (128, 10, 33)] {
            for (transA, transB) in [(false, false), (true, false), (false, true), (true, true)] {
                let a = testValues(m * k, seed: 3), b = testValues(k * n, seed: 4)
                let ta = try Tensor(a, shape: transA ? [k, m] : [m, k], on: device)
                let tb = try Tensor(b, shape: transB ? [n, k] : [k, n], on: device)
                let y = try ta.matmul(tb, transposeA: transA, transposeB: transB)
                expectClose(try y.toArray(), Reference.gemm(a, b, m: m, n: n, k: k, transA: transA, transB: transB),
                            rtol: 1e-4, atol: 1e-4, "\(device) matmul \(m)x\(k)x\(n) tA=\(transA) tB=\(transB)")
            }
            let x = testValues(m * k, seed: 5), w = testValues(k * n, seed: 6), bias = testValues(n, seed: 8)
            let y = try Tensor(x, shape: [m, k], on: device).dense(
                weight: try Tensor(w, shape: [k, n], on: device), bias: try Tensor(bias, shape: [n], on: device),
                activation: .relu)
            let prod = Reference.gemm(x, w, m: m, n: n, k: k)
            let expected = (0..<(m * n)).map { max(prod[$0] + Double(bias[$0 % n]), 0) }
            expectClose(try y.toArray(), expected, rtol: 1e-4, atol: 1e-4, "\(device) dense relu \(m)x\(k)x\(n)")
        }
    }
}
