import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// Finite-difference gradient checks for layers and losses.
enum GradientCheck {
    /// Overwrites a tensor's values in place (keeps its identity, so a layer's parameter stays the same object).
    static func overwrite(_ t: Tensor, _ values: [Float]) {
        precondition(values.count == t.count)
        values.withUnsafeBufferPointer { t.device.backend.write($0, to: t.buffer, offset: 0) }
    }

    /// Compares the autograd gradient of the scalar `f()` with respect to each of `tensors` (leaves with
    /// requiresGrad) against central differences (f evaluated in Float, differences taken in Double).
    static func check(_ tensors: [(String, Tensor)], eps: Float = 1e-2, rtol: Double = 2e-2, atol: Double = 2e-3,
                      _ what: String, sourceLocation: SourceLocation = #_sourceLocation,
                      _ f: () throws -> Tensor) throws {
        for (_, t) in tensors { t.zeroGrad() }
        let loss = try f()
        #expect(loss.count == 1, "\(what): the checked function must give a scalar", sourceLocation: sourceLocation)
        try loss.backward()
        for (name, t) in tensors {
            guard let grad = t.grad else {
                Issue.record("\(what): no gradient reached \(name)", sourceLocation: sourceLocation)
                continue
            }
            #expect(grad.shape == t.shape, "\(what): gradient of \(name) has shape \(grad.shape), expected \(t.shape)",
                    sourceLocation: sourceLocation)
            var values = try t.toArray()
            var numeric: [Double] = []
            for i in values.indices {
                let original = values[i]
                let plus = original + eps, minus = original - eps
                values[i] = plus; overwrite(t, values)
                let fp = Double(try withNoGrad { try f() }.item())
                values[i] = minus; overwrite(t, values)
                let fm = Double(try withNoGrad { try f() }.item())
                values[i] = original; overwrite(t, values)
                numeric.append((fp - fm) / (Double(plus) - Double(minus)))
            }
            expectClose(try grad.toArray(), numeric, rtol: rtol, atol: atol, "\(what): d/d\(name)",
                        sourceLocation: sourceLocation)
        }
    }
}

/// Naive Double references for the NN layer tests.
enum NNReference {
    /// act(x·w + b) for x [m, k], w [k, n], b [n].
    static func dense(_ x: [Float], _ w: [Float], _ b: [Float]?, m: Int, k: Int, n: Int, _ a: Activation) -> [Double] {
        var z = Reference.gemm(x, w, m: m, n: n, k: k)
        for i in 0..<m { for j in 0..<n { z[i * n + j] = Reference.activation(a, z[i * n + j] + Double(b?[j] ?? 0)) } }
        return z
    }
}

/// The scalar Σ y ⊙ r for a fixed random r: a loss whose gradient with respect to y is r.
func weightedSum(_ y: Tensor, seed: UInt64) throws -> Tensor {
    let r = try Tensor(testValues(y.count, seed: seed), shape: y.shape, on: y.device)
    return try (y * r).sum()
}

/// A layer of two named tensors (a weight [in, out] and a bias), enough to test checkpoints without the layer library.
final class TwoTensorLayer: Layer {
    var weight: Tensor
    var bias: Tensor
    var isTraining = true
    init(inputs: Int, outputs: Int, seed: UInt64, on device: Device) {
        weight = Tensor.uniform([inputs, outputs], low: -1, high: 1, seed: seed, on: device)
        bias = Tensor.uniform([outputs], low: -1, high: 1, seed: seed + 1, on: device)
        weight.requiresGrad = true
        bias.requiresGrad = true
    }
    func callAsFunction(_ input: Tensor) throws -> Tensor { try input.dense(weight: weight, bias: bias) }
    var namedTensors: [(String, Tensor)] { [("0.weight", weight), ("0.bias", bias)] }
    func setTensor(_ name: String, _ value: Tensor) throws {
        switch name {
        case "0.weight": weight = value
        case "0.bias": bias = value
        default: throw LayerError.unknownTensor(layer: layerDescription, name: name)
        }
    }
    var layerDescription: String { "TwoTensorLayer" }
}
