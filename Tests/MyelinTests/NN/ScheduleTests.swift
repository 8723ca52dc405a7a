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

    @Test func warmupCosineMatchesLinearThenCosinePerBatch() throws {
        // PyTorch: SequentialLR([LinearLR(start_factor=0.1, total_iters=W), CosineAnnealingLR(T_max=T-W, eta_min)],
        // milestones=[W]) stepped once per batch, with W = 2 epochs and T = 10 epochs of 5 batches each.
        let s = try WarmupCosine(warmupEpochs: 2, totalEpochs: 10, etaMin: 0.001, warmupStartFactor: 0.1)
        #expect(s.perBatch)
        let base = 0.1, batches = 5, warm = 2 * batches, total = 10 * batches
        for step in 0...(total + 7) {
            let expected: Double
            if step < warm {
                expected = base * (0.1 + 0.9 * Double(step) / Double(warm))
            } else {
                let t = Double(Swift.min(step, total) - warm) / Double(total - warm)
                expected = 0.001 + (base - 0.001) * (1 + cos(Double.pi * t)) / 2
            }
            let progress = Double(step) / Double(batches)
            expectClose([s.learningRate(progress: progress, base: Float(base))], [expected], rtol: 1e-5, atol: 1e-8,
                        "step \(step)")
        }
        // The peak at the end of the warm-up, the floor at and after the end; the per-epoch form agrees.
        #expect(Swift.abs(s.learningRate(progress: 2, base: 0.1) - 0.1) < 1e-7)
        #expect(Swift.abs(s.learningRate(progress: 12, base: 0.1) - 0.001) < 1e-7)
        #expect(s.learningRate(epoch: 4, base: 0.1) == s.learningRate(progress: 4, base: 0.1))
        // No warm-up: a cosine from base.
        let plain = try WarmupCosine(warmupEpochs: 0, totalEpochs: 4)
        #expect(plain.learningRate(progress: 0, base: 0.2) == 0.2)
        #expect(Swift.abs(plain.learningRate(progress: 2, base: 0.2) - 0.1) < 1e-7)
        // Per-epoch schedules keep their epoch's rate within it.
        let step = try StepDecay(stepSize: 1, gamma: 0.5)
        #expect(!step.perBatch)
        #expect(step.learningRate(progress: 1.9, base: 1) == 0.5)
    }

    @Test(arguments: TestDevices.all)
    func fitSetsAPerBatchScheduleBeforeEveryBatch(device: Device) throws {
        // A callback sees the rate each batch trains with.
        final class Rates: Callback {
            var seen: [Float] = []
            func batchWillBegin(_ batch: Int, _ context: TrainingContext) throws { seen.append(context.optimizer.learningRate) }
        }
        let data = try Dataset(features: testValues(12, seed: 1), shape: [12, 1], targets: testValues(12, seed: 2),
                               targetShape: [12, 1], on: device)
        let model = Dense(inputSize: 1, outputSize: 1, seed: 1, device: device)
        let sgd = try SGD(parameters: model.parameters, learningRate: 0.05)
        let schedule = try WarmupCosine(warmupEpochs: 1, totalEpochs: 3)
        let rates = Rates()
        try model.fit(data, epochs: 3, batchSize: 4, loss: .meanSquaredError, optimizer: sgd, callbacks: [rates],
                      schedule: schedule, verbosity: .silent)
        let expected = (0..<9).map { schedule.learningRate(progress: Double($0) / 3, base: 0.05) }
        #expect(rates.seen == expected)
        // Resuming at epoch 2 continues the same rates.
        let resumed = Rates()
        try model.fit(data, epochs: 3, batchSize: 4, loss: .meanSquaredError, optimizer: sgd, callbacks: [resumed],
                      schedule: schedule, baseLearningRate: 0.05, initialEpoch: 2, verbosity: .silent)
        #expect(resumed.seen == Array(expected[6...]))
    }

    @Test func invalidSchedulesThrow() {
        #expect(throws: OptimizerError.self) { try WarmupCosine(warmupEpochs: -1, totalEpochs: 3) }
        #expect(throws: OptimizerError.self) { try WarmupCosine(warmupEpochs: 3, totalEpochs: 3) }
        #expect(throws: OptimizerError.self) { try WarmupCosine(totalEpochs: 3, etaMin: -1) }
        #expect(throws: OptimizerError.self) { try WarmupCosine(totalEpochs: 3, warmupStartFactor: 0) }
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
        expectClose(try p.toArray(), [expected], rtol: 1e-6, atol: 1e-7, "θ after a scheduled run on \(device)")
        #expect(Swift.abs(expected - -(0.4 + 0.4 + 0.2 + 0.2 + 0.1 + 0.1)) < 1e-7)
    }
}
