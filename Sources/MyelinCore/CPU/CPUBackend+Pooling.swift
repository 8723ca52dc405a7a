import Foundation

// Max pooling on the CPU (the naive form of the max_pool kernels in Kernels/normalization.cl).
extension CPUBackend {
    func maxPoolForward(x: DeviceBuffer, y: DeviceBuffer, ties: DeviceBuffer, geometry g: ConvGeometry) {
        let px = x.host!, py = y.host!, pt = ties.host!
        let planes = g.batch * g.channels, plane = g.height * g.width, outPlane = g.outH * g.outW
        guard planes > 0, outPlane > 0 else { return }
        if g.isPlainTwoByTwo {
            // The common 2x2 window, stride 2, no padding: four loads per output, no bounds checks (the general
            // loop below re-reads the geometry for every element and took a quarter of the cnn's step).
            let w = g.width, outH = g.outH, outW = g.outW
            parallelFor(planes, minimum: max(1, CPUBackend.parallelThreshold / max(1, plane))) { lo, hi in
                for p in lo..<hi {
                    let src = px + p * plane, out = py + p * outPlane, tie = pt + p * outPlane
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
                            let count = (a == best ? 1 : 0) + (b == best ? 1 : 0) + (c == best ? 1 : 0) + (d == best ? 1 : 0) as Float
                            out[oh * outW + ow] = best
                            tie[oh * outW + ow] = count
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
                        var best = -Float.infinity
                        for i in 0..<g.kernelH {
                            let r = oh * g.strideH - g.padH + i
                            guard r >= 0, r < g.height else { continue }
                            for j in 0..<g.kernelW {
                                let col = ow * g.strideW - g.padW + j
                                if col >= 0, col < g.width, src[r * g.width + col] > best { best = src[r * g.width + col] }
                            }
                        }
                        var count = 0
                        for i in 0..<g.kernelH {
                            let r = oh * g.strideH - g.padH + i
                            for j in 0..<g.kernelW {
                                let col = ow * g.strideW - g.padW + j
                                let v = r >= 0 && r < g.height && col >= 0 && col < g.width ? src[r * g.width + col] : -Float.infinity
                                if v == best { count += 1 }
                            }
                        }
                        py[p * outPlane + oh * g.outW + ow] = best
                        pt[p * outPlane + oh * g.outW + ow] = Float(count)
                    }
                }
            }
        }
        count { $0.launches += 1 }
    }

    func maxPoolBackward(x: DeviceBuffer, y: DeviceBuffer, ties: DeviceBuffer, gy: DeviceBuffer, gx: DeviceBuffer,
                         geometry g: ConvGeometry) {
        let px = x.host!, py = y.host!, pt = ties.host!, pg = gy.host!, pgx = gx.host!
        let planes = g.batch * g.channels, plane = g.height * g.width, outPlane = g.outH * g.outW
        guard planes > 0, plane > 0 else { return }
        if g.isPlainTwoByTwo {
            let w = g.width, outH = g.outH, outW = g.outW
            parallelFor(planes, minimum: max(1, CPUBackend.parallelThreshold / max(1, plane))) { lo, hi in
                for p in lo..<hi {
                    let src = px + p * plane, dst = pgx + p * plane
                    let best = py + p * outPlane, ties = pt + p * outPlane, grad = pg + p * outPlane
                    // Rows and columns past the last window get 0; every other element is written below.
                    if outH * 2 < g.height || outW * 2 < w { dst.update(repeating: 0, count: plane) }
                    for oh in 0..<outH {
                        let top = 2 * oh * w, bottom = top + w
                        for ow in 0..<outW {
                            let at = oh * outW + ow, m = best[at], share = grad[at] / ties[at]
                            let i = 2 * ow
                            dst[top + i] = src[top + i] == m ? share : 0
                            dst[top + i + 1] = src[top + i + 1] == m ? share : 0
                            dst[bottom + i] = src[bottom + i] == m ? share : 0
                            dst[bottom + i + 1] = src[bottom + i + 1] == m ? share : 0
                        }
                    }
                }
            }
            count { $0.launches += 1 }
            return
        }
        parallelFor(planes, minimum: max(1, CPUBackend.parallelThreshold / max(1, plane))) { lo, hi in
            for p in lo..<hi {
                let src = px + p * plane, dst = pgx + p * plane
                dst.update(repeating: 0, count: plane)
                guard outPlane > 0 else { continue }
                for oh in 0..<g.outH {
                    for ow in 0..<g.outW {
                        let at = p * outPlane + oh * g.outW + ow
                        let best = py[at], share = pg[at] / pt[at]
                        for i in 0..<g.kernelH {
                            let r = oh * g.strideH - g.padH + i
                            guard r >= 0, r < g.height else { continue }
                            for j in 0..<g.kernelW {
                                let col = ow * g.strideW - g.padW + j
                                if col >= 0, col < g.width, src[r * g.width + col] == best { dst[r * g.width + col] += share }
                            }
                        }
                    }
                }
            }
        }
        count { $0.launches += 1 }
    }
}
