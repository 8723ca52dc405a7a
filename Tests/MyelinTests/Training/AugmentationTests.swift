import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// Random crop with zero padding and random horizontal flip (`Tensor.randomCropFlip`, `Augmentation`, `fit`'s
/// `augmentation:`), against plain loops on both devices.
@Suite struct AugmentationTests {
    /// The plain reference: pad with zeros, cut at (dy, dx), mirror, from the draws of `AugmentDraw`.
    static func reference(_ x: [Float], n: Int, c: Int, h: Int, w: Int, padding: Int, flip: Bool, seed: UInt64) -> [Float] {
        var out = [Float](repeating: .nan, count: x.count)
        for i in 0..<n {
            let d = AugmentDraw(seed: seed, image: i, padding: padding, flip: flip)
            for ch in 0..<c {
                // The padded image, explicitly.
                let ph = h + 2 * padding, pw = w + 2 * padding
                var padded = [Float](repeating: 0, count: ph * pw)
                for y in 0..<h { for xx in 0..<w { padded[(y + padding) * pw + xx + padding] = x[((i * c + ch) * h + y) * w + xx] } }
                for y in 0..<h {
                    for xx in 0..<w {
                        let cropped = padded[(y + d.dy) * pw + (d.mirrored ? w - 1 - xx : xx) + d.dx]
                        out[((i * c + ch) * h + y) * w + xx] = cropped
                    }
                }
            }
        }
        return out
    }

    @Test(arguments: TestDevices.all) func matchesThePlainReferenceOnOddShapes(device: Device) throws {
        for (n, c, h, w) in [(1, 1, 1, 1), (3, 1, 7, 9), (3, 3, 7, 9), (2, 5, 9, 7), (33, 1, 5, 3)] {
            for padding in [0, 1, 2, 3] {
                for flip in [false, true] {
                    let seed = UInt64(n * 1000 + c * 100 + padding * 10 + (flip ? 1 : 0))
                    let values = testValues(n * c * h * w, seed: seed)
                    let x = try Tensor(values, shape: [n, c, h, w], on: device)
                    let y = try x.randomCropFlip(padding: padding, flip: flip, seed: seed)
                    #expect(y.shape == [n, c, h, w])
                    let expected = Self.reference(values, n: n, c: c, h: h, w: w, padding: padding, flip: flip, seed: seed)
                    // Data movement: exact, on every device.
                    #expect(try y.toArray() == expected, "\(device) [\(n), \(c), \(h), \(w)] padding \(padding) flip \(flip)")
                }
            }
        }
    }

    @Test(arguments: TestDevices.all) func oneLaunchNoHostReads(device shared: Device) throws {
        // A device of its own: tests running in parallel raise a shared device's counters.
        let device = shared.isOpenCL ? try DeviceTests.privateOpenCLDevice() : DeviceTests.privateCPUDevice()
        let x = try Tensor(testValues(4 * 2 * 5 * 6, seed: 1), shape: [4, 2, 5, 6], on: device)
        let before = device.stats
        let y = try x.randomCropFlip(padding: 2, seed: 9)
        let after = device.stats
        #expect(after.launches - before.launches == 1)
        #expect(after.hostReads == before.hostReads && after.hostWrites == before.hostWrites)
        #expect(y.shape == x.shape)
    }

    @Test func drawsCoverEveryOffsetAndFlipHalfTheImages() {
        let padding = 2, count = 20_000
        var offsets = [Int](repeating: 0, count: 2 * padding + 1), columns = offsets
        var mirrored = 0
        for i in 0..<count {
            let d = AugmentDraw(seed: 77, image: i, padding: padding, flip: true)
            offsets[d.dy] += 1
            columns[d.dx] += 1
            if d.mirrored { mirrored += 1 }
            #expect(!AugmentDraw(seed: 77, image: i, padding: padding, flip: false).mirrored)
        }
        // Each of the 5 offsets about 1/5 of the time (4000 ± 5 standard deviations of about 57).
        for k in offsets + columns { #expect(abs(k - count / 5) < 300, "offset counts \(offsets), \(columns)") }
        #expect(abs(mirrored - count / 2) < 400, "mirrored \(mirrored) of \(count)")
        // Padding 0: no shift.
        for i in 0..<100 {
            let d = AugmentDraw(seed: 5, image: i, padding: 0, flip: true)
            #expect(d.dy == 0 && d.dx == 0)
        }
    }

    @Test(arguments: TestDevices.all) func seedsDecideTheResult(device: Device) throws {
        let x = try Tensor(testValues(16 * 1 * 8 * 8, seed: 2), shape: [16, 1, 8, 8], on: device)
        let a = try x.randomCropFlip(padding: 2, seed: 1).toArray()
        #expect(try x.randomCropFlip(padding: 2, seed: 1).toArray() == a)
        #expect(try x.randomCropFlip(padding: 2, seed: 2).toArray() != a)
        // Padding 0 without flip is the identity.
        #expect(try x.randomCropFlip(padding: 0, flip: false, seed: 3).toArray() == x.toArray())
        // Batch seeds differ per epoch and per batch, and are fixed by the run's seed.
        let seeds = (0..<3).flatMap { e in (0..<4).map { b in Augmentation.batchSeed(11, epoch: e, batch: b) } }
        #expect(Set(seeds).count == seeds.count)
        #expect(Augmentation.batchSeed(11, epoch: 2, batch: 3) == seeds[11])
        #expect(Augmentation.batchSeed(12, epoch: 2, batch: 3) != seeds[11])
    }

    @Test func badShapesAndPaddingAreClearErrors() throws {
        let x = try Tensor(testValues(2 * 9, seed: 3), shape: [2, 9], on: .cpu)
        #expect(throws: TensorError.self) { try x.randomCropFlip(padding: 1, seed: 1) }
        #expect(throws: TensorError.self) { try x.reshaped([2, 1, 3, 3]).randomCropFlip(padding: -1, seed: 1) }
        // Flat samples need an image shape of the same size.
        do {
            _ = try Augmentation.randomCropFlip(padding: 1).apply(to: x, seed: 1)
            Issue.record("flat samples without imageShape were accepted")
        } catch let error as DataError {
            #expect(error.description.contains("[9]") && error.description.contains("imageShape"))
        }
        do {
            _ = try Augmentation.randomCropFlip(padding: 1, imageShape: [1, 4, 4]).apply(to: x, seed: 1)
            Issue.record("a wrong imageShape was accepted")
        } catch let error as DataError {
            #expect(error.description.contains("[9]") && error.description.contains("[1, 4, 4]"))
        }
        #expect(throws: DataError.self) { try Augmentation.randomCropFlip(padding: -2).image(forSampleShape: [1, 3, 3]) }
        #expect(try Augmentation.randomCropFlip().image(forSampleShape: [5, 7]) == [1, 5, 7])
        #expect(try Augmentation.randomCropFlip().image(forSampleShape: [3, 5, 7]) == [3, 5, 7])
    }

    @Test(arguments: TestDevices.all) func flatSamplesAreAugmentedAsImages(device: Device) throws {
        let values = testValues(3 * 63, seed: 4)
        let x = try Tensor(values, shape: [3, 63], on: device)
        let y = try Augmentation.randomCropFlip(padding: 2, imageShape: [1, 7, 9]).apply(to: x, seed: 21)
        #expect(y.shape == [3, 63])
        #expect(try y.toArray() == Self.reference(values, n: 3, c: 1, h: 7, w: 9, padding: 2, flip: true, seed: 21))
    }

    /// Records what the model is called with, in training and in evaluation.
    final class Recorder: ParameterlessLayer {
        var isTraining = true
        var training: [[Float]] = []
        var evaluation: [[Float]] = []
        func callAsFunction(_ input: Tensor) throws -> Tensor {
            if isTraining { training.append(try input.toArray()) } else { evaluation.append(try input.toArray()) }
            return input
        }
        var layerDescription: String { "Recorder" }
    }

    @Test(arguments: TestDevices.all) func fitAugmentsTrainingBatchesOnly(device: Device) throws {
        let n = 10, values = testValues(n * 2 * 4 * 5, seed: 8)
        let data = try Dataset(features: values, shape: [n, 2, 4, 5], targets: (0..<n).map { Float($0 % 3) },
                               targetShape: [n], on: device)
        let validation = try data.subset(0..<4)
        let recorder = Recorder()
        let model = Sequential { recorder; Flatten(); Dense(inputSize: 40, outputSize: 3, seed: 1, device: device) }
        let sgd = try SGD(parameters: model.parameters, learningRate: 0.01)
        let augmentation = Augmentation.randomCropFlip(padding: 1)
        try model.fit(data, epochs: 2, batchSize: 4, validation: validation, loss: .softmaxCrossEntropy, optimizer: sgd,
                      augmentation: augmentation, shuffle: false, seed: 5, verbosity: .silent)
        // Training: batches 0..<4, 4..<8, 8..<10 of each epoch, each augmented with its own seed.
        var expected: [[Float]] = []
        for epoch in 0..<2 {
            for (b, range) in [0..<4, 4..<8, 8..<10].enumerated() {
                let batch = Array(values[(range.lowerBound * 40)..<(range.upperBound * 40)])
                expected.append(Self.reference(batch, n: range.count, c: 2, h: 4, w: 5, padding: 1, flip: true,
                                               seed: Augmentation.batchSeed(5, epoch: epoch, batch: b)))
            }
        }
        #expect(recorder.training == expected)
        // Validation: the plain images.
        #expect(recorder.evaluation.count == 2)
        for seen in recorder.evaluation { #expect(seen == Array(values[0..<160])) }
        // Samples that are not images are refused before training.
        let flat = try Dataset(features: values, shape: [n, 40], targets: (0..<n).map { Float($0 % 3) }, targetShape: [n], on: device)
        #expect(throws: DataError.self) {
            try Dense(inputSize: 40, outputSize: 3, seed: 1, device: device)
                .fit(flat, epochs: 1, loss: .softmaxCrossEntropy, optimizer: sgd, augmentation: augmentation, verbosity: .silent)
        }
    }
}
