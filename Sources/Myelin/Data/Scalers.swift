import Foundation

// Feature scaling fitted on training data: standardization and min-max scaling.

/// Scales each feature to zero mean and unit variance with statistics fitted on the training part only.
///
/// ```swift
/// let scaler = try Standardizer(fitting: train.features)
/// let train = try train.mapFeatures(scaler.transform)
/// let test = try test.mapFeatures(scaler.transform)      // the training statistics, not the test's
/// ```
public struct Standardizer {
    /// Per-feature mean and standard deviation (population, as scikit-learn's StandardScaler), shape = one sample's.
    public let mean: Tensor
    /// Per-feature standard deviation (1 where a feature has no spread), shape = one sample's.
    public let std: Tensor

    /// Fits the statistics over the first axis of `x` [N, ...]. Features with no spread get a scale of 1.
    public init(fitting x: Tensor) throws {
        guard x.rank >= 1, x.shape[0] > 0 else { throw DataError.invalid("Standardizer", reason: "cannot fit on \(x.shape)") }
        (mean, std) = try withNoGrad {
            let mean = try x.mean(axis: 0)
            let variance = try (x - mean).square().mean(axis: 0)
            let s = variance.sqrt()
            return (mean, try s + s.equal(0))
        }
    }

    /// (x - mean) / std.
    public func transform(_ x: Tensor) throws -> Tensor {
        try affineTransform(x, offset: mean, scale: std, name: "Standardizer")
    }

    /// x · std + mean (back to the original units).
    public func inverseTransform(_ x: Tensor) throws -> Tensor {
        try affineInverse(x, offset: mean, scale: std)
    }
}

/// Scales each feature linearly to [0, 1] with the minimum and maximum of the training part.
public struct MinMaxScaler {
    /// Per-feature minimum of the data the scaler was fitted on, shape = one sample's.
    public let minimum: Tensor
    /// max - min per feature (1 where a feature has no spread).
    public let range: Tensor

    /// Fits the per-feature minimum and maximum over the first axis of `x` [N, ...].
    public init(fitting x: Tensor) throws {
        guard x.rank >= 1, x.shape[0] > 0 else { throw DataError.invalid("MinMaxScaler", reason: "cannot fit on \(x.shape)") }
        (minimum, range) = try withNoGrad {
            let lo = try x.min(axis: 0), hi = try x.max(axis: 0)
            let r = try hi - lo
            return (lo, try r + r.equal(0))
        }
    }

    /// (x - min) / (max - min).
    public func transform(_ x: Tensor) throws -> Tensor {
        try affineTransform(x, offset: minimum, scale: range, name: "MinMaxScaler")
    }

    /// x · (max - min) + min.
    public func inverseTransform(_ x: Tensor) throws -> Tensor {
        try affineInverse(x, offset: minimum, scale: range)
    }
}

/// (x - offset) / scale per feature, the transform both scalers share; the statistics are [features...]
/// and x is [N, features...].
private func affineTransform(_ x: Tensor, offset: Tensor, scale: Tensor, name: String) throws -> Tensor {
    guard Array(x.shape.dropFirst()) == offset.shape else {
        throw TensorError.shapeMismatch(op: "\(name).transform", "differ (samples and fitted statistics)", x.shape, offset.shape)
    }
    return try (x - offset.to(x.device)) / scale.to(x.device)
}

/// x · scale + offset: the inverse of `affineTransform`.
private func affineInverse(_ x: Tensor, offset: Tensor, scale: Tensor) throws -> Tensor {
    try x * scale.to(x.device) + offset.to(x.device)
}
