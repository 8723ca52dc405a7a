import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// The CPU device's optimizer loops run eight lanes at a time (SIMD8 with a vector square root, or AVX in C),
/// then a scalar tail. Both must compute the same expressions in the same order: a parameter of 15 elements
/// whose last seven (the tail) repeat the first seven (vector lanes), with gradients repeated the same way,
/// keeps the two copies bit-identical over many steps of varied magnitudes (a reordered product or sum would
/// round differently for some of them).
@Suite struct OptimizerLaneTests {
    @Test(arguments: OptimizerCase.all)
    func vectorLanesMatchTheScalarTailBitForBit(optimizerCase: OptimizerCase) throws {
        func repeated(_ v: [Float]) -> [Float] { v + v[0..<7] }  // 8 lanes, then 7 tail elements
        let p = try Tensor(repeated(testValues(8, seed: 3)), shape: [15], on: .cpu, requiresGrad: true)
        let optimizer = try optimizerCase.make([p])
        let scales: [Float] = [1, 0.01, 30, 0.3, 3e-4, 5]
        for t in 1...30 {
            var g = testValues(8, seed: UInt64(100 + t)).map { $0 * scales[t % scales.count] }
            g[t % 8] = 0  // a zero gradient in a different lane each step
            try setGradient(p, repeated(g))
            try optimizer.step()
            let values = try p.toArray()
            #expect(values.allSatisfy { !$0.isNaN }, "\(optimizerCase) step \(t): NaN in \(values)")
            for j in 0..<7 where values[j].bitPattern != values[8 + j].bitPattern {
                Issue.record("\(optimizerCase) step \(t): lane \(j) is \(values[j]), its tail copy \(values[8 + j])")
            }
        }
        // The state tensors too (moments, square averages, sums, maxima).
        for (name, state) in optimizer.stateTensors() where state.count == 15 {
            let values = try state.toArray()
            for j in 0..<7 where values[j].bitPattern != values[8 + j].bitPattern {
                Issue.record("\(optimizerCase) state \(name): lane \(j) is \(values[j]), its tail copy \(values[8 + j])")
            }
        }
    }
}
