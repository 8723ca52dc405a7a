import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

// Shared helpers of the tensor-core tests: Double references of the ops, broadcasting, and a
// finite-difference gradient check.

/// Deterministic test data in [low, high).
func testValues(_ count: Int, seed: UInt64, low: Float, high: Float) -> [Float] {
    var g = SeededGenerator(seed: seed)
    return (0..<count).map { _ in Float(Double(low) + (Double(high) - Double(low)) * g.nextDouble()) }
}

/// Values in [-1, 1) pushed at least `margin` away from zero (kinks of relu, abs, sign stay clear of
/// finite-difference steps).
func valuesAwayFromZero(_ count: Int, seed: UInt64, margin: Float = 0.1) -> [Float] {
    testValues(count, seed: seed).map { $0 >= 0 ? $0 + margin : $0 - margin }
}

/// Distinct values (a shuffled ramp), so that max/min/argmax have no ties; scaled to about [-1, 1].
func distinctValues(_ count: Int, seed: UInt64) -> [Float] {
    var g = SeededGenerator(seed: seed)
    var v = (0..<count).map { Float(2 * $0 - count) / Float(Swift.max(count, 1)) }
    v.shuffle(using: &g)
    return v
}

extension Reference {
    /// a op b in Double; comparisons give 1 or 0.
    static func binary(_ op: BinaryOp, _ a: Double, _ b: Double) -> Double {
        switch op {
        case .add: return a + b
        case .subtract: return a - b
        case .multiply: return a * b
        case .divide: return a / b
        case .power: return Foundation.pow(a, b)
        case .maximum: return Swift.max(a, b)
        case .minimum: return Swift.min(a, b)
        case .equal: return a == b ? 1 : 0
        case .notEqual: return a != b ? 1 : 0
        case .less: return a < b ? 1 : 0
        case .lessEqual: return a <= b ? 1 : 0
        case .greater: return a > b ? 1 : 0
        case .greaterEqual: return a >= b ? 1 : 0
        }
    }

    /// Numpy broadcasting of two shapes, nil when they do not broadcast.
    static func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int]? {
        let rank = Swift.max(a.count, b.count)
        let pa = [Int](repeating: 1, count: rank - a.count) + a
        let pb = [Int](repeating: 1, count: rank - b.count) + b
        var out: [Int] = []
        for i in 0..<rank {
            if pa[i] == pb[i] || pb[i] == 1 { out.append(pa[i]) } else if pa[i] == 1 { out.append(pb[i]) } else { return nil }
        }
        return out
    }

    /// The flat index into a tensor of `shape` of the element that output index `index` (of `outShape`) reads
    /// when broadcast.
    static func broadcastSource(_ index: Int, outShape: [Int], shape: [Int]) -> Int {
        var rem = index, src = 0, step = 1
        let offset = outShape.count - shape.count
        for d in stride(from: outShape.count - 1, through: 0, by: -1) {
            let i = rem % outShape[d]; rem /= outShape[d]
            let sd = d - offset
            if sd >= 0 {
                if shape[sd] != 1 { src += i * step }
                step *= shape[sd]
            }
        }
        return src
    }

    /// a op b with broadcasting, in Double.
    static func broadcast(_ a: [Float], _ aShape: [Int], _ b: [Float], _ bShape: [Int],
                          _ f: (Double, Double) -> Double) -> (shape: [Int], values: [Double]) {
        let out = broadcastShape(aShape, bShape)!
        let n = out.reduce(1, *)
        let values = (0..<n).map { i in
            f(Double(a[broadcastSource(i, outShape: out, shape: aShape)]), Double(b[broadcastSource(i, outShape: out, shape: bShape)]))
        }
        return (out, values)
    }

    /// A reduction of x over `axis` in Double.
    static func reduce(_ x: [Float], shape: [Int], axis: Int, _ op: ReduceOp) -> [Double] {
        let outer = shape[..<axis].reduce(1, *), length = shape[axis], inner = shape[(axis + 1)...].reduce(1, *)
        var out: [Double] = []
        for o in 0..<outer {
            for j in 0..<inner {
                let column = (0..<length).map { Double(x[(o * length + $0) * inner + j]) }
                switch op {
                case .sum: out.append(column.reduce(0, +))
                case .mean: out.append(column.reduce(0, +) / Double(length))
                case .max: out.append(column.max()!)
                case .min: out.append(column.min()!)
                }
            }
        }
        return out
    }

    /// Row-wise softmax or log-softmax in Double.
    static func softmax(_ x: [Float], cols: Int, log: Bool) -> [Double] {
        var out: [Double] = []
        for r in 0..<(x.count / cols) {
            let row = x[(r * cols)..<((r + 1) * cols)].map(Double.init)
            let m = row.max()!
            let s = row.reduce(0) { $0 + Foundation.exp($1 - m) }
            out += row.map { log ? $0 - m - Foundation.log(s) : Foundation.exp($0 - m) / s }
        }
        return out
    }

    /// The last two axes swapped.
    static func transpose(_ x: [Float], batch: Int, rows: Int, cols: Int) -> [Double] {
        var out = [Double](repeating: 0, count: x.count)
        for b in 0..<batch { for r in 0..<rows { for c in 0..<cols {
            out[b * rows * cols + c * rows + r] = Double(x[b * rows * cols + r * cols + c])
        } } }
        return out
    }
}

/// Checks the gradients that `backward()` gives for every input of `f` against central differences.
///
/// The loss is Σ f(inputs)·w for fixed random weights w, computed in Double on the host from `f`'s output
/// for the numerical side, so that rounding in a device-side sum does not blur the differences.
/// Each input element is moved by ±`eps` (in Float) and `f` is run again without recording a graph.
func gradientCheck(device: Device, inputs: [([Float], [Int])], eps: Float = 1e-2,
                   rtol: Double = 2e-2, atol: Double = 2e-3, _ what: String = "",
                   sourceLocation: SourceLocation = #_sourceLocation,
                   f: ([Tensor]) throws -> Tensor) throws {
    let tensors = try inputs.map { try Tensor($0.0, shape: $0.1, on: device, requiresGrad: true) }
    let y = try f(tensors)
    let weights = testValues(y.count, seed: 4242, low: 0.5, high: 1.5)
    let w = try Tensor(weights, shape: y.shape, on: device)
    let loss = try (y * w).sum()
    try loss.backward()

    func hostLoss(_ values: [[Float]]) throws -> Double {
        let out = try withNoGrad {
            try f(zip(values, inputs).map { try Tensor($0.0, shape: $0.1.1, on: device) })
        }.toArray()
        return zip(out, weights).reduce(0) { $0 + Double($1.0) * Double($1.1) }
    }

    for (i, input) in inputs.enumerated() {
        guard let grad = tensors[i].grad else {
            Issue.record("\(what): input \(i) got no gradient", sourceLocation: sourceLocation)
            continue
        }
        #expect(grad.shape == input.1, "\(what): gradient of input \(i) has shape \(grad.shape), expected \(input.1)",
                sourceLocation: sourceLocation)
        var numeric: [Double] = []
        for j in 0..<input.0.count {
            var plus = inputs.map(\.0), minus = inputs.map(\.0)
            plus[i][j] += eps
            minus[i][j] -= eps
            let step = Double(plus[i][j]) - Double(minus[i][j])
            numeric.append((try hostLoss(plus) - hostLoss(minus)) / step)
        }
        expectClose(try grad.toArray(), numeric, rtol: rtol, atol: atol, "\(what) [\(device)]: gradient of input \(i)",
                    sourceLocation: sourceLocation)
    }
}

/// Checks that `body` throws an error whose description contains every string of `parts`.
func expectError(containing parts: [String], _ what: String = "", sourceLocation: SourceLocation = #_sourceLocation,
                 _ body: () throws -> Void) {
    do {
        try body()
        Issue.record("\(what): expected an error mentioning \(parts), nothing was thrown", sourceLocation: sourceLocation)
    } catch {
        let text = String(describing: error)
        for p in parts where !text.contains(p) {
            Issue.record("\(what): error '\(text)' does not mention '\(p)'", sourceLocation: sourceLocation)
        }
    }
}
