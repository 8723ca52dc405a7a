import Foundation

// Convolution data movement on the CPU: plain loops (the naive form of Kernels/conv.cl).
extension CPUBackend {
    func im2col(x: DeviceBuffer, cols: DeviceBuffer, geometry g: ConvGeometry, padValue: Float) {
        let px = x.host!, pc = cols.host!
        let oh = g.outH, ow = g.outW, l = g.positions, rows = g.patchSize
        guard g.batch > 0, rows > 0, l > 0 else { return }
        // One unit of work per (image, patch row).
        parallelFor(g.batch * rows, minimum: max(1, CPUBackend.parallelThreshold / l)) { lo, hi in
            for unit in lo..<hi {
                let n = unit / rows, r = unit % rows
                let c = r / (g.kernelH * g.kernelW), i = (r / g.kernelW) % g.kernelH, j = r % g.kernelW
                let src = px + (n * g.channels + c) * g.height * g.width
                let dst = pc + unit * l
                for y in 0..<oh {
                    let h = y * g.strideH - g.padH + i
                    for xo in 0..<ow {
                        let w = xo * g.strideW - g.padW + j
                        dst[y * ow + xo] = (h >= 0 && h < g.height && w >= 0 && w < g.width) ? src[h * g.width + w] : padValue
                    }
                }
            }
        }
        count { $0.launches += 1 }
    }

    func col2im(cols: DeviceBuffer, x: DeviceBuffer, geometry g: ConvGeometry) {
        let px = x.host!, pc = cols.host!
        let oh = g.outH, ow = g.outW, l = g.positions, rows = g.patchSize
        let planes = g.batch * g.channels, plane = g.height * g.width
        guard planes > 0, plane > 0 else { return }
        // One unit of work per (image, channel) plane: zero it, then add back every patch entry.
        parallelFor(planes, minimum: max(1, CPUBackend.parallelThreshold / plane)) { lo, hi in
            for p in lo..<hi {
                let n = p / g.channels, c = p % g.channels
                let dst = px + p * plane
                for k in 0..<plane { dst[k] = 0 }
                guard rows > 0, l > 0 else { continue }
                for i in 0..<g.kernelH {
                    for j in 0..<g.kernelW {
                        let src = pc + (n * rows + (c * g.kernelH + i) * g.kernelW + j) * l
                        for y in 0..<oh {
                            let h = y * g.strideH - g.padH + i
                            guard h >= 0 && h < g.height else { continue }
                            for xo in 0..<ow {
                                let w = xo * g.strideW - g.padW + j
                                if w >= 0 && w < g.width { dst[h * g.width + w] += src[y * ow + xo] }
                            }
                        }
                    }
                }
            }
        }
        count { $0.launches += 1 }
    }
}
