import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

@Suite struct InitializerTests {
    static func stats(_ v: [Float]) -> (mean: Double, std: Double, min: Float, max: Float) {
        let m = v.reduce(0.0) { $0 + Double($1) } / Double(v.count)
        let s = (v.reduce(0.0) { $0 + (Double($1) - m) * (Double($1) - m) } / Double(v.count)).squareRoot()
        return (m, s, v.min()!, v.max()!)
    }

    @Test(arguments: TestDevices.all)
    func randomInitializersHaveTheirStatisticsAndBounds(device: Device) throws {
        let shape = [200, 100]  // fanIn 200, fanOut 100, 20000 values
        let n = 20_000.0
        // (initializer, expected mean, expected std, bound or nil)
        let xa = (6.0 / 300).squareRoot(), ha = (6.0 / 200).squareRoot()
        let cases: [(Initializer, Double, Double, Double?)] = [
            (.uniform(low: 0, high: 1), 0.5, (1.0 / 12).squareRoot(), nil),
            (.uniform(low: -2, high: 3), 0.5, (25.0 / 12).squareRoot(), nil),
            (.normal(mean: 1, std: 0.5), 1, 0.5, nil),
            (.xavierUniform, 0, xa / 3.0.squareRoot(), xa),
            (.xavierNormal, 0, (2.0 / 300).squareRoot(), nil),
            (.heUniform, 0, ha / 3.0.squareRoot(), ha),
            (.heNormal, 0, (2.0 / 200).squareRoot(), nil),
            (.lecunNormal, 0, (1.0 / 200).squareRoot(), nil),
        ]
        for (initializer, mean, std, bound) in cases {
            let t = try initializer.make(shape, seed: 77, on: device)
            #expect(t.shape == shape && t.device == device && !t.requiresGrad)
            let v = try t.toArray()
            let s = Self.stats(v)
            // The sample mean is within 4 standard errors; the sample std within 3%.
            #expect(Swift.abs(s.mean - mean) < 4 * std / n.squareRoot(), "\(initializer): mean \(s.mean), expected \(mean)")
            #expect(Swift.abs(s.std - std) < 0.03 * std, "\(initializer): std \(s.std), expected \(std)")
            if let bound {
                #expect(Double(s.min) >= -bound && Double(s.max) < bound, "\(initializer): [\(s.min), \(s.max)] outside ±\(bound)")
                #expect(Double(s.max) > 0.99 * bound && Double(s.min) < -0.99 * bound, "\(initializer) fills its range")
            }
            if case .uniform(let lo, let hi) = initializer {
                #expect(s.min >= lo && s.max < hi, "\(initializer): [\(s.min), \(s.max)]")
            }
        }
    }

    @Test(arguments: TestDevices.all)
    func constantInitializers(device: Device) throws {
        #expect(try Initializer.zeros.make([3, 2], seed: 1, on: device).toArray() == [Float](repeating: 0, count: 6))
        #expect(try Initializer.constant(0.25).make([5], seed: 1, on: device).toArray() == [Float](repeating: 0.25, count: 5))
        #expect(try Initializer.array([1, 2, 3, 4]).make([2, 2], seed: 1, on: device).toArray() == [1, 2, 3, 4])
        #expect(throws: TensorError.self) { try Initializer.array([1, 2, 3]).make([2, 2], seed: 1, on: device) }
        #expect(throws: TensorError.self) { try Initializer.uniform(low: 1, high: 0).make([2], seed: 1, on: device) }
    }

    @Test(.enabled(if: TestDevices.openCLAvailable, TestDevices.skipReason))
    func sameSeedGivesIdenticalValuesOnBothDevices() throws {
        for initializer in [Initializer.uniform(low: 0, high: 1), .normal(mean: 0, std: 1), .xavierUniform, .heNormal] {
            let a = try initializer.make([33, 7], seed: 5, on: .cpu).toArray()
            let b = try initializer.make([33, 7], seed: 5, on: TestDevices.openCL).toArray()
            #expect(a == b, "\(initializer)")
            #expect(a != (try initializer.make([33, 7], seed: 6, on: .cpu).toArray()), "\(initializer): another seed differs")
        }
        let d1 = Dense(inputSize: 9, outputSize: 4, seed: 3, device: .cpu)
        let d2 = Dense(inputSize: 9, outputSize: 4, seed: 3, device: TestDevices.openCL)
        #expect(try d1.weight.toArray() == d2.weight.toArray())
    }

    @Test func fansComeFromTheShape() throws {
        #expect(Initializer.fans([784, 128]) == (784, 128))
        #expect(Initializer.fans([16, 3, 5, 5]) == (75, 400))
        #expect(Initializer.fans([10]) == (10, 10))
        let a = Initializer.nextSeed(), b = Initializer.nextSeed()
        #expect(a != b, "layers built without a seed get different weights")
        let l1 = Dense(inputSize: 4, outputSize: 4, device: .cpu), l2 = Dense(inputSize: 4, outputSize: 4, device: .cpu)
        #expect(try l1.weight.toArray() != l2.weight.toArray())
    }
}
