import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// Naive Double references of the transformer layers (plain loops over [rows, features] matrices).
enum TransformerReference {
    /// x [rows, inputs] · wᵀ + b with w [outputs, inputs] (nn.Linear).
    static func linear(_ x: [Double], _ w: [Float], _ b: [Float]?, inputs: Int, outputs: Int) -> [Double] {
        let rows = x.count / inputs
        var y = [Double](repeating: 0, count: rows * outputs)
        for r in 0..<rows { for o in 0..<outputs {
            var s = Double(b?[o] ?? 0)
            for i in 0..<inputs { s += x[r * inputs + i] * Double(w[o * inputs + i]) }
            y[r * outputs + o] = s
        } }
        return y
    }

    /// Layer normalization of each row of `features` values.
    static func layerNorm(_ x: [Double], _ w: [Float]?, _ b: [Float]?, features: Int, epsilon: Double = 1e-5) -> [Double] {
        var y = x
        for r in 0..<(x.count / features) {
            let row = x[(r * features)..<((r + 1) * features)]
            let mean = row.reduce(0, +) / Double(features)
            let variance = row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(features)
            for j in 0..<features {
                y[r * features + j] = (x[r * features + j] - mean) / (variance + epsilon).squareRoot()
                    * Double(w?[j] ?? 1) + Double(b?[j] ?? 0)
            }
        }
        return y
    }

    /// Self-attention of x [batch, t, c] from q, k, v [batch·t, c] (head h in columns h·d..<(h+1)·d).
    static func attention(q: [Double], k: [Double], v: [Double], batch: Int, t: Int, c: Int, heads: Int, causal: Bool) -> [Double] {
        let d = c / heads
        var y = [Double](repeating: 0, count: batch * t * c)
        for n in 0..<batch { for h in 0..<heads { for i in 0..<t {
            let keys = causal ? i + 1 : t
            var scores = [Double](repeating: 0, count: keys)
            for j in 0..<keys {
                let qi: Int = (n * t + i) * c + h * d, kj: Int = (n * t + j) * c + h * d
                var dot = 0.0
                for e in 0..<d { dot += q[qi + e] * k[kj + e] }
                scores[j] = dot / Double(d).squareRoot()
            }
            let m = scores.max()!
            scores = scores.map { Foundation.exp($0 - m) }
            let s = scores.reduce(0, +)
            for e in 0..<d {
                var sum = 0.0
                for j in 0..<keys { sum += scores[j] / s * v[(n * t + j) * c + h * d + e] }
                y[(n * t + i) * c + h * d + e] = sum
            }
        } } }
        return y
    }

    /// A `MultiHeadAttention` layer's output for x [batch, t, c], from its tensors.
    static func multiHeadAttention(_ layer: MultiHeadAttention, _ x: [Double], batch: Int, t: Int) throws -> [Double] {
        let c = layer.embedDim
        let state = try layer.stateDict().mapValues { try $0.toArray() }
        let q: [Double], k: [Double], v: [Double]
        if layer.cAttn != nil {
            let qkv = linear(x, state["c_attn.weight"]!, state["c_attn.bias"], inputs: c, outputs: 3 * c)
            func part(_ p: Int) -> [Double] {
                var out: [Double] = []
                for r in 0..<(batch * t) {
                    let start: Int = r * 3 * c + p * c
                    out += qkv[start..<(start + c)]
                }
                return out
            }
            (q, k, v) = (part(0), part(1), part(2))
        } else {
            func proj(_ name: String) -> [Double] { linear(x, state["\(name).weight"]!, state["\(name).bias"], inputs: c, outputs: c) }
            (q, k, v) = (proj("q_proj"), proj("k_proj"), proj("v_proj"))
        }
        let y = attention(q: q, k: k, v: v, batch: batch, t: t, c: c, heads: layer.heads, causal: layer.causal)
        return linear(y, state["c_proj.weight"]!, state["c_proj.bias"], inputs: c, outputs: c)
    }
}

/// The transformer layers against Double references on odd shapes, their gradients, and their state-dict keys.
@Suite struct TransformerLayerTests {
    /// Fills every tensor of `layer` with values in about [-0.5, 0.5] (biases and layer-norm affines included).
    static func randomize(_ layer: any Layer, seed: UInt64) throws {
        for (i, (name, t)) in layer.namedTensors.enumerated() {
            try layer.setTensor(name, Tensor(testValues(t.count, seed: seed &+ UInt64(i)).map { $0 * 0.5 }, shape: t.shape, on: t.device))
        }
    }

    @Test(arguments: TestDevices.all)
    func layerNormMatchesReferenceAndGradients(device: Device) throws {
        for (rows, features) in [(1, 5), (14, 5), (33, 16)] {
            let xv = testValues(rows * features, seed: 1).map { $0 * 3 + 1 }
            let norm = LayerNorm(features: features, device: device)
            try Self.randomize(norm, seed: 2)
            let y = try norm(Tensor(xv, shape: [rows, features], on: device))
            expectClose(try y.toArray(), TransformerReference.layerNorm(xv.map(Double.init), try norm.weight!.toArray(), try norm.bias!.toArray(),
                                                                    features: features),
                        rtol: 1e-4, atol: 1e-5, "\(device) LayerNorm [\(rows), \(features)]")
        }
        let plain = try LayerNorm(features: 7, elementwiseAffine: false, device: device)(Tensor(testValues(21, seed: 3), shape: [3, 7], on: device))
        expectClose(try plain.toArray(), TransformerReference.layerNorm(testValues(21, seed: 3).map(Double.init), nil, nil, features: 7),
                    rtol: 1e-4, atol: 1e-5, "\(device) LayerNorm without affine")
        try gradientCheck(device: device, inputs: [(testValues(2 * 3 * 5, seed: 4), [2, 3, 5]), (testValues(5, seed: 5), [5]),
                                                   (testValues(5, seed: 6), [5])], "layerNorm") {
            try $0[0].layerNorm(weight: $0[1], bias: $0[2])
        }
        try gradientCheck(device: device, inputs: [(testValues(3 * 5, seed: 7), [3, 5]), (testValues(5, seed: 8), [5])],
                          "layerNorm without bias") { try $0[0].layerNorm(weight: $0[1], bias: nil, epsilon: 1e-3) }
        try gradientCheck(device: device, inputs: [(testValues(3 * 5, seed: 9), [3, 5])], "layerNorm without affine") {
            try $0[0].layerNorm(weight: nil, bias: nil)
        }
        #expect(LayerNorm(features: 4, device: device).namedTensors.map(\.0) == ["weight", "bias"])
        #expect(LayerNorm(features: 4, bias: false, device: device).namedTensors.map(\.0) == ["weight"])
        expectError(containing: ["LayerNorm(4)", "[..., 4]", "[2, 5]"]) { _ = try LayerNorm(features: 4, device: device)(Tensor.zeros([2, 5], on: device)) }
    }

    @Test(arguments: TestDevices.all)
    func embeddingLayer(device: Device) throws {
        let layer = Embedding(count: 6, dimension: 4, paddingIndex: 1, seed: 7, device: device)
        #expect(layer.namedTensors.map(\.0) == ["weight"] && layer.weight.shape == [6, 4])
        let table = try layer.weight.toArray()
        #expect(table[4..<8].allSatisfy { $0 == 0 }, "the padding row starts at zero")
        let y = try layer(Tensor([5, 1, 5, 0, 3, 5, 2], shape: [7], on: device))
        #expect(y.shape == [7, 4])
        expectClose(try y.toArray(), [5, 1, 5, 0, 3, 5, 2].flatMap { i in (0..<4).map { Double(table[i * 4 + $0]) } }, rtol: 0, atol: 0,
                    "\(device) Embedding lookup")
        try y.sum().backward()
        let uses: [Double] = [1, 0, 1, 1, 0, 3]   // index 5 three times; 1 is padding
        expectClose(try layer.weight.grad!.toArray(), uses.flatMap { [Double](repeating: $0, count: 4) }, rtol: 0, atol: 0,
                    "\(device) Embedding gradient")
    }

    /// (T, heads, head size) of issue #24, at batch 2.
    static let shapes: [(t: Int, heads: Int, d: Int)] = [(1, 1, 5), (7, 3, 5), (33, 3, 16), (7, 1, 16)]

    @Test(arguments: TestDevices.all)
    func multiHeadAttentionMatchesReference(device: Device) throws {
        for (t, heads, d) in Self.shapes {
            for (causal, fused) in [(true, true), (false, true), (true, false)] {
                let c = heads * d
                let layer = MultiHeadAttention(embedDim: c, heads: heads, causal: causal, fusedProjection: fused, seed: 8, device: device)
                try Self.randomize(layer, seed: 9)
                let xv = testValues(2 * t * c, seed: 10)
                let y = try layer(Tensor(xv, shape: [2, t, c], on: device))
                #expect(y.shape == [2, t, c])
                expectClose(try y.toArray(), try TransformerReference.multiHeadAttention(layer, xv.map(Double.init), batch: 2, t: t),
                            rtol: 1e-4, atol: 2e-5, "\(device) \(layer.layerDescription) T=\(t)")
            }
        }
        #expect(MultiHeadAttention(embedDim: 6, heads: 3, device: device).namedTensors.map(\.0)
                == ["c_attn.weight", "c_attn.bias", "c_proj.weight", "c_proj.bias"])
        #expect(MultiHeadAttention(embedDim: 6, heads: 3, fusedProjection: false, bias: false, device: device).namedTensors.map(\.0)
                == ["q_proj.weight", "k_proj.weight", "v_proj.weight", "c_proj.weight"])
    }

    @Test(arguments: TestDevices.all)
    func multiHeadAttentionGradients(device: Device) throws {
        for causal in [false, true] {
            let layer = MultiHeadAttention(embedDim: 4, heads: 2, causal: causal, seed: 11, device: device)
            try Self.randomize(layer, seed: 12)
            let x = try Tensor(testValues(2 * 3 * 4, seed: 13), shape: [2, 3, 4], on: device, requiresGrad: true)
            let w = try Tensor(testValues(24, seed: 14, low: 0.5, high: 1.5), shape: [2, 3, 4], on: device)
            try GradientCheck.check(layer.namedTensors + [("x", x)], "\(device) attention causal=\(causal)") { try (layer(x) * w).sum() }
        }
        // A padding mask through the layer: the masked key gets no gradient from the other positions' outputs.
        let layer = MultiHeadAttention(embedDim: 4, heads: 2, seed: 15, device: device)
        try Self.randomize(layer, seed: 16)
        let x = try Tensor(testValues(12, seed: 17), shape: [1, 3, 4], on: device, requiresGrad: true)
        let mask = try Tensor([0, 0, -Float.infinity], shape: [1, 1, 1, 3], on: device)
        try GradientCheck.check(layer.namedTensors + [("x", x)], "\(device) attention with a padding mask") {
            try (layer(x, mask: mask) * 0.7).sum()
        }
    }

    @Test(arguments: TestDevices.all)
    func transformerBlockMatchesReferenceAndGradients(device: Device) throws {
        let (t, c) = (7, 6)
        let block = TransformerBlock(embedDim: c, heads: 3, seed: 18, device: device)
        #expect(block.namedTensors.map(\.0) == ["ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias",
                                                "attn.c_proj.weight", "attn.c_proj.bias", "ln_2.weight", "ln_2.bias",
                                                "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias"])
        try Self.randomize(block, seed: 19)
        let xv = testValues(2 * t * c, seed: 20)
        let y = try block(Tensor(xv, shape: [2, t, c], on: device))
        let s = try block.stateDict().mapValues { try $0.toArray() }
        let x = xv.map(Double.init)
        let a = try TransformerReference.multiHeadAttention(block.attention, TransformerReference.layerNorm(x, s["ln_1.weight"], s["ln_1.bias"], features: c),
                                                        batch: 2, t: t)
        let h = zip(x, a).map { $0 + $1 }
        let hidden = TransformerReference.linear(TransformerReference.layerNorm(h, s["ln_2.weight"], s["ln_2.bias"], features: c),
                                                 s["mlp.c_fc.weight"]!, s["mlp.c_fc.bias"], inputs: c, outputs: 4 * c)
            .map { Reference.activation(.geluErf, $0) }
        let m = TransformerReference.linear(hidden, s["mlp.c_proj.weight"]!, s["mlp.c_proj.bias"], inputs: 4 * c, outputs: c)
        expectClose(try y.toArray(), zip(h, m).map { $0 + $1 }, rtol: 1e-4, atol: 2e-5, "\(device) TransformerBlock")

        let small = TransformerBlock(embedDim: 4, heads: 2, approximateGELU: true, seed: 21, device: device)
        try Self.randomize(small, seed: 22)
        let xs = try Tensor(testValues(2 * 3 * 4, seed: 23), shape: [2, 3, 4], on: device, requiresGrad: true)
        try GradientCheck.check(small.namedTensors + [("x", xs)], "\(device) TransformerBlock") { try (small(xs) * 0.5).sum() }
    }

    @Test func attentionDropoutFollowsTrainAndEvalMode() throws {
        let block = TransformerBlock(embedDim: 6, heads: 2, dropout: 0.5, seed: 24, device: .cpu)
        let x = try Tensor(testValues(2 * 5 * 6, seed: 25), shape: [2, 5, 6], on: .cpu)
        block.eval()
        let first = try block(x).toArray(), second = try block(x).toArray()
        #expect(first == second, "eval mode is deterministic")
        block.train()
        #expect(block.attention.attentionDropout.isTraining && block.mlp.dropout.isTraining)
        #expect(try block(x).toArray() != first, "train mode drops")
    }
}
