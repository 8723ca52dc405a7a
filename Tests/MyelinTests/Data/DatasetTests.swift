import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// In-memory datasets: seeded disjoint splits, batches that cover every sample once per epoch, one index upload per
/// epoch, scalers fitted on the training part only, one-hot targets and seeded permutations.
@Suite struct DatasetTests {
    /// N samples whose single feature is the sample number, target = 2·number.
    func numbered(_ n: Int, on device: Device) throws -> Dataset {
        try Dataset(features: (0..<n).map(Float.init), shape: [n, 1], targets: (0..<n).map { Float(2 * $0) }, targetShape: [n], on: device)
    }

    @Test func countsMustAgree() {
        expectDataError({ _ = try Dataset(features: [1, 2, 3], shape: [3, 1], targets: [1, 2], targetShape: [2], on: .cpu) },
                        contains: ["3", "2", "same samples"])
    }

    @Test(arguments: TestDevices.all) func splitsAreSeededAndDisjoint(device: Device) throws {
        let data = try numbered(101, on: device)
        let a = try data.split(trainFraction: 0.7, validationFraction: 0.2, seed: 42)
        let b = try data.split(trainFraction: 0.7, validationFraction: 0.2, seed: 42)
        let c = try data.split(trainFraction: 0.7, validationFraction: 0.2, seed: 43)
        #expect(a.train.count == 71 && a.validation.count == 20 && a.test.count == 10)
        #expect(try a.train.features.toArray() == b.train.features.toArray())
        #expect(try a.train.features.toArray() != c.train.features.toArray())
        let all = try a.train.features.toArray() + a.validation.features.toArray() + a.test.features.toArray()
        #expect(all.sorted() == (0..<101).map(Float.init))
        // Targets travel with their features.
        #expect(try a.validation.targets.toArray() == a.validation.features.toArray().map { $0 * 2 })
        // Without a seed the order is kept.
        let (train, validation) = try data.split(validationFraction: 0.1)
        #expect(try train.features.toArray() == (0..<91).map(Float.init))
        #expect(try validation.features.toArray() == (91..<101).map(Float.init))
        expectDataError({ _ = try data.split(fractions: [0.5, 0.6]) }, contains: ["add up to 1"])
    }

    @Test(arguments: TestDevices.all) func batchesCoverEveryoneOncePerEpochAndRepeat(device: Device) throws {
        let data = try numbered(10, on: device)
        func epoch(_ e: Int, seed: UInt64 = 7, dropLast: Bool = false) throws -> [[Float]] {
            try data.batches(size: 4, shuffle: true, seed: seed, epoch: e, dropLast: dropLast).map { try $0.features.toArray() }
        }
        let e0 = try epoch(0)
        #expect(e0.map(\.count) == [4, 4, 2])
        #expect(e0.flatMap { $0 }.sorted() == (0..<10).map(Float.init))
        #expect(try e0 == epoch(0))                    // same (seed, epoch): same batches
        #expect(try e0 != epoch(1))                    // next epoch: another order
        #expect(try e0 != epoch(0, seed: 8))
        #expect(try epoch(0, dropLast: true).map(\.count) == [4, 4])
        #expect(data.batchCount(size: 4) == 3 && data.batchCount(size: 4, dropLast: true) == 2)
        let plain = try data.batches(size: 3).map { try $0.targets.toArray() }
        #expect(plain == [[0, 2, 4], [6, 8, 10], [12, 14, 16], [18]])
    }

    @Test(arguments: TestDevices.all) func anEpochUploadsOnlyItsIndexTensor(device shared: Device) throws {
        // OpenCL: a private device whose counters no other test touches. The CPU device is one shared
        // backend: tests run in parallel and share its counters, which other tests can only raise, so one
        // attempt with exactly one write and no read proves the epoch loop itself does no more.
        let device = shared.isOpenCL ? try DeviceTests.privateOpenCLDevice() : DeviceTests.privateCPUDevice()
        let data = try numbered(1000, on: device)
        var best = (writes: Int.max, reads: Int.max)
        for attempt in 0..<5 {
            let before = device.stats
            var sums: [Tensor] = []
            for batch in data.batches(size: 64, shuffle: true, seed: 1, epoch: attempt) { sums.append(batch.features.sum()) }
            let after = device.stats
            best = (min(best.writes, after.hostWrites - before.hostWrites), min(best.reads, after.hostReads - before.hostReads))
            var total: Float = 0
            for s in sums { total += try s.item() }
            #expect(total == Float((0..<1000).reduce(0, +)))
            if best.writes == 1 && best.reads == 0 { break }
        }
        #expect(best.writes == 1 && best.reads == 0, "one index upload per epoch and no read, got \(best)")
    }

    @Test(arguments: TestDevices.all) func standardizerIsFittedOnTheTrainingPartOnly(device: Device) throws {
        var g = SeededGenerator(seed: 9)
        let n = 50, d = 3
        let x = (0..<n * d).map { i in Float(g.nextDouble() * Double(10 * (i % d + 1)) + Double(i % d) * 100) }
        let constant = (0..<n).map { _ in Float(7) }
        let data = try Dataset(features: x, shape: [n, d], targets: constant, targetShape: [n], on: device)
        let (train, test) = try data.split(validationFraction: 0.2)
        let scaler = try Standardizer(fitting: train.features)
        let trainX = try train.mapFeatures(scaler.transform).features.toArray()
        // Reference statistics in Double from the 40 training rows only.
        for j in 0..<d {
            let col = (0..<40).map { Double(x[$0 * d + j]) }
            let mean = col.reduce(0, +) / 40
            let std = (col.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 40).squareRoot()
            expectClose((0..<40).map { trainX[$0 * d + j] }, col.map { ($0 - mean) / std }, rtol: 1e-4, atol: 1e-4, "train column \(j)")
            let testCol = (40..<50).map { Double(x[$0 * d + j]) }
            let testX = try test.mapFeatures(scaler.transform).features.toArray()
            expectClose((0..<10).map { testX[$0 * d + j] }, testCol.map { ($0 - mean) / std }, rtol: 1e-4, atol: 1e-4, "test column \(j)")
        }
        expectClose(try scaler.inverseTransform(scaler.transform(test.features)).toArray(), try test.features.toArray(), rtol: 1e-5, atol: 1e-3)
        // A constant feature gets scale 1 instead of a division by zero.
        let c = try Standardizer(fitting: Tensor(constant, shape: [n, 1], on: device))
        #expect(try c.transform(Tensor([7, 8], shape: [2, 1], on: device)).toArray() == [0, 1])
        expectDataError({ _ = try scaler.transform(Tensor.zeros([2, 4], on: device)) }, contains: ["[2, 4]", "[3]"])
    }

    @Test(arguments: TestDevices.all) func minMaxScalerAndOneHot(device: Device) throws {
        let data = try Dataset(features: [0, 10, 5, 20, 10, 30], shape: [3, 2], targets: [2, 0, 1], targetShape: [3], on: device)
        let parts = try data.split(fractions: [2.0 / 3, 1.0 / 3])
        let (train, test) = (parts[0], parts[1])
        let s = try MinMaxScaler(fitting: train.features)
        #expect(try s.transform(train.features).toArray() == [0, 0, 1, 1])
        #expect(try s.transform(test.features).toArray() == [2, 2])   // beyond the training range
        #expect(try data.oneHotTargets(classes: 3).targets.toArray() == [0, 0, 1, 1, 0, 0, 0, 1, 0])
    }

    @Test func permutationIsFixedBySeed() {
        let p = Dataset.permutation(count: 20, seed: 3)
        #expect(p.sorted() == Array(0..<20))
        #expect(p == Dataset.permutation(count: 20, seed: 3))
        #expect(p != Array(0..<20))
        #expect(Dataset.permutation(count: 0, seed: 1).isEmpty && Dataset.permutation(count: 1, seed: 1) == [0])
    }
}
