import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

@Suite struct ScheduleTests {
    @Test func stepDecayMatchesStepLR() throws {
        let s = try StepDecay(stepSize: 3, gamma: 0.5)
        // PyTorch StepLR(step_size=3, gamma=0.5), base 0.1: 0.1 for epochs 0-2, 0.05 for 3-5, ...
        let expected: [Double] = [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.0125, 0.0125]
        expectClose((0...10).map { s.learningRate(epoch: $0, base: 0.1) }, expected, rtol: 1e-6, atol: 0, "StepDecay")
        #expect(try StepDecay(stepSize: 1).gamma == 0.1)
    }

    @Test func exponentialDecayMatchesExponentialLR() throws {
        let s = try ExponentialDecay(gamma: 0.9)
        let expected = (0...20).map { 0.05 * pow(0.9, Double($0)) }
        expectClose((0...20).map { s.learningRate(epoch: $0, base: 0.05) }, expected, rtol: 1e-6, atol: 0, "ExponentialDecay")
    }

    @Test func cosineAnnealingMatchesClosedForm() throws {
        let s = try CosineAnnealing(tMax: 10, etaMin: 0.001)
        let expected = (0...20).map { e in 0.001 + (0.1 - 0.001) * (1 + cos(Double.pi * Double(e) / 10)) / 2 }
        expectClose((0...20).map { s.learningRate(epoch: $0, base: 0.1) }, expected, rtol: 1e-6, atol: 1e-9, "CosineAnnealing")
        #expect(s.learningRate(epoch: 0, base: 0.1) == 0.1)
        #expect(Swift.abs(s.learningRate(epoch: 10, base: 0.1) - 0.001) < 1e-9)
        #expect(Swift.abs(s.learningRate(epoch: 5, base: 0.1) - 0.0505) < 1e-7)
        // Past tMax the closed form rises again (PyTorch's closed form, no restart).
        #expect(s.learningRate(epoch: 15, base: 0.1) > s.learningRate(epoch: 10, base: 0.1))
    }

    @Test func cosineAnnealingAgreesWithPyTorchRecursiveForm() throws {
        // CosineAnnealingLR.get_lr (the recursive form PyTorch uses while stepping) for epochs 1...tMax.
        let tMax = 7, etaMin = 0.01, base = 0.2
        var lr = base
        let s = try CosineAnnealing(tMax: tMax, etaMin: Float(etaMin))
        for e in 1...tMax {
            let t = Double(e), T = Double(tMax)
            lr = (1 + cos(Double.pi * t / T)) / (1 + cos(Double.pi * (t - 1) / T)) * (lr - etaMin) + etaMin
            expectClose([s.learningRate(epoch: e, base: Float(base))], [lr], rtol: 1e-5, atol: 1e-7, "epoch \(e)")
        }
    }

    @Test func invalidSchedulesThrow() {
        #expect(throws: OptimizerError.self) { try StepDecay(stepSize: 0) }
        #expect(throws: OptimizerError.self) { try StepDecay(stepSize: 2, gamma: -1) }
        #expect(throws: OptimizerError.self) { try ExponentialDecay(gamma: -0.5) }
        #expect(throws: OptimizerError.self) { try CosineAnnealing(tMax: 0) }
    }

    @Test(arguments: TestDevices.all)
    func scheduleDrivesTheOptimizerEachEpoch(device: Device) throws {
        // One SGD step per "epoch" with gradient 1: θ decreases by exactly the scheduled rate each time.
        let p = try Tensor([0], shape: [1], on: device, requiresGrad: true)
        let sgd = try SGD(parameters: [p], learningRate: 123)
        let schedule = try StepDecay(stepSize: 2, gamma: 0.5)
        var expected = 0.0
        for epoch in 0..<6 {
            schedule.apply(to: sgd, epoch: epoch, base: 0.4)
            #expect(sgd.learningRate == schedule.learningRate(epoch: epoch, base: 0.4))
            try setGradient(p, [1])
            try sgd.step()
            expected -= Double(schedule.learningRate(epoch: epoch, base: 0.4))
        }
        expectClose(p.toArray(), [expected], rtol: 1e-6, atol: 1e-7, "θ after a scheduled run on \(device)")
        #expect(Swift.abs(expected - -(0.4 + 0.4 + 0.2 + 0.2 + 0.1 + 0.1)) < 1e-7)
    }
}
