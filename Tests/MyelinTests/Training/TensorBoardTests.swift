import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// Whether python3 can import TensorBoard (scripts/setup installs it with pip).
let pythonTensorBoardAvailable = pythonCanImport("tensorboard")

/// A small training run logged by `TensorBoardLogger`: 2 epochs of 3 batches, histograms every 2 steps.
private func loggedRun(_ dir: URL, device: Device, extra: [any Callback] = []) throws -> (History, TensorBoardLogger) {
    let x = try Initializer.uniform(low: -1, high: 1).make([10, 3], seed: 1, on: device)
    let y = try Tensor((0..<10).map { Float($0 % 2) }, shape: [10], on: device)
    let model = Sequential {
        Dense(inputSize: 3, outputSize: 4, activation: .tanh, seed: 2, device: device)
        Dense(inputSize: 4, outputSize: 2, seed: 3, device: device)
    }
    let optimizer = try SGD(parameters: model.parameters, learningRate: 0.1)
    let logger = TensorBoardLogger(logDir: dir.appendingPathComponent("run"), histogramEvery: 2)
    let history = try model.fit(Dataset(features: x, targets: y), epochs: 2, batchSize: 4,
                                validation: Dataset(features: x, targets: y), loss: .softmaxCrossEntropy,
                                optimizer: optimizer, metrics: [.accuracy], callbacks: [logger] + extra,
                                schedule: try StepDecay(stepSize: 1, gamma: 0.5), seed: 3, verbosity: .silent)
    return (history, logger)
}

struct TensorBoardTests {
    /// The writer's file read back by the test reader: the file_version record first, then the scalars and the
    /// histogram with their steps and figures.
    @Test func writerRecordsReadBack() throws {
        try inTemporaryFolder { dir in
            let writer = try TensorBoardWriter(logDir: dir.appendingPathComponent("a/b"))
            #expect(writer.url.lastPathComponent.hasPrefix("events.out.tfevents."))
            let start = Date()
            writer.scalar("loss", 0.75, step: 3)
            writer.scalars([("x/one", 1), ("x/two", -2.5)], step: 4)
            let values: [Float] = [-1, 0, 0.5, 2, .nan, 3]
            writer.histogram("h", values: values, step: 5, buckets: 4)
            try writer.flush()
            let events = try readEventFiles(dir.appendingPathComponent("a/b"))
            #expect(events.count == 4)
            #expect(events[0].fileVersion == "brain.Event:2")
            #expect(events[1].step == 3 && events[1].scalars.map(\.0) == ["loss"] && events[1].scalars[0].1 == 0.75)
            #expect(events[1].wallTime >= start.timeIntervalSince1970 - 1 && events[1].wallTime <= Date().timeIntervalSince1970 + 1)
            #expect(events[2].scalars.map(\.0) == ["x/one", "x/two"] && events[2].scalars.map(\.1) == [1, -2.5])
            let (tag, h) = try #require(events[3].histograms.first)
            #expect(tag == "h" && events[3].step == 5)
            // min, max, num, sum, sum_squares, bucket limits (right edges), counts; NaN left out.
            #expect([h.one(1)!.double, h.one(2)!.double, h.one(3)!.double, h.one(4)!.double, h.one(5)!.double] == [-1, 3, 5, 4.5, 14.25])
            #expect(h.one(6)?.packedDoubles == [0, 1, 2, 3])
            #expect(h.one(7)?.packedDoubles == [1, 2, 0, 2])
            // Nothing is written before a flush: a killed process loses only unflushed records.
            writer.scalar("late", 1, step: 6)
            #expect(try readEventFiles(dir.appendingPathComponent("a/b")).count == 4)
        }
    }

    @Test func histogramOfEqualValuesAndEmpty() {
        let same = Histogram([2, 2, 2], buckets: 10)
        #expect(same.limits == [2] && same.counts == [3] && same.count == 3 && same.sum == 6)
        let empty = Histogram([.infinity], buckets: 10)
        #expect(empty.limits.isEmpty && empty.count == 0)
    }

    /// A folder that cannot be made is a `FileError` naming it, before any training.
    @Test func unwritableLogDir() throws {
        try inTemporaryFolder { dir in
            let file = dir.appendingPathComponent("file")
            try Data([1]).write(to: file)
            let error = #expect(throws: FileError.self) { try TensorBoardWriter(logDir: file.appendingPathComponent("run")) }
            #expect(error?.path == file.appendingPathComponent("run").path)
        }
    }

    /// A write that fails during training (a full disk: /dev/full) stops the log, naming the file and why, and
    /// drops later records; training goes on (a failed `flush` would have ended it, losing the run).
    @Test func aFullDiskStopsTheLogNotTheTraining() throws {
        let descriptor = open("/dev/full", O_WRONLY | O_CLOEXEC)
        try #require(descriptor >= 0)
        let writer = TensorBoardWriter(url: URL(fileURLWithPath: "/dev/full"), descriptor: descriptor)
        writer.scalar("loss", 0.5, step: 1)
        #expect(throws: FileError.self) { try writer.flush() }
        writer.scalar("loss", 0.5, step: 2)
        #expect(!writer.flushOrStopLogging() && !writer.flushOrStopLogging())
        #expect("\(writer.failure.map { "\($0)" } ?? "none")" == "/dev/full: cannot write the file (no space left on the disk (disk full))")
    }

    /// `fit` with the logger: per-step loss and learning rate at global steps 1...6, every epoch's logs at steps 1
    /// and 2 with the schedule's rate and the epoch time, histograms of weights and gradients every 2 steps; each
    /// epoch is on the disk when the epoch ends.
    @Test(arguments: TestDevices.all) func fitLogsEverything(device: Device) throws {
        try inTemporaryFolder { dir in
            final class CountOnDisk: Callback {
                let dir: URL
                var counts: [Int] = []
                init(_ dir: URL) { self.dir = dir }
                func epochDidEnd(_ epoch: Int, logs: [String: Double], _ context: TrainingContext) throws {
                    counts.append(try readEventFiles(dir).filter { !$0.scalars.isEmpty || !$0.histograms.isEmpty }.count)
                }
            }
            let onDisk = CountOnDisk(dir.appendingPathComponent("run"))
            let (history, _) = try loggedRun(dir, device: device, extra: [onDisk])
            let events = try readEventFiles(dir.appendingPathComponent("run"))
            #expect(events.first?.fileVersion == "brain.Event:2")
            let scalars = events.flatMap { e in e.scalars.map { (tag: $0.0, step: e.step, value: $0.1) } }
            #expect(scalars.filter { $0.tag == "batch/loss" }.map(\.step) == [1, 2, 3, 4, 5, 6])
            #expect(scalars.filter { $0.tag == "batch/learning_rate" }.map(\.value) == [0.1, 0.1, 0.1, 0.05, 0.05, 0.05])
            for key in ["loss", "accuracy", "val_loss", "val_accuracy"] {
                let logged = scalars.filter { $0.tag == "epoch/" + key }
                #expect(logged.map(\.step) == [1, 2], "\(key)")
                #expect(logged.map { Double($0.value) } == history[key]!.map { Double(Float($0)) }, "\(key)")
            }
            #expect(scalars.filter { $0.tag == "epoch/learning_rate" }.map(\.value) == [0.1, 0.05])
            #expect(scalars.filter { $0.tag == "epoch/seconds" }.allSatisfy { $0.value > 0 })
            let histograms = events.flatMap { e in e.histograms.map { (tag: $0.0, step: e.step, fields: $0.1) } }
            let tags = ["weights/0.weight", "weights/0.bias", "weights/2.weight", "weights/2.bias"]
            #expect(Set(histograms.map(\.tag)) == Set(tags + tags.map { $0.replacingOccurrences(of: "weights/", with: "gradients/") }))
            #expect(histograms.filter { $0.tag == "weights/0.weight" }.map(\.step) == [2, 4, 6])
            #expect(histograms.filter { $0.tag == "gradients/2.bias" }.allSatisfy { $0.fields.one(3)?.double == 2 })
            // Each epoch's records were on the disk when its epochDidEnd ran (the logger comes first).
            #expect(onDisk.counts.count == 2 && onDisk.counts[0] > 0 && onDisk.counts[1] > onDisk.counts[0])
        }
    }

    /// TensorBoard's own reader (EventAccumulator) reads every scalar and histogram back.
    @Test(.enabled(if: pythonTensorBoardAvailable, "python3 with tensorboard is not available (scripts/setup installs it with pip)"))
    func tensorBoardReadsTheLog() throws {
        try inTemporaryFolder { dir in
            let (history, logger) = try loggedRun(dir, device: .cpu)
            let (status, text) = try runPythonScript("scripts/tensorboard_check.py", [dir.appendingPathComponent("run").path])
            #expect(status == 0, "tensorboard_check.py: \(text)")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
            // {kind: {tag: [[number]]}} with every number as a Double.
            let json = object.mapValues { kind in
                ((kind as? [String: Any]) ?? [:]).mapValues { rows in
                    ((rows as? [Any]) ?? []).map { row in ((row as? [Any]) ?? []).map { ($0 as? NSNumber)?.doubleValue ?? .nan } }
                }
            }
            let ours = try readEventFiles(logger.logDir)
            var expectedScalars: [String: [[Double]]] = [:]
            var expectedHistograms: [String: [[Double]]] = [:]
            for e in ours {
                for (tag, v) in e.scalars { expectedScalars[tag, default: []].append([Double(e.step), Double(v)]) }
                for (tag, h) in e.histograms {
                    let counts = h.one(7)?.packedDoubles.reduce(0, +) ?? 0
                    expectedHistograms[tag, default: []].append([Double(e.step)] + (1...5).map { h.one($0)!.double } + [counts])
                }
            }
            // Equal up to the last bits that Foundation's JSON parser may round differently.
            func same(_ a: [String: [[Double]]]?, _ b: [String: [[Double]]]) -> Bool {
                guard let a, Set(a.keys) == Set(b.keys) else { return false }
                return b.allSatisfy { tag, rows in
                    a[tag]!.count == rows.count && zip(a[tag]!, rows).allSatisfy { x, y in
                        x.count == y.count && zip(x, y).allSatisfy { Swift.abs($0 - $1) <= 1e-12 * Swift.max(1, Swift.abs($1)) }
                    }
                }
            }
            #expect(same(json["scalars"], expectedScalars), "EventAccumulator: \(json["scalars"] ?? [:])\nours: \(expectedScalars)")
            #expect(same(json["histograms"], expectedHistograms), "EventAccumulator: \(json["histograms"] ?? [:])\nours: \(expectedHistograms)")
            #expect(json["scalars"]?.count == 8)
            #expect(json["scalars"]?["epoch/val_loss"]?.count == history.count)
            #expect(json["histograms"]?.count == 8)
            // A process killed in the middle of a write leaves a record cut short at the end: TensorBoard still
            // reads every whole record before it.
            let file = try #require(logger.writer?.url)
            var bytes = try Data(contentsOf: file)
            bytes.append(contentsOf: TFRecord.frame(Array(repeating: 7, count: 40)).prefix(30))
            try bytes.write(to: file)
            let (status2, text2) = try runPythonScript("scripts/tensorboard_check.py", [dir.appendingPathComponent("run").path])
            #expect(status2 == 0 && text2 == text, "tensorboard_check.py on a cut file: \(text2)")
        }
    }
}
