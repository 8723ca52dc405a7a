import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// Elementwise math: binary ops with and without broadcasting, ops with a scalar, unary ops.
@Suite struct ElementwiseTests {
    /// Values that suit an op: positive bases for pow, divisors away from 0, a small set of values
    /// for comparisons so that equal pairs occur.
    static func operands(_ op: BinaryOp, _ n: Int, seed: UInt64, second: Bool) -> [Float] {
        switch op {
        case .power: return second ? testValues(n, seed: seed, low: -2, high: 2) : testValues(n, seed: seed, low: 0.1, high: 2)
        case .divide: return second ? valuesAwayFromZero(n, seed: seed, margin: 0.2) : testValues(n, seed: seed)
        case .equal, .notEqual, .less, .lessEqual, .greater, .greaterEqual, .maximum, .minimum:
            return testValues(n, seed: seed).map { ($0 * 2).rounded() / 2 }
        default: return testValues(n, seed: seed)
        }
    }

    /// Calls the public operator or method of `op`.
    static func apply(_ op: BinaryOp, _ a: Tensor, _ b: Tensor) throws -> Tensor {
        switch op {
        case .add: return try a + b
        case .subtract: return try a - b
        case .multiply: return try a * b
        case .divide: return try a / b
        case .power: return try a.pow(b)
        case .maximum: return try a.maximum(b)
        case .minimum: return try a.minimum(b)
        case .equal: return try a.equal(b)
        case .notEqual: return try a.notEqual(b)
        case .less: return try a.less(b)
        case .lessEqual: return try a.lessEqual(b)
        case .greater: return try a.greater(b)
        case .greaterEqual: return try a.greaterEqual(b)
        }
    }

    static let broadcastCases: [([Int], [Int])] = [
        ([7, 33], [7, 33]), ([129], [129]), ([1], [1]),
        ([7, 33], [33]), ([33], [7, 33]), ([7, 1], [7, 33]), ([1, 33], [7, 1]), ([3, 1, 5], [4, 5]),
        ([2, 3, 4], [2, 1, 4]), ([2, 3, 4], [3, 1]), ([3, 4, 5], [1]), ([], [3, 2]), ([3, 2], []),
        ([2, 1, 3, 1], [1, 4, 1, 5]), ([129, 3], [129, 1]),
    ]

    @Test(arguments: TestDevices.all)
    func binaryOpsWithBroadcasting(device: Device) throws {
        for op in BinaryOp.allCases {
            for (i, (sa, sb)) in Self.broadcastCases.enumerated() {
                let a = Self.operands(op, sa.reduce(1, *), seed: UInt64(100 + i), second: false)
                let b = Self.operands(op, sb.reduce(1, *), seed: UInt64(200 + i), second: true)
                let y = try Self.apply(op, Tensor(a, shape: sa, on: device), Tensor(b, shape: sb, on: device))
                let expected = Reference.broadcast(a, sa, b, sb) { Reference.binary(op, $0, $1) }
                #expect(y.shape == expected.shape, "\(device) \(op) \(sa) \(sb)")
                expectClose(try y.toArray(), expected.values, rtol: 1e-5, atol: 1e-6, "\(device) \(op) \(sa) with \(sb)")
            }
        }
    }

    /// More than 4 separate broadcast dimensions: the CPU handles any rank; OpenCL refuses with the shapes named.
    @Test(arguments: TestDevices.all)
    func broadcastingOverManyDimensions(device: Device) throws {
        let sa = [2, 1, 2, 1, 3], sb = [1, 3, 1, 2, 1]
        let a = testValues(12, seed: 1), b = testValues(6, seed: 2)
        let ta = try Tensor(a, shape: sa, on: device), tb = try Tensor(b, shape: sb, on: device)
        if device.isOpenCL {
            expectError(containing: ["add", "\(sa)", "\(sb)"]) { _ = try ta + tb }
        } else {
            let expected = Reference.broadcast(a, sa, b, sb, +)
            expectClose(try (ta + tb).toArray(), expected.values, rtol: 1e-6, atol: 1e-6, "rank-5 broadcast")
        }
    }

    @Test(arguments: TestDevices.all)
    func opsWithAScalarOnEitherSide(device: Device) throws {
        let shape = [7, 33]
        for op in BinaryOp.allCases {
            for scalarFirst in [false, true] {
                let x = Self.operands(op, 231, seed: 7, second: scalarFirst)
                let s: Float = op == .power ? (scalarFirst ? 1.5 : 2.5) : (op == .divide && !scalarFirst ? -0.75 : 0.5)
                let t = try Tensor(x, shape: shape, on: device)
                let y = t.mapped(.scalar(op, s, scalarFirst: scalarFirst))
                let expected = x.map { scalarFirst ? Reference.binary(op, Double(s), Double($0)) : Reference.binary(op, Double($0), Double(s)) }
                expectClose(try y.toArray(), expected, rtol: 1e-5, atol: 1e-6, "\(device) scalar \(op) first \(scalarFirst)")
            }
        }
    }

    @Test(arguments: TestDevices.all)
    func publicScalarOperators(device: Device) throws {
        let x = valuesAwayFromZero(33, seed: 8), s: Float = 1.25
        let t = try Tensor(x, shape: [3, 11], on: device)
        let d = x.map(Double.init), ds = Double(s)
        let cases: [(String, Tensor, [Double])] = [
            ("t + s", t + s, d.map { $0 + ds }), ("s + t", s + t, d.map { ds + $0 }),
            ("t - s", t - s, d.map { $0 - ds }), ("s - t", s - t, d.map { ds - $0 }),
            ("t * s", t * s, d.map { $0 * ds }), ("s * t", s * t, d.map { ds * $0 }),
            ("t / s", t / s, d.map { $0 / ds }), ("s / t", s / t, d.map { ds / $0 }),
            ("-t", -t, d.map { -$0 }),
            ("maximum", t.maximum(0.25), d.map { Swift.max($0, 0.25) }), ("minimum", t.minimum(0.25), d.map { Swift.min($0, 0.25) }),
            ("equal", t.equal(x[3]), d.map { $0 == Double(x[3]) ? 1 : 0 }),
            ("less", t.less(0.25), d.map { $0 < 0.25 ? 1 : 0 }), ("lessEqual", t.lessEqual(x[5]), d.map { $0 <= Double(x[5]) ? 1 : 0 }),
            ("greater", t.greater(0.25), d.map { $0 > 0.25 ? 1 : 0 }),
            ("greaterEqual", t.greaterEqual(x[5]), d.map { $0 >= Double(x[5]) ? 1 : 0 }),
        ]
        for (name, y, expected) in cases {
            #expect(y.shape == [3, 11])
            expectClose(try y.toArray(), expected, rtol: 1e-6, atol: 1e-6, "\(device) \(name)")
        }
    }

    @Test(arguments: TestDevices.all)
    func unaryOps(device: Device) throws {
        for shape in [[1], [7], [3, 33], [129, 3]] {
            let n = shape.reduce(1, *)
            let x = testValues(n, seed: 9, low: -3, high: 3), pos = testValues(n, seed: 10, low: 0.01, high: 5)
            let t = try Tensor(x, shape: shape, on: device), tp = try Tensor(pos, shape: shape, on: device)
            let d = x.map(Double.init), dp = pos.map(Double.init)
            let cases: [(String, Tensor, [Double])] = [
                ("negate", t.negated(), d.map { -$0 }),
                ("exp", t.exp(), d.map { Foundation.exp($0) }),
                ("log", tp.log(), dp.map { Foundation.log($0) }),
                ("sqrt", tp.sqrt(), dp.map { $0.squareRoot() }),
                ("abs", t.abs(), d.map { Swift.abs($0) }),
                ("square", t.square(), d.map { $0 * $0 }),
                ("sign", t.sign(), d.map { $0 > 0 ? 1 : ($0 < 0 ? -1 : 0) }),
                ("reciprocal", tp.mapped(.reciprocal), dp.map { 1 / $0 }),
                ("rsqrt", tp.rsqrt(), dp.map { 1 / $0.squareRoot() }),
                ("clamp", t.clamp(min: -1, max: 0.5), d.map { Swift.min(Swift.max($0, -1), 0.5) }),
                ("clamp below", t.clamp(min: 0), d.map { Swift.max($0, 0) }),
                ("clamp above", t.clamp(max: -0.5), d.map { Swift.min($0, -0.5) }),
                ("pow 2", t.pow(2), d.map { $0 * $0 }),
                ("pow 3", t.pow(3), d.map { $0 * $0 * $0 }),
                ("pow 0.5", tp.pow(0.5), dp.map { $0.squareRoot() }),
                ("pow -1.5", tp.pow(-1.5), dp.map { Foundation.pow($0, -1.5) }),
            ]
            for (name, y, expected) in cases {
                #expect(y.shape == shape)
                expectClose(try y.toArray(), expected, rtol: 1e-5, atol: 1e-6, "\(device) \(name) \(shape)")
            }
        }
    }

    @Test(arguments: TestDevices.all)
    func unaryEdgeValues(device: Device) throws {
        let x: [Float] = [0, -0.0, 1e-30, -1e-30, 88, -88, 1e20, -1e20]
        let t = try Tensor(x, shape: [8], on: device)
        #expect(try t.sign().toArray() == [0, 0, 1, -1, 1, -1, 1, -1])
        #expect(try t.abs().toArray() == x.map { Swift.abs($0) })
        #expect(try t.exp().toArray()[5] >= 0)
        let logs = try Tensor([0, 1, -1], shape: [3], on: device).log().toArray()
        #expect(logs[0] == -.infinity)
        #expect(logs[1] == 0)
        #expect(logs[2].isNaN)
    }

    /// Every binary op refuses operands that do not broadcast, naming the op and both shapes.
    @Test(arguments: TestDevices.all)
    func mismatchedShapesThrowNamingBothShapes(device: Device) throws {
        let a = Tensor.zeros([3, 4], on: device), b = Tensor.zeros([5], on: device)
        for op in BinaryOp.allCases {
            expectError(containing: ["[3, 4]", "[5]"], "\(op)") { _ = try Self.apply(op, a, b) }
        }
        expectError(containing: ["add", "[2, 3]", "[3, 2]"]) {
            _ = try Tensor.zeros([2, 3], on: device) + Tensor.zeros([3, 2], on: device)
        }
        expectError(containing: ["multiply", "[2, 3, 4]", "[3, 3]"]) {
            _ = try Tensor.zeros([2, 3, 4], on: device) * Tensor.zeros([3, 3], on: device)
        }
    }

    @Test func operandsOnDifferentDevicesThrow() throws {
        guard TestDevices.openCLAvailable else { return }
        let a = Tensor.zeros([2], on: .cpu), b = Tensor.zeros([2], on: TestDevices.openCL)
        expectError(containing: ["add", "cpu", "opencl:0"]) { _ = try a + b }
        expectError(containing: ["matmul", "cpu", "opencl:0"]) { _ = try Tensor.zeros([2, 2], on: .cpu).matmul(Tensor.zeros([2, 2], on: b.device)) }
    }

    @Test(arguments: TestDevices.all)
    func creationChecksTheElementCount(device: Device) throws {
        expectError(containing: ["4", "3", "[2, 2]"]) { _ = try Tensor([1, 2, 3], shape: [2, 2], on: device) }
        expectError(containing: ["negative"]) { _ = try Tensor([], shape: [-1, 0], on: device) }
        let t = try Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3], on: device)
        #expect(try t.toArray() == [1, 2, 3, 4, 5, 6])
        #expect(try Tensor.full([3, 3], 2.5, on: device).toArray() == [Float](repeating: 2.5, count: 9))
        #expect(try Tensor.zeros([0, 3], on: device).toArray() == [])
        #expect(try Tensor(scalar: 4, on: device).item() == 4)
        #expect(Tensor(scalar: 4, on: device).shape == [])
        #expect(Tensor([1, 2, 3], on: device).shape == [3])
        // copy() owns new memory; description shows shape, device and values.
        let c = t.copy()
        #expect(try c.buffer !== t.buffer && c.toArray() == t.toArray() && c.shape == t.shape && !c.requiresGrad)
        #expect(t.description == "Tensor(shape: [2, 3], device: \(device.name), [1, 2, 3, 4, 5, 6])")
        #expect(Tensor.zeros([100], on: device).description.contains("100 values"))
    }

    /// Tensors above the CPU's parallel threshold (65,536 elements) take the multi-threaded loops.
    @Test(arguments: TestDevices.all)
    func largeTensorsTakeTheParallelPaths(device: Device) throws {
        let (rows, cols) = (257, 256)
        let n = rows * cols
        let x = testValues(n, seed: 90, low: -3, high: 3), y = testValues(n, seed: 91), r = testValues(cols, seed: 92)
        let c = testValues(rows, seed: 93)
        let tx = try Tensor(x, shape: [rows, cols], on: device, requiresGrad: true)
        let ty = try Tensor(y, shape: [rows, cols], on: device)
        let tr = try Tensor(r, shape: [cols], on: device), tc = try Tensor(c, shape: [rows, 1], on: device)
        let d = x.map(Double.init)
        expectClose(try (tx + ty).toArray(), (0..<n).map { d[$0] + Double(y[$0]) }, rtol: 1e-6, atol: 1e-6, "\(device) add")
        expectClose(try (tx * ty).toArray(), (0..<n).map { d[$0] * Double(y[$0]) }, rtol: 1e-6, atol: 1e-6, "\(device) multiply")
        expectClose(try (tx.maximum(ty)).toArray(), (0..<n).map { Swift.max(d[$0], Double(y[$0])) }, rtol: 0, atol: 0, "\(device) maximum")
        expectClose(try (tx + tr).toArray(), (0..<n).map { d[$0] + Double(r[$0 % cols]) }, rtol: 1e-6, atol: 1e-6, "\(device) row broadcast")
        expectClose(try (tx - tc).toArray(), (0..<n).map { d[$0] - Double(c[$0 / cols]) }, rtol: 1e-6, atol: 1e-6, "\(device) column broadcast")
        expectClose(try (tx * 2 + 1).toArray(), d.map { $0 * 2 + 1 }, rtol: 1e-6, atol: 1e-6, "\(device) scalar")
        expectClose(try tx.exp().toArray(), d.map { Foundation.exp($0) }, rtol: 1e-5, atol: 1e-6, "\(device) exp")
        let s = tx.sigmoid()
        expectClose(try s.toArray(), d.map { Reference.activation(.sigmoid, $0) }, rtol: 1e-5, atol: 1e-6, "\(device) sigmoid")
        expectClose(try tx.relu().toArray(), d.map { Swift.max($0, 0) }, rtol: 0, atol: 0, "\(device) relu")
        expectClose(try tx.gelu().toArray(), d.map { Reference.activation(.geluErf, $0) }, rtol: 1e-5, atol: 1e-6, "\(device) gelu")
        try s.backward(ty)
        expectClose(try #require(tx.grad).toArray(), (0..<n).map { Double(y[$0]) * Reference.activationDerivative(.sigmoid, d[$0]) },
                    rtol: 1e-4, atol: 1e-6, "\(device) sigmoid backward")
        expectClose(try tx.sum(axis: 0).toArray(), Reference.reduce(x, shape: [rows, cols], axis: 0, .sum), rtol: 1e-4, atol: 1e-4, "\(device) sum axis 0")
        expectClose(try tx.max(axis: 1).toArray(), Reference.reduce(x, shape: [rows, cols], axis: 1, .max), rtol: 0, atol: 0, "\(device) max axis 1")
        expectClose([try tx.sum().item()], [d.reduce(0, +)], rtol: 1e-4, atol: 1e-2, "\(device) sum of all")
        expectClose(try tx.softmax().toArray(), Reference.softmax(x, cols: cols, log: false), rtol: 1e-4, atol: 1e-7, "\(device) softmax")
        expectClose(try tx.transposed().toArray(), Reference.transpose(x, batch: 1, rows: rows, cols: cols), rtol: 0, atol: 0, "\(device) transpose")
        #expect(try Tensor.full([rows, cols], 3, on: device).toArray().allSatisfy { $0 == 3 })
        #expect(try Tensor.deviceUniform([n], seed: 5, on: device).toArray().map(\.bitPattern)
                == (0..<n).map { CounterRandom.uniform(seed: 5, index: UInt64($0)).bitPattern })
    }
}
