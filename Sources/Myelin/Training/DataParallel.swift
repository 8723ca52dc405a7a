// Data-parallel training: what `fit` asks of a coordinator of several processes (ranks), and the few steps `fit`
// takes with one. Myelin itself knows no transport: the MyelinMPI library implements `DataParallel` on MPI.

/// How `DataParallel.allReduce(_:_:)` combines the ranks' values.
public enum DataParallelReduction: Sendable, Equatable {
    /// The sum over ranks.
    case sum
    /// The smallest value over ranks.
    case minimum
}

/// A coordinator of data-parallel training over `worldSize` processes (ranks), each with its own copy of the model,
/// for `fit(_:epochs:...:distributed:)`. MyelinMPI's `DistributedDataParallel` implements it on MPI.
///
/// With one, `fit` makes every rank start from rank 0's parameters and buffers, trains each rank on its share of
/// every global batch (the batches of one seeded shuffle, the same on every rank), combines the gradients
/// before every optimizer step so that every rank takes the same step (the one of the global batch), and logs
/// loss and metrics over the global batch on every rank (so callbacks such as `EarlyStopping` decide alike).
///
/// ```swift
/// let ddp = try DistributedDataParallel()            // MyelinMPI, under mpirun
/// try model.fit(train, epochs: 10, batchSize: 256, loss: .softmaxCrossEntropy, optimizer: adam, distributed: ddp)
/// ```
public protocol DataParallel: AnyObject {
    /// This process's rank, 0..<worldSize. Rank 0 is the one that prints and saves.
    var rank: Int { get }
    /// The number of ranks.
    var worldSize: Int { get }
    /// Overwrites `tensors` (the same list, in the same order, on every rank) with rank 0's values.
    func broadcast(_ tensors: [Tensor]) throws
    /// Replaces the gradient of every tensor of `parameters` (the same list on every rank) by
    /// Σ over ranks of `weight` × that rank's gradient, where `weight` is this rank's share of the global batch
    /// (its sample count / the global batch's count). A parameter without a gradient counts as a zero one.
    func reduceGradients(of parameters: [Tensor], weight: Float) throws
    /// The element-wise combination of every rank's `values` (the same count on every rank), on every rank.
    func allReduce(_ values: [Double], _ operation: DataParallelReduction) throws -> [Double]
}

extension DataParallel {
    /// True on rank 0, the rank that prints, plots and saves.
    public var isMainRank: Bool { rank == 0 }
}

extension Dataset.Batches {
    /// The batches of this epoch as rank `rank` of `ranks` sees them: the same global batches (positions of the
    /// one shuffled order), each cut into `ranks` contiguous shares that differ by at most one sample, of which
    /// this rank gathers only its own. A last global batch with fewer samples than ranks is skipped.
    func sharded(rank: Int, of ranks: Int) -> Dataset.Batches {
        var copy = self
        copy.shard = (rank, ranks)
        return copy
    }
}

extension Layer {
    /// Before training with `distributed`: checks the ranks agree on the model and every rank takes rank 0's
    /// parameters and buffers.
    func startDataParallel(_ distributed: any DataParallel, batchSize: Int) throws {
        guard batchSize >= distributed.worldSize else {
            throw TrainingError.invalid("fit: the global batch size \(batchSize) is smaller than the \(distributed.worldSize) ranks of distributed training (each rank needs at least one sample)")
        }
        let tensors = namedTensors.map(\.1)
        let mine = [Double(tensors.count), Double(tensors.reduce(0) { $0 + $1.count })]
        // The minimum of x and of -x over ranks: equal ends mean every rank has the same x.
        let m = try distributed.allReduce(mine + mine.map { -$0 }, .minimum)
        guard m[0] == -m[2], m[1] == -m[3] else {
            throw TrainingError.invalid("fit: the ranks of distributed training hold different models (tensors: \(Int(m[0]))...\(Int(-m[2])), values: \(Int(m[1]))...\(Int(-m[3])) over ranks; this rank: \(Int(mine[0])) tensors, \(Int(mine[1])) values); build the same model on every rank")
        }
        try distributed.broadcast(tensors)
    }

    /// The epoch's sums read on this rank (`read`: the first-bad-batch flag, then sums), its sample count and
    /// metric counts, combined over ranks: the flag's minimum, the sums' sums.
    static func combineEpoch(_ distributed: any DataParallel, read: [Float], samples: Int, counts: [Int]) throws
        -> (read: [Float], samples: Int, counts: [Int]) {
        let flag = try distributed.allReduce([Double(read[0])], .minimum)
        let sums = try distributed.allReduce(read.dropFirst().map(Double.init) + [Double(samples)] + counts.map(Double.init), .sum)
        let n = read.count - 1
        return ([Float(flag[0])] + sums[..<n].map(Float.init), Int(sums[n].rounded()), sums[(n + 1)...].map { Int($0.rounded()) })
    }
}
