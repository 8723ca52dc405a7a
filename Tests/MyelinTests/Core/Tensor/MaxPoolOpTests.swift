import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// The one-node max pooling (`Tensor.maxPool2d`, used by `MaxPool2D`) against Double loops, with ties: a window's
/// gradient is shared equally by the positions holding its maximum (padding reads -infinity).
@Suite struct MaxPoolOpTests {
    @Test(arguments: TestDevices.all)
    func forwardAndTiedBackwardMatchDoubleLoops(device: Device) throws {
        for (n, c) in [(1, 1), (3, 3), (1, 5)] {
            for (k, s, p) in [(2, 2, 0), (3, 2, 1), (3, 1, 1)] {
                let (h, w) = (7, 9)
                // Rounded to halves: many ties inside windows.
                let xv = testValues(n * c * h * w, seed: UInt64(n * 10 + c)).map { ($0 * 4).rounded() / 2 }
                let oh = (h + 2 * p - k) / s + 1, ow = (w + 2 * p - k) / s + 1
                let gyv = testValues(n * c * oh * ow, seed: 9)
                var y = [Double](repeating: 0, count: n * c * oh * ow), gx = [Double](repeating: 0, count: xv.count)
                for plane in 0..<(n * c) { for r in 0..<oh { for q in 0..<ow {
                    var window: [(Int?, Double)] = []
                    for i in 0..<k { for j in 0..<k {
                        let row = r * s - p + i, col = q * s - p + j
                        let inside = row >= 0 && row < h && col >= 0 && col < w
                        let at = plane * h * w + row * w + col
                        window.append(inside ? (at, Double(xv[at])) : (nil, -Double.infinity))
                    } }
                    let best = window.map(\.1).max()!, tied = window.filter { $0.1 == best }
                    let o = (plane * oh + r) * ow + q
                    y[o] = best
                    for (at, _) in tied { if let at { gx[at] += Double(gyv[o]) / Double(tied.count) } }
                } } }
                let x = try Tensor(xv, shape: [n, c, h, w], on: device, requiresGrad: true)
                let out = try MaxPool2D(kernelSize: k, stride: s, padding: p)(x)
                try out.backward(try Tensor(gyv, shape: [n, c, oh, ow], on: device))
                let what = "\(device) [\(n), \(c), 7, 9] k\(k) s\(s) p\(p)"
                expectClose(out.toArray(), y, rtol: 0, atol: 0, "\(what) forward")
                expectClose(x.grad!.toArray(), gx, rtol: 1e-6, atol: 1e-6, "\(what) backward")
            }
        }
    }
}
