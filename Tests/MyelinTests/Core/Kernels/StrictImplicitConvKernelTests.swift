import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

extension KernelExercise {
    /// The implicit-GEMM convolution (Kernels/gemm_tuned_conv.cl: conv_frag_forward, conv_frag_weight_grad with and
    /// without its K-split, conv_frag_input_grad) with GPU-grade tiles that fit a small GPU, on a batch of 3 with a
    /// 3 x 2 window, strides 2 x 1 and padding 1; the CPU's chunked convolution stands for the expected results.
    /// Where a tile is refused (a work-group cap below its items) or on the CPU, the chunked path runs instead.
    static func implicitConvolution(on backend: Backend, _ record: (String, DeviceBuffer, Int) -> Void) {
        let cl = backend as? OpenCLBackend
        let g = ConvGeometry(batch: 3, channels: 3, height: 7, width: 5, kernelH: 3, kernelW: 2, strideH: 2, strideW: 1,
                             padH: 1, padW: 1)
        let o = 4, outCount = 3 * o * g.positions, pixels = 3 * 3 * 7 * 5
        let x = upload(backend, testValues(pixels, seed: 14)), w = upload(backend, testValues(o * g.patchSize, seed: 15))
        let bias = upload(backend, testValues(o, seed: 16)), gy = upload(backend, testValues(outCount, seed: 17))
        let y = backend.allocate(outCount)
        if cl?.convForwardImplicit(x: x, weight: w, bias: bias, y: y, geometry: g, outChannels: o,
                                   variant: GemmTuningTests.smallFrags[0]) != true {
            backend.chunkedConv2dForward(x: x, weight: w, bias: bias, y: y, geometry: g, outChannels: o)
        }
        record("conv2d forward, implicit GEMM", y, outCount)
        // The weight gradient in one slice (small tile 0) and in 3 (small tile 3, a K-split then gemm_split_reduce).
        for weightTile in [GemmTuningTests.smallFrags[0], GemmTuningTests.smallFrags[3]] {
            let gx = backend.allocate(pixels), gw = backend.allocate(o * g.patchSize)
            if cl?.convBackwardImplicit(x: x, weight: w, gy: gy, gx: gx, gw: gw, geometry: g, outChannels: o,
                                        weightTile: weightTile, inputTile: GemmTuningTests.smallFrags[2]) != true {
                backend.chunkedConv2dBackward(x: x, weight: w, gy: gy, gx: gx, gw: gw, geometry: g, outChannels: o)
            }
            record("conv2d input gradient, implicit GEMM, \(weightTile)", gx, pixels)
            record("conv2d weight gradient, implicit GEMM, \(weightTile)", gw, o * g.patchSize)
        }
    }
}

/// The implicit-GEMM convolution's kernels alone (also part of `StrictKernelTests`): `scripts/oclgrind-check
/// StrictImplicitConvKernelTests` checks them under Oclgrind in both modes in a few minutes.
@Suite(.enabled(if: TestDevices.openCLAvailable, TestDevices.skipReason))
struct StrictImplicitConvKernelTests {
    @Test func implicitConvolutionKernelsMatchTheCPU() throws {
        let backend = try OpenCLBackend(index: 0, info: OpenCLPlatforms.devices()[0])
        KernelExercise.check(backend, KernelExercise.outputs(of: KernelExercise.implicitConvolution(on:_:)))
        let ran = Set(backend.kernels.keys.map(\.name))
        #expect(ran.isSuperset(of: ["conv_frag_forward", "conv_frag_weight_grad", "conv_frag_input_grad", "gemm_split_reduce"]),
                "\(ran)")
    }
}
