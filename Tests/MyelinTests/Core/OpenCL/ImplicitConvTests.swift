import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// The implicit-GEMM convolution forward (conv_frag_forward of the GPU-grade tiles, OpenCLBackend+ImplicitConv.swift)
/// against Double loops, on every case of ConvOpTests (batch 1 and 3; channels 1, 3, 5; 7 x 9 images; stride 1 and
/// 2; padding 0 to 2; 1 x 1, 3 x 3 and 5 x 5 kernels), with every GPU-grade tile the defaults use and small ones
/// that put several tiles and K steps on these shapes; and through `Tensor.conv2d` with `MYELIN_CONV` unset.
@Suite(.enabled(if: TestDevices.openCLAvailable, TestDevices.skipReason))
struct ImplicitConvTests {
    static let variants: [GemmVariant] = GemmDefaults.fragTiles + [GemmTuningTests.smallFrags[0], GemmTuningTests.smallFrags[2]]

    @Test(arguments: variants)
    func forwardMatchesDoubleLoops(variant: GemmVariant) throws {
        let cl = TestDevices.openCL.backend as! OpenCLBackend
        let h = 7, wd = 9
        for (index, t) in ConvOpTests.cases.enumerated() {
            // 4 and 37 output channels: one tile of rows and, for the small tiles, several.
            let o = index % 2 == 0 ? 4 : 37
            let (xv, wv, bv) = ConvOpTests.values(index, t, outChannels: o)
            let g = ConvGeometry(batch: t.n, channels: t.c, height: h, width: wd, kernelH: t.k, kernelW: t.k,
                                 strideH: t.s, strideW: t.s, padH: t.p, padW: t.p)
            let x = KernelExercise.upload(cl, xv), w = KernelExercise.upload(cl, wv), b = KernelExercise.upload(cl, bv)
            let y = cl.allocate(t.n * o * g.positions)
            let bias = index % 3 == 0 ? nil : b
            #expect(cl.convForwardImplicit(x: x, weight: w, bias: bias, y: y, geometry: g, outChannels: o, variant: variant))
            let ref = ConvReference.conv(xv, wv, bias == nil ? nil : bv, n: t.n, c: t.c, h: h, wd: wd, o: o,
                                         k: (t.k, t.k), s: (t.s, t.s), p: (t.p, t.p))
            expectClose(KernelExercise.download(cl, y, ref.values.count), ref.values, rtol: 1e-4, atol: 1e-5,
                        "\(variant) n \(t.n) c \(t.c) o \(o) k \(t.k) s \(t.s) p \(t.p)")
        }
        #expect(cl.lastLocalSize[KernelReference(.gemmVariant(variant), "conv_frag_forward")] != nil)
    }

    /// A tile that is not a plain GPU-grade one (a K-split, a panel) is refused, with nothing written.
    @Test func refusesOtherVariants() throws {
        let cl = TestDevices.openCL.backend as! OpenCLBackend
        let g = ConvGeometry(batch: 1, channels: 1, height: 3, width: 3, kernelH: 1, kernelW: 1)
        let x = KernelExercise.upload(cl, testValues(9, seed: 1)), w = KernelExercise.upload(cl, [2])
        let y = KernelExercise.upload(cl, [Float](repeating: 7, count: 9))
        for v in [GemmVariant.frag(32, 32, k: 16, w: 4, 4, slices: 4), GemmDefaults.cpuLarge,
                  .tile(tm: 32, tn: 32, tk: 16, wm: 4, wn: 4)] {
            #expect(!cl.convForwardImplicit(x: x, weight: w, bias: nil, y: y, geometry: g, outChannels: 1, variant: v))
        }
        #expect(KernelExercise.download(cl, y, 9) == [Float](repeating: 7, count: 9))
    }
}
