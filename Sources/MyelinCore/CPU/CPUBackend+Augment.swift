import Foundation

// Data augmentation on the CPU: plain loops (the same mapping as Kernels/augment.cl).
extension CPUBackend {
    func randomCropFlip(x: DeviceBuffer, out: DeviceBuffer, batch: Int, channels: Int, height h: Int, width w: Int,
                        padding: Int, flip: Bool, seed: UInt64) {
        guard allocated("randomCropFlip", x, out) else { return }
        let px = x.host!, po = out.host!
        let draws = (0..<batch).map { AugmentDraw(seed: seed, image: $0, padding: padding, flip: flip) }
        parallelFor(batch * channels, minimum: Swift.max(1, CPUBackend.parallelThreshold / Swift.max(1, h * w))) { lo, hi in
            for plane in lo..<hi {
                let d = draws[plane / channels]
                let src = px + plane * h * w, dst = po + plane * h * w
                for y in 0..<h {
                    let ys = y + d.dy - padding
                    let row = dst + y * w
                    guard ys >= 0, ys < h else {
                        for xo in 0..<w { row[xo] = 0 }
                        continue
                    }
                    let srcRow = src + ys * w
                    for xo in 0..<w {
                        let xs = (d.mirrored ? w - 1 - xo : xo) + d.dx - padding
                        row[xo] = xs >= 0 && xs < w ? srcRow[xs] : 0
                    }
                }
            }
        }
        count { $0.launches += 1 }
    }
}
