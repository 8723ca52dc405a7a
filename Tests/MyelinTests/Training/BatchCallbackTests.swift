import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// The per-batch hooks of `Callback` in `fit`: when they are called, the batch loss they get, and that they cost
/// no host read unless the callback reads that loss.
@Suite struct BatchCallbackTests {
    /// Records every hook call as (epoch, batch), and the loss when `readLoss` is set.
    final class Recorder: Callback {
        let readLoss: Bool
        var began: [(epoch: Int, batch: Int)] = []
        var ended: [(epoch: Int, batch: Int)] = []
        var batchesPerEpoch: [Int] = []
        var losses: [Float] = []
        init(readLoss: Bool) { self.readLoss = readLoss }

        func batchWillBegin(_ batch: Int, _ context: TrainingContext) throws {
            began.append((context.epoch, batch))
        }

        func batchDidEnd(_ batch: Int, loss: Tensor, _ context: TrainingContext) throws {
            ended.append((context.epoch, batch))
            batchesPerEpoch.append(context.batchesPerEpoch)
            #expect(loss.shape == [] && !loss.requiresGrad)
            if readLoss { losses.append(try loss.item()) }
        }
    }

    /// 30 samples in 2-D, three classes; a small classifier.
    static func problem(on device: Device) throws -> (Dataset, Sequential) {
        var g = SeededGenerator(seed: 11)
        var x: [Float] = [], y: [Float] = []
        for i in 0..<30 {
            x += [Float(g.nextGaussian()) + Float(i % 3), Float(g.nextGaussian())]
            y.append(Float(i % 3))
        }
        let data = try Dataset(features: x, shape: [30, 2], targets: y, targetShape: [30], on: device)
        let model = Sequential {
            Dense(inputSize: 2, outputSize: 8, activation: .tanh, seed: 3, device: device)
            Dense(inputSize: 8, outputSize: 3, seed: 4, device: device)
        }
        return (data, model)
    }

    @Test(arguments: TestDevices.all) func calledOncePerBatchWithIncreasingIndices(device: Device) throws {
        let (data, model) = try Self.problem(on: device)
        let recorder = Recorder(readLoss: false)
        let sgd = try SGD(parameters: model.parameters, learningRate: 0.1)
        // 30 samples in batches of 7: 5 batches per epoch (the last one of 2).
        try model.fit(data, epochs: 3, batchSize: 7, loss: .softmaxCrossEntropy, optimizer: sgd,
                      callbacks: [recorder], verbosity: .silent)
        let expected = (0..<3).flatMap { e in (0..<5).map { (e, $0) } }
        #expect(recorder.ended.map(\.epoch) == expected.map(\.0) && recorder.ended.map(\.batch) == expected.map(\.1))
        #expect(recorder.began.map(\.epoch) == expected.map(\.0) && recorder.began.map(\.batch) == expected.map(\.1))
        #expect(recorder.batchesPerEpoch == Array(repeating: 5, count: 15))
        // A resumed run's epochs continue from initialEpoch; dropLast leaves out the partial batch.
        let resumed = Recorder(readLoss: false)
        try model.fit(data, epochs: 3, batchSize: 7, loss: .softmaxCrossEntropy, optimizer: sgd, callbacks: [resumed],
                      dropLast: true, initialEpoch: 2, verbosity: .silent)
        #expect(resumed.ended.map(\.epoch) == [2, 2, 2, 2] && resumed.ended.map(\.batch) == [0, 1, 2, 3])
    }

    @Test(arguments: TestDevices.all) func theLossReadIsTheBatchLoss(device: Device) throws {
        let (data, model) = try Self.problem(on: device)
        // The first batch (no shuffle: samples 0..<8) before any step, computed outside fit.
        let first = try withNoGrad {
            try softmaxCrossEntropy(logits: model(data.features.slice(0..<8)), labels: data.targets.slice(0..<8)).item()
        }
        let recorder = Recorder(readLoss: true)
        let adam = try Adam(parameters: model.parameters, learningRate: 0.05)
        let history = try model.fit(data, epochs: 2, batchSize: 8, loss: .softmaxCrossEntropy, optimizer: adam,
                                    callbacks: [recorder], shuffle: false, verbosity: .silent)
        #expect(recorder.losses.count == 8)
        expectClose([recorder.losses[0]], [first], rtol: 1e-6, atol: 1e-7, "\(device) first batch loss")
        // Each epoch's loss is the batch losses' mean weighted by batch size (8, 8, 8, 6).
        let sizes: [Float] = [8, 8, 8, 6]
        for epoch in 0..<2 {
            let batchLosses = recorder.losses[(epoch * 4)..<(epoch * 4 + 4)]
            let weighted = zip(batchLosses, sizes).map { Double($0 * $1) }.reduce(0, +) / 30
            expectClose([Float(history["loss"]![epoch])], [weighted], rtol: 1e-5, atol: 1e-6, "\(device) epoch \(epoch + 1) loss")
        }
        #expect(recorder.losses.allSatisfy(\.isFinite) && recorder.losses[7] < recorder.losses[0])
    }

    @Test(arguments: TestDevices.all) func noHostReadUnlessTheCallbackReadsTheLoss(device shared: Device) throws {
        // OpenCL: a private device whose counters no other test touches. The CPU device's counters are shared
        // with tests running in parallel, which can only raise them: the smallest count of a few attempts is
        // the fit's own.
        let device = shared.isOpenCL ? try DeviceTests.privateOpenCLDevice() : DeviceTests.privateCPUDevice()
        func hostReads(readLoss: Bool) throws -> Int {
            var best = Int.max
            for _ in 0..<5 {
                let (data, model) = try Self.problem(on: device)
                let sgd = try SGD(parameters: model.parameters, learningRate: 0.1)
                let recorder = Recorder(readLoss: readLoss)
                let before = device.stats.hostReads
                try model.fit(data, epochs: 2, batchSize: 10, loss: .softmaxCrossEntropy, optimizer: sgd,
                              callbacks: [recorder], verbosity: .silent)
                best = min(best, device.stats.hostReads - before)
                #expect(recorder.ended.count == 6)
            }
            return best
        }
        // Per epoch, fit itself reads once at its end (the first bad batch, the loss sum and, in the first epoch,
        // the first batch's loss for the divergence check, together).
        #expect(try hostReads(readLoss: false) == 2)
        #expect(try hostReads(readLoss: true) == 2 + 6)
    }
}
