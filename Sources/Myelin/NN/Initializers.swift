import Foundation

/// How a layer fills a new weight or bias tensor. Random initializers are seeded and draw on the host
/// (`Tensor.uniform` / `Tensor.normal`), so the same seed gives the same values on every device.
///
/// Fan-in and fan-out come from the shape: a dense weight [in, out] has fanIn = in, fanOut = out (`Dense` draws its weight [in, out] and stores the transpose);
/// a convolution weight [out, in, kh, kw] has fanIn = in·kh·kw, fanOut = out·kh·kw; a vector [n] has both = n.
///
/// ```swift
/// let w = Initializer.heNormal.make([784, 128], seed: 42, on: .cpu)
/// ```
public enum Initializer: Equatable, Sendable, CustomStringConvertible {
    /// Uniform in [low, high). `.uniform(low: 0, high: 1)` is the numpy labs' `np.random.rand`.
    case uniform(low: Float, high: Float)
    /// Normal with the given mean and standard deviation.
    case normal(mean: Float, std: Float)
    /// Glorot/Xavier uniform: U(-a, a) with a = sqrt(6 / (fanIn + fanOut)).
    case xavierUniform
    /// Glorot/Xavier normal: N(0, sqrt(2 / (fanIn + fanOut))).
    case xavierNormal
    /// He/Kaiming uniform (fan-in, ReLU gain √2): U(-a, a) with a = sqrt(6 / fanIn).
    case heUniform
    /// He/Kaiming normal (fan-in, ReLU gain √2): N(0, sqrt(2 / fanIn)).
    case heNormal
    /// LeCun normal (for SELU networks): N(0, sqrt(1 / fanIn)).
    case lecunNormal
    /// All zeros.
    case zeros
    /// Every element `value`.
    case constant(Float)
    /// These exact values, row-major in the order the tensor is stored; the count must match the shape. A `Dense`
    /// weight takes them as [outputSize, inputSize] (PyTorch's `nn.Linear.weight` layout: pass
    /// `linear.weight.flatten().tolist()`), a `Conv2D` weight as [out, in, kh, kw].
    case array([Float])

    public var description: String {
        switch self {
        case .uniform(let l, let h): return "uniform(\(l), \(h))"
        case .normal(let m, let s): return "normal(\(m), \(s))"
        case .xavierUniform: return "xavierUniform"
        case .xavierNormal: return "xavierNormal"
        case .heUniform: return "heUniform"
        case .heNormal: return "heNormal"
        case .lecunNormal: return "lecunNormal"
        case .zeros: return "zeros"
        case .constant(let v): return "constant(\(v))"
        case .array(let a): return "array(\(a.count) values)"
        }
    }

    /// (fanIn, fanOut) of a weight shape: [in, out] for dense weights, [out, in, k...] for convolutions.
    public static func fans(_ shape: [Int]) -> (fanIn: Int, fanOut: Int) {
        switch shape.count {
        case 0: return (1, 1)
        case 1: return (shape[0], shape[0])
        case 2: return (shape[0], shape[1])
        default:
            let receptive = shape[2...].reduce(1, *)
            return (shape[1] * receptive, shape[0] * receptive)
        }
    }

    /// A new tensor of `shape` on `device`, filled by this initializer from `seed`.
    /// `fans` overrides the fan-in/fan-out read from the shape.
    public func make(_ shape: [Int], seed: UInt64, fans: (fanIn: Int, fanOut: Int)? = nil,
                     on device: Device = .default) throws -> Tensor {
        // Sizes first: a shape too large for the device (or for the host, where values are drawn) is an error
        // here, not a crash in an allocation.
        let what = "Initializer.\(self) of shape \(shape)"
        try device.checkAllocation(shape: shape, for: what)
        if device !== Device.cpu, !isFilledOnDevice {
            try Device.cpu.checkAllocation(shape: shape, for: what + " (drawn on the host)")
        }
        let (fanIn, fanOut) = fans ?? Initializer.fans(shape)
        let fi = Double(Swift.max(fanIn, 1)), fo = Double(Swift.max(fanOut, 1))
        switch self {
        case .uniform(let low, let high):
            guard high >= low else {
                throw TensorError.invalidShape(op: "Initializer.uniform(\(low), \(high))", shape, "needs low <= high")
            }
            return Tensor.uniform(shape, low: low, high: high, seed: seed, on: device)
        case .normal(let mean, let std):
            return Tensor.normal(shape, mean: mean, std: std, seed: seed, on: device)
        case .xavierUniform:
            let a = Float((6 / (fi + fo)).squareRoot())
            return Tensor.uniform(shape, low: -a, high: a, seed: seed, on: device)
        case .xavierNormal:
            return Tensor.normal(shape, mean: 0, std: Float((2 / (fi + fo)).squareRoot()), seed: seed, on: device)
        case .heUniform:
            let a = Float((6 / fi).squareRoot())
            return Tensor.uniform(shape, low: -a, high: a, seed: seed, on: device)
        case .heNormal:
            return Tensor.normal(shape, mean: 0, std: Float((2 / fi).squareRoot()), seed: seed, on: device)
        case .lecunNormal:
            return Tensor.normal(shape, mean: 0, std: Float((1 / fi).squareRoot()), seed: seed, on: device)
        case .zeros:
            return Tensor.zeros(shape, on: device)
        case .constant(let v):
            return Tensor.full(shape, v, on: device)
        case .array(let values):
            return try Tensor(values, shape: shape, on: device)
        }
    }

    /// `body`'s tensor, for a layer's initializer (which cannot throw): when `body` throws a `DeviceError` (a size
    /// the device or the host cannot hold), the error is kept as `device`'s failure, thrown at the next
    /// `Device.check()`, `toArray()` or `item()` (`fit` checks after every step), and the tensor of `shape` is
    /// left without values (without memory when the device cannot hold it: the ops that use it are skipped).
    /// Any other error is a mistake in the call (such as `.array` values of the wrong count) and stops the program
    /// naming `layer`.
    static func filled(_ shape: [Int], on device: Device, layer: @autoclosure () -> String,
                       _ body: () throws -> Tensor) -> Tensor {
        do {
            return try body()
        } catch let error as DeviceError {
            device.recordFailure(error.naming(layer()))
            return Tensor.empty(shape, on: device)
        } catch {
            preconditionFailure("\(layer()): \(error)")
        }
    }

    /// True for the initializers that fill on the device (no values made on the host).
    var isFilledOnDevice: Bool {
        switch self {
        case .zeros, .constant: return true
        default: return false
        }
    }

    // MARK: default seeds

    /// The next seed of the process-wide deterministic sequence (`Random.nextSeed()`), used by layers built
    /// without a seed: a program that builds the same layers in the same order gets the same weights on every
    /// run, and `Random.seed(_:)` restarts the sequence.
    public static func nextSeed() -> UInt64 { Random.nextSeed() }
}
