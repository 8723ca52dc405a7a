import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// Every OpenCL kernel once, at small odd shapes, through the `Backend` interface, with the CPU backend's result
/// as the reference. `StrictKernelTests` runs the set on every OpenCL device with its own limits; under
/// `scripts/oclgrind-check` that device is Oclgrind, which reports races, reads past a buffer's end, divergent
/// barriers and API misuse. `CappedWorkGroupTests` runs it on opencl:0 with the work-group size capped, as on a
/// smaller GPU, and checks that the launches changed.
enum KernelExercise {
    /// One op's output on `backend`: a name and the values it produced.
    typealias Output = (name: String, values: [Float])

    static func upload(_ backend: Backend, _ values: [Float]) -> DeviceBuffer {
        let buffer = backend.allocate(values.count)
        values.withUnsafeBufferPointer { backend.write($0, to: buffer, offset: 0) }
        return buffer
    }

    static func download(_ backend: Backend, _ buffer: DeviceBuffer, _ count: Int) -> [Float] {
        var out = [Float](repeating: 0, count: count)
        out.withUnsafeMutableBufferPointer { backend.read(buffer, offset: 0, count: count, into: $0) }
        return out
    }

    /// The GEMM kernels of `OpenCLBackend` (every variant; the CPU ignores the choice).
    static let gemmKernels: [GemmKernelChoice.Kernel] = GemmTuningTests.kernels

    /// Runs every op on `backend` and returns the outputs in a fixed order.
    static func run(on backend: Backend) -> [Output] {
        var outputs: [Output] = []
        func record(_ name: String, _ buffer: DeviceBuffer, _ count: Int) {
            outputs.append((name, download(backend, buffer, count)))
        }
        // GEMM: every variant, every transpose, bias + activation, at shapes with whole blocks and edges.
        let cl = backend as? OpenCLBackend
        // 37 x 67 spans several 32 x 32 tiles and several register blocks of every size.
        for (m, n, k) in [(13, 35, 5), (3, 7, 9), (37, 67, 19)] {
            for transA in [false, true] {
                for transB in [false, true] {
                    let a = upload(backend, testValues(m * k, seed: UInt64(m + k)))
                    let b = upload(backend, testValues(k * n, seed: UInt64(n + 3 * k)))
                    let bias = upload(backend, testValues(n, seed: 5))
                    let shape = GemmShape(m: m, n: n, k: k, transA: transA, transB: transB, alpha: 0.75, beta: 0)
                    for kernel in (cl == nil ? [GemmKernelChoice.Kernel.direct] : gemmKernels) {
                        let c = backend.allocate(m * n)
                        if let cl {
                            cl.gemm(shape, a: a, b: b, c: c, bias: bias, activation: .relu, kernel: kernel)
                        } else {
                            backend.gemm(shape, a: a, b: b, c: c, bias: bias, activation: .relu)
                        }
                        let values = download(backend, c, m * n)
                        // The CPU runs one product; it stands for every variant's expected result.
                        let copies = cl == nil ? gemmKernels.count : 1
                        for _ in 0..<copies { outputs.append(("gemm \(m)x\(n)x\(k) tA=\(transA) tB=\(transB)", values)) }
                    }
                }
            }
        }
        // Reductions along rows (work-group tree) and along a strided axis (whole, and split in slices).
        let x = testValues(7 * 300, seed: 11)
        let xb = upload(backend, x)
        let longRow = upload(backend, testValues(9001, seed: 12))
        for op in [ReduceOp.sum, .mean, .max, .min] {
            // A row long enough to be split over several work-groups (partials, then a second launch); first, so
            // that the last reduce_rows launch is a whole-row one (a test below reads its work-group size).
            let long = backend.allocate(1)
            backend.reduce(op, x: longRow, out: long, outer: 1, length: 9001, inner: 1)
            record("reduce_rows \(op) split, length 9001", long, 1)
            for length in [1, 33, 300] {
                let out = backend.allocate(7)
                backend.reduce(op, x: xb, out: out, outer: 7, length: length, inner: 1)
                record("reduce_rows \(op) length \(length)", out, 7)
            }
            let out = backend.allocate(7 * 5)
            backend.reduce(op, x: xb, out: out, outer: 7, length: 3, inner: 5)
            record("reduce_strided \(op)", out, 35)
            // The length split into 7 slices (60 is not a multiple of 7), then the partials reduced.
            let split = backend.allocate(7 * 5)
            if let cl {
                cl.reduceStrided(op, x: xb, out: split, outer: 7, length: 60, inner: 5, parts: 7)
            } else {
                backend.reduce(op, x: xb, out: split, outer: 7, length: 60, inner: 5)
            }
            record("reduce_strided \(op) split, length 60", split, 35)
        }
        let am = backend.allocate(7)
        backend.argmax(x: xb, out: am, rows: 7, cols: 33)
        record("argmax", am, 7)
        // Softmax and its gradient.
        for log in [false, true] {
            let y = backend.allocate(5 * 33), gx = backend.allocate(5 * 33)
            backend.softmax(x: xb, out: y, rows: 5, cols: 33, log: log)
            record("softmax log=\(log)", y, 5 * 33)
            let gy = upload(backend, testValues(5 * 33, seed: 12))
            backend.softmaxBackward(y: y, gy: gy, gx: gx, rows: 5, cols: 33, log: log)
            record("softmax backward log=\(log)", gx, 5 * 33)
        }
        // Transpose (tiles with edges) and elementwise.
        let t = backend.allocate(3 * 19 * 23)
        backend.transpose(x: xb, out: t, batch: 3, rows: 19, cols: 23)
        record("transpose", t, 3 * 19 * 23)
        // The sequence ops: a causal softmax (7 queries over 33 keys, rows of 3 heads) and permutes of 4 and 6 axes.
        let causal = backend.allocate(3 * 7 * 33)
        backend.causalSoftmax(x: xb, out: causal, rows: 3 * 7, cols: 33, queries: 7)
        record("causal softmax", causal, 3 * 7 * 33)
        for (shape, axes) in [([3, 7, 5, 11], [0, 2, 1, 3]), ([2, 3, 5, 2, 3, 2, 3], [6, 0, 5, 1, 4, 2, 3])] {
            let layout = PermuteLayout.make(shape: shape, axes: axes)!
            let p = backend.allocate(layout.count)
            backend.permute(x: xb, out: p, layout: layout)
            record("permute \(shape) by \(axes)", p, layout.count)
        }
        // Layer normalization of 7 rows of 33, with and without the affine, forward and backward.
        let lnGy = upload(backend, testValues(7 * 33, seed: 13)), lnW = upload(backend, testValues(33, seed: 14))
        for affine in [true, false] {
            let y = backend.allocate(7 * 33), mean = backend.allocate(7), rstd = backend.allocate(7)
            let gx = backend.allocate(7 * 33), gw = backend.allocate(33), gb = backend.allocate(33)
            backend.layerNormForward(x: xb, y: y, mean: mean, rstd: rstd, weight: affine ? lnW : nil, bias: affine ? lnGy : nil,
                                     rows: 7, cols: 33, epsilon: 1e-5)
            backend.layerNormBackwardInput(x: xb, gy: lnGy, mean: mean, rstd: rstd, weight: affine ? lnW : nil, gx: gx, rows: 7, cols: 33)
            backend.layerNormBackwardParameters(x: xb, gy: lnGy, mean: mean, rstd: rstd, gweight: gw, gbias: affine ? gb : nil,
                                                rows: 7, cols: 33)
            record("layer norm affine=\(affine)", y, 7 * 33)
            record("layer norm rows affine=\(affine)", mean, 7)
            record("layer norm backward input affine=\(affine)", gx, 7 * 33)
            record("layer norm backward weight affine=\(affine)", gw, 33)
            if affine { record("layer norm backward bias", gb, 33) }
        }
        // Fused attention forward and backward: 5 queries over 7 keys of 2 groups, causal with a padding mask (head
        // size 5), and unmasked with 67 dimensions (two passes of the kernels' 64).
        for (d, causal) in [(5, true), (67, false)] {
            var shape = AttentionShape(batch: 2, heads: 1, queries: 5, keys: 7, headSize: d, scale: 0.4, causal: causal)
            let q = upload(backend, testValues(10 * d, seed: 21)), k = upload(backend, testValues(14 * d, seed: 22))
            let v = upload(backend, testValues(14 * d, seed: 23)), gOut = upload(backend, testValues(10 * d, seed: 24))
            let mask = causal ? upload(backend, (0..<14).map { $0 % 7 == 4 ? -Float.infinity : 0 }) : nil
            if causal { shape.maskStrides = [7, 0, 0, 1] }
            let out = backend.allocate(10 * d), lse = backend.allocate(10), delta = backend.allocate(10)
            let gq = backend.allocate(10 * d), gk = backend.allocate(14 * d), gv = backend.allocate(14 * d)
            backend.attentionForward(shape, q: q, k: k, v: v, mask: mask, out: out, lse: lse)
            backend.attentionBackward(shape, q: q, k: k, v: v, mask: mask, out: out, lse: lse, gOut: gOut, delta: delta,
                                      gq: gq, gk: gk, gv: gv)
            for (name, buffer, n) in [("out", out, 10 * d), ("lse", lse, 10), ("delta", delta, 10), ("gq", gq, 10 * d),
                                      ("gk", gk, 14 * d), ("gv", gv, 14 * d)] {
                record("attention d=\(d) causal=\(causal) \(name)", buffer, n)
            }
        }
        // Every elementwise kernel: activations and their gradients, unary ops, scalar and binary ops (flat and
        // broadcast). NaN where both devices give NaN (log of a negative) counts as equal.
        let activations = TestActivations.all
        let gyb = upload(backend, testValues(37, seed: 14))
        for activation in activations {
            let y = backend.allocate(37), gx = backend.allocate(37)
            backend.unary(.activation(activation), x: xb, out: y, count: 37)
            record("activation \(activation)", y, 37)
            backend.activationBackward(activation, x: xb, y: y, gy: gyb, gx: gx, count: 37)
            record("activation backward \(activation)", gx, 37)
        }
        var unaries: [UnaryOp] = [.negate, .exp, .log, .sqrt, .abs, .square, .reciprocal, .rsqrt, .sign, .clamp(min: -0.25, max: 0.5)]
        for op in BinaryOp.allCases { unaries += [.scalar(op, 0.75, scalarFirst: false), .scalar(op, 0.75, scalarFirst: true)] }
        for op in unaries {
            let u = backend.allocate(37)
            backend.unary(op, x: xb, out: u, count: 37)
            record("unary \(op)", u, 37)
        }
        let (shape, layout) = BroadcastLayout.make([5, 7], [7])!
        let other = upload(backend, testValues(37, seed: 15))
        for op in BinaryOp.allCases {
            let bo = backend.allocate(shape.reduce(1, *))
            backend.binary(op, a: xb, b: other, out: bo, layout: layout)
            record("binary broadcast \(op)", bo, 35)
            let bf = backend.allocate(37)
            backend.binary(op, a: xb, b: other, out: bf, layout: .flat(37))
            record("binary \(op)", bf, 37)
        }
        // Gather, scatter, one-hot, random, fill, copy.
        let indices = upload(backend, [2, 0, 4, 2, -1, 9])
        let g = backend.allocate(6 * 7)
        backend.gatherRows(x: xb, rows: 5, indices: indices, out: g, count: 6, rowSize: 7)
        record("gather", g, 42)
        let sc = upload(backend, [Float](repeating: 0, count: 5 * 7))
        backend.scatterAddRows(gy: xb, indices: indices, out: sc, rows: 5, count: 6, rowSize: 7)
        record("scatter_add", sc, 35)
        let oh = backend.allocate(6 * 5)
        backend.oneHot(indices: indices, out: oh, count: 6, classes: 5)
        record("one_hot", oh, 30)
        let r = backend.allocate(29)
        backend.randomUniform(out: r, count: 29, seed: 42)
        record("random", r, 29)
        let f = backend.allocate(29)
        backend.fill(f, value: 0.5, offset: 3, count: 26)
        backend.copy(xb, sourceOffset: 1, to: f, destinationOffset: 0, count: 3)
        record("fill + copy", f, 29)
        // Convolution data movement: padding, stride, odd sizes.
        let geometry = ConvGeometry(batch: 2, channels: 3, height: 7, width: 5, kernelH: 3, kernelW: 2,
                                    strideH: 2, strideW: 1, padH: 1, padW: 1)
        let colsCount = geometry.batch * geometry.patchSize * geometry.positions
        let image = upload(backend, testValues(2 * 3 * 7 * 5, seed: 13))
        let cols = backend.allocate(colsCount)
        backend.im2col(x: image, cols: cols, geometry: geometry, padValue: -1)
        record("im2col", cols, colsCount)
        let back = backend.allocate(2 * 3 * 7 * 5)
        backend.col2im(cols: cols, x: back, geometry: geometry)
        record("col2im", back, 2 * 3 * 7 * 5)
        // Augmentation: random crop with zero padding and flip, odd sizes, padding past the image's size too.
        for (padding, flip) in [(2, true), (0, true), (9, false)] {
            let augmented = backend.allocate(2 * 3 * 7 * 5)
            backend.randomCropFlip(x: image, out: augmented, batch: 2, channels: 3, height: 7, width: 5,
                                   padding: padding, flip: flip, seed: 31)
            record("random_crop_flip padding \(padding) flip \(flip)", augmented, 2 * 3 * 7 * 5)
        }
        // The chunked convolution (conv_unfold, conv_fold, conv_gather_output, conv_scatter_output): a batch of 3
        // in chunks of 2 + 1, with a bias, and both gradients.
        let convGeometry = ConvGeometry(batch: 3, channels: 3, height: 7, width: 5, kernelH: 3, kernelW: 2,
                                        strideH: 2, strideW: 1, padH: 1, padW: 1)
        let outChannels = 4, outCount = 3 * outChannels * convGeometry.positions
        let convX = upload(backend, testValues(3 * 3 * 7 * 5, seed: 14))
        let convW = upload(backend, testValues(outChannels * convGeometry.patchSize, seed: 15))
        let convB = upload(backend, testValues(outChannels, seed: 16))
        let convGy = upload(backend, testValues(outCount, seed: 17))
        let twoImages = 2 * convGeometry.patchSize * convGeometry.positions
        let convY = backend.allocate(outCount)
        backend.conv2dForward(x: convX, weight: convW, bias: convB, y: convY, geometry: convGeometry,
                              outChannels: outChannels, chunkBudget: twoImages)
        record("conv2d forward", convY, outCount)
        implicitConvolution(on: backend, record)
        let convGx = backend.allocate(3 * 3 * 7 * 5), convGw = backend.allocate(outChannels * convGeometry.patchSize)
        backend.conv2dBackward(x: convX, weight: convW, gy: convGy, gx: convGx, gw: convGw, geometry: convGeometry,
                               outChannels: outChannels, chunkBudget: twoImages)
        record("conv2d input gradient", convGx, 3 * 3 * 7 * 5)
        record("conv2d weight gradient", convGw, outChannels * convGeometry.patchSize)
        // Both work splits of the chunked unfold and fold (OpenCL picks one by device type; here both run), on the
        // second image of a batch of 2: padding wider than the kernel reaches, and a 1x1 kernel with stride 2.
        let splitGeometries = [
            ConvGeometry(batch: 2, channels: 3, height: 7, width: 5, kernelH: 3, kernelW: 2, strideH: 2, strideW: 1, padH: 2, padW: 2),
            ConvGeometry(batch: 2, channels: 5, height: 7, width: 9, kernelH: 1, kernelW: 1, strideH: 2, strideW: 2, padH: 0, padW: 1),
        ]
        for (gi, sg) in splitGeometries.enumerated() {
            let pixels = sg.batch * sg.channels * sg.height * sg.width, colsOne = sg.patchSize * sg.positions
            let splitX = upload(backend, testValues(pixels, seed: UInt64(18 + gi)))
            let splitCols = upload(backend, testValues(colsOne, seed: UInt64(20 + gi)))
            for rowWise in [true, false] {
                let unfolded = backend.allocate(colsOne), folded = backend.allocate(pixels)
                backend.fill(folded, value: 7, offset: 0, count: pixels)   // image 0 must stay untouched
                if let cl {
                    cl.convUnfold(x: splitX, cols: unfolded, geometry: sg, firstImage: 1, images: 1, byRows: rowWise)
                    cl.convFold(cols: splitCols, x: folded, geometry: sg, firstImage: 1, images: 1, byPlanes: rowWise)
                } else {
                    backend.convUnfold(x: splitX, cols: unfolded, geometry: sg, firstImage: 1, images: 1)
                    backend.convFold(cols: splitCols, x: folded, geometry: sg, firstImage: 1, images: 1)
                }
                record("conv unfold geometry \(gi) rowWise \(rowWise)", unfolded, colsOne)
                record("conv fold geometry \(gi) rowWise \(rowWise)", folded, pixels)
            }
        }
        batchNorm(on: backend, record)
        // Max pooling (max_pool_forward, max_pool_backward): overlapping and padded windows, non-overlapping ones,
        // on [2, 3, 7, 5] with ties (values rounded to tenths).
        let poolX = upload(backend, testValues(2 * 3 * 7 * 5, seed: 45).map { ($0 * 10).rounded() / 10 })
        for (k, s, p) in [(3, 2, 1), (2, 2, 0), (3, 1, 0)] {
            let pg = ConvGeometry(batch: 2, channels: 3, height: 7, width: 5, kernelH: k, kernelW: k, strideH: s, strideW: s,
                                  padH: p, padW: p)
            let outCount = 2 * 3 * pg.outH * pg.outW
            let py = backend.allocate(outCount), argmax = backend.allocate(outCount)
            backend.maxPoolForward(x: poolX, y: py, argmax: argmax, geometry: pg)
            record("max_pool_forward \(k) \(s) \(p)", py, outCount)
            record("max_pool_forward argmax \(k) \(s) \(p)", argmax, outCount)
            let gx = backend.allocate(2 * 3 * 7 * 5)
            backend.maxPoolBackward(x: poolX, y: py, argmax: argmax, gy: upload(backend, testValues(outCount, seed: 46)), gx: gx,
                                    geometry: pg)
            record("max_pool_backward \(k) \(s) \(p)", gx, 2 * 3 * 7 * 5)
        }
        // Optimizer steps, each twice (first step, then with state).
        let n = 37
        func step(_ name: String, _ body: (DeviceBuffer, DeviceBuffer, Bool) -> Void) {
            let p = upload(backend, testValues(n, seed: 21)), grad = upload(backend, testValues(n, seed: 22))
            body(p, grad, true)
            body(p, grad, false)
            record(name, p, n)
        }
        for (momentum, nesterov) in [(Float(0), false), (0.9, false), (0.9, true)] {
            let buffer = backend.allocate(n)
            step("sgd momentum \(momentum) nesterov \(nesterov)") { p, grad, first in
                let h = SGDStepParameters(learningRate: 0.1, momentum: momentum, dampening: 0, weightDecay: 0.01,
                                          nesterov: nesterov, decoupled: false, first: first)
                backend.optimizerStep(.sgd(h, momentumBuffer: momentum == 0 ? nil : buffer), param: p, grad: grad, count: n)
            }
        }
        let sum = backend.allocate(n)
        step("adagrad") { p, grad, first in
            let h = AdagradStepParameters(learningRate: 0.1, weightDecay: 0, eps: 1e-10, initialAccumulatorValue: 0.1,
                                          first: first)
            backend.optimizerStep(.adagrad(h, sum: sum), param: p, grad: grad, count: n)
        }
        for (centered, momentum) in [(false, Float(0)), (true, 0), (false, 0.9), (true, 0.9)] {
            let square = backend.allocate(n), average = backend.allocate(n), momentumBuffer = backend.allocate(n)
            step("rmsprop centered \(centered) momentum \(momentum)") { p, grad, first in
                let h = RMSPropStepParameters(learningRate: 0.01, alpha: 0.99, eps: 1e-8, weightDecay: 0,
                                              momentum: momentum, centered: centered, first: first)
                backend.optimizerStep(.rmsprop(h, squareAverage: square, gradientAverage: centered ? average : nil,
                                               momentumBuffer: momentum == 0 ? nil : momentumBuffer),
                                      param: p, grad: grad, count: n)
            }
        }
        for amsgrad in [false, true] {
            let m1 = backend.allocate(n), m2 = backend.allocate(n), mx = backend.allocate(n)
            step("adam amsgrad \(amsgrad)") { p, grad, first in
                let h = AdamStepParameters(learningRate: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01,
                                           stepSize: 0.01, biasCorrection2Sqrt: 0.05, decoupled: true, amsgrad: amsgrad,
                                           first: first)
                backend.optimizerStep(.adam(h, expAvg: m1, expAvgSq: m2, maxExpAvgSq: amsgrad ? mx : nil),
                                      param: p, grad: grad, count: n)
            }
        }
        // Adam on 9 tensors at once: 8 in one multi-tensor launch of 64 work-items (several rounds each), 1 alone.
        for amsgrad in [false, true] {
            let sizes = [37, 1, 300, 64, 7, 129, 2, 65, 33]
            let tensors = sizes.enumerated().map { (k, n) in
                (p: upload(backend, testValues(n, seed: UInt64(80 + k))), g: upload(backend, testValues(n, seed: UInt64(90 + k))),
                 m: backend.allocate(n), v: backend.allocate(n), x: backend.allocate(n), n: n)
            }
            for first in [true, false] {
                let h = AdamStepParameters(learningRate: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01,
                                           stepSize: 0.01, biasCorrection2Sqrt: 0.05, decoupled: !amsgrad, amsgrad: amsgrad,
                                           first: first)
                let updates = tensors.map {
                    OptimizerUpdate(step: .adam(h, expAvg: $0.m, expAvgSq: $0.v, maxExpAvgSq: amsgrad ? $0.x : nil),
                                    param: $0.p, grad: $0.g, count: $0.n)
                }
                if let cl { cl.optimizerSteps(updates, items: 64) } else { backend.optimizerSteps(updates) }
            }
            for (k, t) in tensors.enumerated() {
                record("adam multi-tensor amsgrad \(amsgrad) tensor \(k)", t.p, t.n)
                record("adam multi-tensor amsgrad \(amsgrad) tensor \(k) v", amsgrad ? t.x : t.v, t.n)
            }
        }
        bookkeeping(on: backend, record)
        for (rows, cols) in [(1, 1), (7, 3), (33, 10)] {
            let n = rows * cols
            let gx = backend.allocate(n)
            let oneHot = upload(backend, (0..<n).map { $0 % cols == ($0 / cols) % cols ? 1 : 0 })
            backend.softmaxCrossEntropyBackward(logProbabilities: upload(backend, testValues(n, seed: 95).map { $0 - 2 }),
                                                oneHot: oneHot, seed: upload(backend, [0.75]), gx: gx, count: n,
                                                scale: 1 / Float(rows))
            record("softmax_xent_backward \(rows)x\(cols)", gx, n)
        }
        backend.synchronize()
        return outputs
    }

    /// Batch normalization's kernels, plain and fused.
    static func batchNorm(on backend: Backend, _ record: (String, DeviceBuffer, Int) -> Void) {
        let cl = backend as? OpenCLBackend
        // Batch normalization (bn_moments, bn_moments_combine, bn_apply, bn_backward_sums, bn_backward_sums_combine,
        // bn_backward_input): [3, 5, 7·9] and [1, 3, 1] (one value per channel: a work-group mostly idle) and [7, 3]
        // (2-D, inner 1). Also rows longer than a work-group (300 > 256) and several short rows per pass with idle
        // lanes (20 of 64). `parts` forces that many work-groups per channel on OpenCL (nil: the device's choice),
        // so that the two-stage sums run: slices that do not divide m (3·33 = 99 in 4), that split rows, that hold
        // several rows, more parts than values (clamped), and one channel of m = 5000 (the device may split it).
        let bnShapes: [(Int, Int, Int, Int?)] = [(3, 5, 63, nil), (1, 3, 1, nil), (7, 3, 1, nil), (2, 3, 300, nil),
                                                 (9, 2, 20, nil), (3, 5, 7, 2), (3, 5, 33, 4), (3, 5, 129, 3),
                                                 (7, 3, 1, 5), (1, 3, 1, 2), (5, 1, 1000, nil), (5, 1, 1000, 7)]
        for (outer, channels, inner, parts) in bnShapes {
            let total = outer * channels * inner
            let what = "\(outer)x\(channels)x\(inner) parts \(parts.map(String.init) ?? "auto")"
            let bnX = upload(backend, testValues(total, seed: 41)), bnGy = upload(backend, testValues(total, seed: 42))
            let bnW = upload(backend, testValues(channels, seed: 43)), bnB = upload(backend, testValues(channels, seed: 44))
            let mean = backend.allocate(channels), variance = backend.allocate(channels)
            if let cl {
                cl.batchNormMoments(x: bnX, mean: mean, variance: variance, outer: outer, channels: channels, inner: inner,
                                    parts: parts)
            } else {
                backend.batchNormMoments(x: bnX, mean: mean, variance: variance, outer: outer, channels: channels, inner: inner)
            }
            record("bn_moments mean \(what)", mean, channels)
            record("bn_moments variance \(what)", variance, channels)
            let y = backend.allocate(total)
            backend.batchNormApply(x: bnX, y: y, mean: mean, variance: variance, weight: bnW, bias: bnB, epsilon: 1e-5,
                                   outer: outer, channels: channels, inner: inner)
            record("bn_apply \(what)", y, total)
            let gw = backend.allocate(channels), gb = backend.allocate(channels)
            if let cl {
                cl.batchNormBackwardSums(x: bnX, gy: bnGy, mean: mean, variance: variance, gweight: gw, gbias: gb,
                                         epsilon: 1e-5, outer: outer, channels: channels, inner: inner, parts: parts)
            } else {
                backend.batchNormBackwardSums(x: bnX, gy: bnGy, mean: mean, variance: variance, gweight: gw, gbias: gb,
                                              epsilon: 1e-5, outer: outer, channels: channels, inner: inner)
            }
            record("bn_backward_sums weight \(what)", gw, channels)
            record("bn_backward_sums bias \(what)", gb, channels)
            for batchStatistics in [true, false] {
                let gx = backend.allocate(total)
                backend.batchNormBackwardInput(x: bnX, gy: bnGy, mean: mean, variance: variance, weight: bnW, gweight: gw,
                                               gbias: gb, gx: gx, epsilon: 1e-5, batchStatistics: batchStatistics,
                                               outer: outer, channels: channels, inner: inner)
                record("bn_backward_input \(what) batch statistics \(batchStatistics)", gx, total)
            }
                // The fusions: the running statistics' update in the moments' launches, the apply with a residual
            // and/or ReLU (a kernel per combination), the backward with its mask (the apply's output with ReLU)
            // and/or the residual's gradient.
            let runMean = upload(backend, testValues(channels, seed: 46)), runVar = upload(backend, testValues(channels, seed: 47))
            let tracked = upload(backend, [2])
            let running = BatchNormRunning(mean: runMean, variance: runVar, tracked: tracked, keep: 0.9, momentum: 0.1,
                                           varianceFactor: 0.1 * Float(outer * inner) / Float(max(outer * inner - 1, 1)))
            if let cl {
                cl.batchNormMoments(x: bnX, mean: mean, variance: variance, running: running, outer: outer,
                                    channels: channels, inner: inner, parts: parts)
            } else {
                backend.batchNormMoments(x: bnX, mean: mean, variance: variance, running: running, outer: outer,
                                         channels: channels, inner: inner)
            }
            record("bn_moments running mean \(what)", runMean, channels)
            record("bn_moments running variance \(what)", runVar, channels)
            record("bn_moments batches tracked \(what)", tracked, 1)
            for (withResidual, relu) in [(false, true), (true, false), (true, true)] {
                let fusion = "\(what) residual \(withResidual) relu \(relu)"
                let fusedY = backend.allocate(total)
                backend.batchNormApply(x: bnX, y: fusedY, mean: mean, variance: variance, weight: bnW, bias: bnB,
                                       residual: withResidual ? bnGy : nil, relu: relu, epsilon: 1e-5, outer: outer,
                                       channels: channels, inner: inner)
                record("bn_apply \(fusion)", fusedY, total)
                let mask = relu ? fusedY : nil
                if relu {
                    if let cl {
                        cl.batchNormBackwardSums(x: bnX, gy: bnGy, mask: mask, mean: mean, variance: variance, gweight: gw,
                                                 gbias: gb, epsilon: 1e-5, outer: outer, channels: channels, inner: inner,
                                                 parts: parts)
                    } else {
                        backend.batchNormBackwardSums(x: bnX, gy: bnGy, mask: mask, mean: mean, variance: variance,
                                                      gweight: gw, gbias: gb, epsilon: 1e-5, outer: outer, channels: channels,
                                                      inner: inner)
                    }
                    record("bn_backward_sums masked weight \(fusion)", gw, channels)
                    record("bn_backward_sums masked bias \(fusion)", gb, channels)
                }
                let gx = backend.allocate(total), gr = withResidual ? backend.allocate(total) : nil
                backend.batchNormBackwardInput(x: bnX, gy: bnGy, mask: mask, mean: mean, variance: variance, weight: bnW,
                                               gweight: gw, gbias: gb, gx: gx, gresidual: gr, epsilon: 1e-5,
                                               batchStatistics: true, outer: outer, channels: channels, inner: inner)
                record("bn_backward_input \(fusion)", gx, total)
                if let gr { record("bn_backward_input residual gradient \(fusion)", gr, total) }
            }
        }
    }

    /// fit's bookkeeping kernels: the finiteness scan over 9 tensors (two launches), the batch note, accuracy.
    static func bookkeeping(on backend: Backend, _ record: (String, DeviceBuffer, Int) -> Void) {
        let sizes = [1, 7, 33, 37, 2, 5, 64, 3, 19]
        for bad in [nil, 0, 4, 8] as [Int?] {
            let tensors = sizes.enumerated().map { (i, n) -> (buffer: DeviceBuffer, count: Int) in
                var values = testValues(n, seed: UInt64(60 + i))
                if i == bad { values[n / 2] = i == 4 ? .infinity : .nan }
                return (upload(backend, values), n)
            }
            let flag = upload(backend, [0])
            backend.flagNonFinite(tensors, flag: flag)
            record("nonfinite_flag8 bad \(bad.map { "\($0)" } ?? "none")", flag, 1)
        }
        for (loss, parametersBad) in [(Float(0.75), Float(0)), (0.75, 1), (.nan, 0), (-.infinity, 1)] {
            let firstBad = upload(backend, [9]), bad = upload(backend, [parametersBad])
            let lossBuffer = upload(backend, [loss]), lossSum = upload(backend, [1.5])
            backend.fitNote(firstBad: firstBad, parametersBad: bad, loss: lossBuffer, lossSum: lossSum, count: 7,
                            batch: 3, none: 16)
            record("fit_note \(loss) \(parametersBad)", firstBad, 1)
            record("fit_note \(loss) \(parametersBad) parameters bad", bad, 1)
            if loss.isFinite { record("fit_note \(loss) \(parametersBad) loss sum", lossSum, 1) }
        }
        for (rows, cols) in [(1, 1), (37, 7), (130, 3)] {
            var x = testValues(rows * cols, seed: UInt64(70 + rows)).map { ($0 * 4).rounded() }  // ties
            if rows > 1 { x[cols] = .nan }
            let labels = upload(backend, (0..<rows).map { Float(($0 * 5) % cols) })
            let sum = upload(backend, [2])
            backend.accuracyAdd(x: upload(backend, x), labels: labels, rows: rows, cols: cols, sum: sum)
            record("accuracy_add \(rows)x\(cols)", sum, 1)
        }
    }

    /// The outputs of one group of exercises alone (`batchNorm`, `implicitConvolution`), as `check` takes them.
    static func outputs(of exercise: @escaping (Backend, (String, DeviceBuffer, Int) -> Void) -> Void)
        -> (Backend) -> [Output] {
        { b in
            var out: [Output] = []
            exercise(b) { name, buffer, count in out.append((name, download(b, buffer, count))) }
            return out
        }
    }

    /// Runs the set (`ops`: every kernel by default) on `backend` and on the CPU and records an issue for every
    /// output that differs.
    static func check(_ backend: OpenCLBackend, _ ops: (Backend) -> [Output] = { KernelExercise.run(on: $0) }) {
        let expected = ops(CPUBackend.shared)
        let actual = ops(backend)
        #expect(actual.count == expected.count)
        for (a, e) in zip(actual, expected) {
            #expect(a.name == e.name)
            expectClose(a.values, e.values.map(Double.init), rtol: 1e-4, atol: 1e-5, "\(backend.name) \(a.name)")
        }
    }
}

@Suite(.enabled(if: TestDevices.openCLAvailable, TestDevices.skipReason))
struct StrictKernelTests {
    /// Every kernel on every OpenCL device, with the device's own limits, against the CPU.
    @Test(arguments: OpenCLPlatforms.devices().indices)
    func everyKernelMatchesTheCPU(device index: Int) throws {
        let backend = try OpenCLBackend(index: index, info: OpenCLPlatforms.devices()[index])
        KernelExercise.check(backend)
        // Every kernel of the program ran (a kernel added later without a case here is named).
        let missing = backend.allKernelNames().subtracting(backend.kernels.keys.map(\.name)).sorted()
        #expect(missing.isEmpty, "kernels that StrictKernelTests does not run: \(missing)")
    }
}

/// Batch normalization's kernels alone (also part of `StrictKernelTests`): `scripts/oclgrind-check
/// StrictBatchNormKernelTests` checks them under Oclgrind in a few minutes.
@Suite(.enabled(if: TestDevices.openCLAvailable, TestDevices.skipReason))
struct StrictBatchNormKernelTests {
    @Test func batchNormKernelsMatchTheCPU() throws {
        let backend = try OpenCLBackend(index: 0, info: OpenCLPlatforms.devices()[0])
        KernelExercise.check(backend, KernelExercise.outputs(of: KernelExercise.batchNorm(on:_:)))
    }
}

@Suite(.enabled(if: TestDevices.openCLAvailable, TestDevices.skipReason))
struct CappedWorkGroupTests {
    /// With the work-group size capped at 64 and at 1, every kernel still matches the CPU, and the launches
    /// that pick their own work-group size picked a smaller one.
    @Test(arguments: [64, 1])
    func everyKernelMatchesTheCPUUnderACap(cap: Int) throws {
        let info = OpenCLPlatforms.devices()[0]
        let backend = try OpenCLBackend(index: 0, info: info, maxWorkGroupSize: cap)
        #expect(backend.limits.maxWorkGroupSize == min(cap, info.maxWorkGroupSize))
        KernelExercise.check(backend)
        for (kernel, local) in backend.lastLocalSize {
            #expect(local.reduce(1, *) <= cap, "\(kernel) ran work-groups of \(local) under a cap of \(cap)")
        }
        // The kernels that want 256 items (reductions, transpose) ran smaller groups.
        #expect(backend.lastLocalSize[KernelReference(.reduce, "reduce_rows")] == [min(cap, 256)])
        let tile = cap >= 64 ? 8 : 1
        #expect(backend.lastLocalSize[KernelReference(.layout, "transpose_batched")] == [tile, tile, 1])
        // The 32 x 32 GEMM tile's 8 x 8 work-groups fit 64; below, the product falls back to the direct kernel.
        let gemmTile = KernelReference(.gemmVariant(.tile(tm: 32, tn: 32, tk: 16, wm: 4, wn: 4)), "gemm_tile")
        #expect((backend.lastLocalSize[gemmTile] != nil) == (cap >= 64))
        // The GPU-grade tiles whose work-groups exceed the cap are refused (their products ran on a fallback); the
        // others ran, one program per transpose.
        let ran = Set(backend.lastLocalSize.keys.compactMap { $0.program.variant })
        for v in GemmTuningTests.fragsInKernelList + GemmTuningTests.smallFrags {
            // Refused where the work-group exceeds the cap (or the kernel's local memory the device's: Oclgrind
            // counts the local arrays of every kernel of the program).
            let usable = backend.variantUsable(v)
            if (v.workGroup ?? []).reduce(1, *) > cap { #expect(!usable, "\(v) under a cap of \(cap)") }
            #expect(v.programs.allSatisfy { ran.contains($0) } == usable, "\(v) under a cap of \(cap)")
        }
        // The 16-item tiles fit a cap of 64 anywhere.
        #expect(backend.variantUsable(GemmTuningTests.smallFrags[0]) == (cap >= 16))
    }

    /// Without a cap the device's own limit stands, and the reduction uses 256 items where the device allows.
    @Test func uncappedLaunchesUseTheDeviceLimit() throws {
        let info = OpenCLPlatforms.devices()[0]
        let backend = try OpenCLBackend(index: 0, info: info, environment: [:])
        #expect(backend.limits.maxWorkGroupSize == info.maxWorkGroupSize)
        #expect(backend.limits.cap == nil)
        let x = KernelExercise.upload(backend, testValues(2 * 300, seed: 1))
        let out = backend.allocate(2)
        backend.reduce(.sum, x: x, out: out, outer: 2, length: 300, inner: 1)
        backend.synchronize()
        #expect(backend.lastLocalSize[KernelReference(.reduce, "reduce_rows")] == [min(256, backend.workGroupLimit(.reduce, "reduce_rows"))])
    }

    /// `MYELIN_MAX_WORK_GROUP_SIZE` caps the limit like the init parameter.
    @Test func environmentVariableCapsTheLimit() throws {
        let backend = try OpenCLBackend(index: 0, info: OpenCLPlatforms.devices()[0],
                                        environment: ["MYELIN_MAX_WORK_GROUP_SIZE": "16"])
        #expect(backend.limits.maxWorkGroupSize == 16)
        #expect(backend.fittingLocal([4, 4, 1], .gemm, "gemm_block_nn_8x16") == [4, 4, 1])
        #expect(backend.fittingLocal([16, 16, 1], .gemm, "gemm_block_nn_8x16").reduce(1, *) <= 16)
    }
}
