import CBLAS
import Foundation

// Dense linear algebra on the host in Double: covariance (OpenBLAS dsyrk) and the symmetric eigendecomposition
// (LAPACK dsyevd, which OpenBLAS carries). Small matrices (a few thousand rows and columns at most) that a fit
// computes once, not per batch; the public entry point is `Tensor.symmetricEigendecomposition()`.

/// A LAPACK routine that reported failure, or a matrix it cannot be given.
public enum LinearAlgebraError: Error, CustomStringConvertible, Equatable {
    /// LAPACK's `routine` returned `info` != 0 for an n×n matrix: info < 0 means argument -info was invalid,
    /// info > 0 that the algorithm did not converge.
    case lapack(op: String, routine: String, info: Int, order: Int)
    /// The matrix holds a NaN or an infinite value at (row, column).
    case nonFinite(op: String, row: Int, column: Int, value: Double)

    public var description: String {
        switch self {
        case .lapack(let op, let routine, let info, let order):
            let why = info < 0 ? "argument \(-info) is invalid" : "the algorithm did not converge (\(info) off-diagonal elements)"
            return "\(op): LAPACK \(routine) failed on a \(order)×\(order) matrix with info = \(info): \(why)"
        case .nonFinite(let op, let row, let column, let value):
            return "\(op): the matrix holds \(value) at row \(row), column \(column); an eigendecomposition needs finite values"
        }
    }
}

extension Tensor {
    /// The eigenvalues (ascending) and orthonormal eigenvectors of a symmetric matrix [n, n], like PyTorch's
    /// `torch.linalg.eigh`: column k of `vectors` is the eigenvector of `values[k]`, so
    /// `self ≈ vectors · diag(values) · vectorsᵀ`. Computed on the host in Double by LAPACK's `dsyevd`
    /// (divide and conquer) from the lower triangle; the results are Float tensors on this tensor's device.
    ///
    /// ```swift
    /// let a = try Tensor([2, 1, 1, 2], shape: [2, 2])
    /// let (values, vectors) = try a.symmetricEigendecomposition()
    /// values.toArray()     // [1, 3]
    /// vectors.toArray()    // ±[-0.707, 0.707, 0.707, 0.707]: columns (-1, 1)/√2 and (1, 1)/√2
    /// ```
    ///
    /// Throws `TensorError.invalidShape` for a tensor that is not a square matrix, and `LinearAlgebraError`
    /// for a NaN or infinite value or when LAPACK reports failure.
    public func symmetricEigendecomposition() throws -> (values: Tensor, vectors: Tensor) {
        guard rank == 2, shape[0] == shape[1] else {
            throw TensorError.invalidShape(op: "symmetricEigendecomposition", shape, "is not a square matrix [n, n]")
        }
        let n = shape[0]
        let (values, rows) = try HostLinearAlgebra.symmetricEigendecomposition(toArray().map(Double.init), order: n,
                                                                                op: "symmetricEigendecomposition")
        // `rows` holds eigenvector k in row k; the result holds it in column k.
        var columns = [Float](repeating: 0, count: n * n)
        for k in 0..<n { for i in 0..<n { columns[i * n + k] = Float(rows[k * n + i]) } }
        return (try Tensor(values.map { Float($0) }, shape: [n], on: device),
                try Tensor(columns, shape: [n, n], on: device))
    }
}

/// Host linear algebra in Double for the layers above the core (the `Myelin` target's data transforms), which
/// do not call BLAS or LAPACK themselves.
package enum HostLinearAlgebra {
    /// The eigenvalues (ascending) and orthonormal eigenvectors of the symmetric n×n matrix `matrix` (row-major;
    /// the lower triangle is read, which for a symmetric matrix is the upper one in LAPACK's column-major view).
    /// `eigenvectorRows` holds eigenvector k in row k (n·n values, row-major). `op` names the caller in errors.
    package static func symmetricEigendecomposition(_ matrix: [Double], order n: Int, op: String)
        throws -> (values: [Double], eigenvectorRows: [Double]) {
        precondition(n >= 0 && matrix.count == n * n, "\(op): \(matrix.count) values for a \(n)×\(n) matrix")
        if n == 0 { return ([], []) }
        for i in 0..<n {
            for j in 0...i where !matrix[i * n + j].isFinite {
                throw LinearAlgebraError.nonFinite(op: op, row: i, column: j, value: matrix[i * n + j])
            }
        }
        // Row-major lower triangle = column-major upper triangle ("U"). On return the columns of LAPACK's
        // column-major `a` are the eigenvectors, which row-major reads as rows.
        var a = matrix
        var values = [Double](repeating: 0, count: n)
        var order = Int32(n), lda = Int32(n), info: Int32 = 0
        let jobz = Int8(UInt8(ascii: "V")), uplo = Int8(UInt8(ascii: "U"))
        // Workspace query, then the decomposition.
        var workSize = 0.0, iworkSize: Int32 = 0, workQuery: Int32 = -1, iworkQuery: Int32 = -1
        withUnsafePointer(to: jobz) { jobzP in
            withUnsafePointer(to: uplo) { uploP in
                dsyevd_(jobzP, uploP, &order, &a, &lda, &values, &workSize, &workQuery, &iworkSize, &iworkQuery, &info, 1, 1)
            }
        }
        guard info == 0 else { throw LinearAlgebraError.lapack(op: op, routine: "dsyevd", info: Int(info), order: n) }
        var lwork = Int32(workSize.rounded(.up)), liwork = iworkSize
        var work = [Double](repeating: 0, count: Int(lwork))
        var iwork = [Int32](repeating: 0, count: Int(liwork))
        withUnsafePointer(to: jobz) { jobzP in
            withUnsafePointer(to: uplo) { uploP in
                dsyevd_(jobzP, uploP, &order, &a, &lda, &values, &work, &lwork, &iwork, &liwork, &info, 1, 1)
            }
        }
        guard info == 0 else { throw LinearAlgebraError.lapack(op: op, routine: "dsyevd", info: Int(info), order: n) }
        return (values, a)
    }

    /// Rᵀ·diag(s)·R for a square n×n row-major R (one `dgemm`): with the eigenvectors of a symmetric matrix in the
    /// rows of R, the matrix with the same eigenvectors and eigenvalues s (a symmetric result).
    package static func congruence(rows r: [Double], scales s: [Double]) -> [Double] {
        let n = s.count
        precondition(r.count == n * n, "congruence: \(r.count) values for a \(n)×\(n) matrix")
        if n == 0 { return [] }
        var scaled = r
        for k in 0..<n { for i in 0..<n { scaled[k * n + i] *= s[k] } }
        var out = [Double](repeating: 0, count: n * n)
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(n), Int32(n), Int32(n), 1, r, Int32(n),
                    scaled, Int32(n), 0, &out, Int32(n))
        // Exactly symmetric (the two triangles can differ in the last bit).
        for i in 0..<n { for j in (i + 1)..<n { out[j * n + i] = out[i * n + j] } }
        return out
    }

    /// The per-column mean and the sample covariance (divisor rows - 1, as NumPy's `cov` and scikit-learn's PCA)
    /// of `x` [rows, columns] (row-major Float), accumulated in Double: the centered rows go to `dsyrk` in chunks,
    /// so the extra memory is a chunk of rows, not a Double copy of `x`. Needs rows >= 2.
    package static func meanAndCovariance(_ x: UnsafeBufferPointer<Float>, rows: Int, columns: Int)
        -> (mean: [Double], covariance: [Double]) {
        precondition(rows >= 2 && columns >= 1 && x.count == rows * columns,
                     "meanAndCovariance: \(x.count) values for [\(rows), \(columns)] (needs 2 rows or more)")
        // Raw pointers in the loops: they stay fast in a debug build too.
        let source = x.baseAddress!
        var mean = [Double](repeating: 0, count: columns)
        mean.withUnsafeMutableBufferPointer { m in
            let sum = m.baseAddress!
            for r in 0..<rows {
                let row = source + r * columns
                for j in 0..<columns { sum[j] += Double(row[j]) }
            }
            for j in 0..<columns { sum[j] /= Double(rows) }
        }
        var covariance = [Double](repeating: 0, count: columns * columns)
        let chunkRows = Swift.max(1, Swift.min(rows, (1 << 20) / columns))   // about 8 MB of Double a chunk
        var chunk = [Double](repeating: 0, count: chunkRows * columns)
        mean.withUnsafeBufferPointer { m in
            chunk.withUnsafeMutableBufferPointer { c in
                covariance.withUnsafeMutableBufferPointer { cov in
                    let mu = m.baseAddress!, centered = c.baseAddress!
                    var start = 0
                    while start < rows {
                        let count = Swift.min(chunkRows, rows - start)
                        for r in 0..<count {
                            let row = source + (start + r) * columns, out = centered + r * columns
                            for j in 0..<columns { out[j] = Double(row[j]) - mu[j] }
                        }
                        // C += chunkᵀ · chunk (the upper triangle of the row-major C).
                        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, Int32(columns), Int32(count), 1, centered,
                                    Int32(columns), 1, cov.baseAddress!, Int32(columns))
                        start += count
                    }
                }
            }
        }
        let scale = 1 / Double(rows - 1)
        for i in 0..<columns {
            for j in i..<columns {
                let v = covariance[i * columns + j] * scale
                covariance[i * columns + j] = v
                covariance[j * columns + i] = v
            }
        }
        return (mean, covariance)
    }
}
