import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// NaN and infinite values never get in silently (data, gradients, parameters,
/// saved and loaded models, exploding losses), and untrusted numbers never reach an unchecked Int conversion.
@Suite struct NonFiniteTests {
    // MARK: helpers

    /// IDX bytes of big-endian float32 (or float64) values.
    static func idx(floats values: [Double], shape: [Int], double: Bool = false) -> [UInt8] {
        var out: [UInt8] = [0, 0, double ? 0x0E : 0x0D, UInt8(shape.count)]
        for d in shape { out += [UInt8(d >> 24 & 0xff), UInt8(d >> 16 & 0xff), UInt8(d >> 8 & 0xff), UInt8(d & 0xff)] }
        for v in values {
            if double {
                let b = v.bitPattern
                for k in 0..<8 { out.append(UInt8(truncatingIfNeeded: b >> (56 - 8 * k))) }
            } else {
                let b = Float(v).bitPattern
                for k in 0..<4 { out.append(UInt8(truncatingIfNeeded: b >> (24 - 8 * k))) }
            }
        }
        return out
    }

    /// A folder with MNIST-style train files: `images` [n, 2, 2] as float IDX, `labels` as float IDX.
    static func mnistFolder(images: [Double], labels: [Double], double: Bool = false, name: String = #function) throws -> URL {
        let dir = temporaryFolder(name)
        let n = labels.count
        try Data(idx(floats: images, shape: [n, 2, 2], double: double)).write(to: dir.appendingPathComponent("train-images-idx3-ubyte"))
        try Data(idx(floats: labels, shape: [n])).write(to: dir.appendingPathComponent("train-labels-idx1-ubyte"))
        return dir
    }

    static func expectError<E: Error>(_ kind: E.Type, _ body: () throws -> Void, contains parts: [String],
                                      sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            try body()
            Issue.record("expected a \(E.self) containing \(parts)", sourceLocation: sourceLocation)
        } catch let error as E {
            let text = "\(error)"
            for p in parts where !text.contains(p) {
                Issue.record("error \"\(text)\" does not mention \"\(p)\"", sourceLocation: sourceLocation)
            }
        } catch {
            Issue.record("expected a \(E.self), got \(Swift.type(of: error)): \(error)", sourceLocation: sourceLocation)
        }
    }

    // MARK: data

    @Test(arguments: TestDevices.all) func datasetsRefuseNonFiniteValuesNamingSampleAndElement(device: Device) throws {
        var x = testValues(12, seed: 2)
        x[3 * 3 + 1] = .nan                                   // sample 3, element 1 of [4, 3]
        let y: [Float] = [0, 1, 0, 1]
        Self.expectError(DataError.self, { _ = try Dataset(features: x, shape: [4, 3], targets: y, targetShape: [4], on: device) },
                         contains: ["Dataset", "features of sample 3, element 1,", "nan", "nonFinite: .replace"])
        Self.expectError(DataError.self, {
            _ = try Dataset(features: testValues(12, seed: 2), shape: [4, 3], targets: [0, .infinity, 0, 1], targetShape: [4], on: device)
        }, contains: ["targets of sample 1", "inf"])
        // The same from device tensors (one sum per tensor on the device, then one read).
        let xt = try Tensor(x, shape: [4, 3], on: device), yt = try Tensor(y, shape: [4], on: device)
        Self.expectError(DataError.self, { _ = try Dataset(features: xt, targets: yt) }, contains: ["features of sample 3, element 1,"])
        // Replacing is a deliberate choice.
        let replaced = try Dataset(features: xt, targets: yt, nonFinite: .replace(with: -7))
        #expect(try replaced.features.toArray()[10] == -7 && replaced.features.toArray().allSatisfy(\.isFinite))
        let fromHost = try Dataset(features: x, shape: [4, 3], targets: y, targetShape: [4], nonFinite: .replace(with: 0), on: device)
        #expect(try fromHost.features.toArray()[10] == 0)
        Self.expectError(DataError.self, { _ = try Dataset(features: xt, targets: yt, nonFinite: .replace(with: .nan)) },
                         contains: ["finite replacement"])
        // A transform that makes non-finite features (log of 0) is refused too.
        let clean = try Dataset(features: [0, 1, 2, 3], shape: [4, 1], targets: y, targetShape: [4], on: device)
        Self.expectError(DataError.self, { _ = try clean.mapFeatures { $0.log() } }, contains: ["features of sample 0", "-inf"])
        Self.expectError(DataError.self, { _ = try clean.mapTargets { $0 / 0 } }, contains: ["targets of sample"])
        // Subsets, splits and moves of a checked data set stay unchecked (no extra reads) and keep working.
        #expect(try clean.split(validationFraction: 0.5, seed: 1).train.count == 2)
        // A byte scale that would make infinite features.
        Self.expectError(DataError.self, { _ = try Dataset(bytes: [1, 2], shape: [2, 1], scale: .infinity, targets: yt.slice(0..<2)) },
                         contains: ["scale"])
    }

    @Test func floatIDXImagesWithNaNAreRefusedNamingFileImageAndPixel() throws {
        var pixels = (0..<12).map { Double($0) / 12 }
        pixels[2 * 4 + 3] = .nan                              // image 2, pixel 3
        let dir = try Self.mnistFolder(images: pixels, labels: [0, 1, 2])
        let file = dir.appendingPathComponent("train-images-idx3-ubyte").path
        Self.expectError(DataError.self, { _ = try MNIST.load(directory: dir, split: .train, on: .cpu) },
                         contains: [file, "sample 2, element 3,", "nan"])
        Self.expectError(DataError.self, { _ = try MNIST.loadTrainValidation(directory: dir, validationCount: 1, seed: 1, on: .cpu) },
                         contains: [file, "sample 2, element 3,"])
        let replaced = try MNIST.load(directory: dir, split: .train, nonFinite: .replace(with: 0), on: .cpu)
        #expect(try replaced.features.toArray()[11] == 0 && replaced.features.toArray()[10] == Float(10.0 / 12))
        // A double beyond Float's range would become infinite.
        var doubles = (0..<8).map { Double($0) }
        doubles[5] = 1e300
        let dir2 = try Self.mnistFolder(images: doubles, labels: [0, 1], double: true, name: "doubles")
        Self.expectError(DataError.self, { _ = try MNIST.load(directory: dir2, split: .train, on: .cpu) },
                         contains: ["sample 1, element 1,", "inf"])
    }

    @Test func csvRefusesValuesBeyondFloatAndCanReplaceNonFinite() throws {
        Self.expectError(DataError.self, { _ = try CSVTable(parsing: "x,y\n1,2\n3,1e300\n", source: "big.csv") },
                         contains: ["big.csv:3", "field 2 (y)", "Float's range"])
        let t = try CSVTable(parsing: "x,y\n1,nan\n3,-inf\n", source: "m.csv", nonFinite: .replace(with: -1))
        #expect(t.rows == [[1, -1], [3, -1]])
    }

    @Test func safetensorsDatasetsRefuseNonFiniteValuesAndBadLabels() throws {
        let dir = temporaryFolder()
        let url = dir.appendingPathComponent("data.safetensors")
        var x = testValues(8, seed: 4)
        x[5] = -.infinity                                    // sample 2, element 1 of [4, 2]
        try SafeTensors.save([("x", try Tensor(x, shape: [4, 2], on: .cpu)), ("y", Tensor([0, 1, 2.5, 1], on: .cpu))], to: url)
        Self.expectError(DataError.self, { _ = try Dataset(safetensors: url, features: "x", targets: "y", on: .cpu) },
                         contains: [url.path, "features 'x' of sample 2, element 1,", "-inf"])
        let data = try Dataset(safetensors: url, features: "x", targets: "y", nonFinite: .replace(with: 0), on: .cpu)
        #expect(try data.features.toArray()[5] == 0)
        Self.expectError(DataError.self, { _ = try Dataset(safetensors: url, features: "x", targets: "y", classes: 3, nonFinite: .replace(with: 0), on: .cpu) },
                         contains: [url.path, "label 2 of 'y' is 2.5", "0..<3"])
    }

    // MARK: training

    /// One NaN pixel that the ReLU zeroes in the forward pass: the loss stays finite, the gradients of the first
    /// layer's weight do not. Training must stop at that batch, naming the parameter.
    @Test(arguments: TestDevices.all) func nanHiddenByReluStopsTrainingNamingBatchAndParameter(device: Device) throws {
        var x = testValues(24 * 4, seed: 5).map { Swift.abs($0) }
        x[13 * 4 + 2] = .nan                                  // sample 13: batch 4 of 4-sample batches
        let y = (0..<24).map { Float($0 % 3) }
        // Bypass the data set's own check (it would refuse this data) to reach training.
        let data = try Dataset(unchecked: try Tensor(x, shape: [24, 4], on: device), targets: Tensor(y, on: device))
        let model = Sequential {
            Dense(inputSize: 4, outputSize: 8, activation: .relu, seed: 1, device: device)
            Dense(inputSize: 8, outputSize: 3, seed: 2, device: device)
        }
        // The forward pass of the bad sample alone gives a finite loss: the NaN is hidden.
        let hidden = try softmaxCrossEntropy(logits: model(try Tensor(Array(x[52..<56]), shape: [1, 4], on: device)),
                                             labels: Tensor([1], on: device))
        #expect(try hidden.item().isFinite, "the ReLU hides the NaN in the forward pass")
        let adam = try Adam(parameters: model.parameters, learningRate: 0.01)
        do {
            try model.fit(data, epochs: 2, batchSize: 4, loss: .softmaxCrossEntropy, optimizer: adam, shuffle: false, verbosity: .silent)
            Issue.record("expected training to stop")
        } catch TrainingError.nonFiniteParameters(let epoch, let batch, let names) {
            #expect(epoch == 1 && batch == 4, "epoch \(epoch), batch \(batch)")
            #expect(names.contains("0.weight"), "\(names)")
            let text = "\(TrainingError.nonFiniteParameters(epoch: epoch, batch: batch, parameters: names))"
            #expect(text.contains("epoch 1, batch 4") && text.contains("'0.weight'") && text.contains("gradients or parameters"))
        }
        // The same with the progress bar (read every few batches) stops at the same batch.
        let model2 = Sequential { Dense(inputSize: 4, outputSize: 3, activation: .relu, seed: 1, device: device) }
        #expect(throws: TrainingError.nonFiniteParameters(epoch: 1, batch: 4, parameters: ["0.weight"])) {
            try model2.fit(data, epochs: 1, batchSize: 4, loss: .softmaxCrossEntropy,
                           optimizer: try SGD(parameters: model2.parameters, learningRate: 0.1), shuffle: false,
                           verbosity: .progressBar, output: { _ in })
        }
    }

    @Test(arguments: TestDevices.all) func anExplodingLossIsReportedAsDivergence(device: Device) throws {
        let data = try FitTests.blobs(on: device, count: 60)
        let model = FitTests.classifier(on: device)
        let adam = try Adam(parameters: model.parameters, learningRate: 1e6)
        do {
            try model.fit(data, epochs: 5, batchSize: 8, loss: .softmaxCrossEntropy, optimizer: adam, seed: 0, verbosity: .silent)
            Issue.record("expected divergence")
        } catch TrainingError.diverged(let epoch, let loss, let reference, let factor) {
            #expect(epoch == 1 && loss > 1e6 * reference && factor == 1e6, "epoch \(epoch), loss \(loss), reference \(reference)")
            #expect("\(TrainingError.diverged(epoch: epoch, loss: loss, reference: reference, factor: factor))".contains("epoch 1"))
        }
        // Turned off, the same run trains to the end and its loss is huge: what the check stops.
        let model2 = FitTests.classifier(on: device)
        let h = try model2.fit(data, epochs: 2, batchSize: 8, loss: .softmaxCrossEntropy,
                               optimizer: try Adam(parameters: model2.parameters, learningRate: 1e6), seed: 0,
                               divergence: nil, verbosity: .silent)
        #expect(h["loss"]!.last! > 1e6 * 1.2, "\(h["loss"]!)")
        // A tighter bound is configurable; normal training never trips the default.
        #expect(DivergenceCheck(factor: 10).isDiverged(loss: 11, reference: 1))
        #expect(!DivergenceCheck.standard.isDiverged(loss: 0.5, reference: 0))
        #expect(DivergenceCheck.standard.isDiverged(loss: 2, reference: 0))
    }

    // MARK: saving and loading

    @Test(arguments: TestDevices.all) func nonFiniteModelsAreNeitherSavedNorLoadedUnlessAllowed(device: Device) throws {
        let dir = temporaryFolder()
        let url = dir.appendingPathComponent("model.safetensors")
        let model = Sequential { Dense(inputSize: 3, outputSize: 2, seed: 1, device: device) }
        var w = try model.stateDict()["0.weight"]!.toArray()
        w[4] = .nan
        model.stateDict()["0.weight"]!.assign(w)
        Self.expectError(CheckpointError.self, { try model.save(to: url) },
                         contains: [url.path, "'0.weight'", "1 NaN or infinite value", "index 4", "not saved", "allowNonFinite"])
        #expect(!FileManager.default.fileExists(atPath: url.path))
        try model.save(to: url, allowNonFinite: true)
        let other = Sequential { Dense(inputSize: 3, outputSize: 2, seed: 9, device: device) }
        let before = try other.stateDict()["0.weight"]!.toArray()
        Self.expectError(CheckpointError.self, { try other.load(from: url) }, contains: [url.path, "'0.weight'", "not loaded"])
        #expect(try other.stateDict()["0.weight"]!.toArray() == before, "nothing changed")
        Self.expectError(CheckpointError.self, { try other.loadStateDict(model.stateDict()) }, contains: ["state dict", "'0.weight'"])
        try other.load(from: url, allowNonFinite: true)
        #expect(try other.stateDict()["0.weight"]!.toArray()[4].isNaN)
        // Training checkpoints: the model and the optimizer state.
        let ck = dir.appendingPathComponent("ck.safetensors")
        let good = Sequential { Dense(inputSize: 3, outputSize: 2, seed: 1, device: device) }
        let adam = try Adam(parameters: good.parameters, learningRate: 0.1)
        good.zeroGrad()
        try (good(try Tensor(testValues(6, seed: 1), shape: [2, 3], on: device)).square().sum()).backward()
        try adam.step()
        try TrainingCheckpoint.save(model: good, optimizer: adam, epoch: 1, seed: 1, to: ck)
        adam.stateTensors().first { $0.0 == "0.exp_avg" }!.1.assign([Float](repeating: .infinity, count: 6))
        Self.expectError(CheckpointError.self, { try TrainingCheckpoint.save(model: good, optimizer: adam, epoch: 1, seed: 1, to: ck) },
                         contains: ["'optimizer.0.exp_avg'", "6 NaN or infinite values", "not saved"])
        try TrainingCheckpoint.save(model: good, optimizer: adam, epoch: 1, seed: 1, allowNonFinite: true, to: ck)
        Self.expectError(CheckpointError.self, { try TrainingCheckpoint.load(from: ck, into: good, optimizer: adam) },
                         contains: [ck.path, "'optimizer.0.exp_avg'", "not loaded"])
        try TrainingCheckpoint.load(from: ck, into: good, optimizer: adam, allowNonFinite: true)
    }

    // MARK: untrusted numbers to integers

    @Test func labelsThatAreNotWholeNumbersAreRefusedNamingFileIndexAndValue() throws {
        for (bad, shown) in [(Double.nan, "nan"), (1e30, "1e+30"), (2.5, "2.5"), (-1, "-1.0")] {
            let dir = try Self.mnistFolder(images: [Double](repeating: 0.5, count: 24), labels: [0, 1, 2, 3, 4, bad],
                                           name: "labels\(shown)")
            Self.expectError(DataError.self, { _ = try MNIST.load(directory: dir, split: .train, on: .cpu) },
                             contains: [dir.appendingPathComponent("train-labels-idx1-ubyte").path, "label 5 is \(shown)", "whole number in 0..<10"])
        }
        let labels = try IDX.decode(Self.idx(floats: [1, 2.5], shape: [2]), source: "l.idx")
        Self.expectError(DataError.self, { _ = try labels.integers(source: "l.idx") }, contains: ["l.idx", "element 1 is 2.5"])
        #expect(try IDX.decode(Self.idx(floats: [1, 7], shape: [2]), source: "l").integers() == [1, 7])
    }

    /// A checkpoint's optimizer step count reaches an Int only when it is a whole number >= 0, even for an
    /// optimizer whose own `loadState` does not check it.
    @Test func checkpointStepCountsAreChecked() throws {
        final class Lenient: Optimizer {
            var learningRate: Float = 0.1
            var parameters: [Tensor]
            var stepCount = 0
            init(_ p: [Tensor]) { parameters = p }
            func step() throws {}
            func stateTensors() -> [(String, Tensor)] { [("step", Tensor(scalar: 3, on: .cpu))] }
            func loadState(_ state: [String: Tensor]) throws {}
        }
        let dir = temporaryFolder()
        let url = dir.appendingPathComponent("ck.safetensors")
        let model = Sequential { Dense(inputSize: 2, outputSize: 1, seed: 1, device: .cpu) }
        var tensors = model.namedTensors
        tensors.append(("optimizer.step", Tensor(scalar: 1e30, on: .cpu)))
        try SafeTensors.save(tensors, metadata: ["format": "myelin-training-checkpoint", "epoch": "1", "seed": "1",
                                                 SafeTensors.layoutKey: SafeTensors.currentLayout], to: url)
        Self.expectError(CheckpointError.self, { try TrainingCheckpoint.load(from: url, into: model, optimizer: Lenient(model.parameters)) },
                         contains: [url.path, "step count 1e+30"])
    }

    @Test func lossPlotsOfExtremeHistoriesDoNotTrap() throws {
        var h = History()
        h.append(epoch: 1, ["loss": 1e308])
        h.append(epoch: 2, ["loss": -1e308])
        h.append(epoch: 9_000_000_000_000_000_000 as Int, ["loss": .nan])
        let svg = LossPlot.svg(h)
        #expect(svg.hasPrefix("<svg") && svg.hasSuffix("</svg>\n"))
        #expect(ProgressPrinter.time(1e300) == "?")
        // A checkpoint history's epochs reach an Int only when they are whole numbers that fit.
        #expect(History(json: "{\"epoch\":[1e30, 2.5, 3],\"loss\":[1, 2, 3]}").epochs == [1, 2, 3])
    }
}
