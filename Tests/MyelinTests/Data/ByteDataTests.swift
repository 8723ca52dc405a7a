import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// Byte features (kept on the host, converted per batch) against the same data as Float features on the device.
@Suite struct ByteDataTests {
    static let n = 37
    static let sampleShape = [3, 7]
    static let scale: Float = 1 / 255

    /// Seeded bytes [37, 3, 7] covering 0...255, and targets 0..<5.
    static func bytes() -> [UInt8] {
        var g = SeededGenerator(seed: 11)
        return (0..<(n * 21)).map { i in i < 256 ? UInt8(i) : UInt8(truncatingIfNeeded: g.next()) }
    }
    static let labels: [Float] = (0..<n).map { Float(($0 * 7) % 5) }

    static func pair(on device: Device, sampleShape: [Int] = sampleShape) throws -> (bytes: Dataset, floats: Dataset) {
        let b = bytes()
        let byteData = try Dataset(bytes: b, shape: [n] + sampleShape, scale: scale, targets: Tensor(labels, on: device))
        let floatData = try Dataset(features: b.map { Float($0) * scale }, shape: [n] + sampleShape,
                                    targets: labels, targetShape: [n], on: device)
        return (byteData, floatData)
    }

    /// Every batch of an epoch as (shape, features, targets), read back.
    static func epoch(_ d: Dataset, size: Int, shuffle: Bool, seed: UInt64, epoch: Int, dropLast: Bool) throws -> [[Int]: [[Float]]] {
        var out: [[Int]: [[Float]]] = [:]
        for (i, batch) in d.batches(size: size, shuffle: shuffle, seed: seed, epoch: epoch, dropLast: dropLast).enumerated() {
            out[[i] + batch.features.shape] = [try batch.features.toArray(), try batch.targets.toArray(), [Float(batch.range.lowerBound)]]
        }
        return out
    }

    @Test(arguments: TestDevices.all) func byteFeaturesGiveTheSameBatchesAsFloatFeatures(device: Device) throws {
        let (bytes, floats) = try Self.pair(on: device)
        #expect(bytes.hasByteFeatures && !floats.hasByteFeatures)
        #expect(bytes.count == Self.n && bytes.sampleShape == Self.sampleShape && bytes.device === device)
        // The Float path on the CPU is the reference for every device.
        let (_, cpuFloats) = try Self.pair(on: .cpu)
        for (size, shuffle, seed, e, dropLast) in [(5, true, 3 as UInt64, 0, false), (5, true, 3, 1, true), (1, true, 9, 2, false),
                                                   (37, false, 0, 0, false), (8, false, 0, 0, true), (64, true, 4, 0, false)] {
            let got = try Self.epoch(bytes, size: size, shuffle: shuffle, seed: seed, epoch: e, dropLast: dropLast)
            #expect(try got == Self.epoch(floats, size: size, shuffle: shuffle, seed: seed, epoch: e, dropLast: dropLast))
            #expect(try got == Self.epoch(cpuFloats, size: size, shuffle: shuffle, seed: seed, epoch: e, dropLast: dropLast))
            #expect(got.count == bytes.batchCount(size: size, dropLast: dropLast))
        }
        // Values are exactly Float(byte) / 255, shape kept.
        #expect(bytes.features.shape == [Self.n] + Self.sampleShape)
        #expect(try bytes.features.toArray() == Self.bytes().map { Float($0) * Self.scale })
        #expect(try bytes.features.toArray().max() == 1 && bytes.features.toArray().min() == 0)
    }

    @Test(arguments: TestDevices.all) func byteSubsetsSplitsAndTargetChangesMatchFloat(device: Device) throws {
        let (bytes, floats) = try Self.pair(on: device)
        func same(_ a: Dataset, _ b: Dataset, sourceLocation: SourceLocation = #_sourceLocation) throws {
            #expect(a.hasByteFeatures, sourceLocation: sourceLocation)
            #expect(a.features.shape == b.features.shape, sourceLocation: sourceLocation)
            #expect(try a.features.toArray() == b.features.toArray(), sourceLocation: sourceLocation)
            #expect(a.targets.shape == b.targets.shape, sourceLocation: sourceLocation)
            #expect(try a.targets.toArray() == b.targets.toArray(), sourceLocation: sourceLocation)
        }
        try same(try bytes.subset(3..<20), try floats.subset(3..<20))
        try same(try bytes.subset(0..<0), try floats.subset(0..<0))
        try same(try bytes.subset(indices: [36, 0, 5, 5, 17]), try floats.subset(indices: [36, 0, 5, 5, 17]))
        try same(try bytes.shuffled(seed: 2), try floats.shuffled(seed: 2))
        for (a, b) in zip(try bytes.split(fractions: [0.6, 0.3, 0.1], seed: 8), try floats.split(fractions: [0.6, 0.3, 0.1], seed: 8)) {
            try same(a, b)
        }
        try same(try bytes.oneHotTargets(classes: 5), try floats.oneHotTargets(classes: 5))
        try same(try bytes.mapTargets { $0 * 2 }, try floats.mapTargets { $0 * 2 })
        try same(bytes.to(.cpu), floats.to(.cpu))
        // A feature transform works on the converted features and gives a Float data set.
        let mapped = try bytes.mapFeatures { $0 * 3 }
        #expect(!mapped.hasByteFeatures)
        #expect(try mapped.features.toArray() == (try floats.mapFeatures { $0 * 3 }).features.toArray())
        expectDataError({ _ = try bytes.subset(30..<40) }, contains: ["37 samples", "30..<40"])
        expectDataError({ _ = try bytes.subset(indices: [37]) }, contains: ["no sample 37"])
    }

    @Test func byteFeaturesCheckTheirShape() throws {
        expectDataError({ _ = try Dataset(bytes: [1, 2, 3], shape: [2, 2], targets: Tensor([0, 1], on: .cpu)) },
                        contains: ["3 feature bytes", "[2, 2]"])
        expectDataError({ _ = try Dataset(bytes: [1, 2, 3, 4], shape: [2, 2], targets: Tensor([0, 1, 2], on: .cpu)) },
                        contains: ["[2, 2]", "[3]"])
        expectDataError({ _ = try Dataset(bytes: [], shape: [], targets: Tensor([0], on: .cpu)) }, contains: ["first (sample) dimension"])
    }

    @Test(arguments: TestDevices.all) func fitOnByteFeaturesEqualsFitOnFloatFeatures(device: Device) throws {
        let (bytes, floats) = try Self.pair(on: device, sampleShape: [21])
        func run(_ data: Dataset) throws -> (History, [Float], [String: Double]) {
            let model = Sequential {
                Dense(inputSize: 21, outputSize: 8, activation: .relu, seed: 1, device: device)
                Dense(inputSize: 8, outputSize: 5, seed: 2, device: device)
            }
            let adam = try Adam(parameters: model.parameters, learningRate: 0.01)
            let (train, validation) = try data.split(validationFraction: 0.2, seed: 1)
            let history = try model.fit(train, epochs: 3, batchSize: 6, validation: validation, loss: .softmaxCrossEntropy,
                                        optimizer: adam, metrics: [.accuracy], seed: 5, verbosity: .silent)
            let result = try model.evaluate(data, batchSize: 7, loss: .softmaxCrossEntropy, metrics: [.accuracy])
            return (history, try model.parameters.flatMap { try $0.toArray() }, result)
        }
        let a = try run(bytes), b = try run(floats)
        #expect(a.0 == b.0)
        #expect(a.1 == b.1)
        #expect(a.2 == b.2)
    }
}
