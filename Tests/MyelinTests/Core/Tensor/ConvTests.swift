import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// Naive NCHW references in Double.
enum ConvReference {
    /// Direct convolution: y[n, o, oh, ow] = b[o] + Σ_c,i,j w[o, c, i, j]·x[n, c, oh·s - p + i, ow·s - p + j].
    static func conv(_ x: [Float], _ w: [Float], _ b: [Float]?, n: Int, c: Int, h: Int, wd: Int, o: Int,
                     k: (Int, Int), s: (Int, Int), p: (Int, Int)) -> (values: [Double], oh: Int, ow: Int) {
        let oh = (h + 2 * p.0 - k.0) / s.0 + 1, ow = (wd + 2 * p.1 - k.1) / s.1 + 1
        var y = [Double](repeating: 0, count: n * o * oh * ow)
        for ni in 0..<n { for oi in 0..<o { for yy in 0..<oh { for xx in 0..<ow {
            var acc = Double(b?[oi] ?? 0)
            for ci in 0..<c { for i in 0..<k.0 { for j in 0..<k.1 {
                let hi = yy * s.0 - p.0 + i, wi = xx * s.1 - p.1 + j
                guard hi >= 0, hi < h, wi >= 0, wi < wd else { continue }
                acc += Double(w[((oi * c + ci) * k.0 + i) * k.1 + j]) * Double(x[((ni * c + ci) * h + hi) * wd + wi])
            } } }
            y[((ni * o + oi) * oh + yy) * ow + xx] = acc
        } } } }
        return (y, oh, ow)
    }

    /// Max or average pooling per channel; padding reads -inf (max) or 0 (average, counted in the divisor).
    static func pool(_ x: [Float], n: Int, c: Int, h: Int, w: Int, k: Int, s: Int, p: Int, max: Bool) -> [Double] {
        let oh = (h + 2 * p - k) / s + 1, ow = (w + 2 * p - k) / s + 1
        var y: [Double] = []
        for plane in 0..<(n * c) { for yy in 0..<oh { for xx in 0..<ow {
            var acc = max ? -Double.infinity : 0
            for i in 0..<k { for j in 0..<k {
                let hi = yy * s - p + i, wi = xx * s - p + j
                let v = (hi >= 0 && hi < h && wi >= 0 && wi < w) ? Double(x[(plane * h + hi) * w + wi]) : (max ? -Double.infinity : 0)
                acc = max ? Swift.max(acc, v) : acc + v
            } }
            y.append(max ? acc : acc / Double(k * k))
        } } }
        return y
    }
}

@Suite struct ConvTests {
    static let geometries: [(n: Int, c: Int, h: Int, w: Int, k: (Int, Int), s: (Int, Int), p: (Int, Int))] = [
        (1, 1, 1, 1, (1, 1), (1, 1), (0, 0)),
        (2, 3, 5, 7, (3, 3), (1, 1), (1, 1)),
        (3, 2, 7, 6, (3, 2), (2, 1), (1, 0)),
        (1, 4, 9, 9, (5, 5), (2, 2), (2, 2)),
        (2, 1, 4, 4, (4, 4), (1, 1), (0, 0)),
    ]

    @Test(arguments: TestDevices.all)
    func im2colMatchesReferenceAndCol2imIsItsAdjoint(device: Device) throws {
        for g in Self.geometries {
            let xv = testValues(g.n * g.c * g.h * g.w, seed: 1)
            let x = try Tensor(xv, shape: [g.n, g.c, g.h, g.w], on: device, requiresGrad: true)
            let cols = try x.im2col(kernel: g.k, stride: g.s, padding: g.p, padValue: -7)
            let oh = (g.h + 2 * g.p.0 - g.k.0) / g.s.0 + 1, ow = (g.w + 2 * g.p.1 - g.k.1) / g.s.1 + 1
            let rows = g.c * g.k.0 * g.k.1
            #expect(cols.shape == [g.n, rows, oh * ow])
            var expected: [Double] = []
            for n in 0..<g.n { for r in 0..<rows { for yy in 0..<oh { for xx in 0..<ow {
                let c = r / (g.k.0 * g.k.1), i = (r / g.k.1) % g.k.0, j = r % g.k.1
                let hi = yy * g.s.0 - g.p.0 + i, wi = xx * g.s.1 - g.p.1 + j
                expected.append((hi >= 0 && hi < g.h && wi >= 0 && wi < g.w) ? Double(xv[((n * g.c + c) * g.h + hi) * g.w + wi]) : -7)
            } } } }
            expectClose(try cols.toArray(), expected, rtol: 0, atol: 0, "\(device) im2col \(g)")
            // <im2col(x), r> = <x, col2im(r)>: the backward is the adjoint (padding positions excluded).
            let rv = testValues(cols.count, seed: 2)
            try (cols * Tensor(rv, shape: cols.shape, on: device)).sum().backward()
            var dot = 0.0
            for (e, r) in zip(expected, rv) where e != -7 { dot += e * Double(r) }
            let back = zip(xv, try x.grad!.toArray()).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            expectClose([Float(back)], [dot], rtol: 1e-4, atol: 1e-4, "\(device) col2im adjoint \(g)")
        }
        let bad = Tensor.zeros([1, 1, 2, 2], on: device)
        #expect(throws: TensorError.self) { try bad.im2col(kernel: (3, 3)) }
        #expect(throws: TensorError.self) { try bad.im2col(kernel: (1, 1), stride: (0, 1)) }
        #expect(throws: TensorError.self) { try Tensor.zeros([2, 2], on: device).im2col(kernel: (1, 1)) }
    }

    @Test(arguments: TestDevices.all)
    func conv2DForwardMatchesDirectConvolution(device: Device) throws {
        for g in Self.geometries {
            let o = 3
            let conv = Conv2D(inChannels: g.c, outChannels: o, kernelSize: g.k, stride: g.s, padding: g.p,
                              biasInit: .uniform(low: -1, high: 1), seed: 4, device: device)
            #expect(conv.weight.shape == [o, g.c, g.k.0, g.k.1] && conv.bias!.shape == [o])
            let xv = testValues(g.n * g.c * g.h * g.w, seed: 3)
            let y = try conv(try Tensor(xv, shape: [g.n, g.c, g.h, g.w], on: device))
            let ref = ConvReference.conv(xv, try conv.weight.toArray(), try conv.bias!.toArray(), n: g.n, c: g.c, h: g.h, wd: g.w,
                                         o: o, k: g.k, s: g.s, p: g.p)
            #expect(y.shape == [g.n, o, ref.oh, ref.ow])
            expectClose(try y.toArray(), ref.values, rtol: 1e-4, atol: 1e-5, "\(device) conv \(g)")
        }
        let conv = Conv2D(inChannels: 3, outChannels: 2, kernelSize: 3, device: device)
        do { _ = try conv(Tensor.zeros([1, 2, 5, 5], on: device)); Issue.record("expected a shape error") } catch {
            #expect("\(error)".contains("Conv2D(3 -> 2, 3x3)") && "\(error)".contains("[1, 2, 5, 5]"), "\(error)")
        }
    }

    @Test(arguments: TestDevices.all)
    func conv2DGradientsMatchFiniteDifferences(device: Device) throws {
        let conv = Conv2D(inChannels: 2, outChannels: 3, kernelSize: (3, 2), stride: (2, 1), padding: (1, 1),
                          activation: .tanh, biasInit: .uniform(low: -0.5, high: 0.5), seed: 9, device: device)
        let x = try Tensor(testValues(2 * 2 * 5 * 4, seed: 5), shape: [2, 2, 5, 4], on: device, requiresGrad: true)
        try GradientCheck.check([("x", x)] + conv.namedTensors, eps: 5e-3, "\(device) Conv2D") {
            try weightedSum(conv(x), seed: 6)
        }
    }

    @Test(arguments: TestDevices.all)
    func poolingMatchesReferenceAndGradients(device: Device) throws {
        for (h, w, k, s, p) in [(4, 4, 2, 2, 0), (5, 7, 3, 2, 1), (6, 5, 3, 1, 0), (1, 1, 1, 1, 0)] {
            let (n, c) = (2, 3)
            // Distinct values so the maximum of every window is unique.
            let xv = (0..<(n * c * h * w)).map { Float(($0 * 37) % 101) / 50 - 1 }
            let x = try Tensor(xv, shape: [n, c, h, w], on: device, requiresGrad: true)
            let mp = MaxPool2D(kernelSize: k, stride: s, padding: p), ap = AvgPool2D(kernelSize: k, stride: s, padding: p)
            let oh = (h + 2 * p - k) / s + 1, ow = (w + 2 * p - k) / s + 1
            let ym = try mp(x), ya = try ap(x)
            #expect(ym.shape == [n, c, oh, ow] && ya.shape == [n, c, oh, ow])
            expectClose(try ym.toArray(), ConvReference.pool(xv, n: n, c: c, h: h, w: w, k: k, s: s, p: p, max: true),
                        rtol: 0, atol: 0, "\(device) max pool \(h)x\(w) k\(k) s\(s) p\(p)")
            expectClose(try ya.toArray(), ConvReference.pool(xv, n: n, c: c, h: h, w: w, k: k, s: s, p: p, max: false),
                        rtol: 1e-5, atol: 1e-6, "\(device) avg pool \(h)x\(w) k\(k) s\(s) p\(p)")
            try GradientCheck.check([("x", x)], eps: 2e-3, "\(device) max pool \(h)x\(w) k\(k)") { try weightedSum(mp(x), seed: 1) }
            try GradientCheck.check([("x", x)], eps: 2e-3, "\(device) avg pool \(h)x\(w) k\(k)") { try weightedSum(ap(x), seed: 2) }
        }
        do { _ = try MaxPool2D(kernelSize: 3)(Tensor.zeros([1, 1, 2, 2], on: device)); Issue.record("expected an error") } catch {
            #expect("\(error)".contains("MaxPool2D(3x3)") && "\(error)".contains("[1, 1, 2, 2]"), "\(error)")
        }
    }

    @Test(.enabled(if: TestDevices.openCLAvailable, TestDevices.skipReason))
    func smallCNNGivesTheSameOutputAndGradientsOnBothDevices() throws {
        func build(_ device: Device) -> Sequential {
            Sequential {
                Conv2D(inChannels: 1, outChannels: 4, kernelSize: 3, padding: 1, activation: .relu, seed: 1, device: device)
                BatchNorm(features: 4, device: device)
                MaxPool2D(kernelSize: 2)
                Conv2D(inChannels: 4, outChannels: 8, kernelSize: 3, stride: 2, seed: 2, device: device)
                AvgPool2D(kernelSize: 1)
                Flatten()
                Dense(inputSize: 8, outputSize: 3, seed: 3, device: device)
            }
        }
        let xv = testValues(5 * 1 * 8 * 8, seed: 7)
        var results: [[Float]] = []
        for device in [Device.cpu, TestDevices.openCL] {
            let model = build(device)
            let loss = try softmaxCrossEntropy(logits: model(try Tensor(xv, shape: [5, 1, 8, 8], on: device)),
                                               labels: Tensor([0, 1, 2, 1, 0], on: device))
            try loss.backward()
            results.append(try [loss.item()] + model.parameters.flatMap { try $0.grad!.toArray() })
        }
        expectClose(results[1], results[0].map(Double.init), rtol: 1e-3, atol: 1e-5, "CNN loss and gradients, opencl vs cpu")
        #expect(try build(.cpu).summary(inputShape: [1, 1, 8, 8]).contains("[1, 8, 1, 1]"))
    }
}
