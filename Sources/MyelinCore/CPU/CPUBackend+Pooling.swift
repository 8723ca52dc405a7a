import Foundation

// Max pooling on the CPU (the naive form of the max_pool kernels in Kernels/normalization.cl).
extension CPUBackend {
    func maxPoolForward(x: DeviceBuffer, y: DeviceBuffer, ties: DeviceBuffer, geometry g: ConvGeometry) {
        let px = x.host!, py = y.host!, pt = ties.host!
        let planes = g.batch * g.channels, plane = g.height * g.width, outPlane = g.outH * g.outW
        guard planes > 0, outPlane > 0 else { return }
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
