import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// Reductions over one axis and over everything, argmax, softmax and log-softmax.
@Suite struct ReductionTests {
    static let shapes: [[Int]] = [[1], [129], [7, 33], [33, 1], [1, 33], [3, 300], [3, 5, 129], [2, 3, 4, 5], [1, 1, 7]]

    @Test(arguments: TestDevices.all)
    func reduceOverEachAxis(device: Device) throws {
        for (si, shape) in Self.shapes.enumerated() {
            let x = distinctValues(shape.reduce(1, *), seed: UInt64(si))
            let t = try Tensor(x, shape: shape, on: device)
            for axis in 0..<shape.count {
                for keepDims in [false, true] {
                    var outShape = shape
                    if keepDims { outShape[axis] = 1 } else { outShape.remove(at: axis) }
                    let results: [(ReduceOp, Tensor)] = [
                        (.sum, try t.sum(axis: axis, keepDims: keepDims)), (.mean, try t.mean(axis: axis, keepDims: keepDims)),
                        (.max, try t.max(axis: axis, keepDims: keepDims)), (.min, try t.min(axis: axis, keepDims: keepDims)),
                    ]
                    for (op, y) in results {
                        #expect(y.shape == outShape, "\(device) \(op) \(shape) axis \(axis)")
                        expectClose(try y.toArray(), Reference.reduce(x, shape: shape, axis: axis, op), rtol: 1e-5, atol: 1e-5,
                                    "\(device) \(op) of \(shape) over axis \(axis) keepDims \(keepDims)")
                    }
                }
            }
            // Negative axes count from the end.
            expectClose(try t.sum(axis: -1).toArray(), Reference.reduce(x, shape: shape, axis: shape.count - 1, .sum),
                        rtol: 1e-5, atol: 1e-5, "\(device) sum axis -1 of \(shape)")
        }
    }

    @Test(arguments: TestDevices.all)
    func reduceOverEverything(device: Device) throws {
        for (si, shape) in ([[]] + Self.shapes).enumerated() {
            let n = shape.reduce(1, *)
            let x = distinctValues(n, seed: UInt64(50 + si))
            let t = try Tensor(x, shape: shape, on: device)
            let d = x.map(Double.init)
            let cases: [(String, Tensor, Double)] = [
                ("sum", t.sum(), d.reduce(0, +)), ("mean", t.mean(), d.reduce(0, +) / Double(n)),
                ("max", try t.max(), d.max()!), ("min", try t.min(), d.min()!),
            ]
            for (name, y, expected) in cases {
                #expect(y.shape == [], "\(device) \(name) of \(shape) has shape \(y.shape)")
                expectClose([try y.item()], [expected], rtol: 1e-5, atol: 1e-5, "\(device) \(name) of \(shape)")
            }
        }
    }

    /// Rows long enough for OpenCL to split each over several work-groups and finish in a second launch, and for
    /// the CPU's vector lanes: whole numbers 1...8, whose sums are exact in any order, so sums are compared exactly.
    @Test(arguments: TestDevices.all)
    func longRowsAreExact(device: Device) throws {
        for shape in [[70001], [2, 70001], [3, 20000], [1, 8191]] {
            let n = shape.reduce(1, *)
            let x = (0..<n).map { Float(($0 &* 7919) % 8 + 1) }
            let t = try Tensor(x, shape: shape, on: device)
            let length = shape.last!, rows = n / length
            let rowsOf = (0..<rows).map { Array(x[($0 * length)..<(($0 + 1) * length)]) }
            let axis = shape.count - 1
            #expect(try t.sum(axis: axis).toArray() == rowsOf.map { $0.reduce(0, +) }, "\(device) sum of \(shape)")
            #expect(try t.max(axis: axis).toArray() == rowsOf.map { $0.max()! }, "\(device) max of \(shape)")
            #expect(try t.min(axis: axis).toArray() == rowsOf.map { $0.min()! }, "\(device) min of \(shape)")
            expectClose(try t.mean(axis: axis).toArray(), rowsOf.map { Double($0.reduce(0, +)) / Double(length) },
                        rtol: 1e-6, atol: 0, "\(device) mean of \(shape)")
            #expect(try t.sum().item() == x.reduce(0, +), "\(device) sum of everything of \(shape)")
        }
    }

    @Test(arguments: TestDevices.all)
    func badAxisThrows(device: Device) throws {
        let t = Tensor.zeros([2, 3], on: device)
        expectError(containing: ["sum", "axis 2", "rank 2"]) { _ = try t.sum(axis: 2) }
        expectError(containing: ["max", "axis -3", "rank 2"]) { _ = try t.max(axis: -3) }
        expectError(containing: ["mean", "axis 5"]) { _ = try t.mean(axis: 5) }
        expectError(containing: ["min", "axis 2"]) { _ = try t.min(axis: 2) }
    }

    @Test(arguments: TestDevices.all)
    func argmaxPicksTheFirstOfTies(device: Device) throws {
        let x: [Float] = [1, 3, 3, 2,    // tie: first 3
                          -5, -1, -1, -7, // tie among negatives
                          0, 0, 0, 0,     // all equal: index 0
                          1, 2, 3, 4,     // last
                          9, 1, 9, 9]     // first
        let t = try Tensor(x, shape: [5, 4], on: device)
        let y = try t.argmax()
        #expect(y.shape == [5])
        #expect(try y.toArray() == [1, 1, 0, 3, 0], "\(device)")
        // Larger odd rows, and a vector (result is a scalar).
        let v = distinctValues(3 * 129, seed: 9)
        let expected = (0..<3).map { r in Float(v[(r * 129)..<((r + 1) * 129)].enumerated().max { $0.element < $1.element }!.offset) }
        #expect(try Tensor(v, shape: [3, 129], on: device).argmax().toArray() == expected)
        let s = try Tensor([0.5, 7, -1], shape: [3], on: device).argmax()
        #expect(try s.shape == [] && s.item() == 1)
        let r3 = try Tensor(x + x, shape: [2, 5, 4], on: device).argmax()
        #expect(try r3.shape == [2, 5] && r3.toArray() == [1, 1, 0, 3, 0, 1, 1, 0, 3, 0])
    }

    @Test(arguments: TestDevices.all)
    func softmaxAndLogSoftmax(device: Device) throws {
        for (si, shape) in [[1, 1], [7, 33], [3, 129], [2, 3, 5], [10]].enumerated() {
            let x = testValues(shape.reduce(1, *), seed: UInt64(70 + si), low: -5, high: 5)
            let t = try Tensor(x, shape: shape, on: device)
            let cols = shape.last!
            let p = t.softmax(), lp = t.logSoftmax()
            #expect(p.shape == shape && lp.shape == shape)
            expectClose(try p.toArray(), Reference.softmax(x, cols: cols, log: false), rtol: 1e-5, atol: 1e-7, "\(device) softmax \(shape)")
            expectClose(try lp.toArray(), Reference.softmax(x, cols: cols, log: true), rtol: 1e-5, atol: 1e-5, "\(device) logSoftmax \(shape)")
            // Rows sum to 1.
            expectClose(try p.sum(axis: -1).toArray(), [Double](repeating: 1, count: x.count / cols), rtol: 0, atol: 1e-5,
                        "\(device) softmax rows sum to 1")
        }
    }

    @Test(arguments: TestDevices.all)
    func softmaxIsStableWithHugeLogits(device: Device) throws {
        let x: [Float] = [1000, 999, -1000, 0,   -1000, -1001, -1000, -3000,   1e30, 1e30, 0, -1e30]
        let t = try Tensor(x, shape: [3, 4], on: device)
        let p = try t.softmax().toArray(), lp = try t.logSoftmax().toArray()
        #expect(p.allSatisfy { $0.isFinite } && lp.allSatisfy { $0.isFinite }, "\(device) softmax \(p) logSoftmax \(lp)")
        expectClose(Array(p[0..<8]), Reference.softmax(Array(x[0..<8]), cols: 4, log: false), rtol: 1e-5, atol: 1e-7, "\(device) softmax")
        expectClose(Array(lp[0..<8]), Reference.softmax(Array(x[0..<8]), cols: 4, log: true), rtol: 1e-5, atol: 1e-4, "\(device) logSoftmax")
        expectClose(Array(p[8..<12]), [0.5, 0.5, 0, 0], rtol: 1e-6, atol: 1e-7, "\(device) softmax of ±1e30")
    }

    /// The device-side backward formulas against Double references of the Jacobian products.
    @Test(arguments: TestDevices.all)
    func softmaxBackwardFormulas(device: Device) throws {
        let (rows, cols) = (7, 33)
        let x = testValues(rows * cols, seed: 80, low: -3, high: 3), gy = testValues(rows * cols, seed: 81)
        let p = Reference.softmax(x, cols: cols, log: false)
        var expectedSoftmax: [Double] = [], expectedLog: [Double] = []
        for r in 0..<rows {
            let range = (r * cols)..<((r + 1) * cols)
            let dot = range.reduce(0.0) { $0 + Double(gy[$1]) * p[$1] }
            let total = range.reduce(0.0) { $0 + Double(gy[$1]) }
            expectedSoftmax += range.map { p[$0] * (Double(gy[$0]) - dot) }
            expectedLog += range.map { Double(gy[$0]) - p[$0] * total }
        }
        for log in [false, true] {
            let t = try Tensor(x, shape: [rows, cols], on: device, requiresGrad: true)
            let y = log ? t.logSoftmax() : t.softmax()
            try y.backward(Tensor(gy, shape: [rows, cols], on: device))
            expectClose(try #require(t.grad).toArray(), log ? expectedLog : expectedSoftmax, rtol: 1e-4, atol: 1e-6,
                        "\(device) \(log ? "logSoftmax" : "softmax") backward")
        }
    }
}
