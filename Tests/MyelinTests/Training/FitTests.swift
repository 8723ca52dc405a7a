import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// A learning-rate schedule from a closure (tests only).
struct ClosureSchedule: LearningRateSchedule {
    let rate: (Int, Float) -> Float
    func learningRate(epoch: Int, base: Float) -> Float { rate(epoch, base) }
}

@Suite struct FitTests {
    /// Three Gaussian blobs in 2-D, 40 points each; labels 0, 1, 2.
    static func blobs(on device: Device, count: Int = 120, seed: UInt64 = 3) throws -> Dataset {
        var g = SeededGenerator(seed: seed)
        let centers: [(Double, Double)] = [(-2, 0), (2, 0), (0, 2.5)]
        var x: [Float] = [], y: [Float] = []
        for i in 0..<count {
            let c = i % 3
            x += [Float(centers[c].0 + 0.5 * g.nextGaussian()), Float(centers[c].1 + 0.5 * g.nextGaussian())]
            y.append(Float(c))
        }
        return try Dataset(features: x, shape: [count, 2], targets: y, targetShape: [count], on: device)
    }

    static func classifier(on device: Device, dropout: Bool = false, seed: UInt64 = 1) -> Sequential {
        Sequential {
            Dense(inputSize: 2, outputSize: 16, activation: .relu, seed: seed, device: device)
            if dropout { Dropout(rate: 0.25, seed: 5) }
            Dense(inputSize: 16, outputSize: 3, seed: seed + 10, device: device)
        }
    }

    @Test(arguments: TestDevices.all) func shortFitLearnsBlobsAndAgreesAcrossDevices(device: Device) throws {
        let data = try Self.blobs(on: device)
        let (train, validation) = try data.split(validationFraction: 0.25, seed: 1)
        let model = Self.classifier(on: device)
        let adam = try Adam(parameters: model.parameters, learningRate: 0.02)
        var lines: [String] = []
        let history = try model.fit(train, epochs: 15, batchSize: 16, validation: validation, loss: .softmaxCrossEntropy,
                                    optimizer: adam, metrics: [.accuracy], seed: 4, verbosity: .epochLines,
                                    output: { lines.append($0) })
        #expect(history.keys == ["loss", "accuracy", "val_loss", "val_accuracy"])
        #expect(history.count == 15 && history.epochs == Array(1...15))
        let loss = history["loss"]!
        #expect(loss.last! < loss.first! * 0.5, "loss \(loss)")
        #expect(history["val_accuracy"]!.last! >= 0.95)
        #expect(lines.count == 15 && lines[0].hasPrefix("Epoch 1/15") && lines[0].contains("samples/s") && lines[0].contains("val_loss"))
        // evaluate agrees with the history's last validation values, predict with calling the model.
        let v = try model.evaluate(validation, batchSize: 7, loss: .softmaxCrossEntropy, metrics: [.accuracy])
        expectClose([Float(v["loss"]!)], [history["val_loss"]!.last!], rtol: 1e-5, atol: 1e-6)
        #expect(v["accuracy"] == history["val_accuracy"]!.last!)
        let p = try model.predict(validation.features, batchSize: 7)
        #expect(p.shape == [30, 3])
        model.eval()
        expectClose(try p.toArray(), try model(validation.features).toArray().map(Double.init), rtol: 1e-5, atol: 1e-6)
        // The same run on the CPU gives the same history (the OpenCL kernels compute the same function).
        if device.isOpenCL {
            let cpuData = data.to(.cpu)
            let (ct, cv) = try cpuData.split(validationFraction: 0.25, seed: 1)
            let cpuModel = Self.classifier(on: .cpu)
            let cpuHistory = try cpuModel.fit(ct, epochs: 15, batchSize: 16, validation: cv, loss: .softmaxCrossEntropy,
                                              optimizer: try Adam(parameters: cpuModel.parameters, learningRate: 0.02),
                                              metrics: [.accuracy], seed: 4, verbosity: .silent)
            expectClose(history["loss"]!.map(Float.init), cpuHistory["loss"]!, rtol: 1e-3, atol: 1e-4, "loss per epoch, OpenCL vs CPU")
        }
    }

    @Test(arguments: TestDevices.all) func regressionMetricsAndSchedule(device: Device) throws {
        // y = 3·x1 - 2·x2 + 1, learned by one Dense layer with SGD and a step schedule.
        var g = SeededGenerator(seed: 8)
        let n = 64
        let x = (0..<2 * n).map { _ in Float(g.nextDouble() * 2 - 1) }
        let y: [Float] = (0..<n).map { (i: Int) -> Float in
            let a: Float = 3 * x[2 * i], b: Float = 2 * x[2 * i + 1]
            return a - b + 1
        }
        let data = try Dataset(features: x, shape: [n, 2], targets: y, targetShape: [n, 1], on: device)
        let model = Sequential { Dense(inputSize: 2, outputSize: 1, seed: 2, device: device) }
        let sgd = try SGD(parameters: model.parameters, learningRate: 0.2)
        let history = try model.fit(data, epochs: 40, batchSize: 8, loss: .meanSquaredError, optimizer: sgd,
                                    metrics: [.rmse, .mae], schedule: try StepDecay(stepSize: 30, gamma: 0.5), seed: 0, verbosity: .silent)
        let rmse: [Double] = history["rmse"]!
        #expect(rmse.last! < 0.01, "rmse \(rmse)")
        #expect(history["mae"]!.last! < 0.01)
        #expect(sgd.learningRate == 0.1, "the schedule set the rate of the last epoch")
        expectClose(try Sequential.weights(model), [3.0, -2.0, 1.0] as [Double], rtol: 0, atol: 0.02)
        // rmse is the square root of the mse loss (on the same batches, both on the device).
        let e = try model.evaluate(data, loss: .meanSquaredError, metrics: [.rmse])
        expectClose([Float(e["rmse"]!)], [e["loss"]!.squareRoot()], rtol: 1e-3, atol: 1e-6)
    }

    @Test(arguments: TestDevices.all) func nanLossStopsNamingEpochAndBatch(device: Device) throws {
        var x = testValues(40, seed: 1)
        x[2 * 9] = 1e30                      // sample 9 is in batch 3 of 4-sample batches: its squared error overflows
        let data = try Dataset(features: x, shape: [20, 2], targets: [Float](repeating: 1, count: 20), targetShape: [20, 1], on: device)
        let model = Sequential { Dense(inputSize: 2, outputSize: 1, seed: 1, device: device) }
        let sgd = try SGD(parameters: model.parameters, learningRate: 0.1)
        do {
            try model.fit(data, epochs: 3, batchSize: 4, loss: .meanSquaredError, optimizer: sgd, shuffle: false, verbosity: .silent)
            Issue.record("expected a NaN loss error")
        } catch TrainingError.nonFiniteLoss(let epoch, let batch, let value) {
            #expect(epoch == 1 && batch == 3 && !value.isFinite)
        }
        // An exploding rate gives an infinite loss in a later epoch; the error names it.
        let big = try Dataset(features: [1e18, 1e18], shape: [2, 1], targets: [0, 0], targetShape: [2, 1], on: device)
        let m2 = Sequential { Dense(inputSize: 1, outputSize: 1, weightInit: .constant(1e10), seed: 1, device: device) }
        do {
            try m2.fit(big, epochs: 2, batchSize: 1, loss: .meanSquaredError, optimizer: try SGD(parameters: m2.parameters, learningRate: 1),
                       shuffle: false, verbosity: .silent)
            Issue.record("expected a non-finite loss error")
        } catch let error as TrainingError {
            #expect("\(error)".contains("epoch 1, batch 1"), "\(error)")
        }
    }

    @Test(arguments: TestDevices.all) func earlyStoppingStopsAndRestoresTheBestWeights(device: Device) throws {
        let data = try Self.blobs(on: device, count: 60)
        // Learning rate 0: the loss never improves after the first epoch.
        let model = Self.classifier(on: device)
        let stop = EarlyStopping(monitor: "loss", patience: 2, minDelta: 1e-3)
        let h = try model.fit(data, epochs: 20, batchSize: 20, loss: .softmaxCrossEntropy,
                              optimizer: try SGD(parameters: model.parameters, learningRate: 0), callbacks: [stop], seed: 0, verbosity: .silent)
        #expect(h.count == 3 && stop.stoppedEpoch == 3 && stop.bestEpoch == 1)
        // Good steps for two epochs, then a rate that wrecks the weights: the best ones come back.
        final class Snapshots: Callback {
            var weights: [[Float]] = []
            func epochDidEnd(_ epoch: Int, logs: [String: Double], _ context: TrainingContext) throws {
                weights.append(try context.model.namedTensors.flatMap { try $0.1.toArray() })
            }
        }
        let snaps = Snapshots()
        let restore = EarlyStopping(monitor: "loss", patience: 1, restoreBestWeights: true)
        let m2 = Self.classifier(on: device)
        let h2 = try m2.fit(data, epochs: 10, batchSize: 20, loss: .softmaxCrossEntropy,
                            optimizer: try SGD(parameters: m2.parameters, learningRate: 0.1),
                            callbacks: [snaps, restore], schedule: ClosureSchedule { e, b in e < 3 ? b : b * 500 }, seed: 0, verbosity: .silent)
        let best = restore.bestEpoch!
        #expect(h2.count < 10 && best <= 3, "history \(h2["loss"]!)")
        #expect(try m2.namedTensors.flatMap { try $0.1.toArray() } == snaps.weights[best - 1])
        #expect(throws: TrainingError.self) {
            try m2.fit(data, epochs: 1, loss: .softmaxCrossEntropy, optimizer: try SGD(parameters: m2.parameters),
                       callbacks: [EarlyStopping(monitor: "val_loss")], seed: 0, verbosity: .silent)
        }
    }

    @Test(arguments: TestDevices.all) func resumingEqualsUninterruptedTraining(device: Device) throws {
        let data = try Self.blobs(on: device, count: 90)
        let (train, validation) = try data.split(validationFraction: 0.2, seed: 2)
        func run(epochs: Int, model: Sequential, optimizer: any Optimizer, initialEpoch: Int = 0, history: History = History()) throws -> History {
            try model.fit(train, epochs: epochs, batchSize: 16, validation: validation, loss: .softmaxCrossEntropy,
                          optimizer: optimizer, metrics: [.accuracy], schedule: try ExponentialDecay(gamma: 0.9),
                          seed: 11, initialEpoch: initialEpoch, history: history, verbosity: .silent)
        }
        // Uninterrupted: 4 epochs.
        let a = Self.classifier(on: device, dropout: true)
        let adamA = try Adam(parameters: a.parameters, learningRate: 0.01)
        let fullHistory = try run(epochs: 4, model: a, optimizer: adamA)
        // Interrupted after 2 epochs, checkpointed, resumed in a fresh model and optimizer (other initial weights).
        let dir = temporaryFolder()
        let url = dir.appendingPathComponent("resume.safetensors")
        let b = Self.classifier(on: device, dropout: true)
        let adamB = try Adam(parameters: b.parameters, learningRate: 0.01)
        let firstHalf = try run(epochs: 2, model: b, optimizer: adamB)
        try TrainingCheckpoint.save(model: b, optimizer: adamB, epoch: 2, seed: 11, baseLearningRate: 0.01, history: firstHalf, to: url)
        let c = Self.classifier(on: device, dropout: true, seed: 77)
        let adamC = try Adam(parameters: c.parameters, learningRate: 0.5)
        let resumed = try TrainingCheckpoint.load(from: url, into: c, optimizer: adamC)
        #expect(resumed.epoch == 2 && resumed.seed == 11 && resumed.history.count == 2)
        #expect(adamC.stepCount == adamB.stepCount)
        let resumedHistory = try c.fit(train, epochs: 4, batchSize: 16, validation: validation, loss: .softmaxCrossEntropy,
                                       optimizer: adamC, metrics: [.accuracy], schedule: try ExponentialDecay(gamma: 0.9),
                                       baseLearningRate: resumed.baseLearningRate, seed: resumed.seed,
                                       initialEpoch: resumed.epoch, history: resumed.history, verbosity: .silent)
        for ((name, x), (_, y)) in zip(a.namedTensors, c.namedTensors) {
            #expect(try x.toArray() == y.toArray(), "\(name) differs after resuming")
        }
        #expect(resumedHistory.epochs == [1, 2, 3, 4])
        expectClose(resumedHistory["loss"]!.map(Float.init), fullHistory["loss"]!, rtol: 1e-6, atol: 1e-7)
        // The model-only view of the checkpoint loads into a plain model (optimizer tensors skipped).
        let d = Self.classifier(on: device, dropout: true, seed: 5)
        try d.load(from: url)
        #expect(try d.namedTensors[0].1.toArray() == b.namedTensors[0].1.toArray())
        // A plain model file is not a training checkpoint.
        try d.save(to: dir.appendingPathComponent("plain.safetensors"))
        expectCheckpointError({ try TrainingCheckpoint.load(from: dir.appendingPathComponent("plain.safetensors"), into: d, optimizer: nil) },
                              contains: ["plain.safetensors", "not a Myelin training checkpoint"])
    }

    @Test func checkpointCallbackSavesTheBestEpoch() throws {
        let data = try Self.blobs(on: .cpu, count: 60)
        let dir = temporaryFolder()
        let url = dir.appendingPathComponent("best.safetensors")
        let model = Self.classifier(on: .cpu)
        let adam = try Adam(parameters: model.parameters, learningRate: 0.05)
        let save = ModelCheckpoint(url: url, monitor: "loss", saveBestOnly: true)
        let h = try model.fit(data, epochs: 5, batchSize: 20, loss: .softmaxCrossEntropy, optimizer: adam, callbacks: [save], seed: 0, verbosity: .silent)
        let file = try SafeTensors.load(url)
        let bestEpoch = h["loss"]!.enumerated().min { $0.element < $1.element }!.offset + 1
        #expect(file.metadata["epoch"] == String(bestEpoch))
        #expect(file.names.contains("0.weight") && file.names.contains("optimizer.0.exp_avg"))
        #expect(History(json: file.metadata["history"]!).count == bestEpoch)
    }

    @Test func progressBarShowsBatchesETAAndSpeed() throws {
        let data = try Self.blobs(on: .cpu, count: 60)
        let model = Self.classifier(on: .cpu)
        var out = ""
        try model.fit(data, epochs: 2, batchSize: 10, loss: .softmaxCrossEntropy, optimizer: try Adam(parameters: model.parameters),
                      metrics: [.accuracy], seed: 0, verbosity: .progressBar, output: { out += $0 })
        #expect(out.contains("Epoch 1/2 [") && out.contains("6/6") && out.contains("ETA") && out.contains("samples/s"))
        #expect(out.contains("accuracy") && out.contains("\r"))
        #expect(out.components(separatedBy: "\n").count == 3)   // one finished line per epoch
    }
}

extension Sequential {
    /// All parameters' values, concatenated (tests only).
    static func weights(_ model: Sequential) throws -> [Float] { try model.parameters.flatMap { try $0.toArray() } }
}
