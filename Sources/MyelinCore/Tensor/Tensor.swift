import Foundation

/// Errors from tensor creation and ops. Each names the op and the shapes involved.
public enum TensorError: Error, CustomStringConvertible, Equatable {
    /// The two shapes given to `op` do not fit together (do not broadcast, inner dimensions differ, ...);
    /// the text says how.
    case shapeMismatch(op: String, String, [Int], [Int])
    /// Creating a tensor of `shape` needs `expected` values; `got` were given.
    case elementCount(expected: Int, got: Int, shape: [Int])
    /// `op` cannot take a tensor of this shape (wrong rank, empty, negative size, ...); the text says why.
    case invalidShape(op: String, [Int], String)
    /// `axis` does not exist in a tensor of rank `rank`.
    case invalidAxis(op: String, axis: Int, rank: Int)
    /// `op` was given tensors on two devices (their names); move one with `Tensor.to(_:)`.
    case deviceMismatch(op: String, String, String)
    /// `backward()` cannot run (no input requires a gradient, a graph already freed, an op without a
    /// gradient such as `step()`); the text says why.
    case noGradient(String)
    /// An index or label read from host data that is not a whole number in `range` (`kind` says which:
    /// "label", "row index"); `position` is where it sits in the data.
    case indexOutOfRange(op: String, kind: String, value: Double, position: Int, range: Range<Int>)

    public var description: String {
        switch self {
        case .shapeMismatch(let op, let why, let a, let b):
            return "\(op): shapes \(a) and \(b) \(why)"
        case .elementCount(let expected, let got, let shape):
            return "shape \(shape) needs \(expected) elements, got \(got)"
        case .invalidShape(let op, let shape, let why):
            return "\(op): shape \(shape) \(why)"
        case .invalidAxis(let op, let axis, let rank):
            return "\(op): axis \(axis) is out of range for a tensor of rank \(rank)"
        case .deviceMismatch(let op, let a, let b):
            return "\(op): tensors are on different devices (\(a) and \(b)); move one with to(_:)"
        case .noGradient(let why):
            return why
        case .indexOutOfRange(let op, let kind, let value, let position, let range):
            let shown = value.rounded() == value && Swift.abs(value) < 1e15 ? String(Int64(value)) : "\(value)"
            return "\(op): \(kind) \(shown) at position \(position) is not a whole number in \(range.lowerBound)..<\(range.upperBound)"
        }
    }
}

/// A float32, row-major, n-dimensional array that lives on a device.
///
/// Ops run on the tensor's device and leave their result there; nothing comes back to the host
/// until `toArray()`, `toArray2D()`, `toShapedArray()` or `item()`.
///
/// ```swift
/// let x = try Tensor([1, 2, 3, 4], shape: [2, 2], on: .cpu)
/// let y = try (x.matmul(x) + 1).relu()
/// print(y.toArray())            // [8, 11, 16, 23]
/// print(try y.toArray2D())      // [[8, 11], [16, 23]]
/// ```
///
/// **Which calls throw.** An op throws exactly when its inputs can fail to fit together, and then it throws a
/// `TensorError` naming the op and the shapes:
/// - every op on two or more tensors (`+ - * /` between tensors, `matmul`, `pow(_: Tensor)`, `maximum(_: Tensor)`,
///   comparisons with a tensor, `concat`, `gather`): shapes that do not broadcast or fit, different devices;
/// - every op with an axis, a range, a target shape or a rank requirement: `reshaped`, `sum(axis:)`,
///   `mean(axis:)`, `max(axis:)`, `slice`, `broadcast(to:)`, `transposed()`, `matmul`, `im2col`, `oneHot`;
/// - reads that need a particular shape: `item()` (one element), `toArray2D()` (rank 2);
/// - `max()`, `min()` and `argmax()`, which have nothing to return for an empty tensor (or an empty last axis);
/// - creation that checks values against a shape or a range: `Tensor(_:shape:)`, `Tensor(labels:classes:)`.
///
/// Calls that cannot fail for any tensor do not throw: unary elementwise ops and activations, ops with a
/// `Float` scalar (`x * 2`, `1 - x`, `x.greater(0.5)`), `sum()`, `mean()`, `softmax()`, `logSoftmax()`,
/// `flattened()`, `copy()`, `to(_:)`, `toArray()`, `toShapedArray()`, and creation from values alone
/// (`Tensor(_:)`, `Tensor(scalar:)`) or from a shape (`zeros`, `ones`, `full`, `uniform`, `normal`; a negative
/// size there is a programming error and stops the program, like `Array(repeating:count:)`, and so does a shape too
/// large for the device, with a message saying how much it needs and how much there is: for sizes read from data
/// or a command line, create with `Tensor(shape:repeating:on:)` or `Initializer.make`, which throw, or check first
/// with `Device.checkAllocation(shape:for:)`).
///
/// **Memory.** Every op that throws allocates its result through a check: a result the device cannot hold (for the
/// CPU: past the host's free memory, the cgroup's limit or `ulimit -v`), or that the system refuses, is a thrown
/// `DeviceError` naming the op and the shape (`matmul` of [1048576, 1] and [1, 1048576] needs 4.0 TiB, ...).
public final class Tensor: CustomStringConvertible {
    /// The size of each dimension; `[]` for a scalar.
    public let shape: [Int]
    /// The device that holds the values and runs the ops on this tensor.
    public let device: Device
    let buffer: DeviceBuffer

    // Autograd state (see Autograd.swift).
    /// Whether ops on this tensor record a graph for `backward()`.
    // The three autograd fields skip Swift's dynamic exclusivity checks (about 80 instructions per access,
    // ~50 accesses per XOR training step). Every access is a whole-value load or store with no inout access
    // overlapping it, and a graph is built and walked by one thread at a time.
    @exclusivity(unchecked) public var requiresGrad: Bool
    /// The accumulated gradient of a leaf after `backward()`.
    @exclusivity(unchecked) public package(set) var grad: Tensor?
    @exclusivity(unchecked) var node: GradNode?
    /// A class count these values were checked against on the host (whole numbers in 0..<labelClasses): set for
    /// vectors made from host values (`Tensor(_:)`, `Tensor(_:shape:)` of rank 1), by `Tensor(labels:classes:)`, a
    /// `Dataset` given `classes:`, the MNIST loaders and `checkLabels`, and carried by `copy()`, `to(_:)`, `slice`,
    /// `gather(rows:)` and `detach()`. The label losses skip their host read when it is at most their class count.
    @exclusivity(unchecked) package var labelClasses: Int?
    /// The class count a label loss last checked these values against (`checkLabels`): a captured step re-checks each
    /// batch it replays against it.
    @exclusivity(unchecked) package var labelLossClasses: Int?

    init(shape: [Int], device: Device, buffer: DeviceBuffer, requiresGrad: Bool = false) {
        self.shape = shape
        self.device = device
        self.buffer = buffer
        self.requiresGrad = requiresGrad
    }

    /// A new tensor on `device` with uninitialized contents.
    package static func empty(_ shape: [Int], on device: Device) -> Tensor {
        let n = requireElementCount(shape)
        return Tensor(shape: shape, device: device, buffer: device.backend.allocate(n))
    }

    /// The element count of `shape`; stops the program with a clear message for a negative size or a count that
    /// overflows (the non-throwing creators; a size from untrusted input is checked with
    /// `Device.checkAllocation(shape:for:)` first).
    @inline(__always) static func requireElementCount(_ shape: [Int]) -> Int {
        // Fast path (every tensor creation): the product with overflow detection, no closures or messages.
        var n = 1
        for d in shape {
            let (p, overflow) = n.multipliedReportingOverflow(by: d)
            if d < 0 || overflow { elementCountFailure(shape) }
            n = p
        }
        return n
    }

    /// Stops the program naming the shape: a negative size, or more elements than an `Int` holds.
    static func elementCountFailure(_ shape: [Int]) -> Never {
        precondition(shape.allSatisfy { $0 >= 0 }, "a tensor shape cannot have a negative size, got \(shape)")
        preconditionFailure("a tensor of shape \(shape) has more elements than a 64-bit count can hold")
    }

    /// The number of elements.
    public var count: Int { shape.reduce(1, *) }
    /// The number of dimensions (`shape.count`); 0 for a scalar.
    public var rank: Int { shape.count }
    var backend: Backend { device.backend }

    // MARK: creation

    /// A tensor with the given values (row-major) and shape.
    public convenience init(_ values: [Float], shape: [Int], on device: Device = .default, requiresGrad: Bool = false) throws {
        guard shape.allSatisfy({ $0 >= 0 }) else { throw TensorError.invalidShape(op: "Tensor", shape, "has a negative size") }
        guard let n = checkedElementCount(shape) else {
            throw TensorError.invalidShape(op: "Tensor", shape, "has more elements than a 64-bit count can hold")
        }
        guard values.count == n else { throw TensorError.elementCount(expected: n, got: values.count, shape: shape) }
        // Large ones against the device's memory (and the process's limits) first: an error, not a stop in allocate.
        let buffer = try Tensor.checkedEmpty(shape, on: device, op: "Tensor(_:shape:)").buffer
        values.withUnsafeBufferPointer { device.backend.write($0, to: buffer, offset: 0) }
        self.init(shape: shape, device: device, buffer: buffer, requiresGrad: requiresGrad)
        if shape.count == 1 { labelClasses = Self.labelBound(values) }
    }

    /// A one-dimensional tensor of the given values (cannot fail, so it does not throw).
    public convenience init(_ values: [Float], on device: Device = .default, requiresGrad: Bool = false) {
        self.init(checkedValues: values, shape: [values.count], on: device, requiresGrad: requiresGrad)
        labelClasses = Self.labelBound(values)
    }

    /// For host values of a vector (what class labels are): 1 + the largest value when every value is a whole
    /// number >= 0 (so they are labels for that many classes or more), else nil. One pass on the host, beside the
    /// upload; the label losses then check such a tensor without reading it back.
    static func labelBound(_ values: [Float]) -> Int? {
        var largest: Float = 0
        for v in values {
            guard v >= 0, v < 16_777_216, v.rounded(.towardZero) == v else { return nil }
            largest = Swift.max(largest, v)
        }
        return Int(largest) + 1
    }

    /// A rank-0 tensor holding one value.
    public convenience init(scalar: Float, on device: Device = .default) {
        self.init(checkedValues: [scalar], shape: [], on: device, requiresGrad: false)
    }

    /// Whole-number class labels [N] (stored as Float, as `softmaxCrossEntropy(logits:labels:)`, `accuracy`
    /// and `oneHot` read them), each checked on the host to be in 0..<classes before the one upload.
    /// The tensor carries the check (see `labelClasses`): the label losses read back labels made any other way.
    ///
    /// ```swift
    /// let labels = try Tensor(labels: [3, 0, 9], classes: 10)      // [3]
    /// try Tensor(labels: [3, 10], classes: 10)   // throws: label 10 at position 1 is not a whole number in 0..<10
    /// ```
    public convenience init(labels: [Int], classes: Int, on device: Device = .default) throws {
        guard classes > 0 else { throw TensorError.invalidShape(op: "Tensor(labels:classes: \(classes))", [labels.count], "needs classes > 0") }
        try checkIndices(labels, in: 0..<classes, op: "Tensor(labels:classes:)", kind: "label")
        self.init(checkedValues: labels.map(Float.init), shape: [labels.count], on: device, requiresGrad: false)
        labelClasses = classes
    }

    /// Values already known to fill `shape`.
    private convenience init(checkedValues values: [Float], shape: [Int], on device: Device, requiresGrad: Bool) {
        let buffer = device.backend.allocate(values.count)
        values.withUnsafeBufferPointer { device.backend.write($0, to: buffer, offset: 0) }
        self.init(shape: shape, device: device, buffer: buffer, requiresGrad: requiresGrad)
    }

    /// A tensor of the given shape filled with `value`.
    public static func full(_ shape: [Int], _ value: Float, on device: Device = .default) -> Tensor {
        let t = empty(shape, on: device)
        device.backend.fill(t.buffer, value: value, offset: 0, count: t.count)
        return t
    }

    /// A tensor of the given shape filled with 0: `Tensor.zeros([2, 3])`.
    public static func zeros(_ shape: [Int], on device: Device = .default) -> Tensor { full(shape, 0, on: device) }
    /// A tensor of the given shape filled with 1: `Tensor.ones([2, 3])`.
    public static func ones(_ shape: [Int], on device: Device = .default) -> Tensor { full(shape, 1, on: device) }

    /// Uniform random values in [low, high), from `seed`: the same tensor on every device. Without a seed,
    /// one is drawn from the process-wide sequence that `Random.seed(_:)` resets (like `torch.rand`).
    public static func uniform(_ shape: [Int], low: Float = 0, high: Float = 1, seed: UInt64? = nil,
                               on device: Device = .default) -> Tensor {
        drawn(shape, seed: seed, on: device) { Float(Double(low) + (Double(high) - Double(low)) * $0.nextDouble()) }
    }

    /// Normal random values with the given mean and standard deviation, from `seed`: the same tensor on every
    /// device. Without a seed, one is drawn from the sequence that `Random.seed(_:)` resets (like `torch.randn`).
    public static func normal(_ shape: [Int], mean: Float = 0, std: Float = 1, seed: UInt64? = nil,
                              on device: Device = .default) -> Tensor {
        drawn(shape, seed: seed, on: device) { Float(Double(mean) + Double(std) * $0.nextGaussian()) }
    }

    /// A tensor of values drawn on the host by `next` from `seed`'s generator, in row-major order, and written to
    /// the device in blocks of at most 64 MiB (no host copy of the whole tensor). A tensor the device cannot hold
    /// is left without memory (the refusal is the device's failure, thrown at the next check) and draws nothing.
    private static func drawn(_ shape: [Int], seed: UInt64?, on device: Device,
                              _ next: (inout SeededGenerator) -> Float) -> Tensor {
        var rng = SeededGenerator(seed: seed ?? Random.nextSeed())
        let t = empty(shape, on: device)
        guard t.buffer.handle != nil else { return t }
        inHostBlocks(t.count) { offset, block in
            for i in block.indices { block[i] = next(&rng) }
            device.backend.write(UnsafeBufferPointer(block), to: t.buffer, offset: offset)
        }
        return t
    }

    /// Calls body(offset, block) for consecutive blocks of `count` elements, each at most 64 MiB of Floats, with
    /// one host staging buffer for all of them: how values too large for one host copy move.
    static func inHostBlocks(_ count: Int, _ body: (Int, UnsafeMutableBufferPointer<Float>) -> Void) {
        let size = Swift.min(count, Device.requireAllocatableThreshold / 4)
        guard size > 0 else { return }
        var staging = [Float](repeating: 0, count: size)
        staging.withUnsafeMutableBufferPointer { all in
            var done = 0
            while done < count {
                let k = Swift.min(size, count - done)
                body(done, UnsafeMutableBufferPointer(rebasing: all[0..<k]))
                done += k
            }
        }
    }

    /// Uniform values in [0, 1) made on the device itself from a counter-based generator (no upload):
    /// the same bits on every device for the same seed. Dropout masks use this. Without a seed, one is drawn
    /// from the sequence that `Random.seed(_:)` resets.
    public static func deviceUniform(_ shape: [Int], seed: UInt64? = nil, on device: Device = .default) -> Tensor {
        let t = empty(shape, on: device)
        device.backend.randomUniform(out: t.buffer, count: t.count, seed: seed ?? Random.nextSeed())
        return t
    }

    // MARK: reading back and moving

    /// Copies the values to the host, flat in row-major order whatever the rank (waits for the device).
    /// `toArray2D()` and `toShapedArray()` keep the shape. Throws `DeviceError.outOfMemory` for a copy of 64 MiB
    /// or more that the host cannot hold (`ulimit -v`, the cgroup, the free memory), naming the shape, the bytes
    /// and the limits; and, like `item()`, the device's failure since the last check (an allocation the device
    /// refused, which left a tensor without memory and skipped the ops that use it; an OpenCL command the driver
    /// refused), so values computed after it are never returned as if they were good.
    ///
    /// ```swift
    /// try Tensor([1, 2, 3]).toArray()                 // [1.0, 2.0, 3.0]
    /// try Tensor.zeros([1 << 40], on: .cpu).toArray() // throws: cpu: a buffer of 1099511627776 Float elements needs 4.0 TiB, ...
    /// ```
    public func toArray() throws -> [Float] { try checkedArray(op: "toArray()") }

    /// The values on the host (waits for the device), for what cannot throw (`description`, a failure reported
    /// by its caller): a buffer without memory reads as NaN, and the device's failure stays kept for the next
    /// check. The caller makes sure the host can hold the copy.
    func hostValues() -> [Float] {
        let n = count
        guard n > 0 else { return [] }
        return [Float](unsafeUninitializedCapacity: n) { buf, initialized in
            backend.read(buffer, offset: 0, count: n, into: buf)
            initialized = n
        }
    }

    /// The rows of a rank-2 tensor [rows, columns] (waits for the device); throws for any other rank.
    ///
    /// ```swift
    /// try Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3]).toArray2D()   // [[1, 2, 3], [4, 5, 6]]
    /// ```
    public func toArray2D() throws -> [[Float]] {
        guard rank == 2 else { throw TensorError.invalidShape(op: "toArray2D", shape, "is not rank 2 (use toArray() or toShapedArray())") }
        let values = try toArray(), columns = shape[1]
        return (0..<shape[0]).map { r in Array(values[(r * columns)..<((r + 1) * columns)]) }
    }

    /// The values and the shape together, for any rank (waits for the device).
    ///
    /// ```swift
    /// let a = try Tensor.ones([2, 3, 4]).toShapedArray()
    /// a.shape        // [2, 3, 4]
    /// a[1, 2, 3]     // 1.0
    /// ```
    public func toShapedArray() throws -> ShapedArray { ShapedArray(shape: shape, values: try toArray()) }

    /// The single value of a one-element tensor (waits for the device), like PyTorch's `item()`; throws for a
    /// tensor of any other element count, naming its shape, and throws `DeviceError.commandFailed` when a device
    /// command failed since the last check (see `Device.check()`).
    public func item() throws -> Float {
        guard count == 1 else {
            throw TensorError.invalidShape(op: "item", shape, "has \(count) elements, item() needs exactly one (use toArray() to read them all)")
        }
        var value: Float = 0
        withUnsafeMutablePointer(to: &value) { backend.read(buffer, offset: 0, count: 1, into: UnsafeMutableBufferPointer(start: $0, count: 1)) }
        // A command the device refused earlier leaves this value untrustworthy: throw it here.
        if let failure = backend.takeFailure() { throw failure }
        return value
    }

    /// This tensor on another device (a copy; the same tensor when it is already there).
    /// The copy is a leaf that keeps `requiresGrad`. The values travel through the host in blocks of at most
    /// 64 MiB, so a tensor larger than the host's free memory moves too.
    public func to(_ target: Device) -> Tensor {
        if target === device { return self }
        let out = Tensor.empty(shape, on: target)
        Tensor.inHostBlocks(count) { offset, block in
            backend.read(buffer, offset: offset, count: block.count, into: block)
            target.backend.write(UnsafeBufferPointer(block), to: out.buffer, offset: offset)
        }
        out.requiresGrad = requiresGrad
        out.labelClasses = labelClasses
        return out
    }

    /// A copy on the same device that is not part of any graph.
    public func copy() -> Tensor {
        let out = Tensor.empty(shape, on: device)
        backend.copy(buffer, sourceOffset: 0, to: out.buffer, destinationOffset: 0, count: count)
        out.labelClasses = labelClasses
        return out
    }

    public var description: String {
        let values = count <= 64 ? hostValues().map { String(format: "%g", $0) }.joined(separator: ", ") : "\(count) values"
        return "Tensor(shape: \(shape), device: \(device.name), [\(values)])"
    }

    package func checkSameDevice(_ other: Tensor, _ op: String) throws {
        guard other.device === device else { throw TensorError.deviceMismatch(op: op, device.name, other.device.name) }
    }
}

/// A tensor's values read back to the host with its shape (`Tensor.toShapedArray()`): row-major `values`
/// and a subscript by position.
///
/// ```swift
/// let a = try Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3]).toShapedArray()
/// a[1, 0]      // 4.0
/// a.values     // [1, 2, 3, 4, 5, 6]
/// ```
public struct ShapedArray: Equatable, Sendable, CustomStringConvertible {
    /// The size of each dimension; `[]` for a scalar.
    public let shape: [Int]
    /// Every value, row-major; `values.count` is the product of `shape`.
    public let values: [Float]

    /// The number of dimensions (`shape.count`).
    public var rank: Int { shape.count }

    /// The value at one position (one index per dimension, each in 0..<its size; out of range stops the
    /// program, like an array subscript).
    public subscript(_ position: Int...) -> Float {
        precondition(position.count == shape.count, "ShapedArray of shape \(shape) needs \(shape.count) indices, got \(position)")
        var flat = 0
        for (i, p) in position.enumerated() {
            precondition(p >= 0 && p < shape[i], "index \(p) is out of range for dimension \(i) of shape \(shape)")
            flat = flat * shape[i] + p
        }
        return values[flat]
    }

    public var description: String { "ShapedArray(shape: \(shape), \(values))" }
}

/// Checks host indices (row numbers, class labels) before they are uploaded: each must be in `range`.
package func checkIndices(_ indices: [Int], in range: Range<Int>, op: String, kind: String) throws {
    if let i = indices.firstIndex(where: { !range.contains($0) }) {
        throw TensorError.indexOutOfRange(op: op, kind: kind, value: Double(indices[i]), position: i, range: range)
    }
}

extension Tensor {
    /// Checks that these are class labels for `classes` classes (whole numbers in 0..<classes), throwing
    /// `TensorError.indexOutOfRange` naming the first bad label, its position and the range. Free for labels checked
    /// on the host when made; others are read back once here (a host read) and then marked checked, so the label
    /// losses skip their check for this tensor and for the batches gathered, sliced or copied from it. Call it once
    /// on labels loaded another way (a raw file, an op) before training on batches of them.
    ///
    /// ```swift
    /// let labels = try Tensor.load(float32File: url, shape: [60000])
    /// try labels.checkLabels(classes: 10)   // one read back; batches gathered from it need none
    /// ```
    public func checkLabels(classes: Int, op: String = "labels") throws {
        labelLossClasses = classes
        if let c = labelClasses, c <= classes { return }
        try checkIndices(toArray(), in: 0..<classes, op: op, kind: "label")
        labelClasses = classes
    }
}

/// Checks host indices stored as Float: each must be a whole number in `range`.
package func checkIndices(_ indices: [Float], in range: Range<Int>, op: String, kind: String) throws {
    let low = Float(range.lowerBound), high = Float(range.upperBound)
    if let i = indices.firstIndex(where: { !($0 >= low && $0 < high && $0.rounded() == $0) }) {
        throw TensorError.indexOutOfRange(op: op, kind: kind, value: Double(indices[i]), position: i, range: range)
    }
}

/// The process-wide source of seeds for everything that is random without an explicit `seed:`: layer
/// weights (`Initializer.nextSeed()`), dropout masks, `fit`'s shuffling, `Tensor.uniform`/`normal`/`deviceUniform`.
/// `Random.seed(_:)` resets it (like `torch.manual_seed` or Keras's `set_random_seed`): after it, the same program
/// builds the same weights and sees the same batches. An explicit `seed:` argument never draws from it. A process
/// starts as if `Random.seed(0x5EED)` had been called, so runs are reproducible even without it.
///
/// ```swift
/// Random.seed(42)
/// let a = Dense(inputSize: 4, outputSize: 3)
/// Random.seed(42)
/// let b = Dense(inputSize: 4, outputSize: 3)   // the same weights as a
/// ```
///
/// `Random.withSeed(_:_:)` runs a body with a sequence of its own (like `torch.random.fork_rng` followed by
/// `manual_seed`): what the body draws is fixed by the seed alone, whatever other tasks draw at the same time, and
/// the process-wide sequence is left where it was.
public enum Random {
    /// A sequence of seeds: the process-wide one, or one private to a `withSeed` scope (its task and the tasks it
    /// starts).
    final class SeedSequence: @unchecked Sendable {
        private let lock = NSLock()
        private var counter: UInt64
        init(seed: UInt64) { counter = seed }
        func restart(_ seed: UInt64) {
            lock.lock(); defer { lock.unlock() }
            counter = seed
        }
        func draw() -> UInt64 {
            lock.lock(); defer { lock.unlock() }
            var g = SeededGenerator(seed: counter)
            counter &+= 1
            return g.next()
        }
    }
    /// The process-wide sequence.
    private static let processWide = SeedSequence(seed: 0x5EED)
    /// The sequence of the innermost `withSeed` scope, if any.
    @TaskLocal static var scope: SeedSequence?
    /// The sequence that draws and restarts here: the scope's, else the process-wide one.
    private static var current: SeedSequence { scope ?? processWide }

    /// Restarts the sequence of seeds from `seed`. Inside `withSeed`, restarts that scope's sequence instead.
    public static func seed(_ seed: UInt64) { current.restart(seed) }

    /// Runs `body` with a sequence of seeds of its own, started from `seed`: layers built, dropout masks and
    /// shuffles inside it draw only from that sequence, so two runs of the same body with the same seed agree even
    /// while other threads draw from the process-wide sequence. The process-wide sequence does not advance.
    ///
    /// ```swift
    /// let a = Random.withSeed(42) { Dense(inputSize: 4, outputSize: 3) }
    /// let b = Random.withSeed(42) { Dense(inputSize: 4, outputSize: 3) }   // the same weights as a
    /// ```
    public static func withSeed<T>(_ seed: UInt64, _ body: () throws -> T) rethrows -> T {
        try $scope.withValue(SeedSequence(seed: seed)) { try body() }
    }

    /// The next seed of the sequence (each call gives a new one).
    public static func nextSeed() -> UInt64 {
        let seed = draw()
        // Inside a step capture, a replay draws this seed again (see `CaptureHooks.noteSeed`).
        if let recorder = CaptureRecorder.current { recorder.noteSeed(seed) { Random.draw() } }
        return seed
    }

    private static func draw() -> UInt64 { current.draw() }
}

/// A small seeded generator (SplitMix64): the same sequence on every machine.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    /// The generator's whole state; advanced by a fixed step at each `next()`.
    public var state: UInt64
    /// A generator whose sequence is fixed by `seed`: `var g = SeededGenerator(seed: 1); let u = g.nextDouble()`.
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [0, 1) with 53 bits.
    public mutating func nextDouble() -> Double { Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0) }
    /// Standard normal by Box-Muller.
    public mutating func nextGaussian() -> Double {
        let u1 = max(nextDouble(), 1e-300), u2 = nextDouble()
        return (-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2)
    }
}
