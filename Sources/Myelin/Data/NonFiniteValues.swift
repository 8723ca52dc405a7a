import Foundation

/// What building a data set does with NaN and infinite values in its data. Refusing is the default everywhere
/// (`Dataset`, `MNIST`, `CSVTable`, `Dataset(safetensors:...)`): one NaN pixel that a ReLU hides in the forward
/// pass would otherwise spread through the gradients into every weight without a word.
///
/// ```swift
/// let data = try Dataset(features: x, shape: [n, 3], targets: y, targetShape: [n], nonFinite: .replace(with: 0))
/// ```
public enum NonFiniteValues: Sendable, Equatable {
    /// Throw `DataError.nonFinite` naming the source, the sample and the element of the first one.
    case refuse
    /// Replace each one with `with` (a finite value), e.g. 0 for missing measurements.
    case replace(with: Float)

    /// Checks that a replacement value is itself finite.
    func validate(_ source: String) throws {
        if case .replace(let v) = self, !v.isFinite {
            throw DataError.invalid(source, reason: "nonFinite: .replace(with: \(v)) needs a finite replacement value")
        }
    }

    /// Applies the policy to host values laid out as samples of `sampleSize` elements (row-major), the first of
    /// them sample `firstSample`: throws on the first non-finite value, or replaces them in place.
    func apply(to values: UnsafeMutableBufferPointer<Float>, firstSample: Int = 0, sampleSize: Int,
               source: String, part: String) throws {
        try validate(source)
        for i in 0..<values.count where !values[i].isFinite {
            switch self {
            case .refuse:
                let size = Swift.max(sampleSize, 1)
                throw DataError.nonFinite(source, part: part, sample: firstSample + i / size,
                                          element: sampleSize > 1 ? i % size : nil, value: values[i])
            case .replace(let v):
                values[i] = v
            }
        }
    }

    /// `apply(to:...)` on an array.
    func apply(to values: inout [Float], sampleSize: Int, source: String, part: String) throws {
        try values.withUnsafeMutableBufferPointer { try apply(to: $0, sampleSize: sampleSize, source: source, part: part) }
    }

    /// The policy applied to a device tensor [N, ...]: one reduction and one scalar read when every value is
    /// finite (the usual case); otherwise one read of the values, and for `.replace` a new tensor on the device.
    func applied(to t: Tensor, source: String, part: String) throws -> Tensor {
        try validate(source)
        if t.count == 0 { return t }
        let sum = try withNoGrad { try t.sum().item() }
        if sum.isFinite { return t }
        var values = try t.toArray()
        try apply(to: &values, sampleSize: t.rank >= 1 && t.shape[0] > 0 ? t.count / t.shape[0] : 1, source: source, part: part)
        return try Tensor(values, shape: t.shape, on: t.device)
    }
}
