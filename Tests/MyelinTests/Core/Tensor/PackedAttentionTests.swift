import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// The fused attention of a packed q/k/v tensor (`Tensor.scaledDotProductAttention(packed:heads:)`, which the CPU
/// kernel reads and writes in place, with strides): against the Double reference of `FusedAttentionTests`, against the
/// unpacked fused op in the output and the gradient, and by finite differences.
@Suite struct PackedAttentionTests {
    typealias Case = FusedAttentionTests.Case

    /// FusedAttentionTests' self-attention cases (Tq = Tk): T = 1, 7, 33, 129 (more than one block); heads 1 and 3;
    /// head size 5, 16, 64, 80; causal, padding and additive masks.
    static let cases = FusedAttentionTests.cases.filter { $0.tq == $0.tk }

    /// q, k, v [b, h, t, d] each (FusedAttentionTests.inputs) packed as [b, t, 3, h, d] = [b, t, 3·h·d].
    static func packed(_ c: Case) -> [Float] {
        let x = FusedAttentionTests.inputs(c), width = 3 * c.h * c.d
        var out = [Float](repeating: 0, count: c.b * c.tq * width)
        for b in 0..<c.b { for h in 0..<c.h { for t in 0..<c.tq { for e in 0..<c.d { for part in 0..<3 {
            out[(b * c.tq + t) * width + (part * c.h + h) * c.d + e] = x[part].0[((b * c.h + h) * c.tq + t) * c.d + e]
        } } } } }
        return out
    }

    /// [b, h, t, d] read as [b, t, h, d] (the heads merged).
    static func merged<T>(_ x: [T], _ c: Case) -> [T] {
        (0..<x.count).map { i in
            let e = i % c.d, h = i / c.d % c.h, t = i / (c.d * c.h) % c.tq, b = i / (c.d * c.h * c.tq)
            return x[((b * c.h + h) * c.tq + t) * c.d + e]
        }
    }

    static func mask(_ c: Case, _ device: Device) throws -> Tensor? {
        try FusedAttentionTests.mask(c).map { try Tensor($0.0, shape: $0.1, on: device) }
    }

    @Test("packed attention against a Double reference", arguments: TestDevices.all)
    func matchesDoubleReference(device: Device) throws {
        for c in Self.cases {
            let qkv = try Tensor(Self.packed(c), shape: [c.b, c.tq, 3 * c.h * c.d], on: device)
            let y = try Tensor.scaledDotProductAttention(packed: qkv, heads: c.h, causal: c.causal, mask: Self.mask(c, device))
            #expect(y.shape == [c.b, c.tq, c.h * c.d])
            expectClose(try y.toArray(), Self.merged(FusedAttentionTests.reference(c), c), rtol: 1e-4, atol: 2e-5, "\(device) \(c)")
        }
    }

    @Test("packed attention equals the unpacked fused op, output and gradient", arguments: TestDevices.all)
    func matchesUnpacked(device: Device) throws {
        for c in Self.cases {
            let qkv = try Tensor(Self.packed(c), shape: [c.b, c.tq, 3 * c.h * c.d], on: device, requiresGrad: true)
            let y = try Tensor.scaledDotProductAttention(packed: qkv, heads: c.h, causal: c.causal, mask: Self.mask(c, device))
            let w = try Tensor(testValues(y.count, seed: 7), shape: y.shape, on: device)
            try (y * w).sum().backward()
            // The same with q, k, v split out, the fused op, and the heads merged by a permute.
            let parts = try qkv.detach().reshaped([c.b, c.tq, 3, c.h, c.d]).permuted([2, 0, 3, 1, 4])
            let x = try (0..<3).map { p in
                try Tensor(parts.slice(p..<(p + 1)).toArray(), shape: [c.b, c.h, c.tq, c.d], on: device, requiresGrad: true)
            }
            let plain = try Tensor.scaledDotProductAttention(x[0], x[1], x[2], causal: c.causal, mask: Self.mask(c, device))
                .permuted([0, 2, 1, 3]).reshaped(y.shape)
            try (plain * w).sum().backward()
            expectClose(try y.toArray(), try plain.toArray().map(Double.init), rtol: 1e-5, atol: 1e-6, "\(device) \(c): output")
            let grads = try x.map { try #require($0.grad) }
            let repacked = try Tensor.concat(grads).reshaped([3, c.b, c.h, c.tq, c.d]).permuted([1, 3, 0, 2, 4])
            expectClose(try #require(qkv.grad).toArray(), try repacked.toArray().map(Double.init), rtol: 1e-5, atol: 1e-6,
                        "\(device) \(c): gradient")
        }
    }

    @Test("the packed op's gradient matches finite differences", arguments: TestDevices.all)
    func finiteDifferences(device: Device) throws {
        for c in [Case(b: 1, h: 2, tq: 5, tk: 5, d: 3, causal: true, mask: .padding),
                  Case(b: 2, h: 1, tq: 4, tk: 4, d: 4, causal: false, mask: .bias)] {
            let mask = try Self.mask(c, device)
            try gradientCheck(device: device, inputs: [(Self.packed(c), [c.b, c.tq, 3 * c.h * c.d])], eps: 1e-2,
                              rtol: 2e-2, atol: 2e-3, "packed attention \(c)") {
                try Tensor.scaledDotProductAttention(packed: $0[0], heads: c.h, causal: c.causal, mask: mask, scale: 0.7)
            }
        }
    }

    @Test("bad packed shapes are refused with the op's name", arguments: TestDevices.all)
    func refusesBadShapes(device: Device) throws {
        for (shape, heads) in [([2, 7, 10], 2), ([2, 7], 2), ([2, 7, 12], 0)] {
            let x = try Tensor(shape: shape, repeating: 1, on: device)
            #expect { _ = try Tensor.scaledDotProductAttention(packed: x, heads: heads) } throws: {
                "\($0)".contains("scaledDotProductAttention(packed:)")
            }
        }
    }
}
