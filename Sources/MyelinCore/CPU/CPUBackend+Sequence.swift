import Foundation

/// The sequence ops on the CPU: the axis permutation and the causal softmax (see `SequenceBackend`).
extension CPUBackend {
    func permute(x: DeviceBuffer, out: DeviceBuffer, layout: PermuteLayout) {
        guard allocated("permute", x, out) else { return }
        let px = x.host!, po = out.host!
        let dims = layout.dims, strides = layout.inputStrides, rank = dims.count
        let length = dims[rank - 1], inner = strides[rank - 1]
        let rows = layout.count / Swift.max(length, 1)
        guard rows > 0, length > 0 else { return }
        parallelFor(rows, minimum: Swift.max(1, CPUBackend.parallelThreshold / length)) { lo, hi in
            for row in lo..<hi {
                // The input offset of the row's first element: its index decomposed over the leading dims.
                var rest = row, source = 0
                for d in stride(from: rank - 2, through: 0, by: -1) {
                    source += (rest % dims[d]) * strides[d]
                    rest /= dims[d]
                }
                let dst = po + row * length
                if inner == 1 {
                    dst.update(from: px + source, count: length)
                } else {
                    for j in 0..<length { dst[j] = px[source + j * inner] }
                }
            }
        }
        count { $0.launches += 1 }
    }

    func causalSoftmax(x: DeviceBuffer, out: DeviceBuffer, rows: Int, cols: Int, queries: Int) {
        guard allocated("causalSoftmax", x, out) else { return }
        let px = x.host!, po = out.host!
        parallelFor(rows, minimum: Swift.max(1, CPUBackend.parallelThreshold / Swift.max(cols, 1))) { lo, hi in
            for r in lo..<hi {
                let p = px + r * cols, q = po + r * cols
                let keys = Swift.max(0, Swift.min(cols, r % queries + cols - queries + 1))
                var m = -Float.infinity
                for c in 0..<keys { m = Swift.max(m, p[c]) }
                var s: Float = 0
                for c in 0..<keys { s += Foundation.exp(p[c] - m) }
                let inv = 1 / s
                for c in 0..<keys { q[c] = Foundation.exp(p[c] - m) * inv }
                for c in keys..<cols { q[c] = 0 }
            }
        }
        count { $0.launches += 1 }
    }

    /// Σ f(p[c]) for c in 0..<n in 8 lanes (vectorized; the lanes are added at the end).
    @inline(__always) static func laneSum(_ p: UnsafeMutablePointer<Float>, _ n: Int, _ f: (SIMD8<Float>) -> SIMD8<Float>) -> Float {
        var acc = SIMD8<Float>(), c = 0
        while c + 8 <= n {
            acc += f(UnsafeRawPointer(p + c).loadUnaligned(as: SIMD8<Float>.self))
            c += 8
        }
        var tail = SIMD8<Float>()
        for i in 0..<(n - c) { tail[i] = p[c + i] }
        if c < n { acc += f(tail).replacing(with: 0, where: SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7) .>= SIMD8(repeating: Int32(n - c))) }
        return acc.sum()
    }

    func layerNormForward(x: DeviceBuffer, y: DeviceBuffer, mean: DeviceBuffer, rstd: DeviceBuffer, weight: DeviceBuffer?,
                          bias: DeviceBuffer?, rows: Int, cols: Int, epsilon: Float) {
        guard allocated("layerNormForward", x, y, mean, rstd, weight, bias) else { return }
        let px = x.host!, py = y.host!, pm = mean.host!, pr = rstd.host!, w = weight?.host, b = bias?.host
        guard rows > 0, cols > 0 else { return }
        parallelFor(rows, minimum: Swift.max(1, CPUBackend.parallelThreshold / cols)) { lo, hi in
            for r in lo..<hi {
                let p = px + r * cols, q = py + r * cols
                let m = Self.laneSum(p, cols) { $0 } / Float(cols)
                let v = Self.laneSum(p, cols) { ($0 - m) * ($0 - m) }
                let inv = 1 / (v / Float(cols) + epsilon).squareRoot()
                pm[r] = m; pr[r] = inv
                if let w, let b {   // BERT's and GPT's case, without an optional per element
                    for c in 0..<cols { q[c] = (p[c] - m) * inv * w[c] + b[c] }
                } else {
                    for c in 0..<cols { q[c] = (p[c] - m) * inv * (w?[c] ?? 1) + (b?[c] ?? 0) }
                }
            }
        }
        count { $0.launches += 1 }
    }

    func layerNormBackwardInput(x: DeviceBuffer, gy: DeviceBuffer, mean: DeviceBuffer, rstd: DeviceBuffer,
                                weight: DeviceBuffer?, gx: DeviceBuffer, rows: Int, cols: Int) {
        guard allocated("layerNormBackwardInput", x, gy, mean, rstd, weight, gx) else { return }
        let px = x.host!, pg = gy.host!, pm = mean.host!, pr = rstd.host!, w = weight?.host, po = gx.host!
        guard rows > 0, cols > 0 else { return }
        parallelFor(rows, minimum: Swift.max(1, CPUBackend.parallelThreshold / cols)) { lo, hi in
            // Without a weight, a row of ones: the loops below then have no optional per element (vectorized).
            let ones = w == nil ? UnsafeMutablePointer<Float>.allocate(capacity: cols) : nil
            ones?.initialize(repeating: 1, count: cols)
            defer { ones?.deallocate() }
            let wr = w ?? ones!
            for r in lo..<hi {
                let p = px + r * cols, g = pg + r * cols, o = po + r * cols, m = pm[r], inv = pr[r]
                var sg = SIMD8<Float>(), sgx = SIMD8<Float>(), c = 0
                while c + 8 <= cols {
                    let gw = Self.load8(g, c) * Self.load8(wr, c)
                    sg += gw; sgx += gw * (Self.load8(p, c) - m)
                    c += 8
                }
                var sgTail: Float = 0, sgxTail: Float = 0
                for t in c..<cols {
                    let gw = g[t] * wr[t]
                    sgTail += gw; sgxTail += gw * (p[t] - m)
                }
                let mg = (sg.sum() + sgTail) / Float(cols), mgx = (sgx.sum() + sgxTail) * inv / Float(cols)
                for c in 0..<cols { o[c] = inv * (g[c] * wr[c] - mg - (p[c] - m) * inv * mgx) }
            }
        }
        count { $0.launches += 1 }
    }

    func layerNormBackwardParameters(x: DeviceBuffer, gy: DeviceBuffer, mean: DeviceBuffer, rstd: DeviceBuffer,
                                     gweight: DeviceBuffer?, gbias: DeviceBuffer?, rows: Int, cols: Int) {
        guard allocated("layerNormBackwardParameters", x, gy, mean, rstd, gweight, gbias) else { return }
        let px = x.host!, pg = gy.host!, pm = mean.host!, pr = rstd.host!, gw = gweight?.host, gb = gbias?.host
        guard cols > 0 else { return }
        // Split by columns: each thread sums its columns over every row.
        parallelFor(cols, minimum: Swift.max(1, CPUBackend.parallelThreshold / Swift.max(rows, 1))) { lo, hi in
            for c in lo..<hi { gw?[c] = 0; gb?[c] = 0 }
            if let gw, let gb {   // LayerNorm with weight and bias: no optional per element (vectorized)
                for r in 0..<rows {
                    let p = px + r * cols, g = pg + r * cols, m = pm[r], inv = pr[r]
                    for c in lo..<hi {
                        gw[c] += g[c] * (p[c] - m) * inv
                        gb[c] += g[c]
                    }
                }
                return
            }
            for r in 0..<rows {
                let p = px + r * cols, g = pg + r * cols, m = pm[r], inv = pr[r]
                for c in lo..<hi {
                    gw?[c] += g[c] * (p[c] - m) * inv
                    gb?[c] += g[c]
                }
            }
        }
        count { $0.launches += 1 }
    }
}
