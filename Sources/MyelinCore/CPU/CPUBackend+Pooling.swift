import Foundation

// Max pooling on the CPU (the naive form of the max_pool kernels in Kernels/normalization.cl). The forward pass
// records each window's first maximum in window order (i·kernelW + j, -1 for none), PyTorch's choice on ties; the
// backward pass gives that position the window's whole gradient.
extension CPUBackend {
    func maxPoolForward(x: DeviceBuffer, y: DeviceBuffer, argmax: DeviceBuffer, geometry g: ConvGeometry) {
        guard allocated("maxPoolForward", x, y, argmax) else { return }
        let px = x.host!, py = y.host!, pa = argmax.host!
        let planes = g.batch * g.channels, plane = g.height * g.width, outPlane = g.outH * g.outW
        guard planes > 0, outPlane > 0 else { return }
        if g.isPlainTwoByTwo {
            // The common 2x2 window, stride 2, no padding: four loads per output, no bounds checks (the general
            // loop below re-reads the geometry for every element and took a quarter of the cnn's step).
            let w = g.width, outH = g.outH, outW = g.outW
            parallelFor(planes, minimum: max(1, CPUBackend.parallelThreshold / max(1, plane))) { lo, hi in
                for p in lo..<hi {
                    let src = px + p * plane, out = py + p * outPlane, index = pa + p * outPlane
                    for oh in 0..<outH {
                        let top = src + 2 * oh * w, bottom = top + w
                        for ow in 0..<outW {
                            let a = top[2 * ow], b = top[2 * ow + 1], c = bottom[2 * ow], d = bottom[2 * ow + 1]
                            // Selects, not branches (random data mispredicts them); NaN is never picked, as below.
                            var best = -Float.infinity
                            best = a > best ? a : best
                            best = b > best ? b : best
                            best = c > best ? c : best
                            best = d > best ? d : best
                            let first: Float = a == best ? 0 : b == best ? 1 : c == best ? 2 : d == best ? 3 : -1
                            out[oh * outW + ow] = best
                            index[oh * outW + ow] = first
                        }
                    }
                }
            }
            count { $0.launches += 1 }
            return
        }
        parallelFor(planes, minimum: max(1, CPUBackend.parallelThreshold / max(1, plane))) { lo, hi in
            for p in lo..<hi {
                let src = px + p * plane
                for oh in 0..<g.outH {
                    for ow in 0..<g.outW {
                        // The first position holding the maximum (a later equal value does not replace it; an
                        // all -infinity window picks its first valid position, an all-NaN one none).
                        var best = -Float.infinity, first = -1
                        for i in 0..<g.kernelH {
                            let r = oh * g.strideH - g.padH + i
                            guard r >= 0, r < g.height else { continue }
                            for j in 0..<g.kernelW {
                                let col = ow * g.strideW - g.padW + j
                                guard col >= 0, col < g.width else { continue }
                                let v = src[r * g.width + col]
                                if v > best || (first < 0 && v == best) { best = v; first = i * g.kernelW + j }
                            }
                        }
                        py[p * outPlane + oh * g.outW + ow] = best
                        pa[p * outPlane + oh * g.outW + ow] = Float(first)
                    }
                }
            }
        }
        count { $0.launches += 1 }
    }

    func maxPoolBackward(x: DeviceBuffer, y: DeviceBuffer, argmax: DeviceBuffer, gy: DeviceBuffer, gx: DeviceBuffer,
                         geometry g: ConvGeometry) {
        guard allocated("maxPoolBackward", x, y, argmax, gy, gx) else { return }
        let pa = argmax.host!, pg = gy.host!, pgx = gx.host!
        let planes = g.batch * g.channels, plane = g.height * g.width, outPlane = g.outH * g.outW
        guard planes > 0, plane > 0 else { return }
        if g.isPlainTwoByTwo {
            let w = g.width, outH = g.outH, outW = g.outW
            parallelFor(planes, minimum: max(1, CPUBackend.parallelThreshold / max(1, plane))) { lo, hi in
                for p in lo..<hi {
                    let dst = pgx + p * plane, index = pa + p * outPlane, grad = pg + p * outPlane
                    // Rows and columns past the last window get 0; every other element is written below.
                    if outH * 2 < g.height || outW * 2 < w { dst.update(repeating: 0, count: plane) }
                    for oh in 0..<outH {
                        let top = 2 * oh * w, bottom = top + w
                        for ow in 0..<outW {
                            let at = oh * outW + ow, k = index[at], share = grad[at]
                            let i = 2 * ow
                            dst[top + i] = k == 0 ? share : 0
                            dst[top + i + 1] = k == 1 ? share : 0
                            dst[bottom + i] = k == 2 ? share : 0
                            dst[bottom + i + 1] = k == 3 ? share : 0
                        }
                    }
                }
            }
            count { $0.launches += 1 }
            return
        }
        parallelFor(planes, minimum: max(1, CPUBackend.parallelThreshold / max(1, plane))) { lo, hi in
            for p in lo..<hi {
                let dst = pgx + p * plane
                dst.update(repeating: 0, count: plane)
                guard outPlane > 0 else { continue }
                for oh in 0..<g.outH {
                    for ow in 0..<g.outW {
                        let at = p * outPlane + oh * g.outW + ow
                        let k = Int(pa[at])
                        guard k >= 0 else { continue }
                        let r = oh * g.strideH - g.padH + k / g.kernelW, col = ow * g.strideW - g.padW + k % g.kernelW
                        dst[r * g.width + col] += pg[at]
                    }
                }
            }
        }
        count { $0.launches += 1 }
    }
}
