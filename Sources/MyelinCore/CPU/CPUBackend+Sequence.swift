import Foundation

/// The sequence ops on the CPU: the axis permutation and the causal softmax (see `SequenceBackend`).
extension CPUBackend {
    func permute(x: DeviceBuffer, out: DeviceBuffer, layout: PermuteLayout) {
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
}
