import Foundation

// Batch normalization on the CPU: per-channel sums in Double, the elementwise passes as one multiply-add per value
// (the naive form of Kernels/normalization.cl).
extension CPUBackend {
    func batchNormMoments(x: DeviceBuffer, mean: DeviceBuffer, variance: DeviceBuffer, running: BatchNormRunning?,
                          outer: Int, channels: Int, inner: Int) {
        guard allocated("batchNormMoments", x, mean, variance, running?.mean, running?.variance, running?.tracked)
        else { return }
        let px = x.host!, pm = mean.host!, pv = variance.host!
        guard outer > 0, channels > 0, inner > 0 else { return }
        defer { if let running { updateRunning(running, mean: pm, variance: pv, channels: channels) } }
        let m = Double(outer * inner)
        parallelFor(channels, minimum: max(1, CPUBackend.parallelThreshold / (outer * inner))) { lo, hi in
            for c in lo..<hi {
                var sum = 0.0
                for n in 0..<outer { sum += Self.rowSums(px + (n * channels + c) * inner, nil, inner, mean: 0).x }
                let mu = sum / m
                var squares = 0.0
                for n in 0..<outer { squares += Self.rowSums(px + (n * channels + c) * inner, nil, inner, mean: mu).squares }
                pm[c] = Float(mu)
                pv[c] = Float(squares / m)
            }
        }
        count { $0.launches += 1 }
    }

    /// The running statistics' update (`BatchNormRunning`): the products and the sum in Float, as the separate
    /// elementwise ops computed them.
    private func updateRunning(_ r: BatchNormRunning, mean pm: UnsafeMutablePointer<Float>,
                               variance pv: UnsafeMutablePointer<Float>, channels: Int) {
        let rm = r.mean.host!, rv = r.variance.host!, tracked = r.tracked.host!
        for c in 0..<channels {
            let oldMean = rm[c] * r.keep, newMean = pm[c] * r.momentum
            rm[c] = oldMean + newMean
            let oldVar = rv[c] * r.keep, newVar = pv[c] * r.varianceFactor
            rv[c] = oldVar + newVar
        }
        tracked[0] += 1
    }

    func batchNormApply(x: DeviceBuffer, y: DeviceBuffer, mean: DeviceBuffer, variance: DeviceBuffer, weight: DeviceBuffer,
                        bias: DeviceBuffer, residual: DeviceBuffer?, relu: Bool, epsilon: Float, outer: Int, channels: Int,
                        inner: Int) {
        guard allocated("batchNormApply", x, y, mean, variance, weight, bias), allocated("batchNormApply", x, residual)
        else { return }
        let px = x.host!, py = y.host!, pm = mean.host!, pv = variance.host!, pw = weight.host!, pb = bias.host!
        let pr = residual?.host
        guard outer > 0, channels > 0, inner > 0 else { return }
        parallelFor(outer * channels, minimum: max(1, CPUBackend.parallelThreshold / inner)) { lo, hi in
            for unit in lo..<hi {
                let c = unit % channels
                let invstd = 1 / (Double(pv[c]) + Double(epsilon)).squareRoot()
                let scale = Float(Double(pw[c]) * invstd)
                let shift = Float(Double(pb[c]) - Double(pm[c]) * Double(pw[c]) * invstd)
                let src = px + unit * inner, dst = py + unit * inner
                for i in 0..<inner { dst[i] = src[i] * scale + shift }
                if let pr {
                    let res = pr + unit * inner
                    for i in 0..<inner { dst[i] = dst[i] + res[i] }
                }
                if relu { for i in 0..<inner { dst[i] = dst[i] > 0 ? dst[i] : 0 } }
            }
        }
        count { $0.launches += 1 }
    }

    func batchNormBackwardSums(x: DeviceBuffer, gy: DeviceBuffer, mask: DeviceBuffer?, mean: DeviceBuffer,
                               variance: DeviceBuffer, gweight: DeviceBuffer, gbias: DeviceBuffer, epsilon: Float,
                               outer: Int, channels: Int, inner: Int) {
        guard allocated("batchNormBackwardSums", x, gy, mask, mean, variance, gweight),
              allocated("batchNormBackwardSums", gbias) else { return }
        let px = x.host!, pg = gy.host!, pm = mean.host!, pv = variance.host!, pgw = gweight.host!, pgb = gbias.host!
        let pmask = mask?.host
        guard channels > 0 else { return }
        parallelFor(channels, minimum: max(1, CPUBackend.parallelThreshold / max(1, outer * inner))) { lo, hi in
            for c in lo..<hi {
                let mu = Double(pm[c])
                var sumG = 0.0, sumGX = 0.0
                for n in 0..<outer {
                    let offset = (n * channels + c) * inner
                    let sums = Self.rowSums(pg + offset, px + offset, inner, mean: mu, mask: pmask.map { $0 + offset })
                    sumG += sums.x
                    sumGX += sums.products
                }
                pgb[c] = Float(sumG)
                pgw[c] = Float(sumGX / (Double(pv[c]) + Double(epsilon)).squareRoot())
            }
        }
        count { $0.launches += 1 }
    }

    func batchNormBackwardInput(x: DeviceBuffer, gy: DeviceBuffer, mask: DeviceBuffer?, mean: DeviceBuffer,
                                variance: DeviceBuffer, weight: DeviceBuffer, gweight: DeviceBuffer, gbias: DeviceBuffer,
                                gx: DeviceBuffer, gresidual: DeviceBuffer?, epsilon: Float, batchStatistics: Bool,
                                outer: Int, channels: Int, inner: Int) {
        guard allocated("batchNormBackwardInput", x, gy, mask, mean, variance, weight),
              allocated("batchNormBackwardInput", gweight, gbias, gx, gresidual) else { return }
        let px = x.host!, pg = gy.host!, pm = mean.host!, pv = variance.host!, pw = weight.host!
        let pgw = gweight.host!, pgb = gbias.host!, pgx = gx.host!, pmask = mask?.host, pgr = gresidual?.host
        guard outer > 0, channels > 0, inner > 0 else { return }
        let m = Double(outer * inner)
        parallelFor(outer * channels, minimum: max(1, CPUBackend.parallelThreshold / inner)) { lo, hi in
            for unit in lo..<hi {
                let c = unit % channels
                let invstd = 1 / (Double(pv[c]) + Double(epsilon)).squareRoot()
                let k = Double(pw[c]) * invstd
                // gx = k·gy + slope·x + offset, with slope and offset zero for constant statistics.
                var slope = 0.0, offset = 0.0
                if batchStatistics {
                    slope = -k * invstd * Double(pgw[c]) / m
                    offset = -k * Double(pgb[c]) / m - slope * Double(pm[c])
                }
                let a = Float(k), b = Float(slope), d = Float(offset)
                let xr = px + unit * inner, out = pgx + unit * inner
                var gr = UnsafePointer(pg + unit * inner)
                if let pmask {
                    // The masked gy (the fused ReLU's backward), in gresidual when asked for, else in gx first.
                    let masked = (pgr ?? pgx) + unit * inner, mr = pmask + unit * inner
                    for i in 0..<inner { masked[i] = gr[i] * (mr[i] > 0 ? 1 : 0) }
                    gr = UnsafePointer(masked)
                } else if let pgr {
                    (pgr + unit * inner).update(from: gr, count: inner)
                }
                for i in 0..<inner { out[i] = a * gr[i] + b * xr[i] + d }
            }
        }
        count { $0.launches += 1 }
    }

    /// Sums over one row of `n` values in Double, in eight independent partial sums (one chain of dependent
    /// additions was 4 cycles a value: batch norm's statistics were 15% of the ResNet-8 step): Σa, Σ(a − mean)² and,
    /// with `b`, Σa·(b − mean).
    @inline(__always) static func rowSums(_ a: UnsafeMutablePointer<Float>, _ b: UnsafeMutablePointer<Float>?, _ n: Int,
                                          mean: Double, mask: UnsafeMutablePointer<Float>? = nil)
        -> (x: Double, squares: Double, products: Double) {
        var s = SIMD8<Double>(), q = SIMD8<Double>(), p = SIMD8<Double>()
        let m = SIMD8<Double>(repeating: mean)
        var i = 0
        while i + 8 <= n {
            var v = SIMD8<Double>(load8(a, i))
            if let mask { v.replace(with: 0, where: .!(SIMD8<Double>(load8(mask, i)) .> 0)) }
            let d = v - m
            s += v
            q += d * d
            if let b { p += v * (SIMD8<Double>(load8(b, i)) - m) }
            i += 8
        }
        var x = s.sum(), squares = q.sum(), products = p.sum()
        while i < n {
            let v = mask.map { $0[i] > 0 ? Double(a[i]) : 0 } ?? Double(a[i]), d = v - mean
            x += v
            squares += d * d
            if let b { products += v * (Double(b[i]) - mean) }
            i += 1
        }
        return (x, squares, products)
    }
}
