import Foundation

/// Samples that live on a device: features [N, ...] and targets [N] (class numbers) or [N, k].
///
/// Float features are uploaded once; batches are gathered on the device from a shuffled index tensor
/// (one small index upload per epoch), so training never copies samples through the host.
/// Byte features (`init(bytes:shape:scale:targets:)`, what `MNIST.load` makes from grey-level images) stay on
/// the host as one byte per value, a quarter of the memory of Float; each batch is converted to Float (times
/// `scale`) and uploaded when reached. Both kinds give the same batches for the same seed on every device.
///
/// ```swift
/// let data = try Dataset(features: x, targets: y)                 // tensors [N, 2] and [N, 1]
/// let (train, validation) = try data.split(validationFraction: 0.2, seed: 1)
/// for batch in train.batches(size: 32, shuffle: true, seed: 1, epoch: 0) {
///     let output = try model(batch.features)
///     ...
/// }
/// ```
public struct Dataset {
    /// Float features on the device, or nil when the features are host bytes.
    private let deviceFeatures: Tensor?
    /// Host byte features, or nil when the features are a device tensor.
    let byteFeatures: ByteFeatures?
    /// [N] or [N, ...]
    public let targets: Tensor

    /// [N, ...] as Float on the device. For byte features this converts and uploads all samples (once, then
    /// kept); training and `evaluate` never need it, they convert one batch at a time.
    public var features: Tensor { deviceFeatures ?? byteFeatures!.all() }
    /// True when the features are kept on the host as bytes and converted per batch.
    public var hasByteFeatures: Bool { byteFeatures != nil }

    /// The number of samples.
    public var count: Int { deviceFeatures?.shape.first ?? byteFeatures!.shape[0] }
    /// The device the samples are on (for byte features: where each batch goes).
    public var device: Device { targets.device }
    /// The shape of one sample's features.
    public var sampleShape: [Int] { Array((deviceFeatures?.shape ?? byteFeatures!.shape).dropFirst()) }

    /// A data set from two tensors on the same device whose first dimensions agree. NaN and infinite values are
    /// refused (the error names the sample and the element) unless `nonFinite` says to replace them; checking
    /// costs one sum per tensor on the device and one scalar read each.
    public init(features: Tensor, targets: Tensor, nonFinite: NonFiniteValues = .refuse) throws {
        try self.init(unchecked: features, targets: targets)
        let f = try nonFinite.applied(to: features, source: "Dataset", part: "features")
        let t = try nonFinite.applied(to: targets, source: "Dataset", part: "targets")
        if f !== features || t !== targets { self = try Dataset(unchecked: f, targets: t) }
    }

    /// Two tensors whose values are known to be finite (parts of a checked data set); shapes and devices are checked.
    init(unchecked features: Tensor, targets: Tensor) throws {
        guard features.rank >= 1, targets.rank >= 1 else {
            throw DataError.invalid("Dataset", reason: "features \(features.shape) and targets \(targets.shape) need a first (sample) dimension")
        }
        guard features.shape[0] == targets.shape[0] else {
            throw DataError.countMismatch("features \(features.shape)", "targets \(targets.shape)", features.shape[0], targets.shape[0])
        }
        guard features.device === targets.device else {
            throw DataError.invalid("Dataset", reason: "features are on \(features.device.name), targets on \(targets.device.name)")
        }
        self.deviceFeatures = features.detach()
        self.byteFeatures = nil
        self.targets = targets.detach()
    }

    /// A data set whose features stay on the host as bytes (row-major, `shape` = [N, ...]) and become
    /// `Float(byte) * scale` one batch at a time on `targets`' device: a quarter of the memory of Float features.
    ///
    /// ```swift
    /// let data = try Dataset(bytes: pixels, shape: [n, 784], scale: 1 / 255, targets: labels)   // labels [n]
    /// ```
    public init(bytes: [UInt8], shape: [Int], scale: Float = 1, targets: Tensor) throws {
        guard shape.count >= 1, shape.allSatisfy({ $0 >= 0 }), targets.rank >= 1 else {
            throw DataError.invalid("Dataset", reason: "byte features \(shape) and targets \(targets.shape) need a first (sample) dimension")
        }
        guard bytes.count == shape.reduce(1, *) else {
            throw DataError.invalid("Dataset", reason: "\(bytes.count) feature bytes do not fill shape \(shape)")
        }
        guard scale.isFinite, (255 * scale).isFinite else {
            throw DataError.invalid("Dataset", reason: "byte scale \(scale) would make non-finite features")
        }
        guard shape[0] == targets.shape[0] else {
            throw DataError.countMismatch("features \(shape)", "targets \(targets.shape)", shape[0], targets.shape[0])
        }
        self.deviceFeatures = nil
        self.byteFeatures = ByteFeatures(bytes: bytes, shape: shape, scale: scale, device: targets.device)
        self.targets = targets.detach()
    }

    /// Byte features with other targets (same device).
    private init(byteFeatures: ByteFeatures, targets: Tensor) {
        self.deviceFeatures = nil
        self.byteFeatures = byteFeatures
        self.targets = targets.detach()
    }

    /// A data set from host arrays (uploaded once to `device`). With `classes`, the targets are class labels:
    /// `targetShape` must be [N] and each target a whole number in 0..<classes, checked here on the host once
    /// (training never checks labels on the device); the error names the bad label, its position and the range.
    /// NaN and infinite values are refused on the host (the error names the sample and the element) unless
    /// `nonFinite` says to replace them.
    ///
    /// ```swift
    /// let data = try Dataset(features: x, shape: [4, 2], targets: [0, 2, 1, 2], targetShape: [4], classes: 3)
    /// ```
    public init(features: [Float], shape: [Int], targets: [Float], targetShape: [Int], classes: Int? = nil,
                nonFinite: NonFiniteValues = .refuse, on device: Device = .default) throws {
        var features = features, targets = targets
        try nonFinite.apply(to: &features, sampleSize: Swift.max(1, shape.dropFirst().reduce(1, *)), source: "Dataset", part: "features")
        try nonFinite.apply(to: &targets, sampleSize: Swift.max(1, targetShape.dropFirst().reduce(1, *)), source: "Dataset", part: "targets")
        if let classes {
            guard classes > 0, targetShape.count == 1 else {
                throw DataError.invalid("Dataset", reason: "class labels need classes > 0 and a target shape [N], got classes \(classes), shape \(targetShape)")
            }
            try checkIndices(targets, in: 0..<classes, op: "Dataset", kind: "label")
        }
        let targetTensor = try Tensor(targets, shape: targetShape, on: device)
        if let classes { targetTensor.labelClasses = classes }
        try self.init(unchecked: Tensor(features, shape: shape, on: device), targets: targetTensor)
    }

    /// The same samples on another device.
    public func to(_ device: Device) -> Dataset {
        if let b = byteFeatures {
            return try! Dataset(bytes: b.bytes, shape: b.shape, scale: b.scale, targets: targets.to(device))
        }
        return try! Dataset(unchecked: features.to(device), targets: targets.to(device))
    }

    // MARK: subsets and splits

    /// Samples `range` in order (a device copy).
    public func subset(_ range: Range<Int>) throws -> Dataset {
        guard range.lowerBound >= 0, range.upperBound <= count else {
            throw DataError.invalid("Dataset", reason: "has \(count) samples, no range \(range.lowerBound)..<\(range.upperBound)")
        }
        if let b = byteFeatures {
            return try Dataset(bytes: Array(b.bytes[(range.lowerBound * b.sampleSize)..<(range.upperBound * b.sampleSize)]),
                               shape: [range.count] + b.shape.dropFirst(), scale: b.scale, targets: targets.slice(range))
        }
        return try Dataset(unchecked: features.slice(range), targets: targets.slice(range))
    }

    /// The samples at `indices`, in that order (gathered on the device).
    public func subset(indices: [Int]) throws -> Dataset {
        if let bad = indices.first(where: { $0 < 0 || $0 >= count }) {
            throw DataError.invalid("Dataset", reason: "has \(count) samples, no sample \(bad)")
        }
        let index = Tensor(indices.map(Float.init), on: device)
        if let b = byteFeatures {
            return try Dataset(bytes: b.gather(indices), shape: [indices.count] + b.shape.dropFirst(), scale: b.scale,
                               targets: targets.gather(rows: index))
        }
        return try Dataset(unchecked: features.gather(rows: index), targets: targets.gather(rows: index))
    }

    /// The samples in a random order fixed by `seed`.
    public func shuffled(seed: UInt64) throws -> Dataset {
        try subset(indices: Dataset.permutation(count: count, seed: seed))
    }

    /// Two parts: the last `validationFraction` of the samples (after a seeded shuffle when `seed` is given)
    /// becomes the validation part.
    public func split(validationFraction: Double, seed: UInt64? = nil) throws -> (train: Dataset, validation: Dataset) {
        let parts = try split(fractions: [1 - validationFraction, validationFraction], seed: seed)
        return (parts[0], parts[1])
    }

    /// Three parts (train, validation, test) of the given fractions of the samples; the test part gets the rest.
    public func split(trainFraction: Double, validationFraction: Double, seed: UInt64? = nil) throws
        -> (train: Dataset, validation: Dataset, test: Dataset) {
        let parts = try split(fractions: [trainFraction, validationFraction, 1 - trainFraction - validationFraction], seed: seed)
        return (parts[0], parts[1], parts[2])
    }

    /// Consecutive parts with the given fractions (which must add up to 1); sizes are rounded so that every
    /// sample lands in exactly one part. With a `seed` the samples are shuffled first.
    public func split(fractions: [Double], seed: UInt64? = nil) throws -> [Dataset] {
        guard fractions.allSatisfy({ $0 >= 0 && $0 <= 1 }), Swift.abs(fractions.reduce(0, +) - 1) < 1e-9 else {
            throw DataError.invalid("Dataset.split", reason: "fractions \(fractions) must be in [0, 1] and add up to 1")
        }
        let order = seed.map { Dataset.permutation(count: count, seed: $0) } ?? Array(0..<count)
        var parts: [Dataset] = []
        var start = 0
        var cumulative = 0.0
        for (i, f) in fractions.enumerated() {
            cumulative += f
            let end = i == fractions.count - 1 ? count : Swift.min(count, Int((cumulative * Double(count)).rounded()))
            parts.append(try subset(indices: Array(order[start..<Swift.max(start, end)])))
            start = Swift.max(start, end)
        }
        return parts
    }

    // MARK: transforms

    /// The same targets with the features replaced by `transform(features)` (e.g. a fitted `Standardizer`);
    /// the new features are checked for NaN and infinite values like `init(features:targets:)`'s.
    public func mapFeatures(_ transform: (Tensor) throws -> Tensor) throws -> Dataset {
        try Dataset(features: withNoGrad { try transform(features) }, targets: targets)
    }

    /// The same features with the targets replaced by `transform(targets)` (checked for NaN and infinite values).
    public func mapTargets(_ transform: (Tensor) throws -> Tensor) throws -> Dataset {
        try withTargets(NonFiniteValues.refuse.applied(to: withNoGrad { try transform(targets) }, source: "Dataset.mapTargets", part: "targets"))
    }

    /// Class-number targets [N] turned into one-hot rows [N, classes] (on the device). The labels are read back
    /// once here and checked to be whole numbers in 0..<classes (an error names the first bad one and its position).
    public func oneHotTargets(classes: Int) throws -> Dataset {
        guard targets.rank == 1 else {
            throw DataError.invalid("Dataset.oneHotTargets", reason: "needs class numbers of shape [N], got \(targets.shape)")
        }
        guard classes > 0 else { throw DataError.invalid("Dataset.oneHotTargets", reason: "needs classes > 0, got \(classes)") }
        try checkIndices(targets.toArray(), in: 0..<classes, op: "Dataset.oneHotTargets", kind: "label")
        return try withTargets(targets.oneHot(classes: classes))
    }

    /// The same features (device or byte) with new targets.
    private func withTargets(_ newTargets: Tensor) throws -> Dataset {
        if let b = byteFeatures {
            guard newTargets.rank >= 1, newTargets.shape[0] == count, newTargets.device === device else {
                throw DataError.countMismatch("features \(b.shape)", "targets \(newTargets.shape)", count, newTargets.shape.first ?? 0)
            }
            return Dataset(byteFeatures: b, targets: newTargets)
        }
        return try Dataset(unchecked: features, targets: newTargets)
    }

    // MARK: batches

    /// The number of batches of `size` per epoch.
    public func batchCount(size: Int, dropLast: Bool = false) -> Int {
        dropLast ? count / size : (count + size - 1) / size
    }

    /// The batches of one epoch. With `shuffle`, the order is a permutation fixed by (`seed`, `epoch`): the same
    /// epoch always sees the same batches, which makes resumed training identical to uninterrupted training.
    /// Without a seed, a shuffle draws one from `Random.nextSeed()` (fixed by `Random.seed(_:)`).
    /// The last partial batch is kept unless `dropLast`.
    public func batches(size: Int, shuffle: Bool = false, seed: UInt64? = nil, epoch: Int = 0, dropLast: Bool = false) -> Batches {
        precondition(size > 0, "batch size must be positive, got \(size)")
        let hostOrder = shuffle ? Dataset.permutation(count: count, seed: Dataset.epochSeed(seed ?? Random.nextSeed(), epoch)) : nil
        let order = hostOrder.map { Tensor($0.map(Float.init), on: device) }
        return Batches(data: self, size: size, order: order, hostOrder: byteFeatures == nil ? nil : hostOrder, dropLast: dropLast)
    }

    /// One epoch's batches (a sequence; each batch is gathered when reached).
    public struct Batches: Sequence {
        let data: Dataset
        let size: Int
        /// The shuffled sample order as a device tensor [N], or nil for the stored order.
        let order: Tensor?
        /// The same order on the host, kept for byte features (whose rows are gathered on the host).
        let hostOrder: [Int]?
        let dropLast: Bool
        /// Data-parallel training: this rank's share of each batch (see `sharded(rank:of:)`), or nil for all of it.
        var shard: (rank: Int, ranks: Int)?
        /// The batches the iterator skips, without gathering them (`fit` resuming inside an epoch); `count` still
        /// counts them.
        var startBatch = 0

        /// The number of batches in the epoch.
        public var count: Int {
            let full = data.batchCount(size: size, dropLast: dropLast)
            guard let shard, !dropLast, full > 0, data.count - (full - 1) * size < shard.ranks else { return full }
            return full - 1   // a last batch with fewer samples than ranks is skipped
        }

        public func makeIterator() -> AnyIterator<Batch> {
            var globalStart = startBatch * size
            let n = data.count
            let shard = self.shard
            return AnyIterator {
                guard globalStart < n else { return nil }
                let globalEnd = Swift.min(globalStart + size, n)
                if dropLast && globalEnd - globalStart < size { return nil }
                defer { globalStart = globalEnd }
                var (start, end) = (globalStart, globalEnd)
                if let shard {
                    let b = globalEnd - globalStart
                    if b < shard.ranks { return nil }
                    (start, end) = (globalStart + b * shard.rank / shard.ranks, globalStart + b * (shard.rank + 1) / shard.ranks)
                }
                if let bytes = data.byteFeatures {
                    if let order, let hostOrder {
                        return Batch(features: bytes.rows(hostOrder[start..<end]), targets: try! data.targets.gather(rows: try! order.slice(start..<end)),
                                     range: start..<end)
                    }
                    return Batch(features: bytes.rows(start..<end), targets: try! data.targets.slice(start..<end), range: start..<end)
                }
                if let order {
                    let idx = try! order.slice(start..<end)
                    return Batch(features: try! data.features.gather(rows: idx), targets: try! data.targets.gather(rows: idx),
                                 range: start..<end)
                }
                return Batch(features: try! data.features.slice(start..<end), targets: try! data.targets.slice(start..<end),
                             range: start..<end)
            }
        }
    }

    /// One batch: features [B, ...] and targets [B, ...] on the data set's device.
    public struct Batch {
        /// The batch's features [B, ...].
        public let features: Tensor
        /// The batch's targets [B] or [B, ...].
        public let targets: Tensor
        /// The positions of this batch in the epoch's order.
        public let range: Range<Int>
        /// The number of samples in the batch, B.
        public var count: Int { range.count }
    }

    /// A permutation of 0..<count fixed by `seed` (Fisher-Yates with SplitMix64): the same on every machine.
    public static func permutation(count: Int, seed: UInt64) -> [Int] {
        var order = Array(0..<count)
        var rng = SeededGenerator(seed: seed)
        if count > 1 {
            for i in stride(from: count - 1, to: 0, by: -1) {
                let j = Int(rng.next() % UInt64(i + 1))
                order.swapAt(i, j)
            }
        }
        return order
    }

    /// The shuffle seed of one epoch.
    static func epochSeed(_ seed: UInt64, _ epoch: Int) -> UInt64 {
        var g = SeededGenerator(seed: seed ^ (UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15))
        return g.next()
    }
}

/// Features kept on the host as bytes, converted to Float (times `scale`) on the way to the device.
final class ByteFeatures {
    /// Row-major [N, ...].
    let bytes: [UInt8]
    let shape: [Int]
    let scale: Float
    let device: Device
    /// The whole Float tensor, made on the first `all()`.
    private var converted: Tensor?

    init(bytes: [UInt8], shape: [Int], scale: Float, device: Device) {
        self.bytes = bytes
        self.shape = shape
        self.scale = scale
        self.device = device
    }

    /// Values per sample.
    var sampleSize: Int { shape.dropFirst().reduce(1, *) }

    /// The bytes of the given samples, in that order.
    func gather(_ indices: [Int]) -> [UInt8] {
        let s = sampleSize
        return bytes.withUnsafeBufferPointer { src in
            [UInt8](unsafeUninitializedCapacity: indices.count * s) { out, initialized in
                for (k, r) in indices.enumerated() {
                    for j in 0..<s { out[k * s + j] = src[r * s + j] }
                }
                initialized = indices.count * s
            }
        }
    }

    /// The given samples as a Float tensor [rows.count, ...] on the device (one upload).
    func rows<C: Collection>(_ rows: C) -> Tensor where C.Element == Int {
        let s = sampleSize
        let out = Tensor.empty([rows.count] + shape.dropFirst(), on: device)
        let values = bytes.withUnsafeBufferPointer { src in
            [Float](unsafeUninitializedCapacity: rows.count * s) { dst, initialized in
                for (k, r) in rows.enumerated() {
                    for j in 0..<s { dst[k * s + j] = Float(src[r * s + j]) * scale }
                }
                initialized = rows.count * s
            }
        }
        out.assign(values)
        return out
    }

    /// All samples as one Float tensor on the device, converted in chunks (no full-size Float copy on the host).
    func all() -> Tensor {
        if let converted { return converted }
        let s = sampleSize, scale = scale
        let out = Tensor.empty(shape, on: device)
        bytes.withUnsafeBufferPointer { src in
            out.uploadRows(shape[0], rowSize: s) { rows, chunk in
                let base = rows.lowerBound * s
                for i in 0..<chunk.count { chunk[i] = Float(src[base + i]) * scale }
            }
        }
        converted = out
        return out
    }
}

extension Tensor {
    /// Fills this tensor, `rows` rows of `rowSize` values, from host data converted to Float in chunks of about
    /// 2^18 values, one upload each, so no full-size Float copy is made on the host: `convert(range, chunk)`
    /// writes the values of the rows in `range` into `chunk` (row-major, exactly `range.count · rowSize` values).
    /// Byte features (`Dataset(bytes:...)`) and IDX images of other element types (`MNIST`) upload through it.
    func uploadRows(_ rows: Int, rowSize: Int, _ convert: (Range<Int>, UnsafeMutableBufferPointer<Float>) -> Void) {
        precondition(rows * rowSize == count, "uploadRows: \(rows) rows of \(rowSize) values into shape \(shape)")
        let chunkRows = Swift.max(1, (1 << 18) / Swift.max(rowSize, 1))
        var chunk = [Float](repeating: 0, count: Swift.min(chunkRows, rows) * rowSize)
        var start = 0
        while start < rows {
            let end = Swift.min(start + chunkRows, rows)
            let n = (end - start) * rowSize
            chunk.withUnsafeMutableBufferPointer { c in
                convert(start..<end, UnsafeMutableBufferPointer(rebasing: c[0..<n]))
                upload(UnsafeBufferPointer(rebasing: c[0..<n]), at: start * rowSize)
            }
            start = end
        }
    }
}
