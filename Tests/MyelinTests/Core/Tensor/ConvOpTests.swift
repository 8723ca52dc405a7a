import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// The gradients of a direct convolution in Double, for the output gradient r [N, O, outH, outW].
enum ConvGradientReference {
    static func gradients(_ x: [Float], _ w: [Float], _ r: [Float], n: Int, c: Int, h: Int, wd: Int, o: Int,
                          k: (Int, Int), s: (Int, Int), p: (Int, Int)) -> (gx: [Double], gw: [Double], gb: [Double]) {
        let oh = (h + 2 * p.0 - k.0) / s.0 + 1, ow = (wd + 2 * p.1 - k.1) / s.1 + 1
        var gx = [Double](repeating: 0, count: x.count), gw = [Double](repeating: 0, count: w.count)
        var gb = [Double](repeating: 0, count: o)
        for ni in 0..<n { for oi in 0..<o { for yy in 0..<oh { for xx in 0..<ow {
            let g = Double(r[((ni * o + oi) * oh + yy) * ow + xx])
            gb[oi] += g
            for ci in 0..<c { for i in 0..<k.0 { for j in 0..<k.1 {
                let hi = yy * s.0 - p.0 + i, wi = xx * s.1 - p.1 + j
                guard hi >= 0, hi < h, wi >= 0, wi < wd else { continue }
                let xi = ((ni * c + ci) * h + hi) * wd + wi, wk = ((oi * c + ci) * k.0 + i) * k.1 + j
                gx[xi] += g * Double(w[wk])
                gw[wk] += g * Double(x[xi])
            } } }
        } } } }
        return (gx, gw, gb)
    }
}

/// `Tensor.conv2d` (the chunked convolution of ChunkedConvolution.swift) against Double loops on odd shapes.
@Suite struct ConvOpTests {
    /// (batch, channels, kernel, stride, padding) over 7 x 9 images: every combination the issue lists.
    static let cases: [(n: Int, c: Int, k: Int, s: Int, p: Int)] = {
        var list: [(n: Int, c: Int, k: Int, s: Int, p: Int)] = []
        for n in [1, 3] { for c in [1, 3, 5] { for k in [1, 3, 5] { for s in [1, 2] { for p in [0, 1, 2] {
            list.append((n, c, k, s, p))
        } } } } }
        return list
    }()

    /// The input (7 x 9 images), weight and bias values of case `index` of `cases` with `outChannels` filters.
    static func values(_ index: Int, _ t: (n: Int, c: Int, k: Int, s: Int, p: Int),
                       outChannels o: Int) -> (x: [Float], w: [Float], b: [Float]) {
        (testValues(t.n * t.c * 7 * 9, seed: UInt64(index)), testValues(o * t.c * t.k * t.k, seed: UInt64(index + 500)),
         testValues(o, seed: UInt64(index + 900)))
    }

    @Test(arguments: TestDevices.all)
    func forwardAndBothBackwardsMatchDoubleLoops(device: Device) throws {
        let h = 7, wd = 9
        for (index, t) in Self.cases.enumerated() {
            let o = index % 2 == 0 ? 4 : 1
            let (xv, wv, bv) = Self.values(index, t, outChannels: o)
            let x = try Tensor(xv, shape: [t.n, t.c, h, wd], on: device, requiresGrad: true)
            let w = try Tensor(wv, shape: [o, t.c, t.k, t.k], on: device, requiresGrad: true)
            let b = try Tensor(bv, shape: [o], on: device, requiresGrad: true)
            let y = try x.conv2d(weight: w, bias: b, stride: (t.s, t.s), padding: (t.p, t.p))
            let ref = ConvReference.conv(xv, wv, bv, n: t.n, c: t.c, h: h, wd: wd, o: o, k: (t.k, t.k), s: (t.s, t.s), p: (t.p, t.p))
            let what = "\(device) n \(t.n) c \(t.c) o \(o) k \(t.k) s \(t.s) p \(t.p)"
            #expect(y.shape == [t.n, o, ref.oh, ref.ow], "\(what)")
            expectClose(try y.toArray(), ref.values, rtol: 1e-4, atol: 1e-5, "\(what) forward")
            let rv = testValues(y.count, seed: UInt64(index + 1300))
            try y.backward(Tensor(rv, shape: y.shape, on: device))
            let g = ConvGradientReference.gradients(xv, wv, rv, n: t.n, c: t.c, h: h, wd: wd, o: o,
                                                    k: (t.k, t.k), s: (t.s, t.s), p: (t.p, t.p))
            expectClose(try x.grad!.toArray(), g.gx, rtol: 1e-4, atol: 1e-5, "\(what) input gradient")
            expectClose(try w.grad!.toArray(), g.gw, rtol: 1e-4, atol: 1e-5, "\(what) weight gradient")
            expectClose(try b.grad!.toArray(), g.gb, rtol: 1e-4, atol: 1e-5, "\(what) bias gradient")
        }
    }

    /// A batch of 5 cut into chunks of 1, 2 (2 + 2 + 1) and 5 images gives the same forward and gradients.
    @Test(arguments: TestDevices.all)
    func everyChunkingGivesTheReference(device: Device) throws {
        let (n, c, h, wd, o) = (5, 3, 7, 9, 4)
        let g = ConvGeometry(batch: n, channels: c, height: h, width: wd, kernelH: 3, kernelW: 5,
                             strideH: 2, strideW: 1, padH: 1, padW: 2)
        let xv = testValues(n * c * h * wd, seed: 1), wv = testValues(o * c * 15, seed: 2)
        let rv = testValues(n * o * g.positions, seed: 3)
        let ref = ConvReference.conv(xv, wv, nil, n: n, c: c, h: h, wd: wd, o: o, k: (3, 5), s: (2, 1), p: (1, 2))
        let grads = ConvGradientReference.gradients(xv, wv, rv, n: n, c: c, h: h, wd: wd, o: o, k: (3, 5), s: (2, 1), p: (1, 2))
        let backend = device.backend
        let x = KernelExercise.upload(backend, xv), w = KernelExercise.upload(backend, wv), r = KernelExercise.upload(backend, rv)
        let perImage = g.patchSize * g.positions
        for images in [1, 2, 5] {
            #expect(ConvChunking(g, budget: perImage * images + perImage / 2).images == images)
            let y = backend.allocate(n * o * g.positions), gx = backend.allocate(xv.count), gw = backend.allocate(wv.count)
            backend.conv2dForward(x: x, weight: w, bias: nil, y: y, geometry: g, outChannels: o, chunkBudget: perImage * images)
            backend.conv2dBackward(x: x, weight: w, gy: r, gx: gx, gw: gw, geometry: g, outChannels: o,
                                   chunkBudget: perImage * images)
            expectClose(KernelExercise.download(backend, y, ref.values.count), ref.values, "\(device) chunks of \(images): forward")
            expectClose(KernelExercise.download(backend, gx, xv.count), grads.gx, "\(device) chunks of \(images): input gradient")
            expectClose(KernelExercise.download(backend, gw, wv.count), grads.gw, "\(device) chunks of \(images): weight gradient")
        }
        // A budget below one image still takes one image per chunk; above the batch, the whole batch.
        #expect(ConvChunking(g, budget: 1).images == 1)
        #expect(ConvChunking(g, budget: .max).images == n)
    }

    @Test(arguments: TestDevices.all)
    func gradientsMatchFiniteDifferences(device: Device) throws {
        let x = try Tensor(testValues(2 * 3 * 5 * 6, seed: 7), shape: [2, 3, 5, 6], on: device, requiresGrad: true)
        let w = try Tensor(testValues(2 * 3 * 3 * 3, seed: 8), shape: [2, 3, 3, 3], on: device, requiresGrad: true)
        let b = try Tensor(testValues(2, seed: 9), shape: [2], on: device, requiresGrad: true)
        try GradientCheck.check([("x", x), ("weight", w), ("bias", b)], eps: 5e-3, "\(device) conv2d") {
            try weightedSum(x.conv2d(weight: w, bias: b, stride: (2, 1), padding: (1, 2)), seed: 10)
        }
    }

    @Test func badShapesNameBothShapes() throws {
        let x = Tensor.zeros([2, 3, 7, 9], on: .cpu)
        #expect(throws: TensorError.self) { try x.conv2d(weight: Tensor.zeros([4, 2, 3, 3], on: .cpu), bias: nil) }
        do { _ = try x.conv2d(weight: Tensor.zeros([4, 2, 3, 3], on: .cpu), bias: nil); Issue.record("expected an error") } catch {
            #expect("\(error)".contains("conv2d") && "\(error)".contains("[2, 3, 7, 9]") && "\(error)".contains("[4, 2, 3, 3]"),
                    "\(error)")
        }
        do { _ = try x.conv2d(weight: Tensor.zeros([4, 3, 3, 3], on: .cpu), bias: Tensor.zeros([3], on: .cpu)); Issue.record("expected an error") } catch {
            #expect("\(error)".contains("bias") && "\(error)".contains("[3]") && "\(error)".contains("[4]"), "\(error)")
        }
        do { _ = try x.conv2d(weight: Tensor.zeros([4, 3, 9, 3], on: .cpu), bias: nil); Issue.record("expected an error") } catch {
            #expect("\(error)".contains("conv2d") && "\(error)".contains("9x3"), "\(error)")
        }
    }

    /// One recorded node per convolution, however many chunks it takes.
    @Test func oneGraphNodePerConvolution() throws {
        let x = try Tensor(testValues(3 * 2 * 7 * 9, seed: 1), shape: [3, 2, 7, 9], on: .cpu, requiresGrad: true)
        let w = try Tensor(testValues(4 * 2 * 9, seed: 2), shape: [4, 2, 3, 3], on: .cpu, requiresGrad: true)
        let y = try x.conv2d(weight: w, bias: nil, padding: (1, 1))
        #expect(y.node?.name == "conv2d")
        #expect(y.node?.inputs.count == 2 && y.node!.inputs.allSatisfy { $0.isLeaf })
    }
}
