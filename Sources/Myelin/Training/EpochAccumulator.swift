// The running loss and metric sums of one pass over a data set, shared by `fit` (per epoch) and `evaluate`.

/// The sums of a pass's loss and metrics, kept on the device: each batch adds its loss × sample count and each
/// metric's sum there, with no host read; the caller reads `sums` back once (at the end of the pass, or when a
/// progress bar shows the running figures) and turns the values into logs with `logs(_:samples:counts:)`.
struct EpochAccumulator {
    /// The metrics summed, in the order of `metricSums` and `metricCounts`.
    let metrics: [Metric]
    /// Σ over batches of the batch's mean loss × its sample count, a device scalar.
    private(set) var lossSum: Tensor
    /// Σ over batches of each metric's batch sum, device scalars.
    private(set) var metricSums: [Tensor]
    /// The number of values each metric summed (known on the host).
    private(set) var metricCounts: [Int]
    /// The samples added so far.
    private(set) var samples = 0

    /// Zero sums on `device` for the loss and each of `metrics`.
    init(metrics: [Metric], device: Device) {
        self.metrics = metrics
        lossSum = Tensor.zeros([], on: device)
        metricSums = metrics.map { _ in Tensor.zeros([], on: device) }
        metricCounts = metrics.map { _ in 0 }
    }

    /// Sums that start from those of `partial` (an epoch resumed where it stopped), on `device`.
    init(metrics: [Metric], device: Device, resuming partial: PartialEpoch) {
        self.init(metrics: metrics, device: device)
        lossSum = Tensor.full([], partial.sums[0], on: device)
        metricSums = partial.sums.dropFirst().map { Tensor.full([], $0, on: device) }
        metricCounts = partial.metricCounts
        samples = partial.samples
    }

    /// Adds one batch of `count` samples: its mean `loss` (a device scalar) and each metric of `output` against
    /// `targets`. Builds no graph when called under `withNoGrad`, as `fit` and `evaluate` do.
    mutating func add(loss: Tensor, output: Tensor, targets: Tensor, count: Int) throws {
        lossSum = try lossSum + loss * Float(count)
        try addMetrics(output: output, targets: targets, count: count)
    }

    /// Adds one batch of `count` samples without its loss (`fit` adds the loss to `lossSum` in place, in its
    /// batch note): each metric of `output` against `targets`. Accuracy against labels is one launch added in
    /// place; the other metrics are their ops, then an add.
    mutating func addMetrics(output: Tensor, targets: Tensor, count: Int) throws {
        for (i, m) in metrics.enumerated() {
            if m == .accuracy, output.rank == 2, targets.rank == 1 {
                try m.checkShapes(output: output, target: targets)
                try metricSums[i].addAccuracyHits(output: output, labels: targets)
                metricCounts[i] += output.shape[0]
                continue
            }
            let (s, n) = try m.batchSum(output: output, target: targets)
            metricSums[i] = try metricSums[i] + s
            metricCounts[i] += n
        }
        samples += count
    }

    /// The device scalars to read back, in the order `logs` takes their values: the loss sum, then each metric's.
    var sums: [Tensor] { [lossSum] + metricSums }

    /// The logs of the pass from the host values of `sums` (`values`): "loss", the mean loss over `samples`, and
    /// each metric by name, finished over its count in `counts` (these samples and counts may be combined over
    /// the ranks of data-parallel training, hence parameters rather than this accumulator's own).
    func logs<Values: Collection<Float>>(_ values: Values, samples: Int, counts: [Int]) -> [String: Double] {
        var logs = ["loss": Double(values.first!) / Double(Swift.max(samples, 1))]
        for ((m, sum), count) in zip(zip(metrics, values.dropFirst()), counts) { logs[m.rawValue] = m.finish(Double(sum), count: count) }
        return logs
    }

    /// The values of rank-0 tensors on one device, in one host read.
    static func readScalars(_ scalars: [Tensor]) throws -> [Float] {
        if scalars.count == 1 { return [try scalars[0].item()] }
        return try Tensor.concat(scalars.map { try $0.reshaped([1]) }).toArray()
    }
}
