import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// The one-node max pooling (`Tensor.maxPool2d`, used by `MaxPool2D`) against Double loops, with ties: as in PyTorch,
/// a window's whole gradient goes to the first position in window order holding its maximum (padding reads -infinity).
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
                    let best = window.map(\.1).max()!
                    let o = (plane * oh + r) * ow + q
                    y[o] = best
                    if let at = window.first(where: { $0.0 != nil && $0.1 == best })?.0 { gx[at] += Double(gyv[o]) }
                } } }
                let x = try Tensor(xv, shape: [n, c, h, w], on: device, requiresGrad: true)
                let out = try MaxPool2D(kernelSize: k, stride: s, padding: p)(x)
                try out.backward(try Tensor(gyv, shape: [n, c, oh, ow], on: device))
                let what = "\(device) [\(n), \(c), 7, 9] k\(k) s\(s) p\(p)"
                expectClose(try out.toArray(), y, rtol: 0, atol: 0, "\(what) forward")
                expectClose(try x.grad!.toArray(), gx, rtol: 1e-6, atol: 1e-6, "\(what) backward")
            }
        }
    }

    /// PyTorch's rule on a tie, spelled out: `F.max_pool2d` of [[1, 3], [3, 2]] (and of a 3x3 window, stride 1,
    /// padding 1, around tied values) gives the whole gradient to the first maximum, row by row.
    @Test(arguments: TestDevices.all)
    func tiedWindowGivesItsWholeGradientToTheFirstMaximum(device: Device) throws {
        let x = try Tensor([1, 3, 3, 2], shape: [1, 1, 2, 2], on: device, requiresGrad: true)
        try MaxPool2D(kernelSize: 2)(x).sum().backward()
        #expect(try x.grad!.toArray() == [0, 1, 0, 0], "\(device) 2x2 window")
        // General path: 3x3 windows, stride 2, padding 1, over a plane of one value: every window's first valid
        // position takes its gradient ((0,0) for the first window, (0,1) for the second, (1,0), (1,1)).
        let plane = try Tensor([Float](repeating: 5, count: 9), shape: [1, 1, 3, 3], on: device, requiresGrad: true)
        let y = try MaxPool2D(kernelSize: 3, stride: 2, padding: 1)(plane)
        try y.backward(try Tensor([1, 10, 100, 1000], shape: y.shape, on: device))
        #expect(try plane.grad!.toArray() == [1, 10, 0, 100, 1000, 0, 0, 0, 0], "\(device) 3x3 windows")
    }
}
