import Testing
@testable import MyelinCore
@testable import Myelin

/// Adam on a parameter large enough for the CPU loop to be split across threads (more than
/// `CPUBackend.parallelThreshold` elements, a count that is not a multiple of the 8-lane SIMD width,
/// so chunk starts and the tail are unaligned), against the Double reference.
struct AdamLargeParameterTests {
    @Test(arguments: TestDevices.all)
    func adamAndAdamWMatchReferenceOnLargeOddParameter(device: Device) throws {
        let count = 2 * CPUBackend.parallelThreshold + 13
        for decoupled in [false, true] {
            let initial = testValues(count, seed: 41)
            let p = try Tensor(initial, shape: [count], on: device, requiresGrad: true)
            let optimizer: Optimizer = decoupled
                ? try AdamW(parameters: [p], learningRate: 0.01, weightDecay: 0.1)
                : try Adam(parameters: [p], learningRate: 0.01)
            let reference = OptimizerReference.adam(lr: 0.01, weightDecay: decoupled ? 0.1 : 0, decoupled: decoupled)
            var theta = initial.map(Double.init)
            for t in 1...3 {
                let g = testValues(count, seed: UInt64(50 + t))
                try setGradient(p, g)
                try optimizer.step()
                reference(&theta, g.map(Double.init), t)
                expectClose(try p.toArray(), theta, rtol: 2e-5, atol: 1e-6, "\(decoupled ? "AdamW" : "Adam") on \(device), step \(t)")
            }
        }
    }
}
