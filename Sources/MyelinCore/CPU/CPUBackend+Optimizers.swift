internal import CMyelinMath
import Foundation

/// The fused optimizer updates as Swift loops, the same formulas as Kernels/optimizers.cl.
/// Each runs over the elements once, split across cores for large parameters. Plain SGD's loop vectorizes;
/// SGD with momentum, Adam, AdamW, RMSProp and Adagrad go through explicit SIMD8 with an inline vector square root
/// (CMyelinMath: Swift's `squareRoot()` is a call to libm's `sqrtf` per lane on Linux), then a scalar tail
/// with the same expressions in the same order (IEEE square root is correctly rounded: the lanes match).
/// Adam without AMSGrad, on CPUs with AVX2, runs 8-wide AVX in C (CMyelinMath/myelin_optimizers.c), same rounding.
extension CPUBackend: OptimizerUpdates {
    func sgd(param: DeviceBuffer, grad: DeviceBuffer, momentumBuffer: DeviceBuffer?, count n: Int,
                     _ h: SGDStepParameters) {
        guard allocated("sgd", param, grad, momentumBuffer) else { return }
        guard n > 0 else { return }
        precondition(h.momentum == 0 || momentumBuffer != nil, "sgdStep: momentum \(h.momentum) needs a momentum buffer")
        let p = param.host!, g = grad.host!
        let lr = h.learningRate, mu = h.momentum, damp = 1 - h.dampening, wd = h.weightDecay
        let decay: Float = h.decoupled ? 1 - lr * wd : 1       // decoupled: θ·(1 − lr·λ)
        let l2: Float = h.decoupled ? 0 : wd                     // coupled: g + λ·θ
        if mu == 0 {
            parallelFor(n) { lo, hi in
                for i in lo..<hi {
                    let gi = g[i] + l2 * p[i]
                    p[i] = p[i] * decay - lr * gi
                }
            }
        } else {
            let b = momentumBuffer!.host!
            let first = h.first, nesterov = h.nesterov
            parallelFor(n) { lo, hi in
                // Eight lanes at a time (the scalar loop did not vectorize), then the same expressions as a tail.
                var i = lo
                while i + 8 <= hi {
                    let pi = Self.load8(p, i)
                    let gi = Self.load8(g, i) + l2 * pi
                    let bi = first ? gi : mu * Self.load8(b, i) + damp * gi
                    Self.store8(bi, b, i)
                    let step = nesterov ? gi + mu * bi : bi
                    Self.store8(pi * decay - lr * step, p, i)
                    i += 8
                }
                for i in i..<hi {
                    let gi = g[i] + l2 * p[i]
                    let bi = first ? gi : mu * b[i] + damp * gi
                    b[i] = bi
                    let step = nesterov ? gi + mu * bi : bi
                    p[i] = p[i] * decay - lr * step
                }
            }
        }
        count { $0.launches += 1 }
    }

    func adagrad(param: DeviceBuffer, grad: DeviceBuffer, sum: DeviceBuffer, count n: Int,
                     _ h: AdagradStepParameters) {
        guard allocated("adagrad", param, grad, sum) else { return }
        guard n > 0 else { return }
        let p = param.host!, g = grad.host!, s = sum.host!
        let lr = h.learningRate, wd = h.weightDecay, eps = h.eps
        let first = h.first, initial = h.initialAccumulatorValue
        parallelFor(n) { lo, hi in
            var i = lo
            while i + 8 <= hi {
                let pi = Self.load8(p, i)
                let gi = Self.load8(g, i) + wd * pi
                let si = (first ? SIMD8<Float>(repeating: initial) : Self.load8(s, i)) + gi * gi
                Self.store8(si, s, i)
                Self.store8(pi - lr * gi / (myelin_sqrt8(si) + eps), p, i)
                i += 8
            }
            while i < hi {
                let gi = g[i] + wd * p[i]
                let si = (first ? initial : s[i]) + gi * gi
                s[i] = si
                p[i] -= lr * gi / (si.squareRoot() + eps)
                i += 1
            }
        }
        count { $0.launches += 1 }
    }

    func rmsprop(param: DeviceBuffer, grad: DeviceBuffer, squareAverage: DeviceBuffer,
                     gradientAverage: DeviceBuffer?, momentumBuffer: DeviceBuffer?, count n: Int,
                     _ h: RMSPropStepParameters) {
        guard allocated("rmsprop", param, grad, squareAverage, gradientAverage, momentumBuffer) else { return }
        guard n > 0 else { return }
        precondition(!h.centered || gradientAverage != nil, "rmspropStep: centered needs a gradient-average buffer")
        precondition(h.momentum <= 0 || momentumBuffer != nil, "rmspropStep: momentum \(h.momentum) needs a momentum buffer")
        let p = param.host!, g = grad.host!, sq = squareAverage.host!
        let ga = gradientAverage?.host, mb = momentumBuffer?.host
        let lr = h.learningRate, alpha = h.alpha, eps = h.eps, wd = h.weightDecay, mu = h.momentum
        let first = h.first, centered = h.centered
        let c = 1 - alpha
        parallelFor(n) { lo, hi in
            var i = lo
            // Eight lanes at a time; the same expressions, in the same order, as the scalar tail below.
            let zero = SIMD8<Float>(repeating: 0)
            while i + 8 <= hi {
                let pi = Self.load8(p, i)
                let gi = Self.load8(g, i) + wd * pi
                let v = alpha * (first ? zero : Self.load8(sq, i)) + c * gi * gi
                Self.store8(v, sq, i)
                var avg = v
                if centered {
                    let a = alpha * (first ? zero : Self.load8(ga!, i)) + c * gi
                    Self.store8(a, ga!, i)
                    avg = v - a * a
                }
                let denom = myelin_sqrt8(avg) + eps
                if mu > 0 {
                    let b = mu * (first ? zero : Self.load8(mb!, i)) + gi / denom
                    Self.store8(b, mb!, i)
                    Self.store8(pi - lr * b, p, i)
                } else {
                    Self.store8(pi - lr * gi / denom, p, i)
                }
                i += 8
            }
            for i in i..<hi {
                let gi = g[i] + wd * p[i]
                let v = alpha * (first ? 0 : sq[i]) + c * gi * gi
                sq[i] = v
                var avg = v
                if centered {
                    let a = alpha * (first ? 0 : ga![i]) + c * gi
                    ga![i] = a
                    avg = v - a * a
                }
                let denom = avg.squareRoot() + eps
                if mu > 0 {
                    let b = mu * (first ? 0 : mb![i]) + gi / denom
                    mb![i] = b
                    p[i] -= lr * b
                } else {
                    p[i] -= lr * gi / denom
                }
            }
        }
        count { $0.launches += 1 }
    }

    func adam(param: DeviceBuffer, grad: DeviceBuffer, expAvg: DeviceBuffer, expAvgSq: DeviceBuffer,
                  maxExpAvgSq: DeviceBuffer?, count n: Int, _ h: AdamStepParameters) {
        guard allocated("adam", param, grad, expAvg, expAvgSq, maxExpAvgSq) else { return }
        guard n > 0 else { return }
        precondition(!h.amsgrad || maxExpAvgSq != nil, "adamStep: amsgrad needs a max_exp_avg_sq buffer")
        let p = param.host!, g = grad.host!, m = expAvg.host!, v = expAvgSq.host!, vmax = maxExpAvgSq?.host
        let lr = h.learningRate, b1 = h.beta1, b2 = h.beta2, eps = h.eps, wd = h.weightDecay
        let decay: Float = h.decoupled ? 1 - lr * wd : 1
        let l2: Float = h.decoupled ? 0 : wd
        let stepSize = h.stepSize, bc2 = h.biasCorrection2Sqrt
        let first = h.first, amsgrad = h.amsgrad
        if !amsgrad {
            let c1 = 1 - b1, c2 = 1 - b2
            if CPUBackend.ownGemmAvailable {
                // AVX2 CPUs: 8-wide AVX in C (half the instructions of SIMD8 on baseline x86-64), same rounding.
                parallelFor(n) { lo, hi in
                    myelin_adam_avx(p, g, m, v, lo, hi, l2, b1, c1, b2, c2, decay, stepSize, bc2, eps, first ? 1 : 0)
                }
                count { $0.launches += 1 }
                return
            }
            // Eight lanes at a time through SIMD8 (the scalar loop did not vectorize: four pointers
            // that may alias, and a division and a square root per element), then a scalar tail.
            parallelFor(n) { lo, hi in
                var i = lo
                while i + 8 <= hi {
                    let pi = Self.load8(p, i)
                    let gi = Self.load8(g, i) + l2 * pi
                    // `first` reads the old moments as zero (replacing, not scaling, so stale NaNs cannot leak).
                    let m0 = first ? SIMD8<Float>(repeating: 0) : Self.load8(m, i)
                    let v0 = first ? SIMD8<Float>(repeating: 0) : Self.load8(v, i)
                    let mi = b1 * m0 + c1 * gi, vi = b2 * v0 + c2 * gi * gi
                    Self.store8(mi, m, i)
                    Self.store8(vi, v, i)
                    Self.store8(pi * decay - stepSize * mi / (myelin_sqrt8(vi) / bc2 + eps), p, i)
                    i += 8
                }
                while i < hi {
                    let gi = g[i] + l2 * p[i]
                    let mi = b1 * (first ? 0 : m[i]) + c1 * gi, vi = b2 * (first ? 0 : v[i]) + c2 * gi * gi
                    m[i] = mi
                    v[i] = vi
                    p[i] = p[i] * decay - stepSize * mi / (vi.squareRoot() / bc2 + eps)
                    i += 1
                }
            }
            count { $0.launches += 1 }
            return
        }
        let vm = vmax!
        parallelFor(n) { lo, hi in
            var i = lo
            while i + 8 <= hi {
                let pi = Self.load8(p, i)
                let gi = Self.load8(g, i) + l2 * pi
                let m0 = first ? SIMD8<Float>(repeating: 0) : Self.load8(m, i)
                let v0 = first ? SIMD8<Float>(repeating: 0) : Self.load8(v, i)
                let mi = b1 * m0 + (1 - b1) * gi
                var vi = b2 * v0 + (1 - b2) * gi * gi
                Self.store8(mi, m, i)
                Self.store8(vi, v, i)
                if !first {
                    // Swift.max(old, vi) lane by lane: vi where vi >= old, else old (NaNs as in the scalar tail).
                    let old = Self.load8(vm, i)
                    vi = old.replacing(with: vi, where: vi .>= old)
                }
                Self.store8(vi, vm, i)
                Self.store8(pi * decay - stepSize * mi / (myelin_sqrt8(vi) / bc2 + eps), p, i)
                i += 8
            }
            for i in i..<hi {
                let gi = g[i] + l2 * p[i]
                let mi = b1 * (first ? 0 : m[i]) + (1 - b1) * gi
                var vi = b2 * (first ? 0 : v[i]) + (1 - b2) * gi * gi
                m[i] = mi
                v[i] = vi
                vi = first ? vi : Swift.max(vm[i], vi)
                vm[i] = vi
                p[i] = p[i] * decay - stepSize * mi / (vi.squareRoot() / bc2 + eps)
            }
        }
        count { $0.launches += 1 }
    }

    @inline(__always) static func load8(_ p: UnsafeMutablePointer<Float>, _ i: Int) -> SIMD8<Float> {
        UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
    }

    @inline(__always) static func store8(_ x: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>, _ i: Int) {
        UnsafeMutableRawPointer(p + i).storeBytes(of: x, as: SIMD8<Float>.self)
    }
}
