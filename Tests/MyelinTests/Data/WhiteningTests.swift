import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// Whitening data: `n` samples of `d` correlated features, x = z·M + offset with z standard normal and a mixing
/// matrix M chosen so that the covariance MᵀM has eigenvalues far above the default epsilon (M = I + a random
/// part; row-major [n, d]).
private func correlatedSamples(n: Int, d: Int, seed: UInt64) -> [Float] {
    var g = SeededGenerator(seed: seed)
    let z = (0..<n * d).map { _ in g.nextGaussian() }
    let m = (0..<d * d).map { i in (i / d == i % d ? 1.5 : 0) + 0.4 * (g.nextDouble() * 2 - 1) }
    var x = [Float](repeating: 0, count: n * d)
    for s in 0..<n {
        for j in 0..<d {
            var v = Double(j) * 3 - 5   // offsets: the mean must come out
            for k in 0..<d { v += z[s * d + k] * m[k * d + j] }
            x[s * d + j] = Float(v)
        }
    }
    return x
}

/// Sample mean [d] and covariance [d·d] (divisor n - 1) in Double: the reference.
private func referenceMeanAndCovariance(_ x: [Float], n: Int, d: Int) -> (mean: [Double], covariance: [Double]) {
    var mean = [Double](repeating: 0, count: d)
    for s in 0..<n { for j in 0..<d { mean[j] += Double(x[s * d + j]) } }
    mean = mean.map { $0 / Double(n) }
    var c = [Double](repeating: 0, count: d * d)
    for s in 0..<n {
        for i in 0..<d {
            for j in 0..<d { c[i * d + j] += (Double(x[s * d + i]) - mean[i]) * (Double(x[s * d + j]) - mean[j]) }
        }
    }
    return (mean, c.map { $0 / Double(n - 1) })
}

private func identity(_ d: Int) -> [Double] { (0..<d * d).map { $0 / d == $0 % d ? 1 : 0 } }

@Suite struct SymmetricEigendecompositionTests {
    @Test(arguments: TestDevices.all) func knownMatrices(device: Device) throws {
        // [[2, 1], [1, 2]]: eigenvalues 1 and 3, eigenvectors (1, -1)/√2 and (1, 1)/√2 (up to sign).
        let (values, vectors) = try Tensor([2, 1, 1, 2], shape: [2, 2], on: device).symmetricEigendecomposition()
        #expect(values.device === device && vectors.device === device)
        #expect(values.shape == [2] && vectors.shape == [2, 2])
        expectClose(try values.toArray(), [1.0, 3.0], rtol: 0, atol: 1e-6, "eigenvalues of [[2, 1], [1, 2]]")
        let v = try vectors.toArray(), r = 1 / 2.0.squareRoot()
        // Column k is eigenvector k; fix each column's sign by its last component.
        for k in 0..<2 {
            let sign: Float = v[2 + k] < 0 ? -1 : 1
            expectClose([v[k] * sign, v[2 + k] * sign], k == 0 ? [-r, r] : [r, r], rtol: 0, atol: 1e-6, "eigenvector \(k)")
        }
        // A diagonal matrix with an unsorted diagonal, a 1×1 matrix, and a repeated eigenvalue.
        expectClose(try Tensor([5, 0, 0, 0, -2, 0, 0, 0, 3], shape: [3, 3], on: device).symmetricEigendecomposition().values.toArray(),
                    [-2.0, 3.0, 5.0], rtol: 0, atol: 1e-6, "diag(5, -2, 3)")
        let one = try Tensor([4], shape: [1, 1], on: device).symmetricEigendecomposition()
        #expect(try one.values.toArray() == [4] && Swift.abs(one.vectors.toArray()[0]) == 1)
        expectClose(try Tensor([2, 0, 0, 0, 2, 0, 0, 0, 7], shape: [3, 3], on: device).symmetricEigendecomposition().values.toArray(),
                    [2.0, 2.0, 7.0], rtol: 0, atol: 1e-6, "diag(2, 2, 7)")
    }

    @Test(arguments: TestDevices.all, [1, 7, 33]) func reconstructsARandomSymmetricMatrix(device: Device, n: Int) throws {
        let r = testValues(n * n, seed: UInt64(n))
        let a = (0..<n * n).map { i in (r[i] + r[(i % n) * n + i / n]) / 2 }   // symmetric
        let (valuesT, vectorsT) = try Tensor(a, shape: [n, n], on: device).symmetricEigendecomposition()
        let values = try valuesT.toArray(), v = try vectorsT.toArray()
        #expect(values == values.sorted(), "eigenvalues come in ascending order")
        // V·diag(λ)·Vᵀ = A and VᵀV = I, in Double.
        var reconstruction = [Double](repeating: 0, count: n * n), gram = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in 0..<n {
                for k in 0..<n {
                    reconstruction[i * n + j] += Double(v[i * n + k]) * Double(values[k]) * Double(v[j * n + k])
                    gram[i * n + j] += Double(v[k * n + i]) * Double(v[k * n + j])
                }
            }
        }
        expectClose(reconstruction.map { Float($0) }, a.map(Double.init), rtol: 0, atol: 1e-5, "V·diag(λ)·Vᵀ for n = \(n)")
        expectClose(gram.map { Float($0) }, identity(n), rtol: 0, atol: 1e-5, "VᵀV for n = \(n)")
        // The trace is the sum of the eigenvalues.
        let trace = (0..<n).reduce(0.0) { $0 + Double(a[$1 * n + $1]) }
        #expect(Swift.abs(values.reduce(0.0) { $0 + Double($1) } - trace) < 1e-4)
    }

    @Test func refusesBadMatrices() throws {
        expectDataError({ _ = try Tensor.zeros([2, 3]).symmetricEigendecomposition() }, contains: ["symmetricEigendecomposition", "[2, 3]", "square"])
        expectDataError({ _ = try Tensor.zeros([4]).symmetricEigendecomposition() }, contains: ["[4]", "square"])
        expectDataError({ _ = try Tensor([1, 0, .nan, 1], shape: [2, 2]).symmetricEigendecomposition() },
                        contains: ["nan", "row 1, column 0", "finite"])
        // A LAPACK failure names the routine, the matrix size and LAPACK's info.
        let failure = LinearAlgebraError.lapack(op: "Whitening(zca): eigendecomposition of the covariance", routine: "dsyevd", info: 3, order: 784)
        for part in ["Whitening(zca)", "dsyevd", "784×784", "info = 3", "did not converge"] {
            #expect(failure.description.contains(part), "\(failure) mentions \(part)")
        }
        #expect(LinearAlgebraError.lapack(op: "x", routine: "dsyevd", info: -4, order: 2).description.contains("argument 4 is invalid"))
    }

    @Test func covarianceMatchesTheReference() {
        for (n, d) in [(2, 1), (3, 5), (1000, 7), (300, 33)] {
            let x = correlatedSamples(n: n, d: d, seed: UInt64(n + d))
            let (mean, covariance) = x.withUnsafeBufferPointer { HostLinearAlgebra.meanAndCovariance($0, rows: n, columns: d) }
            let reference = referenceMeanAndCovariance(x, n: n, d: d)
            expectClose(mean.map { Float($0) }, reference.mean, rtol: 1e-6, atol: 1e-6, "mean [\(n), \(d)]")
            expectClose(covariance.map { Float($0) }, reference.covariance, rtol: 1e-6, atol: 1e-6, "covariance [\(n), \(d)]")
        }
    }
}

@Suite struct WhiteningTests {
    static let cases: [(Device, Whitening.Method)] = TestDevices.all.flatMap { d in Whitening.Method.allCases.map { (d, $0) } }

    @Test(arguments: cases) func whitenedTrainingDataHasIdentityCovariance(device: Device, method: Whitening.Method) throws {
        let n = 500, d = 8
        let x = correlatedSamples(n: n, d: d, seed: 21)
        let whitening = try Whitening(fitting: Tensor(x, shape: [n, d], on: device), method: method)
        #expect(whitening.mean.device === device && whitening.matrix.device === device && whitening.featureCount == d)
        #expect(whitening.epsilon == 1e-5 && whitening.method == method)
        let reference = referenceMeanAndCovariance(x, n: n, d: d)
        expectClose(try whitening.mean.toArray(), reference.mean, rtol: 1e-5, atol: 1e-5, "fitted mean")
        #expect(whitening.eigenvalues == whitening.eigenvalues.sorted(by: >), "eigenvalues largest first")
        #expect(whitening.eigenvalues.last! > 0.05, "the test data is well conditioned: \(whitening.eigenvalues)")
        let y = try whitening.transform(Tensor(x, shape: [n, d], on: device))
        #expect(y.shape == [n, d] && y.device === device)
        let whitened = referenceMeanAndCovariance(try y.toArray(), n: n, d: d)
        expectClose(whitened.mean.map { Float($0) }, [Double](repeating: 0, count: d), rtol: 0, atol: 1e-4, "\(method) whitened mean")
        expectClose(whitened.covariance.map { Float($0) }, identity(d), rtol: 0, atol: 1e-3, "\(method) whitened covariance")
        // The covariance's eigenvalues are those of the reference covariance, and their sum its trace.
        let trace = (0..<d).reduce(0.0) { $0 + reference.covariance[$1 * d + $1] }
        #expect(Swift.abs(whitening.eigenvalues.reduce(0, +) - trace) < 1e-6 * trace)
        if method == .pca {
            // PCA output k has variance λk/(λk + ε): the principal components in order, each scaled to 1.
            for k in 0..<d {
                let expected = whitening.eigenvalues[k] / (whitening.eigenvalues[k] + 1e-5)
                #expect(Swift.abs(whitened.covariance[k * d + k] - expected) < 1e-4, "PCA output \(k)")
            }
        }
    }

    @Test(arguments: TestDevices.all) func zcaIsSymmetricAndStaysClosestToTheInput(device: Device) throws {
        let n = 400, d = 6
        let xValues = correlatedSamples(n: n, d: d, seed: 5)
        let x = try Tensor(xValues, shape: [n, d], on: device)
        let zca = try Whitening(fitting: x, method: .zca), pca = try Whitening(fitting: x, method: .pca)
        let w = try zca.matrix.toArray()
        for i in 0..<d { for j in 0..<d { #expect(w[i * d + j] == w[j * d + i], "ZCA matrix symmetric at (\(i), \(j))") } }
        let wi = try zca.inverseMatrix.toArray()
        for i in 0..<d { for j in 0..<d { #expect(wi[i * d + j] == wi[j * d + i], "ZCA inverse symmetric at (\(i), \(j))") } }
        // PCA's matrix is not symmetric for correlated data, and the two differ by a rotation: W_pca = R·W_zca.
        let wp = try pca.matrix.toArray()
        #expect((0..<d).contains { i in (0..<d).contains { j in Swift.abs(wp[i * d + j] - wp[j * d + i]) > 1e-3 } })
        // Mean squared distance between the centered input and its whitened version: ZCA's is the smallest of all
        // whitening transforms (here against PCA and a random rotation of ZCA).
        let centered = try x - zca.mean
        func distance(_ y: Tensor) throws -> Float { try (y - centered).square().mean().item() }
        let zcaDistance = try distance(zca.transform(x)), pcaDistance = try distance(pca.transform(x))
        let r = testValues(d * d, seed: 77)
        let (_, rotation) = try Tensor((0..<d * d).map { i in r[i] + r[(i % d) * d + i / d] }, shape: [d, d], on: device)
            .symmetricEigendecomposition()
        let rotatedDistance = try distance(zca.transform(x).matmul(rotation))   // (Q·W) whitens too
        #expect(zcaDistance < pcaDistance && zcaDistance < rotatedDistance, "ZCA \(zcaDistance), PCA \(pcaDistance), rotated \(rotatedDistance)")
        let rotatedCovariance = referenceMeanAndCovariance(try zca.transform(x).matmul(rotation).toArray(), n: n, d: d).covariance
        expectClose(rotatedCovariance.map { Float($0) }, identity(d), rtol: 0, atol: 1e-3, "the rotated ZCA output is white too")
    }

    @Test(arguments: cases) func inverseUndoesTheTransform(device: Device, method: Whitening.Method) throws {
        // Image-shaped samples [N, 1, 3, 3]: whitened as 9 features, given back in their shape.
        let n = 200, d = 9
        let values = correlatedSamples(n: n, d: d, seed: 8)
        let train = try Tensor(values, shape: [n, 1, 3, 3], on: device)
        let whitening = try Whitening(fitting: train, method: method, epsilon: 1e-3)
        #expect(whitening.mean.shape == [1, 3, 3] && whitening.matrix.shape == [d, d])
        let test = try Tensor(correlatedSamples(n: 7, d: d, seed: 99), shape: [7, 1, 3, 3], on: device)
        for (name, x) in [("train", train), ("test", test)] {
            let y = try whitening.transform(x)
            #expect(y.shape == x.shape)
            expectClose(try whitening.inverseTransform(y).toArray(), try x.toArray(), rtol: 1e-4, atol: 1e-4, "\(method) \(name): inverse(transform(x))")
        }
        // W⁻¹·W = I.
        let product = try whitening.inverseMatrix.matmul(whitening.matrix).toArray()
        expectClose(product, identity(d), rtol: 0, atol: 1e-4, "\(method): W⁻¹·W")
        // The transform is (x - mean)·Wᵀ: checked against a Double reference on the test samples.
        let xv = try test.toArray(), mean = try whitening.mean.toArray(), w = try whitening.matrix.toArray()
        var expected = [Double](repeating: 0, count: 7 * d)
        for s in 0..<7 { for k in 0..<d { for i in 0..<d { expected[s * d + k] += (Double(xv[s * d + i]) - Double(mean[i])) * Double(w[k * d + i]) } } }
        expectClose(try whitening.transform(test).toArray(), expected, rtol: 1e-4, atol: 1e-4, "\(method): (x - mean)·Wᵀ")
    }

    /// WhiteningData.md's listing, on the first 700 training images to stay quick: ZCA fitted on the training part,
    /// applied to both parts, and mapped back to pixels.
    @Test(.enabled(if: ReadmeExampleTests.dataPresent, "Fashion-MNIST is not installed (Debian dataset-fashion-mnist)"),
          arguments: TestDevices.all)
    func articleExample(device: Device) throws {
        let (train, validation) = try MNIST.loadTrainValidation(validationCount: 100, seed: 1, limit: 700, on: device)
        let whitening = try Whitening(fitting: train.features, method: .zca, epsilon: 0.1)
        let whitenedTrain = try train.mapFeatures(whitening.transform)
        let whitenedValidation = try validation.mapFeatures(whitening.transform)   // the training statistics
        let images = try whitening.inverseTransform(whitenedValidation.features)  // back to pixels in [0, 1]
        #expect(whitenedTrain.features.shape == [600, 784] && whitenedValidation.features.device === device)
        expectClose(try images.toArray(), try validation.features.toArray(), rtol: 0, atol: 1e-4, "pixels after inverse(transform)")
        // On the training part every principal direction has variance λ/(λ + ε) < 1, and the large ones about 1.
        let whitened = try whitenedTrain.features.toArray()   // covariance checked against the reference in covarianceMatchesTheReference
        let (mean, covariance) = whitened.withUnsafeBufferPointer { HostLinearAlgebra.meanAndCovariance($0, rows: 600, columns: 784) }
        #expect(mean.allSatisfy { Swift.abs($0) < 1e-4 })
        let values = try Tensor(covariance.map { Float($0) }, shape: [784, 784]).symmetricEigendecomposition().values.toArray()
        let expected = whitening.eigenvalues.map { max($0, 0) / (max($0, 0) + 0.1) }.sorted()
        expectClose(values, expected, rtol: 0, atol: 1e-3, "eigenvalues of the whitened covariance")
    }

    @Test func transformRunsOnTheSamplesDevice() throws {
        guard TestDevices.openCLAvailable else { return }
        let n = 100, d = 4
        let x = correlatedSamples(n: n, d: d, seed: 3)
        let fittedOnCPU = try Whitening(fitting: Tensor(x, shape: [n, d], on: .cpu), method: .zca)
        let onOpenCL = try fittedOnCPU.transform(Tensor(x, shape: [n, d], on: TestDevices.openCL))
        #expect(onOpenCL.device === TestDevices.openCL)
        expectClose(try onOpenCL.toArray(), try fittedOnCPU.transform(Tensor(x, shape: [n, d], on: .cpu)).toArray(), rtol: 1e-4, atol: 1e-4, "OpenCL vs CPU")
    }

    @Test func epsilonBoundsTheGainOfFlatDirections() throws {
        // Three features, the third a copy of the first: rank 2. With ε = 0 the fit is refused; with ε > 0 the flat
        // direction is scaled by 1/√ε at most, and the two real directions stay white.
        var g = SeededGenerator(seed: 4)
        let n = 300
        var x = [Float]()
        for _ in 0..<n {
            let a = Float(g.nextGaussian()), b = Float(g.nextGaussian())
            x += [a, a + b, a]
        }
        let t = try Tensor(x, shape: [n, 3])
        expectDataError({ _ = try Whitening(fitting: t, method: .zca, epsilon: 0) }, contains: ["Whitening(zca)", "full rank", "epsilon"])
        let whitening = try Whitening(fitting: t, method: .pca, epsilon: 1e-2)
        #expect(Swift.abs(whitening.eigenvalues[2]) < 1e-6)
        let y = try whitening.transform(t).toArray()
        let c = referenceMeanAndCovariance(y, n: n, d: 3).covariance
        for k in 0..<2 { #expect(Swift.abs(c[k * 3 + k] - whitening.eigenvalues[k] / (whitening.eigenvalues[k] + 1e-2)) < 1e-4) }
        #expect(c[8] < 1e-6, "the flat direction stays flat: \(c[8])")
        // ε = 0 whitens full-rank data exactly.
        let full = correlatedSamples(n: 100, d: 3, seed: 6)
        let exact = try Whitening(fitting: Tensor(full, shape: [100, 3]), method: .zca, epsilon: 0)
        let cy = referenceMeanAndCovariance(try exact.transform(Tensor(full, shape: [100, 3])).toArray(), n: 100, d: 3).covariance
        expectClose(cy.map { Float($0) }, identity(3), rtol: 0, atol: 1e-4, "ε = 0")
    }

    @Test func refusesBadInput() throws {
        let x = try Tensor(correlatedSamples(n: 20, d: 4, seed: 1), shape: [20, 4])
        let whitening = try Whitening(fitting: x)
        #expect(whitening.method == .zca)
        expectDataError({ _ = try whitening.transform(Tensor.zeros([5, 3])) }, contains: ["Whitening(zca).transform", "[5, 3]", "[4]", "4 features"])
        expectDataError({ _ = try whitening.inverseTransform(Tensor.zeros([5, 2, 2])) }, contains: ["inverseTransform", "[5, 2, 2]", "[4]"])
        expectDataError({ _ = try Whitening(fitting: Tensor.zeros([1, 4])) }, contains: ["Whitening(zca)", "N >= 2", "[1, 4]"])
        expectDataError({ _ = try Whitening(fitting: Tensor.zeros([5]), method: .pca) }, contains: ["Whitening(pca)", "[5]"])
        expectDataError({ _ = try Whitening(fitting: Tensor.zeros([2, 1, 129, 129])) }, contains: ["16641 values", "at most 16384 features"])
        expectDataError({ _ = try Whitening(fitting: x, epsilon: -1) }, contains: ["epsilon", "-1"])
        expectDataError({ _ = try Whitening(fitting: x, epsilon: .nan) }, contains: ["epsilon", "nan"])
        var bad = try x.toArray()
        bad[2 * 4 + 3] = .infinity
        expectDataError({ _ = try Whitening(fitting: Tensor(bad, shape: [20, 4])) }, contains: ["Whitening(zca)", "sample 2", "element 3", "inf"])
        // Constant data has a zero covariance: refused with ε = 0, and whitened to zeros (a finite result) with ε > 0.
        let constant = Tensor.full([10, 2], 3)
        expectDataError({ _ = try Whitening(fitting: constant, epsilon: 0) }, contains: ["full rank"])
        #expect(try Whitening(fitting: constant).transform(constant).toArray() == [Float](repeating: 0, count: 20))
    }
}
