import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// Data movement: transpose, reshape, broadcast, concat, slice, gather (and its scatter-add backward), one-hot.
@Suite struct LayoutTests {
    @Test(arguments: TestDevices.all)
    func transposeOfTheLastTwoAxes(device: Device) throws {
        for shape in [[1, 1], [17, 33], [33, 17], [16, 16], [32, 48], [129, 7], [1, 129], [3, 17, 33], [2, 3, 5, 7], [4, 1, 9]] {
            let x = testValues(shape.reduce(1, *), seed: 1)
            let rows = shape[shape.count - 2], cols = shape[shape.count - 1]
            let y = try Tensor(x, shape: shape, on: device).transposed()
            var expectedShape = shape
            expectedShape.swapAt(shape.count - 2, shape.count - 1)
            #expect(y.shape == expectedShape)
            expectClose(try y.toArray(), Reference.transpose(x, batch: x.count / (rows * cols), rows: rows, cols: cols),
                        rtol: 0, atol: 0, "\(device) transpose \(shape)")
        }
    }

    @Test(arguments: TestDevices.all)
    func reshapeSharesDataAndInfersOneDimension(device: Device) throws {
        let x = testValues(24, seed: 2)
        let t = try Tensor(x, shape: [2, 3, 4], on: device)
        let r = try t.reshaped([4, -1])
        #expect(r.shape == [4, 6])
        #expect(try r.toArray() == x)
        #expect(try t.reshaped([-1]).shape == [24])
        #expect(t.flattened().shape == [2, 12])
        #expect(try Tensor([5], shape: [1], on: device).reshaped([]).shape == [])
        expectError(containing: ["reshape", "[2, 3, 4]", "[5, -1]"]) { _ = try t.reshaped([5, -1]) }
        expectError(containing: ["reshape", "[2, 3, 4]", "[3, 3]"]) { _ = try t.reshaped([3, 3]) }
    }

    @Test(arguments: TestDevices.all)
    func broadcastToAndSumToShape(device: Device) throws {
        for (source, target) in [([3], [7, 3]), ([7, 1], [7, 33]), ([1, 5], [2, 3, 5]), ([], [2, 2]), ([2, 1, 3], [2, 4, 3])] {
            let x = testValues(source.reduce(1, *), seed: 3)
            let y = try Tensor(x, shape: source, on: device).broadcast(to: target)
            #expect(y.shape == target)
            let n = target.reduce(1, *)
            expectClose(try y.toArray(), (0..<n).map { Double(x[Reference.broadcastSource($0, outShape: target, shape: source)]) },
                        rtol: 0, atol: 0, "\(device) broadcast \(source) to \(target)")
            // sumToShape is its adjoint: each source element collects the copies made of it.
            let g = testValues(n, seed: 4)
            let s = try Tensor(g, shape: target, on: device).sumToShape(source)
            #expect(s.shape == source)
            var expected = [Double](repeating: 0, count: x.count)
            for i in 0..<n { expected[Reference.broadcastSource(i, outShape: target, shape: source)] += Double(g[i]) }
            expectClose(try s.toArray(), expected, rtol: 1e-5, atol: 1e-5, "\(device) sumToShape \(target) to \(source)")
        }
        // Alternating stretched dimensions do not collapse: more than 4 remain. The CPU copes, OpenCL refuses clearly.
        let src = [2, 1, 2, 1, 2], dst = [2, 3, 2, 3, 2]
        let x5 = testValues(8, seed: 13)
        let t5 = try Tensor(x5, shape: src, on: device)
        if device.isOpenCL {
            expectError(containing: ["broadcast", "\(src)", "\(dst)"]) { _ = try t5.broadcast(to: dst) }
        } else {
            expectClose(try t5.broadcast(to: dst).toArray(),
                        (0..<72).map { Double(x5[Reference.broadcastSource($0, outShape: dst, shape: src)]) },
                        rtol: 0, atol: 0, "rank-5 broadcast")
        }
        expectError(containing: ["broadcast", "[3]", "[7, 4]"]) { _ = try Tensor.zeros([3], on: device).broadcast(to: [7, 4]) }
        expectError(containing: ["broadcast", "[2, 3]", "[3]"]) { _ = try Tensor.zeros([2, 3], on: device).broadcast(to: [3]) }
    }

    @Test(arguments: TestDevices.all)
    func concatAndSliceAlongTheFirstAxis(device: Device) throws {
        let a = testValues(6, seed: 5), b = testValues(15, seed: 6), c = testValues(3, seed: 7)
        let ta = try Tensor(a, shape: [2, 3], on: device), tb = try Tensor(b, shape: [5, 3], on: device)
        let tc = try Tensor(c, shape: [1, 3], on: device)
        let y = try Tensor.concat([ta, tb, tc])
        #expect(y.shape == [8, 3])
        #expect(try y.toArray() == a + b + c)
        #expect(try y.slice(2..<7).toArray() == b)
        #expect(try y.slice(7..<8).toArray() == c)
        #expect(try y.slice(3..<3).shape == [0, 3])
        #expect(try Tensor.concat([tb]).toArray() == b)
        let v = try Tensor.concat([Tensor([1, 2], on: device), Tensor([3], on: device)])
        #expect(try v.shape == [3] && v.toArray() == [1, 2, 3])
        let r3 = try Tensor.concat([Tensor(testValues(12, seed: 8), shape: [1, 3, 4], on: device),
                                    Tensor(testValues(24, seed: 9), shape: [2, 3, 4], on: device)])
        #expect(try r3.shape == [3, 3, 4] && r3.toArray() == testValues(12, seed: 8) + testValues(24, seed: 9))
        #expect(try r3.slice(1..<3).toArray() == testValues(24, seed: 9))

        expectError(containing: ["concat", "[2, 3]", "[2, 4]"]) { _ = try Tensor.concat([ta, Tensor.zeros([2, 4], on: device)]) }
        expectError(containing: ["concat"]) { _ = try Tensor.concat([]) }
        expectError(containing: ["slice", "[2, 3]", "1..<3"]) { _ = try ta.slice(1..<3) }
    }

    @Test(arguments: TestDevices.all)
    func gatherRowsWithRepeatedIndices(device: Device) throws {
        let table = testValues(4 * 5, seed: 10)
        let t = try Tensor(table, shape: [4, 5], on: device, requiresGrad: true)
        let indices: [Float] = [3, 0, 3, 1, 3, 2]
        let y = try t.gather(rows: Tensor(indices, shape: [2, 3], on: device))
        #expect(y.shape == [2, 3, 5])
        #expect(try y.toArray() == indices.flatMap { table[(Int($0) * 5)..<(Int($0) * 5 + 5)] })
        // The backward adds the gradient of each pick into its row: row 3 three times.
        let gy = testValues(30, seed: 11)
        try y.backward(Tensor(gy, shape: [2, 3, 5], on: device))
        var expected = [Double](repeating: 0, count: 20)
        for (i, r) in indices.enumerated() { for j in 0..<5 { expected[Int(r) * 5 + j] += Double(gy[i * 5 + j]) } }
        expectClose(try #require(t.grad).toArray(), expected, rtol: 1e-6, atol: 1e-6, "\(device) gather backward")

        // Many repeats of one row on a wider table (the OpenCL kernel adds concurrently).
        let wide = try Tensor(testValues(3 * 33, seed: 12), shape: [3, 33], on: device, requiresGrad: true)
        let many = try Tensor([Float](repeating: 1, count: 129), shape: [129], on: device)
        try wide.gather(rows: many).sum().backward()
        let g = try #require(wide.grad).toArray()
        #expect(g == [Float](repeating: 0, count: 33) + [Float](repeating: 129, count: 33) + [Float](repeating: 0, count: 33), "\(device)")
        // Rows of a vector are single values.
        let vec = try Tensor([10, 20, 30], shape: [3], on: device)
        #expect(try vec.gather(rows: Tensor([2, 2, 0], shape: [3], on: device)).toArray() == [30, 30, 10])
    }

    @Test(arguments: TestDevices.all)
    func oneHotRows(device: Device) throws {
        let labels: [Float] = [0, 2, 1, 2, 0, 4]
        let y = try Tensor(labels, shape: [6], on: device).oneHot(classes: 5)
        #expect(y.shape == [6, 5])
        var expected = [Float](repeating: 0, count: 30)
        for (i, l) in labels.enumerated() { expected[i * 5 + Int(l)] = 1 }
        #expect(try y.toArray() == expected, "\(device)")
        let m = try Tensor([1, 0, 2, 2], shape: [2, 2], on: device).oneHot(classes: 3)
        #expect(try m.shape == [2, 2, 3] && m.toArray() == [0, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0, 1])
    }
}
