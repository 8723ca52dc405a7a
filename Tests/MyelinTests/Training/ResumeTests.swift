import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// Resuming training from a checkpoint validates the checkpoint's values like command-line values, lets the command
/// line win, and says what happened.
@Suite struct ResumeTests {
    private func model() -> Sequential {
        Sequential { Dense(inputSize: 3, outputSize: 2, seed: 1, device: .cpu) }
    }

    private func savedCheckpoint(epoch: Int, learningRate: Float, baseLearningRate: Float? = nil,
                                 history: History = History()) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("resume-\(UUID().uuidString).safetensors")
        let m = model()
        let sgd = try SGD(parameters: m.parameters, learningRate: 0.1)
        sgd.learningRate = learningRate
        try TrainingCheckpoint.save(model: m, optimizer: sgd, epoch: epoch, seed: 3, baseLearningRate: baseLearningRate,
                                    history: history, to: url)
        return url
    }

    @Test func aNegativeLearningRateInACheckpointIsRefused() throws {
        for (lr, base) in [(Float(-0.5), Float?.none), (0.1, -2), (.infinity, nil)] {
            let url = try savedCheckpoint(epoch: 2, learningRate: lr, baseLearningRate: base)
            defer { try? FileManager.default.removeItem(at: url) }
            let m = model()
            let sgd = try SGD(parameters: m.parameters, learningRate: 0.1)
            expectCheckpointError({ try TrainingCheckpoint.load(from: url, into: m, optimizer: sgd) },
                                  contains: [url.path, "must be a finite number >= 0"])
            #expect(sgd.learningRate == 0.1, "the optimizer changed before the error")
        }
    }

    @Test func aBadHistoryEntryIsAnErrorNotDropped() throws {
        let m = model()
        let bad = [
            (#"{"epoch":[1,2],"loss":[0.5,"x"]}"#, "history metric 'loss' entry 1"),
            (#"{"epoch":[1,2],"loss":[0.5]}"#, "one value per epoch"),
            (#"{"epoch":[1,1],"loss":[0.5,0.4]}"#, "history epoch entry 1"),
            (#"{"epoch":[1,2.5],"loss":[0.5,0.4]}"#, "history epoch entry 1"),
            (#"{"epoch":[1],"loss":[true]}"#, "history metric 'loss' entry 0"),
            (#"{"loss":[1]}"#, "'epoch' list"),
            (#"{"epoch":[1,2,3,4],"loss":[1,2,3,4]}"#, "history up to epoch 4 but says 2 epochs"),
            ("not json", "must be JSON"),
        ]
        for (history, expected) in bad {
            let url = FileManager.default.temporaryDirectory.appendingPathComponent("history-\(UUID().uuidString).safetensors")
            defer { try? FileManager.default.removeItem(at: url) }
            var metadata = ["format": "myelin-training-checkpoint", "epoch": "2", "seed": "1", "history": history]
            metadata[SafeTensors.layoutKey] = SafeTensors.currentLayout
            try SafeTensors.save(m.namedTensors, metadata: metadata, to: url)
            expectCheckpointError({ try TrainingCheckpoint.load(from: url, into: m, optimizer: nil) }, contains: [url.path, expected])
        }
    }

    @Test func historiesRoundTripThroughValidation() throws {
        var h = History()
        h.append(epoch: 1, ["loss": 0.5, "accuracy": 0.25])
        h.append(epoch: 2, ["loss": 0.125])
        let back = try History(validatingJSON: h.json())
        #expect(back.epochs == [1, 2])
        #expect(back["loss"] == [0.5, 0.125])
        #expect(back["accuracy"]?[0] == 0.25 && back["accuracy"]?[1].isNaN == true)
        #expect(try History(validatingJSON: #"{"epoch":[]}"#).count == 0)
    }

    @Test func theCommandLineWinsAndTheNoteSaysSo() throws {
        let url = try savedCheckpoint(epoch: 7, learningRate: 0.001)
        defer { try? FileManager.default.removeItem(at: url) }
        let m = model()
        let sgd = try SGD(parameters: m.parameters, learningRate: 0.5)
        let c = try TrainingCheckpoint.load(from: url, into: m, optimizer: sgd)
        #expect(c.learningRate == 0.001)
        #expect(sgd.learningRate == 0.001)

        let plan = try c.resumePlan(epochs: 10, defaultEpochs: 5, learningRate: 0.01, source: "run.safetensors")
        #expect(plan == ResumePlan(initialEpoch: 7, epochs: 10, learningRate: 0.01, baseLearningRate: 0.01,
                                   note: "resuming from epoch 7 of run.safetensors, training to epoch 10; learning rate 0.01 from the command line (the checkpoint had 0.001)"))
        let kept = try c.resumePlan(epochs: 9, defaultEpochs: 5, learningRate: nil, source: "run.safetensors")
        #expect(kept.learningRate == 0.001 && kept.epochs == 9 && kept.initialEpoch == 7)
        #expect(kept.note.hasSuffix("learning rate 0.001 from the checkpoint"))
        // A command-line value gets the same rule.
        #expect(throws: InvalidValueError.self) {
            try c.resumePlan(epochs: 10, defaultEpochs: 5, learningRate: -1, source: "run.safetensors")
        }
    }

    @Test func fewerEpochsThanTheCheckpointHasDoneIsAnError() throws {
        let url = try savedCheckpoint(epoch: 7, learningRate: 0.001)
        defer { try? FileManager.default.removeItem(at: url) }
        let m = model()
        let c = try TrainingCheckpoint.load(from: url, into: m, optimizer: nil)
        for asked in [2, 7] {
            do {
                _ = try c.resumePlan(epochs: asked, defaultEpochs: 10, learningRate: nil, source: "run.safetensors")
                Issue.record("--epochs \(asked) accepted when 7 are done")
            } catch {
                #expect("\(error)" == "--epochs counts all epochs, so it must be more than the 7 epochs run.safetensors has already done (ask for 8 or more), got \(asked)")
            }
        }
        do {
            _ = try c.resumePlan(epochs: nil, defaultEpochs: 5, learningRate: nil, source: "run.safetensors")
            Issue.record("the default of 5 epochs accepted when 7 are done")
        } catch {
            #expect("\(error)".hasPrefix("the default --epochs counts all epochs"), "\(error)")
        }
    }
}
