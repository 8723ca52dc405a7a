import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// The implicit-GEMM convolution gradients (conv_frag_weight_grad, with its K-split, and conv_frag_input_grad of
/// the GPU-grade tiles; OpenCLBackend+ImplicitConv.swift) against Double loops on every case of ConvOpTests (batch 1
/// and 3; channels 1, 3, 5; 7 x 9 images; stride 1 and 2; padding 0 to 2; 1 x 1, 3 x 3 and 5 x 5 kernels) and a
/// non-square window; through `Tensor.conv2d` on a device with a GPU's paths (`MYELIN_GPU_PATHS=1`), where they are
/// chosen, with a finite-difference check; and a captured convnet step there, whose replay runs them.
@Suite(.enabled(if: TestDevices.openCLAvailable, TestDevices.skipReason))
struct ImplicitConvBackwardTests {
    /// Weight-gradient tiles (the input gradient runs the same tile without its K-split): the GPU-grade tiles the
    /// defaults use, small ones that put several tiles and K steps on these shapes, and two K-splits of the
    /// reduction over N·L (3 slices of a small tile, 5 of the smallest default one).
    static let variants: [GemmVariant] = GemmDefaults.fragTiles
        + [GemmTuningTests.smallFrags[0], GemmTuningTests.smallFrags[2], GemmTuningTests.smallFrags[3],
           GemmDefaults.fragTiles.last!.withSlices(5)]

    /// Every ConvOpTests case (7 x 9 images) and a 3 x 5 window with strides 2 x 1 and padding 1 x 2.
    static let geometries: [ConvGeometry] = ConvOpTests.cases.map { t in
        ConvGeometry(batch: t.n, channels: t.c, height: 7, width: 9, kernelH: t.k, kernelW: t.k, strideH: t.s, strideW: t.s,
                     padH: t.p, padW: t.p)
    } + [ConvGeometry(batch: 2, channels: 3, height: 7, width: 9, kernelH: 3, kernelW: 5, strideH: 2, strideW: 1,
                      padH: 1, padW: 2)]

    @Test(arguments: variants)
    func gradientsMatchDoubleLoops(variant: GemmVariant) throws {
        let cl = TestDevices.openCL.backend as! OpenCLBackend
        for (index, g) in Self.geometries.enumerated() {
            // 4 and 37 output channels: one tile of rows and, for the small tiles, several.
            let o = index % 2 == 0 ? 4 : 37
            let xv = testValues(g.batch * g.channels * g.height * g.width, seed: UInt64(index))
            let wv = testValues(o * g.patchSize, seed: UInt64(index + 500))
            let rv = testValues(g.batch * o * g.positions, seed: UInt64(index + 1300))
            let x = KernelExercise.upload(cl, xv), w = KernelExercise.upload(cl, wv), r = KernelExercise.upload(cl, rv)
            // Either gradient alone too.
            let gx = index % 5 == 1 ? nil : cl.allocate(xv.count), gw = index % 5 == 2 ? nil : cl.allocate(wv.count)
            #expect(cl.convBackwardImplicit(x: x, weight: w, gy: r, gx: gx, gw: gw, geometry: g, outChannels: o,
                                            weightTile: variant, inputTile: variant.withoutSplit))
            let ref = ConvGradientReference.gradients(xv, wv, rv, n: g.batch, c: g.channels, h: g.height, wd: g.width, o: o,
                                                      k: (g.kernelH, g.kernelW), s: (g.strideH, g.strideW), p: (g.padH, g.padW))
            let what = "\(variant) \(g) o \(o)"
            // Sums of up to 37·25 products of values in [-1, 1]: an absolute tolerance of 1e-4.
            if let gx { expectClose(KernelExercise.download(cl, gx, xv.count), ref.gx, rtol: 1e-4, atol: 1e-4, "\(what) gx") }
            if let gw { expectClose(KernelExercise.download(cl, gw, wv.count), ref.gw, rtol: 1e-4, atol: 1e-4, "\(what) gw") }
        }
        #expect(cl.lastLocalSize[KernelReference(.gemmVariant(variant), "conv_frag_weight_grad")] != nil)
        #expect(cl.lastLocalSize[KernelReference(.gemmVariant(variant), "conv_frag_input_grad")] != nil)
        if variant.slices > 1 {
            #expect(cl.lastLocalSize[KernelReference(.gemmVariant(variant), "gemm_split_reduce")] != nil)
        }
    }

    /// A tile that is not a plain GPU-grade one, or an input tile with a K-split, is refused with nothing written.
    @Test func refusesOtherVariants() throws {
        let cl = TestDevices.openCL.backend as! OpenCLBackend
        let g = ConvGeometry(batch: 1, channels: 1, height: 3, width: 3, kernelH: 1, kernelW: 1)
        let x = KernelExercise.upload(cl, testValues(9, seed: 1)), w = KernelExercise.upload(cl, [2])
        let gy = KernelExercise.upload(cl, testValues(9, seed: 2))
        let gx = KernelExercise.upload(cl, [Float](repeating: 7, count: 9)), gw = KernelExercise.upload(cl, [7])
        let frag = GemmDefaults.fragTiles.last!
        for (wt, it) in [(GemmDefaults.cpuLarge, frag), (frag, GemmVariant.tile(tm: 32, tn: 32, tk: 16, wm: 4, wn: 4)),
                         (frag, frag.withSlices(2))] {
            #expect(!cl.convBackwardImplicit(x: x, weight: w, gy: gy, gx: gx, gw: gw, geometry: g, outChannels: 1,
                                             weightTile: wt, inputTile: it))
        }
        #expect(KernelExercise.download(cl, gx, 9) == [Float](repeating: 7, count: 9))
        #expect(KernelExercise.download(cl, gw, 1) == [7])
    }

    /// `Tensor.conv2d` and its backward on a device with a GPU's paths: the implicit kernels run (no unfold, fold or
    /// column GEMM), and the gradients are the Double loops' on every case.
    @Test func conv2dOnTheGPUPathsTakesTheImplicitGradients() throws {
        let cl = try GPUPathsTests.backend(gpuPaths: true)
        let device = Device(backend: cl)
        for (index, g) in Self.geometries.enumerated() {
            let o = index % 2 == 0 ? 4 : 1
            let xv = testValues(g.batch * g.channels * g.height * g.width, seed: UInt64(index))
            let wv = testValues(o * g.patchSize, seed: UInt64(index + 500))
            let x = try Tensor(xv, shape: [g.batch, g.channels, g.height, g.width], on: device, requiresGrad: true)
            let w = try Tensor(wv, shape: [o, g.channels, g.kernelH, g.kernelW], on: device, requiresGrad: true)
            let y = try x.conv2d(weight: w, bias: nil, stride: (g.strideH, g.strideW), padding: (g.padH, g.padW))
            let rv = testValues(y.count, seed: UInt64(index + 1300))
            try y.backward(Tensor(rv, shape: y.shape, on: device))
            let ref = ConvGradientReference.gradients(xv, wv, rv, n: g.batch, c: g.channels, h: g.height, wd: g.width, o: o,
                                                      k: (g.kernelH, g.kernelW), s: (g.strideH, g.strideW), p: (g.padH, g.padW))
            expectClose(try x.grad!.toArray(), ref.gx, rtol: 1e-4, atol: 1e-5, "\(g) o \(o) input gradient")
            expectClose(try w.grad!.toArray(), ref.gw, rtol: 1e-4, atol: 1e-5, "\(g) o \(o) weight gradient")
        }
        let ran = Set(cl.lastLocalSize.keys.map(\.name))
        #expect(ran.isSuperset(of: ["conv_frag_forward", "conv_frag_weight_grad", "conv_frag_input_grad"]), "\(ran)")
        #expect(ran.isDisjoint(with: ["conv_unfold", "conv_unfold_rows", "conv_fold", "conv_fold_planes", "conv_gather_output"]),
                "\(ran)")
    }

    /// Finite differences through `conv2d` (and its bias) on the GPU's paths: strides 2 x 1 with padding 1 x 2, and
    /// a 1 x 1 window with stride 2.
    @Test func gradientsMatchFiniteDifferencesOnTheGPUPaths() throws {
        let device = Device(backend: try GPUPathsTests.backend(gpuPaths: true))
        for (k, s, p) in [((3, 3), (2, 1), (1, 2)), ((1, 1), (2, 2), (0, 0))] {
            let x = try Tensor(testValues(2 * 3 * 5 * 6, seed: 7), shape: [2, 3, 5, 6], on: device, requiresGrad: true)
            let w = try Tensor(testValues(2 * 3 * k.0 * k.1, seed: 8), shape: [2, 3, k.0, k.1], on: device, requiresGrad: true)
            let b = try Tensor(testValues(2, seed: 9), shape: [2], on: device, requiresGrad: true)
            try GradientCheck.check([("x", x), ("weight", w), ("bias", b)], eps: 5e-3, "GPU paths conv2d \(k) \(s) \(p)") {
                try weightedSum(x.conv2d(weight: w, bias: b, stride: s, padding: p), seed: 10)
            }
        }
    }

    /// A convnet's captured training step on the GPU's paths gives the eager steps' losses and weights bit for bit,
    /// and its replay runs the implicit gradients (by the kernel profile), not the chunked unfold and fold.
    @Test func aCapturedConvnetStepReplaysTheImplicitGradients() throws {
        var environment = ProcessInfo.processInfo.environment
        environment["MYELIN_GPU_PATHS"] = "1"
        environment["MYELIN_PROFILE_KERNELS"] = "1"
        let device = Device(backend: try OpenCLBackend(index: 0, info: OpenCLPlatforms.devices()[0], environment: environment))
        let makeModel = { (d: Device) in ConvNets.resnet(depth: 1, classes: 4, imageSize: 8, seed: 3, device: d) }
        try CaptureTests().expectIdenticalTraining(device, steps: 4, n: 5, batch: 3, makeModel: makeModel, inputs: 64,
                                                   classes: 4, makeOptimizer: { try AdamW(parameters: $0, learningRate: 0.01) })
        let model = makeModel(device)
        let step = try model.captureStep(loss: .softmaxCrossEntropy, optimizer: try AdamW(parameters: model.parameters, learningRate: 0.01))
        let x = try Tensor(testValues(3 * 64, seed: 4), shape: [3, 64], on: device)
        let t = try Tensor([0, 3, 1], shape: [3], on: device)
        _ = try step(x, t)   // records
        device.synchronize()
        _ = device.kernelProfile(reset: true)
        _ = try step(x, t)   // replays
        let profile = try #require(device.kernelProfile(reset: true))
        let kernels = Set(profile.entries.map { String($0.kernel.split(separator: " ")[0]) })
        #expect(kernels.isSuperset(of: ["conv_frag_forward", "conv_frag_weight_grad", "conv_frag_input_grad"]), "\(profile.table)")
        #expect(kernels.isDisjoint(with: ["conv_unfold", "conv_unfold_rows", "conv_fold", "conv_fold_planes"]), "\(profile.table)")
    }
}
