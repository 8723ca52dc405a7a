import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// Plain Double loops for a grouped 2-D convolution and its backward (NCHW, weight [O, C/G, kh, kw]).
struct GroupedConvReference {
    let n: Int, c: Int, h: Int, w: Int, o: Int, k: (Int, Int), s: Int, p: (Int, Int), groups: Int
    var oh: Int { (h + 2 * p.0 - k.0) / s + 1 }
    var ow: Int { (w + 2 * p.1 - k.1) / s + 1 }
    var cg: Int { c / groups }

    /// Calls body(ni, oi, yy, xx, ci, i, j, xIndex, wIndex) for every product term that reads the image.
    func forEachTerm(_ body: (Int, Int, Int, Int, Int, Int) -> Void) {
        let og = o / groups
        for ni in 0..<n { for oi in 0..<o { for yy in 0..<oh { for xx in 0..<ow {
            let out = ((ni * o + oi) * oh + yy) * ow + xx
            let group = oi / og
            for cl in 0..<cg { for i in 0..<k.0 { for j in 0..<k.1 {
                let hi = yy * s - p.0 + i, wi = xx * s - p.1 + j
                guard hi >= 0, hi < h, wi >= 0, wi < w else { continue }
                let ci = group * cg + cl
                body(out, oi, ((ni * c + ci) * h + hi) * w + wi, ((oi * cg + cl) * k.0 + i) * k.1 + j, 0, 0)
            } } }
        } } } }
    }

    func forward(_ x: [Float], _ wt: [Float], _ b: [Float]?) -> [Double] {
        var y = [Double](repeating: 0, count: n * o * oh * ow)
        for idx in y.indices { y[idx] = Double(b?[(idx / (oh * ow)) % o] ?? 0) }
        forEachTerm { out, _, xi, wi, _, _ in y[out] += Double(wt[wi]) * Double(x[xi]) }
        return y
    }

    /// Gradients of Σ y ⊙ r with respect to x, the weight and the bias.
    func backward(_ x: [Float], _ wt: [Float], _ r: [Float]) -> (x: [Double], w: [Double], b: [Double]) {
        var gx = [Double](repeating: 0, count: x.count), gw = [Double](repeating: 0, count: wt.count)
        var gb = [Double](repeating: 0, count: o)
        for idx in r.indices { gb[(idx / (oh * ow)) % o] += Double(r[idx]) }
        forEachTerm { out, _, xi, wi, _, _ in
            gx[xi] += Double(wt[wi]) * Double(r[out])
            gw[wi] += Double(x[xi]) * Double(r[out])
        }
        return (gx, gw, gb)
    }
}

@Suite struct ConvLayerTests {
    /// Every kernel size (1, 3, 5) x stride (1, 2) x padding (0, 1, 2) on 7x9 images, batch 1 or 3, input channels
    /// 1, 3 or 5 in turn (18 geometries).
    static let grid: [(n: Int, c: Int, o: Int, k: Int, s: Int, p: Int)] = {
        var out: [(Int, Int, Int, Int, Int, Int)] = []
        var i = 0
        for k in [1, 3, 5] { for s in [1, 2] { for p in [0, 1, 2] {
            out.append(([1, 3][i % 2], [1, 3, 5][i % 3], [3, 5, 1][(i / 2) % 3], k, s, p))
            i += 1
        } } }
        return out
    }()

    @Test(arguments: TestDevices.all)
    func convForwardAndBackwardMatchDoubleLoopsOnTheIssueGrid(device: Device) throws {
        let (h, w) = (7, 9)
        for (index, g) in Self.grid.enumerated() {
            let conv = Conv2D(inChannels: g.c, outChannels: g.o, kernelSize: g.k, stride: g.s, padding: g.p,
                              biasInit: .uniform(low: -1, high: 1), seed: UInt64(10 + index), device: device)
            let ref = GroupedConvReference(n: g.n, c: g.c, h: h, w: w, o: g.o, k: (g.k, g.k), s: g.s, p: (g.p, g.p), groups: 1)
            let xv = testValues(g.n * g.c * h * w, seed: UInt64(100 + index))
            let x = try Tensor(xv, shape: [g.n, g.c, h, w], on: device, requiresGrad: true)
            let y = try conv(x)
            let what = "\(device) conv n\(g.n) c\(g.c) o\(g.o) k\(g.k) s\(g.s) p\(g.p)"
            #expect(y.shape == [g.n, g.o, ref.oh, ref.ow], "\(what)")
            expectClose(try y.toArray(), ref.forward(xv, try conv.weight.toArray(), try conv.bias!.toArray()), rtol: 1e-4, atol: 1e-5, what)
            let r = testValues(y.count, seed: UInt64(200 + index))
            try (y * Tensor(r, shape: y.shape, on: device)).sum().backward()
            let expected = ref.backward(xv, try conv.weight.toArray(), r)
            expectClose(try x.grad!.toArray(), expected.x, rtol: 1e-4, atol: 1e-5, "\(what) input grad")
            expectClose(try conv.weight.grad!.toArray(), expected.w, rtol: 1e-4, atol: 1e-4, "\(what) weight grad")
            expectClose(try conv.bias!.grad!.toArray(), expected.b, rtol: 1e-4, atol: 1e-4, "\(what) bias grad")
        }
    }

    @Test(arguments: TestDevices.all)
    func groupedAndSamePaddedConvolutionsMatchDoubleLoopsAndFiniteDifferences(device: Device) throws {
        // (channels in, out, groups, kernel, stride, padding); groups == channels is depthwise.
        let cases: [(c: Int, o: Int, groups: Int, k: Int, s: Int, p: Conv2D.Padding)] = [
            (6, 4, 2, 3, 1, .explicit(rows: 1, columns: 1)),
            (3, 3, 3, 3, 2, .explicit(rows: 1, columns: 0)),
            (5, 10, 5, 5, 1, .same),
            (3, 2, 1, 3, 1, .same),
            (2, 3, 1, 4, 1, .same),   // even: PyTorch pads 1 above and left, 2 below and right
        ]
        let (n, h, w) = (3, 7, 9)
        for (index, t) in cases.enumerated() {
            let conv = Conv2D(inChannels: t.c, outChannels: t.o, kernelSize: t.k, stride: t.s, padding: t.p, groups: t.groups,
                              biasInit: .uniform(low: -1, high: 1), seed: UInt64(30 + index), device: device)
            #expect(conv.weight.shape == [t.o, t.c / t.groups, t.k, t.k])
            // Same padding: (k - 1) / 2 above and left, the rest below and right; the reference pads (k - 1) / 2
            // on both sides and, for an even kernel, the image gets one more zero row and column below and right.
            let pad = t.p == .same ? ((t.k - 1) / 2, (t.k - 1) / 2) : conv.padding
            let extra = t.p == .same && t.k % 2 == 0 ? 1 : 0
            let ref = GroupedConvReference(n: n, c: t.c, h: h + extra, w: w + extra, o: t.o, k: (t.k, t.k), s: t.s, p: pad, groups: t.groups)
            let xv = testValues(n * t.c * h * w, seed: UInt64(300 + index))
            let x = try Tensor(xv, shape: [n, t.c, h, w], on: device, requiresGrad: true)
            let y = try conv(x)
            let what = "\(device) \(conv.layerDescription)"
            if t.p == .same { #expect(y.shape == [n, t.o, h, w], "\(what): same padding keeps 7x9") }
            #expect(y.shape == [n, t.o, ref.oh, ref.ow], "\(what)")
            // The image as the reference sees it (with the extra zero row and column for an even kernel).
            var xr = [Float](repeating: 0, count: n * t.c * (h + extra) * (w + extra))
            for plane in 0..<(n * t.c) { for i in 0..<h { for j in 0..<w {
                xr[(plane * (h + extra) + i) * (w + extra) + j] = xv[(plane * h + i) * w + j]
            } } }
            expectClose(try y.toArray(), ref.forward(xr, try conv.weight.toArray(), try conv.bias!.toArray()), rtol: 1e-4, atol: 1e-5, what)
            let r = testValues(y.count, seed: UInt64(400 + index))
            try (y * Tensor(r, shape: y.shape, on: device)).sum().backward()
            let expected = ref.backward(xr, try conv.weight.toArray(), r)
            var gx: [Double] = []
            for plane in 0..<(n * t.c) { for i in 0..<h { for j in 0..<w { gx.append(expected.x[(plane * (h + extra) + i) * (w + extra) + j]) } } }
            expectClose(try x.grad!.toArray(), gx, rtol: 1e-4, atol: 1e-5, "\(what) input grad")
            expectClose(try conv.weight.grad!.toArray(), expected.w, rtol: 1e-4, atol: 1e-4, "\(what) weight grad")
            expectClose(try conv.bias!.grad!.toArray(), expected.b, rtol: 1e-4, atol: 1e-4, "\(what) bias grad")
        }
        // Finite differences through a grouped, same-padded convolution with a fused activation.
        let conv = Conv2D(inChannels: 4, outChannels: 2, kernelSize: 3, padding: .same, groups: 2, activation: .tanh,
                          biasInit: .uniform(low: -0.5, high: 0.5), seed: 8, device: device)
        let x = try Tensor(testValues(2 * 4 * 3 * 4, seed: 9), shape: [2, 4, 3, 4], on: device, requiresGrad: true)
        try GradientCheck.check([("x", x)] + conv.namedTensors, eps: 5e-3, "\(device) grouped same Conv2D") {
            try weightedSum(conv(x), seed: 10)
        }
        #expect(conv.layerDescription == "Conv2D(4 -> 2, 3x3, padding same, groups 2, tanh)")
        let even = Conv2D(inChannels: 2, outChannels: 2, kernelSize: (2, 3), padding: .same, activation: .tanh,
                          biasInit: .uniform(low: -0.5, high: 0.5), seed: 11, device: device)
        let xe = try Tensor(testValues(2 * 2 * 3 * 4, seed: 12), shape: [2, 2, 3, 4], on: device, requiresGrad: true)
        #expect(try even(xe).shape == [2, 2, 3, 4])
        try GradientCheck.check([("x", xe)] + even.namedTensors, eps: 5e-3, "\(device) same Conv2D with a 2x3 kernel") {
            try weightedSum(even(xe), seed: 13)
        }
        do { _ = try conv(Tensor.zeros([1, 3, 5, 5], on: device)); Issue.record("expected a shape error") } catch {
            #expect("\(error)".contains("Conv2D(4 -> 2, 3x3") && "\(error)".contains("[1, 3, 5, 5]")
                    && "\(error)".contains("[2, 2, 3, 3]"), "\(error)")
        }
    }

    @Test func samePaddingWithAStrideStopsWithPyTorchsMessage() async {
        await #expect(processExitsWith: .failure) {
            _ = Conv2D(inChannels: 1, outChannels: 1, kernelSize: 3, stride: 2, padding: .same, device: .cpu)
        }
        await #expect(processExitsWith: .failure) {
            _ = Conv2D(inChannels: 3, outChannels: 4, kernelSize: 3, groups: 2, device: .cpu)
        }
    }

    @Test func convolutionInitializersUsePyTorchsFans() throws {
        // PyTorch: fan_in = weight.size(1)·receptive field, fan_out = weight.size(0)·receptive field.
        #expect(Initializer.fans([8, 3, 5, 5]) == (75, 200))
        #expect(Initializer.fans([16, 1, 3, 3]) == (9, 144))
        #expect(Initializer.fans([6, 2, 3, 1]) == (6, 18))
        for (groups, expectedFanIn) in [(1, 4 * 9), (4, 9)] {
            let conv = Conv2D(inChannels: 4, outChannels: 64, kernelSize: 3, groups: groups, weightInit: .heUniform, seed: 3, device: .cpu)
            let bound = (6 / Double(expectedFanIn)).squareRoot()
            let values = try conv.weight.toArray().map { Double(Swift.abs($0)) }
            #expect(values.max()! <= bound && values.max()! > 0.95 * bound, "He uniform bound √(6/\(expectedFanIn)), groups \(groups)")
            let xavier = try Conv2D(inChannels: 4, outChannels: 64, kernelSize: 3, groups: groups, weightInit: .xavierNormal,
                                seed: 4, device: .cpu).weight.toArray().map(Double.init)
            let std = (xavier.map { $0 * $0 }.reduce(0, +) / Double(xavier.count)).squareRoot()
            let expectedStd = (2 / Double(expectedFanIn + 64 * 9)).squareRoot()
            #expect(Swift.abs(std / expectedStd - 1) < 0.1, "Xavier normal std \(std), expected \(expectedStd), groups \(groups)")
        }
    }

    @Test(arguments: TestDevices.all)
    func weightDecayUpdatesConvolutionWeights(device: Device) throws {
        let (lr, wd): (Float, Float) = (0.1, 0.05)
        for optimizerName in ["SGD", "AdamW"] {
            let conv = Conv2D(inChannels: 2, outChannels: 3, kernelSize: 3, padding: 1, bias: false, seed: 5, device: device)
            let w0 = try conv.weight.toArray()
            let optimizer: any Optimizer = optimizerName == "SGD"
                ? try SGD(parameters: conv.parameters, learningRate: lr, weightDecay: wd)
                : try AdamW(parameters: conv.parameters, learningRate: lr, weightDecay: wd)
            let x = try Tensor(testValues(2 * 2 * 4 * 5, seed: 6), shape: [2, 2, 4, 5], on: device)
            try weightedSum(conv(x), seed: 7).backward()
            let g = try conv.weight.grad!.toArray()
            try optimizer.step()
            let expected: [Double] = zip(w0, g).map { w, g in
                let (w, g, lr, wd) = (Double(w), Double(g), Double(lr), Double(wd))
                if optimizerName == "SGD" { return w - lr * (g + wd * w) }
                // AdamW, first step: m̂ = g, v̂ = g², so the Adam step is lr·g / (|g| + ε).
                return w * (1 - lr * wd) - lr * g / (Swift.abs(g) + 1e-8)
            }
            expectClose(try conv.weight.toArray(), expected, rtol: 1e-5, atol: 1e-6, "\(device) \(optimizerName) weight decay on a conv weight")
        }
    }

    @Test(arguments: TestDevices.all)
    func batchNorm2dTrainAndEvalMatchADoubleReference(device: Device) throws {
        let (n, c, h, w) = (3, 2, 3, 5)
        let bn = BatchNorm(features: c, device: device)
        #expect(bn.momentum == 0.1 && bn.epsilon == 1e-5)
        let gamma: [Float] = [1.5, -0.5], beta: [Float] = [0.2, -0.1]
        try bn.setTensor("weight", Tensor(gamma, on: device))
        try bn.setTensor("bias", Tensor(beta, on: device))
        var runningMean = [0.0, 0.0], runningVar = [1.0, 1.0]
        let m = Double(n * h * w)
        for step in 0..<2 {
            let xv = testValues(n * c * h * w, seed: UInt64(50 + step)).map { $0 * Float(2 + step) + 0.5 }
            let y = try bn(try Tensor(xv, shape: [n, c, h, w], on: device)).toArray()
            var expected = [Double](repeating: 0, count: xv.count)
            for ci in 0..<c {
                var indices: [Int] = []
                for ni in 0..<n { for s in 0..<(h * w) { indices.append((ni * c + ci) * h * w + s) } }
                let mean = indices.reduce(0.0) { $0 + Double(xv[$1]) } / m
                let variance = indices.reduce(0.0) { $0 + (Double(xv[$1]) - mean) * (Double(xv[$1]) - mean) } / m
                for i in indices {
                    expected[i] = (Double(xv[i]) - mean) / (variance + 1e-5).squareRoot() * Double(gamma[ci]) + Double(beta[ci])
                }
                runningMean[ci] = 0.9 * runningMean[ci] + 0.1 * mean
                runningVar[ci] = 0.9 * runningVar[ci] + 0.1 * variance * m / (m - 1)
            }
            expectClose(y, expected, rtol: 1e-4, atol: 1e-4, "\(device) BatchNorm2d train step \(step)")
        }
        expectClose(try bn.runningMean.toArray(), runningMean, rtol: 1e-5, atol: 1e-6, "\(device) running_mean after 2 steps")
        expectClose(try bn.runningVar.toArray(), runningVar, rtol: 1e-5, atol: 1e-6, "\(device) unbiased running_var after 2 steps")
        #expect(try bn.numBatchesTracked.toArray() == [2])
        bn.eval()
        let xv = testValues(2 * c * h * w, seed: 60)
        let y = try bn(try Tensor(xv, shape: [2, c, h, w], on: device)).toArray()
        let expected = xv.indices.map { i -> Double in
            let ci = (i / (h * w)) % c
            return (Double(xv[i]) - runningMean[ci]) / (runningVar[ci] + 1e-5).squareRoot() * Double(gamma[ci]) + Double(beta[ci])
        }
        expectClose(y, expected, rtol: 1e-4, atol: 1e-5, "\(device) BatchNorm2d eval")
        #expect(try bn.numBatchesTracked.toArray() == [2], "eval batches are not counted")
        expectClose(try bn.runningMean.toArray(), runningMean, rtol: 1e-5, atol: 1e-6, "eval leaves running_mean alone")
    }

    @Test(arguments: TestDevices.all)
    func globalAveragePoolingAndReshape(device: Device) throws {
        let (n, c, h, w) = (3, 5, 7, 9)
        let xv = testValues(n * c * h * w, seed: 70)
        let x = try Tensor(xv, shape: [n, c, h, w], on: device, requiresGrad: true)
        let pool = GlobalAvgPool2D()
        let y = try pool(x)
        #expect(y.shape == [n, c] && pool.torchModuleCount == 2)
        let expected = (0..<(n * c)).map { plane in (0..<(h * w)).reduce(0.0) { $0 + Double(xv[plane * h * w + $1]) } / Double(h * w) }
        expectClose(try y.toArray(), expected, rtol: 1e-5, atol: 1e-6, "\(device) GlobalAvgPool2D")
        let small = try Tensor(testValues(2 * 3 * 2 * 3, seed: 71), shape: [2, 3, 2, 3], on: device, requiresGrad: true)
        try GradientCheck.check([("x", small)], eps: 5e-3, "\(device) GlobalAvgPool2D") { try weightedSum(pool(small), seed: 72) }
        do { _ = try pool(Tensor.zeros([2, 3], on: device)); Issue.record("expected a shape error") } catch {
            #expect("\(error)".contains("GlobalAvgPool2D") && "\(error)".contains("[2, 3]"), "\(error)")
        }
        let reshape = Reshape([1, 4, 5])
        let flat = try Tensor(testValues(2 * 20, seed: 73), shape: [2, 20], on: device)
        #expect(try reshape(flat).shape == [2, 1, 4, 5])
        #expect(try reshape(flat.reshaped([2, 1, 4, 5])).shape == [2, 1, 4, 5])
        #expect(try reshape(flat).toArray() == flat.toArray())
        let flatLeaf = try Tensor(testValues(2 * 20, seed: 74), shape: [2, 20], on: device, requiresGrad: true)
        try GradientCheck.check([("x", flatLeaf)], eps: 5e-3, "\(device) Reshape") { try weightedSum(reshape(flatLeaf).square(), seed: 75) }
        do { _ = try reshape(Tensor.zeros([2, 21], on: device)); Issue.record("expected a shape error") } catch {
            #expect("\(error)".contains("Reshape([1, 4, 5])") && "\(error)".contains("[2, 21]"), "\(error)")
        }
    }

    /// A finite-difference check that tolerates ReLU kinks: an element whose central difference with `eps`
    /// differs from autograd is taken again with `eps / 2`; where the two differences disagree, a kink lies within
    /// `eps` of the point and the element is skipped, else the finer one must match.
    /// At most `maxSkipped` of all the elements may be skipped; every other one must match autograd.
    static func checkAcrossKinks(_ tensors: [(String, Tensor)], eps: Float, maxSkipped: Double = 0.1, _ what: String,
                                 _ f: () throws -> Tensor) throws {
        for (_, t) in tensors { t.zeroGrad() }
        try f().backward()
        var skipped = 0, total = 0
        for (name, t) in tensors {
            let grad = try t.grad!.toArray()
            var values = try t.toArray()
            func difference(_ i: Int, _ e: Float) throws -> Double {
                let original = values[i]
                values[i] = original + e; GradientCheck.overwrite(t, values)
                let fp = Double(try withNoGrad { try f() }.item())
                values[i] = original - e; GradientCheck.overwrite(t, values)
                let fm = Double(try withNoGrad { try f() }.item())
                values[i] = original; GradientCheck.overwrite(t, values)
                return (fp - fm) / (Double(original + e) - Double(original - e))
            }
            for i in values.indices {
                total += 1
                func agrees(_ numeric: Double) -> Bool { Swift.abs(Double(grad[i]) - numeric) <= 3e-3 + 2e-2 * Swift.abs(numeric) }
                let coarse = try difference(i, eps)
                if agrees(coarse) { continue }
                let fine = try difference(i, eps / 2)
                guard Swift.abs(coarse - fine) <= 2e-3 + 1e-2 * Swift.abs(fine) else { skipped += 1; continue }
                #expect(agrees(fine), "\(what): d/d\(name)[\(i)] is \(grad[i]), finite differences \(fine)")
            }
        }
        #expect(Double(skipped) <= maxSkipped * Double(total), "\(what): \(skipped) of \(total) elements sit at a kink")
    }

    @Test(arguments: TestDevices.all)
    func residualBlockMatchesItsDefinitionAndFiniteDifferences(device: Device) throws {
        for (cin, cout, stride) in [(1, 1, 1), (1, 2, 2)] {
            let block = ResidualBlock(inChannels: cin, outChannels: cout, stride: stride, seed: 11, device: device)
            var keys = ["conv1.weight"] + ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"].map { "bn1." + $0 }
            keys += ["conv2.weight"] + ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"].map { "bn2." + $0 }
            if cin != cout || stride != 1 {
                keys += ["downsample.0.weight"] + ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"].map { "downsample.1." + $0 }
            }
            #expect(block.namedTensors.map(\.0) == keys)
            #expect((block.downsample != nil) == (cin != cout || stride != 1))
            // Non-trivial batch norm parameters so every path matters.
            for (name, t) in block.namedTensors where name.hasSuffix(".weight") && t.rank == 1 {
                try block.setTensor(name, Tensor(testValues(t.count, seed: 12).map { $0 + 1.5 }, shape: t.shape, on: device))
            }
            for (name, t) in block.namedTensors where name.hasSuffix(".bias") {
                try block.setTensor(name, Tensor(testValues(t.count, seed: 13).map { $0 * 0.3 }, shape: t.shape, on: device))
            }
            let x = try Tensor(testValues(2 * cin * 3 * 4, seed: 14), shape: [2, cin, 3, 4], on: device, requiresGrad: true)
            // The definition from its parts.
            let y = try block(x)
            let inner = try block.bn2(block.conv2(block.bn1(block.conv1(x)).relu()))
            let skip = try block.downsample?(x) ?? x
            expectClose(try y.toArray(), try (inner + skip).relu().toArray().map(Double.init), rtol: 1e-6, atol: 1e-6, "\(device) block")
            #expect(y.shape == [2, cout, stride == 1 ? 3 : 2, stride == 1 ? 4 : 2])
            // Train mode (batch statistics) for both blocks, eval mode (running statistics) for the projection.
            for mode in stride == 1 ? ["train"] : ["train", "eval"] {
                if mode == "eval" { block.eval() }
                try Self.checkAcrossKinks((mode == "train" ? [("x", x)] : []) + block.namedTensors.filter { $0.1.requiresGrad },
                                          eps: 2e-3, "\(device) \(block.layerDescription) \(mode)") {
                    try weightedSum(block(x), seed: 15)
                }
            }
            // Eval mode reaches every batch normalization.
            block.eval()
            #expect(!block.bn1.isTraining && !block.bn2.isTraining && !block.conv1.isTraining)
            if let downsample = block.downsample { #expect(!(downsample.layers[1] as! BatchNorm).isTraining) }
            let before = try block.bn1.numBatchesTracked.toArray()
            _ = try block(x)
            #expect(try block.bn1.numBatchesTracked.toArray() == before)
        }
        let block = ResidualBlock(inChannels: 3, outChannels: 4, seed: 1, device: device)
        do { _ = try block(Tensor.zeros([1, 4, 5, 5], on: device)); Issue.record("expected a shape error") } catch {
            #expect("\(error)".contains("ResidualBlock(3 -> 4, projection)") && "\(error)".contains("[1, 4, 5, 5]"), "\(error)")
        }
    }

    static let bnKeys = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]

    @Test func fashionCNNHasPyTorchsKeysAndShapes() throws {
        let model = ConvNets.fashionCNN(seed: 1, device: .cpu)
        let expected = ["1.weight"] + Self.bnKeys.map { "2." + $0 } + ["5.weight"] + Self.bnKeys.map { "6." + $0 }
            + ["10.weight", "10.bias", "12.weight", "12.bias"]
        #expect(model.namedTensors.map(\.0) == expected)
        #expect(model.stateDict()["1.weight"]!.shape == [32, 1, 3, 3] && model.stateDict()["5.weight"]!.shape == [64, 32, 3, 3])
        #expect(model.stateDict()["10.weight"]!.shape == [128, 3136] && model.stateDict()["12.weight"]!.shape == [10, 128])
        #expect(model.parameterCount == 288 + 64 + 18432 + 128 + 3136 * 128 + 128 + 1280 + 10)
        model.eval()
        let flat = try Tensor(testValues(2 * 784, seed: 1), shape: [2, 784], on: .cpu)
        let y = try withNoGrad { try model(flat) }
        #expect(y.shape == [2, 10])
        #expect(try withNoGrad { try model(flat.reshaped([2, 1, 28, 28])) }.toArray() == y.toArray())
        // fit takes flat rows, as MNIST.load gives them.
        let data = try Dataset(features: Tensor(testValues(8 * 784, seed: 2).map { ($0 + 1) / 2 }, shape: [8, 784], on: .cpu),
                               targets: Tensor([0, 1, 2, 3, 4, 5, 6, 7], on: .cpu))
        let trained = ConvNets.fashionCNN(seed: 5, device: .cpu)
        let history = try trained.fit(data, epochs: 1, batchSize: 4, loss: .softmaxCrossEntropy,
                                      optimizer: try SGD(parameters: trained.parameters, learningRate: 0.01), verbosity: .silent)
        #expect(try history.epochs.count == 1 && trained.stateDict()["2.num_batches_tracked"]!.toArray() == [2])
        let again = ConvNets.fashionCNN(seed: 1, device: .cpu), other = ConvNets.fashionCNN(seed: 2, device: .cpu)
        #expect(try again.namedTensors.map { try $0.1.toArray() } == model.namedTensors.map { try $0.1.toArray() })
        #expect(try other.namedTensors[0].1.toArray() != model.namedTensors[0].1.toArray())
    }

    @Test func resnetHasPyTorchsKeysAndShapes() throws {
        func blockKeys(_ prefix: String, projection: Bool) -> [String] {
            var keys = ["conv1.weight"] + Self.bnKeys.map { "bn1." + $0 } + ["conv2.weight"] + Self.bnKeys.map { "bn2." + $0 }
            if projection { keys += ["downsample.0.weight"] + Self.bnKeys.map { "downsample.1." + $0 } }
            return keys.map { prefix + $0 }
        }
        for depth in [1, 2] {
            let model = ConvNets.resnet(depth: depth, seed: 3, device: .cpu)
            var expected = ["1.weight"] + Self.bnKeys.map { "2." + $0 }
            for (stage, projection) in [(4, false), (5, true), (6, true)] {
                for b in 0..<depth { expected += blockKeys("\(stage).\(b).", projection: projection && b == 0) }
            }
            expected += ["9.weight", "9.bias"]
            #expect(model.namedTensors.map(\.0) == expected, "depth \(depth)")
            let convs = model.namedTensors.filter { $0.1.rank == 4 }.count
            #expect(convs + 1 - 2 == 6 * depth + 2, "6·depth + 2 layers with weights, the 2 projections not counted")
            #expect(model.stateDict()["5.0.downsample.0.weight"]!.shape == [32, 16, 1, 1])
        }
        let model = ConvNets.resnet(depth: 1, classes: 7, inChannels: 3, imageSize: 12, seed: 3, device: .cpu)
        let y = try model(try Tensor(testValues(2 * 3 * 144, seed: 2), shape: [2, 432], on: .cpu))
        #expect(y.shape == [2, 7])
        let summary = try model.summary(inputShape: [1, 432])
        #expect(summary.contains("GlobalAvgPool2D") && summary.contains("[1, 64]") && summary.contains("[1, 3, 12, 12]"), "\(summary)")
        // Train/eval reaches the blocks inside the stages.
        model.eval()
        let block = (model.layers[5] as! Sequential).layers[0] as! ResidualBlock
        #expect(!block.bn2.isTraining && !(block.downsample!.layers[1] as! BatchNorm).isTraining)
        model.train()
        #expect(block.bn2.isTraining)
        // Checkpoint keys round-trip through setTensor in nested containers.
        let copy = ConvNets.resnet(depth: 1, classes: 7, inChannels: 3, imageSize: 12, seed: 4, device: .cpu)
        try copy.loadStateDict(model.stateDict())
        #expect(try copy.namedTensors.map { try $0.1.toArray() } == model.namedTensors.map { try $0.1.toArray() })
    }

    @Test(arguments: TestDevices.all)
    func tinyCNNFitsASmallFixedSet(device: Device) throws {
        // 24 images 8x8 of 3 classes: a bright horizontal bar, a vertical bar, or a bright corner square, at random
        // places, on noise.
        let (count, side) = (24, 8)
        var g = SeededGenerator(seed: 81)
        var pixels: [Float] = [], labels: [Float] = []
        for i in 0..<count {
            let label = i % 3
            var image = (0..<(side * side)).map { _ in Float(g.nextDouble() * 0.3) }
            let a = Int(g.next() % 6), b = Int(g.next() % 6)
            for t in 0..<3 {
                switch label {
                case 0: image[a * side + b + t] = 1
                case 1: image[(a + t) * side + b] = 1
                default: image[(a + t / 2) * side + b + t % 2] = 1
                }
            }
            pixels += image
            labels.append(Float(label))
        }
        let x = try Tensor(pixels, shape: [count, 1, side, side], on: device)
        let y = Tensor(labels, on: device)
        let model = Sequential {
            Conv2D(inChannels: 1, outChannels: 8, kernelSize: 3, padding: .same, bias: false, seed: 1, device: device)
            BatchNorm(features: 8, device: device)
            ReLU()
            ResidualBlock(inChannels: 8, outChannels: 8, seed: 2, device: device)
            GlobalAvgPool2D()
            Dense(inputSize: 8, outputSize: 3, seed: 3, device: device)
        }
        let optimizer = try Adam(parameters: model.parameters, learningRate: 0.03)
        var loss: Float = .infinity
        for _ in 0..<60 {
            optimizer.zeroGrad()
            let l = try softmaxCrossEntropy(logits: model(x), labels: y)
            try l.backward()
            try optimizer.step()
            loss = try l.item()
        }
        model.eval()
        let predicted = try withNoGrad { try model(x).argmax() }.toArray()
        let correct = zip(predicted, labels).filter { $0 == $1 }.count
        #expect(loss < 0.2 && correct == count, "\(device): loss \(loss), \(correct)/\(count) correct")
    }
}
