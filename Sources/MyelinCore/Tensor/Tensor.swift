import Foundation

/// Errors from tensor creation and ops. Each names the op and the shapes involved.
public enum TensorError: Error, CustomStringConvertible, Equatable {
    case shapeMismatch(op: String, String, [Int], [Int])
    case elementCount(expected: Int, got: Int, shape: [Int])
    case invalidShape(op: String, [Int], String)
    case invalidAxis(op: String, axis: Int, rank: Int)
    case deviceMismatch(op: String, String, String)
    case noGradient(String)

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
        }
    }
}

/// A float32, row-major, n-dimensional array that lives on a device.
///
/// Ops run on the tensor's device and leave their result there; nothing comes back to the host
/// until `toArray()` or `item()`.
///
/// ```swift
/// let x = try Tensor([1, 2, 3, 4], shape: [2, 2], on: .cpu)
/// let y = try (x.matmul(x) + 1).relu()
/// print(y.toArray())   // [8, 11, 16, 23]
/// ```
public final class Tensor: CustomStringConvertible {
    /// The size of each dimension; `[]` for a scalar.
    public let shape: [Int]
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

    init(shape: [Int], device: Device, buffer: DeviceBuffer, requiresGrad: Bool = false) {
        self.shape = shape
        self.device = device
        self.buffer = buffer
        self.requiresGrad = requiresGrad
    }

    /// A new tensor on `device` with uninitialized contents.
    package static func empty(_ shape: [Int], on device: Device) -> Tensor {
        let n = shape.reduce(1, *)
        return Tensor(shape: shape, device: device, buffer: device.backend.allocate(n))
    }

    /// The number of elements.
    public var count: Int { shape.reduce(1, *) }
    public var rank: Int { shape.count }
    var backend: Backend { device.backend }

    // MARK: creation

    /// A tensor with the given values (row-major) and shape.
    public convenience init(_ values: [Float], shape: [Int], on device: Device = .default, requiresGrad: Bool = false) throws {
        let n = shape.reduce(1, *)
        guard shape.allSatisfy({ $0 >= 0 }) else { throw TensorError.invalidShape(op: "Tensor", shape, "has a negative size") }
        guard values.count == n else { throw TensorError.elementCount(expected: n, got: values.count, shape: shape) }
        let buffer = device.backend.allocate(n)
        values.withUnsafeBufferPointer { device.backend.write($0, to: buffer, offset: 0) }
        self.init(shape: shape, device: device, buffer: buffer, requiresGrad: requiresGrad)
    }

    /// A one-dimensional tensor of the given values.
    public convenience init(_ values: [Float], on device: Device = .default, requiresGrad: Bool = false) {
        try! self.init(values, shape: [values.count], on: device, requiresGrad: requiresGrad)
    }

    /// A rank-0 tensor holding one value.
    public convenience init(scalar: Float, on device: Device = .default) {
        try! self.init([scalar], shape: [], on: device)
    }

    /// A tensor of the given shape filled with `value`.
    public static func full(_ shape: [Int], _ value: Float, on device: Device = .default) -> Tensor {
        let t = empty(shape, on: device)
        device.backend.fill(t.buffer, value: value, offset: 0, count: t.count)
        return t
    }

    public static func zeros(_ shape: [Int], on device: Device = .default) -> Tensor { full(shape, 0, on: device) }
    public static func ones(_ shape: [Int], on device: Device = .default) -> Tensor { full(shape, 1, on: device) }

    /// Uniform random values in [low, high), from `seed`: the same tensor on every device.
    public static func uniform(_ shape: [Int], low: Float = 0, high: Float = 1, seed: UInt64,
                               on device: Device = .default) -> Tensor {
        var rng = SeededGenerator(seed: seed)
        let values = (0..<shape.reduce(1, *)).map { _ in Float(Double(low) + (Double(high) - Double(low)) * rng.nextDouble()) }
        return try! Tensor(values, shape: shape, on: device)
    }

    /// Normal random values with the given mean and standard deviation, from `seed`: the same tensor on every device.
    public static func normal(_ shape: [Int], mean: Float = 0, std: Float = 1, seed: UInt64,
                              on device: Device = .default) -> Tensor {
        var rng = SeededGenerator(seed: seed)
        let values = (0..<shape.reduce(1, *)).map { _ in Float(Double(mean) + Double(std) * rng.nextGaussian()) }
        return try! Tensor(values, shape: shape, on: device)
    }

    /// Uniform values in [0, 1) made on the device itself from a counter-based generator (no upload):
    /// the same bits on every device for the same seed. Dropout masks use this.
    public static func deviceUniform(_ shape: [Int], seed: UInt64, on device: Device = .default) -> Tensor {
        let t = empty(shape, on: device)
        device.backend.randomUniform(out: t.buffer, count: t.count, seed: seed)
        return t
    }

    // MARK: reading back and moving

    /// Copies the values to the host (waits for the device).
    public func toArray() -> [Float] {
        let n = count
        guard n > 0 else { return [] }
        return [Float](unsafeUninitializedCapacity: n) { buf, initialized in
            backend.read(buffer, offset: 0, count: n, into: buf)
            initialized = n
        }
    }

    /// The single value of a one-element tensor (waits for the device).
    public func item() -> Float {
        precondition(count == 1, "item() needs a tensor of one element, this one has shape \(shape)")
        return toArray()[0]
    }

    /// This tensor on another device (a copy; the same tensor when it is already there).
    /// The copy is a leaf that keeps `requiresGrad`.
    public func to(_ target: Device) -> Tensor {
        if target === device { return self }
        let out = try! Tensor(toArray(), shape: shape, on: target)
        out.requiresGrad = requiresGrad
        return out
    }

    /// A copy on the same device that is not part of any graph.
    public func copy() -> Tensor {
        let out = Tensor.empty(shape, on: device)
        backend.copy(buffer, sourceOffset: 0, to: out.buffer, destinationOffset: 0, count: count)
        return out
    }

    public var description: String {
        let values = count <= 64 ? toArray().map { String(format: "%g", $0) }.joined(separator: ", ") : "\(count) values"
        return "Tensor(shape: \(shape), device: \(device.name), [\(values)])"
    }

    package func checkSameDevice(_ other: Tensor, _ op: String) throws {
        guard other.device === device else { throw TensorError.deviceMismatch(op: op, device.name, other.device.name) }
    }
}

/// A small seeded generator (SplitMix64): the same sequence on every machine.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    public var state: UInt64
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
