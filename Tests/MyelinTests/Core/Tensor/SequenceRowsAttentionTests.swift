import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// Self-attention over sequences of different lengths stored back to back without padding
/// (`Tensor.scaledDotProductAttention(packedRows:lengths:heads:)`): against a Double reference on both devices, on
/// the CPU's row kernel (no gradient, head size a multiple of 8) and on the padded composite (with a gradient, or a
/// head size the row kernel does not take); finite differences; and the errors.
@Suite struct SequenceRowsAttentionTests {
    /// softmax(q·kᵀ/√d)·v within each sequence, in Double: qkv [N, 3·h·d] rows → [N, h·d].
    static func reference(_ qkv: [Float], lengths: [Int], heads: Int, d: Int) -> [Double] {
        let c = heads * d, scale = 1 / Double(d).squareRoot()
        var out = [Double](repeating: 0, count: lengths.reduce(0, +) * c), first = 0
        func at(_ row: Int, _ part: Int, _ head: Int, _ e: Int) -> Double { Double(qkv[row * 3 * c + part * c + head * d + e]) }
        for length in lengths {
            for head in 0..<heads {
                for i in 0..<length {
                    let s = (0..<length).map { j in (0..<d).reduce(0.0) { $0 + at(first + i, 0, head, $1) * at(first + j, 1, head, $1) } * scale }
                    let top = s.max()!, p = s.map { Foundation.exp($0 - top) }, sum = p.reduce(0, +)
                    for e in 0..<d {
                        out[(first + i) * c + head * d + e] = (0..<length).reduce(0.0) { $0 + p[$1] / sum * at(first + $1, 2, head, e) }
                    }
                }
            }
            first += length
        }
        return out
    }

    @Test("rows attention against a Double reference, without and with gradients", arguments: TestDevices.all)
    func matchesDoubleReference(device: Device) throws {
        let lengths = [1, 7, 33, 2, 70], heads = 2
        for d in [8, 32, 5] {
            let values = testValues(lengths.reduce(0, +) * 3 * heads * d, seed: UInt64(d))
            let expected = Self.reference(values, lengths: lengths, heads: heads, d: d)
            let shape = [lengths.reduce(0, +), 3 * heads * d]
            let fast = try withNoGrad {
                try Tensor.scaledDotProductAttention(packedRows: Tensor(values, shape: shape, on: device), lengths: lengths, heads: heads)
            }
            #expect(fast.shape == [shape[0], heads * d])
            expectClose(try fast.toArray(), expected, rtol: 1e-4, atol: 2e-5, "\(device) head size \(d), no gradient")
            let x = try Tensor(values, shape: shape, on: device, requiresGrad: true)
            let y = try Tensor.scaledDotProductAttention(packedRows: x, lengths: lengths, heads: heads)
            expectClose(try y.toArray(), expected, rtol: 1e-4, atol: 2e-5, "\(device) head size \(d), with a gradient")
            try y.square().sum().backward()
            let g = try #require(x.grad).toArray()
            #expect(g.allSatisfy(\.isFinite) && g.contains { $0 != 0 }, "\(device) head size \(d): gradient")
        }
    }

    @Test("the rows op's gradient matches finite differences", arguments: TestDevices.all)
    func finiteDifferences(device: Device) throws {
        let lengths = [3, 1, 2], heads = 2, d = 2
        try gradientCheck(device: device, inputs: [(testValues(6 * 3 * heads * d, seed: 4), [6, 3 * heads * d])], eps: 1e-2,
                          rtol: 2e-2, atol: 2e-3, "rows attention") {
            try Tensor.scaledDotProductAttention(packedRows: $0[0], lengths: lengths, heads: heads, scale: 0.7)
        }
    }

    @Test("bad rows and lengths are refused with the op's name", arguments: TestDevices.all)
    func refusesBadShapes(device: Device) throws {
        for (shape, lengths, heads) in [([10, 12], [4, 5], 2), ([10, 12], [10, 0], 2), ([10, 10], [10], 2), ([2, 5, 12], [2], 2),
                                        ([10, 12], [], 2), ([10, 12], [10], 0)] {
            let x = try Tensor(shape: shape, repeating: 1, on: device)
            #expect { _ = try Tensor.scaledDotProductAttention(packedRows: x, lengths: lengths, heads: heads) } throws: {
                "\($0)".contains("scaledDotProductAttention(packedRows:lengths:heads:)")
            }
        }
    }
}
