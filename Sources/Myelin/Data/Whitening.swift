import Foundation

// PCA and ZCA whitening fitted on training data: decorrelates the features and scales them to unit variance.

/// Whitens features with statistics fitted on the training part only: after the transform the training
/// features have zero mean and (up to `epsilon`) the identity as their covariance.
///
/// The fit computes the per-feature mean and the covariance C of the training samples (divisor N - 1) in Double
/// on the host, and C's eigendecomposition C = U·Λ·Uᵀ with LAPACK. The whitening matrix is
/// - `.pca`: W = (Λ + ε)^(-1/2)·Uᵀ — the coordinates along the principal axes, largest variance first, each
///   scaled to unit variance;
/// - `.zca`: W = U·(Λ + ε)^(-1/2)·Uᵀ — the same scaling rotated back to the original axes. W is symmetric, and
///   of all whitening matrices it keeps the result closest to the input (for images: still an image, with
///   edges emphasized), which is why convolutional networks use it.
///
/// `transform` computes (x - mean)·Wᵀ as one GEMM on the samples' device; `inverseTransform` maps back with
/// W⁻¹ = U·(Λ + ε)^(1/2) (PCA) or U·(Λ + ε)^(1/2)·Uᵀ (ZCA).
///
/// ```swift
/// let whitening = try Whitening(fitting: train.features, method: .zca, epsilon: 0.1)
/// let train = try train.mapFeatures(whitening.transform)
/// let test = try test.mapFeatures(whitening.transform)    // the training statistics, not the test's
/// ```
///
/// **Epsilon.** ε is added to every eigenvalue: it bounds the gain of directions with almost no variance, where
/// whitening would otherwise blow noise up by 1/√λ. The default, 1e-5 (in the data's squared units), is a
/// regularizer for features of unit scale that leaves every direction with a variance well above it at unit
/// variance. For images whose pixels are scaled to [0, 1] a larger value works better: 0.1 for Fashion-MNIST, as
/// measured in <doc:WhiteningData>. ε = 0 whitens exactly, and then a covariance without full rank is refused.
///
/// Samples may be [N, D] or [N, ...] (images [N, 1, 28, 28], say): the D values of a sample are whitened
/// together and the result has the input's shape.
public struct Whitening {
    /// How the decorrelated features are oriented (see `Whitening`).
    public enum Method: String, Sendable, CaseIterable {
        /// Principal-component whitening: W = (Λ + ε)^(-1/2)·Uᵀ; output feature k is the k-th principal
        /// component (largest variance first) at unit variance.
        case pca
        /// Zero-phase component analysis: W = U·(Λ + ε)^(-1/2)·Uᵀ, symmetric; the output stays in the input's
        /// coordinates, as close to the input as whitening allows.
        case zca
    }

    /// The orientation of the whitened features.
    public let method: Method
    /// The value added to each eigenvalue of the covariance before its inverse square root.
    public let epsilon: Double
    /// Per-feature mean of the training samples, shape = one sample's.
    public let mean: Tensor
    /// The whitening matrix W [D, D] (D = values in a sample): whitened = (x - mean)·Wᵀ.
    public let matrix: Tensor
    /// W⁻¹ [D, D]: x = whitened·W⁻ᵀ + mean.
    public let inverseMatrix: Tensor
    /// The eigenvalues of the training covariance (without ε), largest first; for `.pca`, eigenvalue k is the
    /// variance of output feature k before whitening.
    public let eigenvalues: [Double]

    /// Fits the mean, the covariance and its eigendecomposition on `x` [N, ...] (N >= 2 samples; a sample may have
    /// any shape), and builds W for `method` with `epsilon` (>= 0) added to the eigenvalues. The statistics are
    /// computed on the host in Double; `mean`, `matrix` and `inverseMatrix` live on `x`'s device.
    ///
    /// Throws `DataError.invalid` for fewer than 2 samples, a negative or non-finite epsilon, non-finite
    /// features, or (with ε = 0) a covariance without full rank, and for a LAPACK failure (the text quotes it).
    public init(fitting x: Tensor, method: Method = .zca, epsilon: Double = 1e-5) throws {
        let name = "Whitening(\(method.rawValue))"
        guard x.rank >= 2, x.shape[0] >= 2 else {
            throw DataError.invalid(name, reason: "needs samples [N, features...] with N >= 2 to fit a covariance, got \(x.shape)")
        }
        guard epsilon >= 0, epsilon.isFinite else {
            throw DataError.invalid(name, reason: "epsilon must be a finite value >= 0, got \(epsilon)")
        }
        let n = x.shape[0], d = x.count / n
        guard d >= 1 else { throw DataError.invalid(name, reason: "samples of shape \(Array(x.shape.dropFirst())) hold no values") }
        // The fit holds a few D×D Double matrices (covariance, eigenvectors, W): refuse sizes that would not fit.
        guard d <= Whitening.maximumFeatureCount else {
            throw DataError.invalid(name, reason: "samples of \(d) values need a \(d)×\(d) covariance (\(8 * d * d / 1_000_000) MB of Double, "
                                    + "held several times); whitening takes at most \(Whitening.maximumFeatureCount) features (whiten patches instead)")
        }
        let values = try x.toArray()
        let (meanValues, covariance) = values.withUnsafeBufferPointer {
            HostLinearAlgebra.meanAndCovariance($0, rows: n, columns: d)
        }
        // A NaN or infinite feature makes its column's mean non-finite (a sum of finite Floats cannot overflow a
        // Double): only then are the values searched for it.
        if meanValues.contains(where: { !$0.isFinite }), let i = values.firstIndex(where: { !$0.isFinite }) {
            throw DataError.nonFinite(name, part: "features", sample: i / d, element: d > 1 ? i % d : nil, value: values[i])
        }
        let ascending: (values: [Double], eigenvectorRows: [Double])
        do {
            ascending = try HostLinearAlgebra.symmetricEigendecomposition(covariance, order: d,
                                                                           op: "\(name): eigendecomposition of the covariance")
        } catch let error as LinearAlgebraError {
            throw DataError.invalid(name, reason: error.description)
        }
        // Largest eigenvalue first (the principal components in PCA's order). Round-off can leave the eigenvalues
        // of a rank-deficient covariance slightly negative: they count as 0.
        let order = Array((0..<d).reversed())
        let lambdas = order.map { Swift.max(ascending.values[$0], 0) }
        let largest = lambdas.first ?? 0
        if let k = lambdas.firstIndex(where: { $0 + epsilon <= largest * 1e-12 || $0 + epsilon == 0 }) {
            throw DataError.invalid(name, reason: "the covariance of the \(d) features has no full rank (eigenvalue \(k + 1) of \(d) "
                                    + "is \(lambdas[k]), the largest \(largest)); give an epsilon > 0, such as 1e-5")
        }
        // u[k * d + i]: component i of eigenvector k (k in the order above).
        var u = [Double](repeating: 0, count: d * d)
        for (k, source) in order.enumerated() {
            for i in 0..<d { u[k * d + i] = ascending.eigenvectorRows[source * d + i] }
        }
        let shrink = lambdas.map { 1 / ($0 + epsilon).squareRoot() }, grow = lambdas.map { ($0 + epsilon).squareRoot() }
        var w = [Float](repeating: 0, count: d * d), inverse = [Float](repeating: 0, count: d * d)
        switch method {
        case .pca:
            // W[k, i] = u_k[i] / √(λk + ε);  W⁻¹[i, k] = u_k[i]·√(λk + ε).
            for k in 0..<d {
                for i in 0..<d {
                    w[k * d + i] = Float(u[k * d + i] * shrink[k])
                    inverse[i * d + k] = Float(u[k * d + i] * grow[k])
                }
            }
        case .zca:
            // W = Uᵀ·diag(1/√(λ + ε))·U with the eigenvectors in the rows of U, W⁻¹ the same with √(λ + ε):
            // both symmetric.
            w = HostLinearAlgebra.congruence(rows: u, scales: shrink).map { Float($0) }
            inverse = HostLinearAlgebra.congruence(rows: u, scales: grow).map { Float($0) }
        }
        self.method = method
        self.epsilon = epsilon
        self.eigenvalues = order.map { ascending.values[$0] }
        self.mean = try Tensor(meanValues.map { Float($0) }, shape: Array(x.shape.dropFirst()), on: x.device)
        self.matrix = try Tensor(w, shape: [d, d], on: x.device)
        self.inverseMatrix = try Tensor(inverse, shape: [d, d], on: x.device)
    }

    /// The most values a sample may have (D) for a fit: its D×D Double matrices take 2 GB each at this size.
    public static let maximumFeatureCount = 16_384

    /// The number of values in a sample (D).
    public var featureCount: Int { matrix.shape[0] }

    /// (x - mean)·Wᵀ for samples `x` [N, ...] of the fitted sample shape, as one GEMM on `x`'s device; the result
    /// has `x`'s shape. Throws, naming both shapes, when a sample does not have the fitted shape.
    public func transform(_ x: Tensor) throws -> Tensor {
        let flat = try flatSamples(x, op: "transform")
        let y = try (flat - mean.to(x.device).reshaped([featureCount])).matmul(matrix.to(x.device), transposeB: true)
        return try y.reshaped(x.shape)
    }

    /// whitened·W⁻ᵀ + mean: the samples back in the original units (undoes `transform`).
    public func inverseTransform(_ x: Tensor) throws -> Tensor {
        let flat = try flatSamples(x, op: "inverseTransform")
        let y = try flat.matmul(inverseMatrix.to(x.device), transposeB: true) + mean.to(x.device).reshaped([featureCount])
        return try y.reshaped(x.shape)
    }

    /// x as [N, D], after checking that its samples have the fitted shape.
    private func flatSamples(_ x: Tensor, op: String) throws -> Tensor {
        guard x.rank >= 1, Array(x.shape.dropFirst()) == mean.shape else {
            throw TensorError.shapeMismatch(op: "Whitening(\(method.rawValue)).\(op)",
                                            "differ (samples and the fitted sample shape; the whitening was fitted on \(featureCount) features)",
                                            x.shape, mean.shape)
        }
        return try x.reshaped([x.shape[0], featureCount])
    }
}
