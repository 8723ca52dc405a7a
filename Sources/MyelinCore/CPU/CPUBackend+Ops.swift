internal import CMyelinMath
import CBLAS
import Foundation

/// The binary-op formulas of the CPU device (the same as `b_*` in Kernels/common.cl). The activations' are
/// `Activation.apply` and `Activation.derivative`.
enum Formulas {
    @inline(__always) static func binary(_ op: BinaryOp, _ a: Float, _ b: Float) -> Float {
        switch op {
        case .add: return a + b
        case .subtract: return a - b
        case .multiply: return a * b
        case .divide: return a / b
        case .power: return Foundation.pow(a, b)
        case .maximum: return a.isNaN || b.isNaN ? (a.isNaN ? b : a) : Swift.max(a, b)
        case .minimum: return a.isNaN || b.isNaN ? (a.isNaN ? b : a) : Swift.min(a, b)
        case .equal: return a == b ? 1 : 0
        case .notEqual: return a != b ? 1 : 0
        case .less: return a < b ? 1 : 0
        case .lessEqual: return a <= b ? 1 : 0
        case .greater: return a > b ? 1 : 0
        case .greaterEqual: return a >= b ? 1 : 0
        }
    }
}

extension CPUBackend {
    func gemm(_ s: GemmShape, a: DeviceBuffer, b: DeviceBuffer, c: DeviceBuffer,
              bias: DeviceBuffer?, activation: Activation) {
        guard allocated("gemm", a, b, c, bias) else { return }
        guard s.m > 0, s.n > 0, s.batch > 0 else { return }
        let pa = a.host!, pb = b.host!, pc = c.host!
        for batch in 0..<s.batch {
            let cp = pc + batch * s.strideC
            let engine = gemmEngine(s)
            if engine == .own {
                // Bias and ReLU are applied as C is stored; another activation runs afterwards.
                let fused = activation == .relu || activation == .identity
                ownGemm(s, a: pa + batch * s.strideA, b: pb + batch * s.strideB, c: cp, bias: bias?.host,
                        relu: activation == .relu)
                if !fused { epilogue(cp, rows: s.m, cols: s.n, ldc: s.ldc, bias: nil, activation: activation) }
                continue
            }
            // With beta 0 and no activation, C starts as the bias rows and the library adds the product (beta 1): a
            // copy instead of a read-modify-write pass afterwards (1.7% of BERT's embedding profile). With an
            // activation the pass afterwards runs anyway and adds the bias as it goes.
            var shape = s
            let prefilled = bias != nil && s.beta == 0 && activation == .identity
            if prefilled, let pbias = bias?.host {
                parallelFor(s.m, minimum: max(1, CPUBackend.parallelThreshold / s.n)) { lo, hi in
                    for i in lo..<hi { (cp + i * s.ldc).update(from: pbias, count: s.n) }
                }
                shape.beta = 1
            }
            engineGemm(engine, shape, a: pa + batch * s.strideA, b: pb + batch * s.strideB, c: cp)
            if (bias != nil && !prefilled) || activation != .identity {
                epilogue(cp, rows: s.m, cols: s.n, ldc: s.ldc, bias: prefilled ? nil : bias?.host, activation: activation)
            }
        }
        count { $0.launches += 1 }
    }

    /// Adds the bias row and applies the activation to each row of C, in place.
    private func epilogue(_ c: UnsafeMutablePointer<Float>, rows: Int, cols: Int, ldc: Int,
                          bias: UnsafeMutablePointer<Float>?, activation: Activation) {
        parallelFor(rows, minimum: max(1, CPUBackend.parallelThreshold / max(cols, 1))) { lo, hi in
            for i in lo..<hi {
                let row = c + i * ldc
                if let bias { for j in 0..<cols { row[j] += bias[j] } }
                switch activation {
                case .identity: break
                case .relu: for j in 0..<cols { row[j] = row[j] > 0 ? row[j] : 0 }
                case .geluErf where Self.ownGemmAvailable: myelin_gelu_erf(row, row, 0, cols)
                default: for j in 0..<cols { row[j] = activation.apply(row[j]) }
                }
            }
        }
    }

    @inline(__always) private func map(_ x: DeviceBuffer, _ out: DeviceBuffer, _ n: Int, _ f: (Float) -> Float) {
        let px = x.host!, po = out.host!
        parallelFor(n) { lo, hi in for i in lo..<hi { po[i] = f(px[i]) } }
    }

    func unary(_ op: UnaryOp, x: DeviceBuffer, out: DeviceBuffer, count n: Int) {
        guard allocated("unary", x, out) else { return }
        guard n > 0 else { return }
        switch op {
        case .negate: map(x, out, n) { -$0 }
        case .exp: map(x, out, n) { Foundation.exp($0) }
        case .log: map(x, out, n) { Foundation.log($0) }
        case .sqrt: map(x, out, n) { $0.squareRoot() }
        case .abs: map(x, out, n) { Swift.abs($0) }
        case .square: map(x, out, n) { $0 * $0 }
        case .reciprocal: map(x, out, n) { 1 / $0 }
        case .rsqrt: map(x, out, n) { 1 / $0.squareRoot() }
        case .sign: map(x, out, n) { $0 > 0 ? 1 : ($0 < 0 ? -1 : 0) }
        case .clamp(let lo, let hi): map(x, out, n) { Swift.min(Swift.max($0, lo), hi) }
        case .activation(.relu):
            // Eight lanes at a time with a select, as its backward (the scalar map did not vectorize: 5% of the
            // ResNet-8 step); NaN and non-positive values give +0 as `$0 > 0 ? $0 : 0` does.
            let px = x.host!, po = out.host!
            parallelFor(n) { lo, hi in
                var i = lo
                while i + 8 <= hi {
                    let v = Self.load8(px, i)
                    Self.store8(SIMD8<Float>(repeating: 0).replacing(with: v, where: v .> 0), po, i)
                    i += 8
                }
                while i < hi { let v = px[i]; po[i] = v > 0 ? v : 0; i += 1 }
            }
        case .activation(.identity): map(x, out, n) { $0 }
        case .activation(.geluErf) where Self.ownGemmAvailable:
            let px = x.host!, po = out.host!
            parallelFor(n, minimum: Self.transcendentalMinimum) { lo, hi in myelin_gelu_erf(px, po, lo, hi) }
        case .activation(let a): map(x, out, n) { a.apply($0) }
        case .scalar(.add, let s, _): map(x, out, n) { $0 + s }
        case .scalar(.multiply, let s, _): map(x, out, n) { $0 * s }
        case .scalar(.subtract, let s, false): map(x, out, n) { $0 - s }
        case .scalar(.subtract, let s, true): map(x, out, n) { s - $0 }
        case .scalar(let bop, let s, let first):
            if first { map(x, out, n) { Formulas.binary(bop, s, $0) } } else { map(x, out, n) { Formulas.binary(bop, $0, s) } }
        }
        count { $0.launches += 1 }
    }

    /// Below this many elements an activation with erf or exp (GELU: about 10 times an add's cost) runs on the
    /// calling thread: a GPT's MLP at one 64-token window (32,768 values) is worth both cores.
    static let transcendentalMinimum = CPUBackend.parallelThreshold / 8

    func activationBackward(_ activation: Activation, x: DeviceBuffer, y: DeviceBuffer, gy: DeviceBuffer,
                            gx: DeviceBuffer, count n: Int) {
        guard allocated("activationBackward", x, y, gy, gx) else { return }
        let px = x.host!, py = y.host!, pg = gy.host!, po = gx.host!
        parallelFor(n, minimum: activation == .relu ? CPUBackend.parallelThreshold : Self.transcendentalMinimum) { lo, hi in
            if activation == .relu {
                // Eight lanes at a time with a select (the scalar loop's load under a branch did not vectorize:
                // 4% of the MLP's CPU step); NaN or non-positive inputs give +0, as below.
                var i = lo
                while i + 8 <= hi {
                    let xv = Self.load8(px, i), gv = Self.load8(pg, i)
                    Self.store8(SIMD8<Float>(repeating: 0).replacing(with: gv, where: xv .> 0), po, i)
                    i += 8
                }
                while i < hi { let g = pg[i]; po[i] = px[i] > 0 ? g : 0; i += 1 }
            } else if activation == .geluErf && Self.ownGemmAvailable {
                myelin_gelu_erf_backward(px, py, pg, po, lo, hi)  // vectorized, Φ(x) read back from y (libm: a fifth of a GPT step)
            } else {
                for i in lo..<hi { po[i] = pg[i] * activation.derivative(x: px[i], y: py[i]) }
            }
        }
        count { $0.launches += 1 }
    }

    func binary(_ op: BinaryOp, a: DeviceBuffer, b: DeviceBuffer, out: DeviceBuffer, layout: BroadcastLayout) {
        guard allocated("binary", a, b, out) else { return }
        let n = layout.count
        guard n > 0 else { return }
        let pa = a.host!, pb = b.host!, po = out.host!
        if layout.isElementwise {
            switch op {
            case .add: parallelFor(n) { lo, hi in for i in lo..<hi { po[i] = pa[i] + pb[i] } }
            case .subtract: parallelFor(n) { lo, hi in for i in lo..<hi { po[i] = pa[i] - pb[i] } }
            case .multiply: parallelFor(n) { lo, hi in for i in lo..<hi { po[i] = pa[i] * pb[i] } }
            case .divide: parallelFor(n) { lo, hi in for i in lo..<hi { po[i] = pa[i] / pb[i] } }
            default: parallelFor(n) { lo, hi in for i in lo..<hi { po[i] = Formulas.binary(op, pa[i], pb[i]) } }
            }
        } else {
            // Walk the output row by row over its last dimension; the leading dimensions give the offsets.
            let dims = layout.dims, sa = layout.stridesA, sb = layout.stridesB
            let last = dims.count - 1
            let inner = dims[last], isa = sa[last], isb = sb[last]
            let rows = n / inner
            parallelFor(rows, minimum: max(1, CPUBackend.parallelThreshold / inner)) { lo, hi in
                for r in lo..<hi {
                    var rem = r, offA = 0, offB = 0
                    for d in stride(from: last - 1, through: 0, by: -1) {
                        let idx = rem % dims[d]; rem /= dims[d]
                        offA += idx * sa[d]; offB += idx * sb[d]
                    }
                    let ra = pa + offA, rb = pb + offB, ro = po + r * inner
                    // Contiguous rows against contiguous rows or one value (a scalar factor, as gradient clipping's):
                    // loops without a switch per element, which vectorize.
                    switch (op, isa, isb) {
                    case (.add, 1, 1): for j in 0..<inner { ro[j] = ra[j] + rb[j] }
                    case (.multiply, 1, 1): for j in 0..<inner { ro[j] = ra[j] * rb[j] }
                    case (.add, 1, 0): let v = rb[0]; for j in 0..<inner { ro[j] = ra[j] + v }
                    case (.multiply, 1, 0): let v = rb[0]; for j in 0..<inner { ro[j] = ra[j] * v }
                    default: for j in 0..<inner { ro[j] = Formulas.binary(op, ra[j * isa], rb[j * isb]) }
                    }
                }
            }
        }
        count { $0.launches += 1 }
    }

    func reduce(_ op: ReduceOp, x: DeviceBuffer, out: DeviceBuffer, outer: Int, length: Int, inner: Int) {
        guard allocated("reduce", x, out) else { return }
        let px = x.host!, po = out.host!
        let initial: Float = op == .max ? -.infinity : (op == .min ? .infinity : 0)
        if inner == 1 && (op == .sum || op == .mean) {
            // Sums of contiguous rows (a whole tensor's sum, as `fit`'s per-step finiteness check takes of every
            // parameter) in 32 vector lanes: the general loop below stores the total back at every element.
            parallelFor(outer, minimum: max(1, CPUBackend.parallelThreshold / max(length, 1))) { lo, hi in
                for o in lo..<hi {
                    let total = Self.contiguousSum(px + o * length, length)
                    po[o] = op == .mean ? total * (1 / Float(length)) : total
                }
            }
            count { $0.launches += 1 }
            return
        }
        parallelFor(outer, minimum: max(1, CPUBackend.parallelThreshold / max(length * inner, 1))) { lo, hi in
            for o in lo..<hi {
                let base = px + o * length * inner
                let dst = po + o * inner
                for j in 0..<inner { dst[j] = initial }
                for l in 0..<length {
                    let row = base + l * inner
                    switch op {
                    case .sum, .mean: for j in 0..<inner { dst[j] += row[j] }
                    case .max: for j in 0..<inner { dst[j] = Swift.max(dst[j], row[j]) }
                    case .min: for j in 0..<inner { dst[j] = Swift.min(dst[j], row[j]) }
                    }
                }
                if op == .mean { let s = 1 / Float(length); for j in 0..<inner { dst[j] *= s } }
            }
        }
        count { $0.launches += 1 }
    }

    /// The sum of `count` contiguous values, accumulated in 4 × 8 lanes (then the lanes and the tail in order).
    @inline(__always)
    static func contiguousSum(_ p: UnsafeMutablePointer<Float>, _ count: Int) -> Float {
        let raw = UnsafeRawPointer(p)
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
        var i = 0
        while i + 32 <= count {
            a0 += raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            a1 += raw.loadUnaligned(fromByteOffset: (i + 8) * 4, as: SIMD8<Float>.self)
            a2 += raw.loadUnaligned(fromByteOffset: (i + 16) * 4, as: SIMD8<Float>.self)
            a3 += raw.loadUnaligned(fromByteOffset: (i + 24) * 4, as: SIMD8<Float>.self)
            i += 32
        }
        while i + 8 <= count {
            a0 += raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            i += 8
        }
        var total = ((a0 + a1) + (a2 + a3)).sum()
        while i < count { total += p[i]; i += 1 }
        return total
    }

    func argmax(x: DeviceBuffer, out: DeviceBuffer, rows: Int, cols: Int) {
        guard allocated("argmax", x, out) else { return }
        let px = x.host!, po = out.host!
        for r in 0..<rows {
            let row = px + r * cols
            var best = row[0], at = 0
            for c in 1..<max(cols, 1) where row[c] > best { best = row[c]; at = c }
            po[r] = Float(at)
        }
        count { $0.launches += 1 }
    }

    func softmax(x: DeviceBuffer, out: DeviceBuffer, rows: Int, cols: Int, log: Bool) {
        guard allocated("softmax", x, out) else { return }
        let px = x.host!, po = out.host!
        parallelFor(rows, minimum: max(1, CPUBackend.parallelThreshold / max(cols, 1))) { lo, hi in
            for r in lo..<hi {
                let p = px + r * cols, q = po + r * cols
                var m = -Float.infinity
                for c in 0..<cols { m = Swift.max(m, p[c]) }
                var s: Float = 0
                for c in 0..<cols { s += Foundation.exp(p[c] - m) }
                if log {
                    let ls = Foundation.log(s) + m
                    for c in 0..<cols { q[c] = p[c] - ls }
                } else {
                    let inv = 1 / s
                    for c in 0..<cols { q[c] = Foundation.exp(p[c] - m) * inv }
                }
            }
        }
        count { $0.launches += 1 }
    }

    func softmaxBackward(y: DeviceBuffer, gy: DeviceBuffer, gx: DeviceBuffer, rows: Int, cols: Int, log: Bool) {
        guard allocated("softmaxBackward", y, gy, gx) else { return }
        let py = y.host!, pg = gy.host!, po = gx.host!
        parallelFor(rows, minimum: max(1, CPUBackend.parallelThreshold / max(cols, 1))) { lo, hi in
            for r in lo..<hi {
                let yy = py + r * cols, g = pg + r * cols, o = po + r * cols
                var s: Float = 0
                if log {
                    for c in 0..<cols { s += g[c] }
                    for c in 0..<cols { o[c] = g[c] - Foundation.exp(yy[c]) * s }
                } else {
                    for c in 0..<cols { s += g[c] * yy[c] }
                    for c in 0..<cols { o[c] = yy[c] * (g[c] - s) }
                }
            }
        }
        count { $0.launches += 1 }
    }

    func transpose(x: DeviceBuffer, out: DeviceBuffer, batch: Int, rows: Int, cols: Int) {
        guard allocated("transpose", x, out) else { return }
        let px = x.host!, po = out.host!
        let block = 32
        for b in 0..<batch {
            let src = px + b * rows * cols, dst = po + b * rows * cols
            for r0 in stride(from: 0, to: rows, by: block) {
                for c0 in stride(from: 0, to: cols, by: block) {
                    for r in r0..<Swift.min(r0 + block, rows) {
                        for c in c0..<Swift.min(c0 + block, cols) { dst[c * rows + r] = src[r * cols + c] }
                    }
                }
            }
        }
        count { $0.launches += 1 }
    }

    func gatherRows(x: DeviceBuffer, rows: Int, indices: DeviceBuffer, out: DeviceBuffer, count n: Int, rowSize: Int) {
        guard allocated("gatherRows", x, indices, out) else { return }
        let px = x.host!, po = out.host!
        Self.eachIndexedRow(indices.host!, n, rows: rows) { i, row in
            if let row {
                (po + i * rowSize).update(from: px + row * rowSize, count: rowSize)
            } else {
                (po + i * rowSize).update(repeating: 0, count: rowSize)
            }
        }
        count { $0.launches += 1 }
    }

    /// Calls body(i, row) for each of the `n` indices: `row` is the index when it names one of `rows` rows, nil
    /// when it does not (out of range, negative, NaN).
    @inline(__always) static func eachIndexedRow(_ indices: UnsafeMutablePointer<Float>, _ n: Int, rows: Int,
                                                 _ body: (Int, Int?) -> Void) {
        for i in 0..<n {
            let v = indices[i]
            body(i, v >= 0 && v < Float(rows) ? Int(v) : nil)
        }
    }

    func scatterAddRows(gy: DeviceBuffer, indices: DeviceBuffer, out: DeviceBuffer, rows: Int, count n: Int, rowSize: Int) {
        guard allocated("scatterAddRows", gy, indices, out) else { return }
        let pg = gy.host!, po = out.host!
        Self.eachIndexedRow(indices.host!, n, rows: rows) { i, row in
            guard let row else { return }
            let dst = po + row * rowSize, src = pg + i * rowSize
            for j in 0..<rowSize { dst[j] += src[j] }
        }
        count { $0.launches += 1 }
    }

    func oneHot(indices: DeviceBuffer, out: DeviceBuffer, count n: Int, classes: Int) {
        guard allocated("oneHot", indices, out) else { return }
        let pi = indices.host!, po = out.host!
        for i in 0..<n {
            let row = po + i * classes
            let v = pi[i]
            let label = v >= 0 && v < Float(classes) && v.rounded(.down) == v ? Int(v) : -1
            for c in 0..<classes { row[c] = c == label ? 1 : 0 }
        }
        count { $0.launches += 1 }
    }

    func randomUniform(out: DeviceBuffer, count n: Int, seed: UInt64) {
        guard allocated("randomUniform", out) else { return }
        let po = out.host!
        parallelFor(n) { lo, hi in for i in lo..<hi { po[i] = CounterRandom.uniform(seed: seed, index: UInt64(i)) } }
        count { $0.launches += 1 }
    }
}
