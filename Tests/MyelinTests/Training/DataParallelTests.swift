import Foundation
import Testing
@testable import MyelinCore
@testable import Myelin

/// A coordinator in one process that records what `fit` asks of it. As rank `rank` of `worldSize`, it pretends
/// every other rank sent exactly what this one has (sums are `worldSize` × the value, gradients `worldSize` ×
/// weight × the gradient): with one rank it changes nothing. The real one (MPI) is checked by scripts/mpi-check.
final class MirrorDataParallel: DataParallel {
    let rank: Int
    let worldSize: Int
    var broadcasts: [[Tensor]] = []
    var weights: [Float] = []
    var reductions: [(DataParallelReduction, Int)] = []

    init(rank: Int = 0, worldSize: Int = 1) { self.rank = rank; self.worldSize = worldSize }

    func broadcast(_ tensors: [Tensor]) throws { broadcasts.append(tensors) }

    func reduceGradients(of parameters: [Tensor], weight: Float) throws {
        weights.append(weight)
        guard weight * Float(worldSize) != 1 else { return }
        for p in parameters { if let g = p.grad { g.assign(try (g * (weight * Float(worldSize))).toArray()) } }
    }

    func allReduce(_ values: [Double], _ operation: DataParallelReduction) throws -> [Double] {
        reductions.append((operation, values.count))
        return operation == .sum ? values.map { $0 * Double(worldSize) } : values
    }
}

@Suite struct DataParallelTests {
    /// Each rank's share of every global batch: contiguous, sizes differing by at most one, together the global
    /// batch in order; a last batch with fewer samples than ranks is skipped by every rank.
    @Test func shardsCutEveryGlobalBatchIntoContiguousShares() throws {
        for (count, size, ranks) in [(37, 8, 3), (33, 8, 2), (15, 15, 2), (7, 3, 3), (12, 5, 5)] {
            let targets = (0..<count).map(Float.init)
            let data = try Dataset(features: targets, shape: [count, 1], targets: targets, targetShape: [count], on: .cpu)
            let global = try data.batches(size: size, shuffle: true, seed: 9, epoch: 2).map { try $0.targets.toArray() }
            let shares = try (0..<ranks).map { r in
                try data.batches(size: size, shuffle: true, seed: 9, epoch: 2).sharded(rank: r, of: ranks).map { try $0.targets.toArray() }
            }
            let kept = global.filter { $0.count >= ranks }
            for r in 0..<ranks {
                #expect(shares[r].count == kept.count, "\(count)/\(size)/\(ranks): rank \(r) has \(shares[r].count) batches")
                #expect(data.batches(size: size, shuffle: true, seed: 9, epoch: 2).sharded(rank: r, of: ranks).count == kept.count)
            }
            for (b, batch) in kept.enumerated() {
                let joined = (0..<ranks).flatMap { shares[$0][b] }
                #expect(joined == batch, "\(count)/\(size)/\(ranks): batch \(b)")
                let sizes = (0..<ranks).map { shares[$0][b].count }
                #expect(sizes.max()! - sizes.min()! <= 1 && sizes.min()! >= 1, "shares \(sizes)")
            }
        }
    }

    /// With one rank, `fit(distributed:)` trains exactly like `fit`, and asks the coordinator for a broadcast of
    /// every tensor at the start, one gradient reduction per step with weight 1, and the epoch's sums.
    @Test(arguments: TestDevices.all) func oneRankTrainsLikeOneProcess(device: Device) throws {
        let data = try FitTests.blobs(on: device, count: 50)
        func run(_ distributed: (any DataParallel)?) throws -> (Sequential, History) {
            let model = FitTests.classifier(on: device)
            let adam = try Adam(parameters: model.parameters, learningRate: 0.02)
            let history = try model.fit(data, epochs: 3, batchSize: 16, loss: .softmaxCrossEntropy, optimizer: adam,
                                        metrics: [.accuracy], seed: 4, distributed: distributed, verbosity: .silent)
            return (model, history)
        }
        let mirror = MirrorDataParallel()
        let (a, ha) = try run(nil)
        let (b, hb) = try run(mirror)
        #expect(ha == hb)
        for ((name, x), (_, y)) in zip(a.namedTensors, b.namedTensors) { #expect(try x.toArray() == y.toArray(), "\(name)") }
        #expect(mirror.broadcasts.first?.count == b.namedTensors.count)
        #expect(mirror.weights == [Float](repeating: 1, count: 3 * 4))   // 50 samples in batches of 16: 4 steps an epoch
        #expect(mirror.reductions.contains { $0.0 == .minimum } && mirror.reductions.contains { $0.0 == .sum })
    }

    /// A rank other than 0 prints nothing and does not write `ModelCheckpoint`'s file; logs are the combined ones.
    @Test func otherRanksStaySilentAndWriteNothing() throws {
        let data = try FitTests.blobs(on: .cpu, count: 40)
        let model = FitTests.classifier(on: .cpu)
        let sgd = try SGD(parameters: model.parameters, learningRate: 0.05)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("myelin-rank1-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        var lines: [String] = []
        let history = try model.fit(data, epochs: 2, batchSize: 10, loss: .softmaxCrossEntropy, optimizer: sgd,
                                    callbacks: [ModelCheckpoint(url: url)], seed: 1,
                                    distributed: MirrorDataParallel(rank: 1, worldSize: 2), verbosity: .epochLines,
                                    output: { lines.append($0) })
        #expect(lines.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: url.path))
        #expect(history.count == 2 && history["loss"]!.allSatisfy(\.isFinite))
    }

    /// A global batch smaller than the number of ranks is refused before any training, naming both.
    @Test func globalBatchSmallerThanTheRanksIsRefused() throws {
        let data = try FitTests.blobs(on: .cpu, count: 20)
        let model = FitTests.classifier(on: .cpu)
        let sgd = try SGD(parameters: model.parameters, learningRate: 0.05)
        let mirror = MirrorDataParallel(rank: 0, worldSize: 4)
        #expect {
            try model.fit(data, epochs: 1, batchSize: 3, loss: .softmaxCrossEntropy, optimizer: sgd, distributed: mirror, verbosity: .silent)
        } throws: { error in
            "\(error)".contains("global batch size 3") && "\(error)".contains("4 ranks")
        }
        #expect(mirror.weights.isEmpty)
    }
}
