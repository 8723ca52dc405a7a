import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// `fit(stop:)` stops before the next batch, records where, and a checkpoint saved there resumes inside the epoch to
/// the same parameters and history as a run that never stopped.
@Suite struct StopResumeTests {
    /// Asks `stop` to stop once batch `batch` of epoch `epoch` (0-based) has trained.
    final class StopAt: Callback {
        let stop: StopRequest, epoch: Int, batch: Int
        init(_ stop: StopRequest, epoch: Int, batch: Int) { self.stop = stop; self.epoch = epoch; self.batch = batch }
        func batchDidEnd(_ b: Int, loss: Tensor, _ context: TrainingContext) throws {
            if context.epoch == epoch && b == batch { stop.request() }
        }
    }

    /// 45 samples of 5 features in 3 classes on `device` (11 batches of 4, the last of 1).
    static func data(on device: Device) throws -> Dataset {
        let x = Tensor.uniform([45, 5], low: -1, high: 1, seed: 7, on: device)
        let labels = (0..<45).map { Float(($0 * 7) % 3) }
        return try Dataset(features: x, targets: Tensor(labels, shape: [45], on: device))
    }

    /// A small network with dropout (its mask counter must resume too), Adam and a per-batch cosine schedule.
    static func setup(on device: Device) throws -> (Sequential, Adam, WarmupCosine) {
        let model = Sequential {
            Dense(inputSize: 5, outputSize: 16, activation: .relu, seed: 1, device: device)
            Dropout(rate: 0.25, seed: 3)
            Dense(inputSize: 16, outputSize: 3, seed: 2, device: device)
        }
        return (model, try Adam(parameters: model.parameters, learningRate: 0.01),
                try WarmupCosine(warmupEpochs: 0.5, totalEpochs: 3))
    }

    static func train(_ model: Sequential, _ adam: Adam, _ schedule: WarmupCosine, _ data: Dataset, initialEpoch: Int = 0,
                      partialEpoch: PartialEpoch? = nil, history: History = History(), callbacks: [any Callback] = [],
                      stop: StopRequest? = nil) throws -> History {
        try model.fit(data, epochs: 3, batchSize: 4, loss: .softmaxCrossEntropy, optimizer: adam, metrics: [.accuracy],
                      callbacks: callbacks, schedule: schedule, baseLearningRate: 0.01, seed: 5, initialEpoch: initialEpoch, partialEpoch: partialEpoch,
                      history: history, stop: stop, verbosity: .silent)
    }

    @Test(arguments: TestDevices.all) func aRunStoppedInsideEpoch2ResumesToTheSameParameters(device: Device) throws {
        let data = try Self.data(on: device)
        let (full, fullAdam, fullSchedule) = try Self.setup(on: device)
        let fullHistory = try Self.train(full, fullAdam, fullSchedule, data)

        let (stopped, adam, schedule) = try Self.setup(on: device)
        let stop = StopRequest()
        let partialHistory = try Self.train(stopped, adam, schedule, data, callbacks: [StopAt(stop, epoch: 1, batch: 4)], stop: stop)
        let position = try #require(stop.stoppedAt)
        #expect(position.epoch == 1)
        #expect(position.partialEpoch?.batches == 5 && position.partialEpoch?.batchCount == 12)
        #expect(position.description == "after batch 5 of 12 of epoch 2")
        #expect(partialHistory.epochs == [1])
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("stop-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try TrainingCheckpoint.save(model: stopped, optimizer: adam, epoch: position.epoch, seed: 5, baseLearningRate: 0.01,
                                    history: partialHistory, partialEpoch: position.partialEpoch, to: url)

        let (resumed, resumedAdam, resumedSchedule) = try Self.setup(on: device)
        let checkpoint = try TrainingCheckpoint.load(from: url, into: resumed, optimizer: resumedAdam)
        #expect(checkpoint.partialEpoch == position.partialEpoch)
        let history = try Self.train(resumed, resumedAdam, resumedSchedule, data, initialEpoch: checkpoint.epoch,
                                     partialEpoch: checkpoint.partialEpoch, history: checkpoint.history)
        for ((name, a), (_, b)) in zip(full.namedTensors, resumed.namedTensors) {
            expectClose(try b.toArray(), try a.toArray().map(Double.init), rtol: 0, atol: 1e-6, "\(name) on \(device.name)")
        }
        #expect(history.epochs == [1, 2, 3])
        for key in ["loss", "accuracy"] {
            expectClose((history[key] ?? []).map(Float.init), fullHistory[key] ?? [], rtol: 1e-6, atol: 1e-7, "\(key) history on \(device.name)")
        }
    }

    @Test func aStopBeforeTheFirstBatchRecordsAnEpochBoundary() throws {
        let data = try Self.data(on: .cpu)
        let (model, adam, schedule) = try Self.setup(on: .cpu)
        let before = try model.namedTensors.map { try $0.1.toArray() }
        let stop = StopRequest()
        stop.request()
        let history = try Self.train(model, adam, schedule, data, stop: stop)
        #expect(stop.stoppedAt == TrainingPosition(epoch: 0, partialEpoch: nil))
        #expect(history.epochs.isEmpty)
        #expect(try model.namedTensors.map { try $0.1.toArray() } == before, "a batch trained after the stop request")
        stop.reset()
        #expect(!stop.isRequested && stop.stoppedAt == nil)
    }

    @Test func aPartialEpochMustMatchTheResumedCall() throws {
        let data = try Self.data(on: .cpu)
        let (model, adam, _) = try Self.setup(on: .cpu)
        let partial = PartialEpoch(batches: 3, batchSize: 4, batchCount: 12, samples: 12, sums: [3, 5], metrics: ["accuracy"],
                                   metricCounts: [12])
        let text = errorText {
            _ = try model.fit(data, epochs: 2, batchSize: 5, loss: .softmaxCrossEntropy, optimizer: adam, metrics: [.accuracy],
                              initialEpoch: 1, partialEpoch: partial, verbosity: .silent)
        }
        #expect(text.contains("batch 3 of 12 batches of 4") && text.contains("this call has 9 batches of 5"), "\(text)")
    }

    @Test func thePartialEpochReadsBackExactlyAndBadOnesAreNamed() throws {
        let partial = PartialEpoch(batches: 3, batchSize: 4, batchCount: 12, samples: 12, sums: [0.1 + 0.2, 1e-30, 7],
                                   metrics: ["accuracy", "rmse"], metricCounts: [12, 12])
        #expect(try PartialEpoch(validatingJSON: partial.json()) == partial)
        let bad = [
            (#"{"batches":12,"batch_size":4,"batch_count":12,"samples":12,"sums":["1"],"metrics":[],"metric_counts":[]}"#, "'batches'"),
            (#"{"batches":0,"batch_size":4,"batch_count":12,"samples":12,"sums":["1"],"metrics":[],"metric_counts":[]}"#, "'batches'"),
            (#"{"batches":1,"batch_size":4,"batch_count":12,"samples":12,"sums":["nan"],"metrics":[],"metric_counts":[]}"#, "'sums'"),
            (#"{"batches":1,"batch_size":4,"batch_count":12,"samples":12,"sums":["1"],"metrics":["accuracy"],"metric_counts":[1]}"#, "'metrics'"),
            (#"{"batches":1,"batch_size":true,"batch_count":12,"samples":12,"sums":["1"],"metrics":[],"metric_counts":[]}"#, "'batch_size'"),
            ("[1]", "JSON object"),
        ]
        for (json, field) in bad {
            let text = errorText { _ = try PartialEpoch(validatingJSON: json) }
            #expect(text.contains("epoch_progress") && text.contains(field), "\(json): \(text)")
        }
    }
}
