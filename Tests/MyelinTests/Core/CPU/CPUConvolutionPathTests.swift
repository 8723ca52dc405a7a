import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// The CPU device's two convolution paths, each called directly whatever `MYELIN_CPU_CONV` chooses: oneDNN's
/// primitives (CPUBackend+OneDNN.swift) and the chunked im2col + GEMM (ChunkedConvolution.swift), against the
/// Double references on the odd shapes of `ConvOpTests` (batch 1 and 3, 1/3/5 channels, 1×1/3×3/5×5 kernels,
/// stride 1 and 2, padding 0-2), plus rectangular kernels, strides and paddings, and the convnets' layer shapes.
@Suite struct CPUConvolutionPathTests {
    enum Path: String, CaseIterable { case oneDNN, im2col }

    /// One convolution: x [n, c, h, w] · weight [o, c, kh, kw], stride and padding (rows, columns).
    struct Case: CustomStringConvertible {
        var n, c, h, w, o: Int
        var k: (Int, Int), s: (Int, Int), p: (Int, Int)
        var description: String { "n \(n) c \(c) \(h)x\(w) o \(o) k \(k) s \(s) p \(p)" }
        var geometry: ConvGeometry {
            ConvGeometry(batch: n, channels: c, height: h, width: w, kernelH: k.0, kernelW: k.1, strideH: s.0,
                         strideW: s.1, padH: p.0, padW: p.1)
        }
    }

    static let cases: [Case] = {
        var list = ConvOpTests.cases.enumerated().map { index, t in
            Case(n: t.n, c: t.c, h: 7, w: 9, o: index % 2 == 0 ? 4 : 1, k: (t.k, t.k), s: (t.s, t.s), p: (t.p, t.p))
        }
        list += [Case(n: 3, c: 33, h: 9, w: 8, o: 17, k: (1, 1), s: (1, 1), p: (0, 0)),
                 Case(n: 2, c: 7, h: 11, w: 6, o: 9, k: (3, 2), s: (2, 1), p: (1, 0)),
                 Case(n: 1, c: 16, h: 12, w: 12, o: 32, k: (3, 3), s: (2, 2), p: (1, 1)),
                 Case(n: 3, c: 1, h: 33, w: 7, o: 3, k: (5, 5), s: (2, 2), p: (2, 2))]
        return list
    }()

    /// Runs `path` on the CPU device for one case and checks y (with and without a bias), gx and gw.
    func check(_ path: Path, _ t: Case, tolerance: Double = 1e-4) {
        let backend = CPUBackend.shared, g = t.geometry
        let xv = testValues(t.n * t.c * t.h * t.w, seed: UInt64(t.c * 7 + t.h)), wv = testValues(t.o * t.c * t.k.0 * t.k.1, seed: 11)
        let bv = testValues(t.o, seed: 12), rv = testValues(t.n * t.o * g.positions, seed: 13)
        let ref = ConvReference.conv(xv, wv, bv, n: t.n, c: t.c, h: t.h, wd: t.w, o: t.o, k: t.k, s: t.s, p: t.p)
        let refNoBias = ConvReference.conv(xv, wv, nil, n: t.n, c: t.c, h: t.h, wd: t.w, o: t.o, k: t.k, s: t.s, p: t.p)
        let grads = ConvGradientReference.gradients(xv, wv, rv, n: t.n, c: t.c, h: t.h, wd: t.w, o: t.o, k: t.k, s: t.s, p: t.p)
        let x = KernelExercise.upload(backend, xv), w = KernelExercise.upload(backend, wv)
        let b = KernelExercise.upload(backend, bv), r = KernelExercise.upload(backend, rv)
        let y = backend.allocate(rv.count), y0 = backend.allocate(rv.count)
        let gx = backend.allocate(xv.count), gw = backend.allocate(wv.count)
        switch path {
        case .oneDNN:
            backend.libraryConv2dForward(x: x, weight: w, bias: b, y: y, geometry: g, outChannels: t.o)
            backend.libraryConv2dForward(x: x, weight: w, bias: nil, y: y0, geometry: g, outChannels: t.o)
            backend.libraryConv2dBackward(x: x, weight: w, gy: r, gx: gx, gw: gw, geometry: g, outChannels: t.o)
        case .im2col:
            backend.chunkedConv2dForward(x: x, weight: w, bias: b, y: y, geometry: g, outChannels: t.o)
            backend.chunkedConv2dForward(x: x, weight: w, bias: nil, y: y0, geometry: g, outChannels: t.o)
            backend.chunkedConv2dBackward(x: x, weight: w, gy: r, gx: gx, gw: gw, geometry: g, outChannels: t.o)
        }
        let what = "\(path) \(t)"
        expectClose(KernelExercise.download(backend, y, rv.count), ref.values, rtol: tolerance, atol: tolerance, "\(what) forward")
        expectClose(KernelExercise.download(backend, y0, rv.count), refNoBias.values, rtol: tolerance, atol: tolerance,
                    "\(what) forward without bias")
        expectClose(KernelExercise.download(backend, gx, xv.count), grads.gx, rtol: tolerance, atol: tolerance, "\(what) input gradient")
        expectClose(KernelExercise.download(backend, gw, wv.count), grads.gw, rtol: tolerance, atol: tolerance, "\(what) weight gradient")
        // Only the input gradient, then only the weight gradient (the first layer of a network has no input gradient).
        let gxOnly = backend.allocate(xv.count), gwOnly = backend.allocate(wv.count)
        if path == .oneDNN {
            backend.libraryConv2dBackward(x: x, weight: w, gy: r, gx: gxOnly, gw: nil, geometry: g, outChannels: t.o)
            backend.libraryConv2dBackward(x: x, weight: w, gy: r, gx: nil, gw: gwOnly, geometry: g, outChannels: t.o)
            expectClose(KernelExercise.download(backend, gxOnly, xv.count), grads.gx, rtol: tolerance, atol: tolerance, "\(what) gx alone")
            expectClose(KernelExercise.download(backend, gwOnly, wv.count), grads.gw, rtol: tolerance, atol: tolerance, "\(what) gw alone")
        }
    }

    @Test("oneDNN loads (libdnnl-dev, installed by scripts/setup) and takes every shape of the tests")
    func oneDNNLoadsAndTakesTheShapes() {
        #expect(CPUBackend.oneDNNAvailable, "oneDNN did not load: \(CPUBackend.oneDNNError)")
        guard CPUBackend.oneDNNAvailable else { return }
        for t in Self.cases {
            #expect(CPUBackend.oneDNNSupports(t.geometry, outChannels: t.o), "\(t)")
        }
        // The choice follows MYELIN_CPU_CONV: im2col never takes oneDNN; auto and onednn take it.
        let g = Self.cases[0].geometry
        #expect(CPUBackend.shared.usesLibraryConvolution(g, outChannels: 4) == (CPUBackend.convChoice != .im2col))
        // Sizes past 32-bit ints are left to the chunked algorithm.
        var huge = g
        huge.batch = Int(Int32.max) / 2
        #expect(CPUBackend.oneDNNShape(huge, outChannels: 4) == nil)
    }

    @Test("Each path matches the Double reference on odd shapes", arguments: Path.allCases)
    func pathMatchesReference(path: Path) throws {
        try #require(path != .oneDNN || CPUBackend.oneDNNAvailable, "oneDNN did not load: \(CPUBackend.oneDNNError)")
        for t in Self.cases { check(path, t) }
    }

    @Test("Each path matches the reference on the convnets' layers (batch 4)", arguments: Path.allCases)
    func pathMatchesReferenceOnConvnetLayers(path: Path) throws {
        try #require(path != .oneDNN || CPUBackend.oneDNNAvailable, "oneDNN did not load: \(CPUBackend.oneDNNError)")
        // ResNet-8's 3×3 layers (16-64 channels, stride 1 and 2) and 1×1 downsampling, the cnn's second layer.
        let layers = [Case(n: 4, c: 16, h: 28, w: 28, o: 16, k: (3, 3), s: (1, 1), p: (1, 1)),
                      Case(n: 4, c: 16, h: 28, w: 28, o: 32, k: (3, 3), s: (2, 2), p: (1, 1)),
                      Case(n: 4, c: 32, h: 14, w: 14, o: 64, k: (1, 1), s: (2, 2), p: (0, 0)),
                      Case(n: 4, c: 32, h: 14, w: 14, o: 64, k: (3, 3), s: (1, 1), p: (1, 1))]
        for t in layers { check(path, t, tolerance: 5e-4) }
    }

    @Test("conv2d through Tensor takes the default path (oneDNN unless MYELIN_CPU_CONV=im2col) and matches the reference")
    func tensorOpOnTheDefaultPath() throws {
        let x = try Tensor(testValues(3 * 8 * 10 * 10, seed: 1), shape: [3, 8, 10, 10], on: .cpu, requiresGrad: true)
        let w = try Tensor(testValues(16 * 8 * 9, seed: 2), shape: [16, 8, 3, 3], on: .cpu, requiresGrad: true)
        let y = try x.conv2d(weight: w, bias: nil, stride: (2, 2), padding: (1, 1))
        let ref = ConvReference.conv(try x.toArray(), try w.toArray(), nil, n: 3, c: 8, h: 10, wd: 10, o: 16, k: (3, 3), s: (2, 2), p: (1, 1))
        expectClose(try y.toArray(), ref.values, "conv2d on the CPU's default path (\(CPUBackend.convChoice))")
    }
}
