import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// The CPU device's optimizer loops run eight lanes at a time through SIMD8 and a vector square root, then a
/// scalar tail. Both must compute the same expressions in the same order: with every element given the same
/// value and the same gradient, the 16 vector lanes and the tail's element come out bit-identical.
@Suite struct OptimizerLaneTests {
    @Test(arguments: OptimizerCase.all)
    func vectorLanesMatchTheScalarTailBitForBit(optimizerCase: OptimizerCase) throws {
        let count = 17  // two SIMD8 groups and one element of tail
        let p = try Tensor([Float](repeating: 0.3, count: count), shape: [count], on: .cpu, requiresGrad: true)
        let optimizer = try optimizerCase.make([p])
        for g: Float in [0.7, -0.2, 1.5, 0, -3, 0.01] {
            try setGradient(p, [Float](repeating: g, count: count))
            try optimizer.step()
            let values = p.toArray()
            #expect(values.allSatisfy { $0.bitPattern == values[count - 1].bitPattern && !$0.isNaN },
                    "\(optimizerCase) after gradient \(g): \(values)")
        }
        // The state tensors too (moments, square averages, sums, maxima).
        for (name, state) in optimizer.stateTensors() where state.count == count {
            let values = state.toArray()
            #expect(values.allSatisfy { $0.bitPattern == values[count - 1].bitPattern }, "\(optimizerCase) state \(name): \(values)")
        }
    }
}
