import Foundation

/// One recorded op in the graph: its inputs and how to turn the output's gradient into theirs.
final class GradNode {
    let name: String
    let inputs: [Tensor]
    /// Given the output gradient, the gradient of each input (nil where an input needs none).
    /// Dropped after use (whole-value loads and stores only, so no dynamic exclusivity check is needed).
    @exclusivity(unchecked) var backward: ((Tensor) throws -> [Tensor?])?

    init(name: String, inputs: [Tensor], backward: @escaping (Tensor) throws -> [Tensor?]) {
        self.name = name
        self.inputs = inputs
        self.backward = backward
    }
}

/// Whether ops record a graph. Off inside `withNoGrad { }`, for the thread (or task) that runs it only:
/// other threads keep recording.
public enum GradMode {
    /// Set by `withNoGrad` for the current task (for the current thread outside tasks), so concurrent
    /// tasks and threads never switch each other's recording off.
    @TaskLocal static var disabled = false

    /// True when ops record gradients.
    public static var isEnabled: Bool { !disabled }
}

/// Runs `body` without recording a graph (inference, optimizer updates). Affects only the calling thread or task.
public func withNoGrad<T>(_ body: () throws -> T) rethrows -> T {
    try GradMode.$disabled.withValue(true) { try body() }
}

extension Tensor {
    /// Whether an op on `inputs` records a graph node now: recording is on and one of them needs a gradient (an op
    /// may choose a cheaper form, such as a fused activation, when not).
    package static func recordsGradient(_ inputs: [Tensor]) -> Bool {
        GradMode.isEnabled && inputs.contains { $0.requiresGrad }
    }

    /// Records `output` as the result of an op on `inputs` when any of them needs a gradient.
    @discardableResult
    package func recorded(_ name: String, _ inputs: [Tensor], backward: @escaping (Tensor) throws -> [Tensor?]) -> Tensor {
        guard Tensor.recordsGradient(inputs) else { return self }
        requiresGrad = true
        node = GradNode(name: name, inputs: inputs, backward: backward)
        return self
    }

    /// Whether this tensor is a leaf (made by the user, not by a recorded op).
    public var isLeaf: Bool { node == nil }

    /// The same data, cut from the graph.
    public func detach() -> Tensor {
        let out = Tensor(shape: shape, device: device, buffer: buffer)
        out.labelClasses = labelClasses
        return out
    }

    /// Clears the accumulated gradient.
    public func zeroGrad() { grad = nil }

    /// Reverse-mode differentiation from this tensor: accumulates `grad` on every leaf that requires it.
    /// A scalar needs no seed; any other shape needs `gradient` of the same shape.
    /// The graph is freed afterwards unless `retainGraph` is true.
    public func backward(_ gradient: Tensor? = nil, retainGraph: Bool = false) throws {
        guard requiresGrad else {
            throw TensorError.noGradient("backward() called on a tensor that does not require a gradient (no input of the graph has requiresGrad = true)")
        }
        let seed: Tensor
        if let gradient {
            guard gradient.shape == shape else {
                throw TensorError.shapeMismatch(op: "backward", "differ (gradient and tensor)", gradient.shape, shape)
            }
            guard gradient.device === device else {
                throw TensorError.deviceMismatch(op: "backward", gradient.device.name, device.name)
            }
            seed = gradient
        } else {
            guard count == 1 else {
                throw TensorError.noGradient("backward() on a tensor of shape \(shape) needs a seed gradient of that shape; only a one-element tensor can go without")
            }
            seed = Tensor.ones(shape, on: device)
        }
        // Topological order by depth-first search from self. Tensors are numbered in the order they are
        // first reached; `order` lists those numbers, each after the inputs it depends on.
        var index = IdentityIndex()
        var tensors: [Tensor] = []
        var order: [Int] = []
        var stack: [(Tensor, Int)] = [(self, -1)]  // -1: not expanded yet; else the tensor's number
        while let (t, number) = stack.popLast() {
            if number >= 0 { order.append(number); continue }
            guard let n = index.insert(ObjectIdentifier(t)) else { continue }
            tensors.append(t)
            stack.append((t, n))
            if let node = t.node { for i in node.inputs where i.requiresGrad { stack.append((i, -1)) } }
        }
        var grads = [Tensor?](repeating: nil, count: tensors.count)
        grads[0] = seed
        try withNoGrad {
            for number in order.reversed() {
                guard let g = grads[number] else { continue }
                grads[number] = nil
                let t = tensors[number]
                guard let node = t.node else {
                    // A leaf: accumulate.
                    t.grad = try t.grad.map { try $0 + g } ?? g
                    continue
                }
                guard let backward = node.backward else {
                    throw TensorError.noGradient("the graph through '\(node.name)' was already used by backward(); pass retainGraph: true to run backward twice")
                }
                try Self.checkGradientMemory(node, g)
                let inputGrads = try backward(g)
                for (input, ig) in zip(node.inputs, inputGrads) {
                    guard input.requiresGrad, let ig, let k = index.number(of: ObjectIdentifier(input)) else { continue }
                    grads[k] = try grads[k].map { try $0 + ig } ?? ig
                }
                if !retainGraph { node.backward = nil }
            }
        }
    }
}

extension Tensor {
    /// Throws `DeviceError.outOfMemory` before a node's backward formula runs when the gradients of its inputs do
    /// not fit in the memory the device can give now, naming the op and the shapes. Gradients smaller than
    /// `Device.requireAllocatableThreshold` in all skip the check (reading the memory costs a system call); the
    /// formulas' own results go through `Tensor.checkedEmpty` where they can throw.
    static func checkGradientMemory(_ node: GradNode, _ g: Tensor) throws {
        var count = 0
        for input in node.inputs where input.requiresGrad { count &+= input.count }
        guard count >= Device.requireAllocatableThreshold / 4 || count < 0 else { return }
        let shapes = node.inputs.filter(\.requiresGrad).map { "\($0.shape)" }.joined(separator: ", ")
        try g.device.checkTotalAllocation(bytes: checkedFloatBytes(count) ?? Int.max,
                                          for: "backward through '\(node.name)': the gradients of \(shapes)")
    }
}

/// Numbers objects in the order they are inserted. Small graphs (the common case) use a linear scan
/// of an array, which is cheaper than hashing; larger ones switch to a dictionary.
struct IdentityIndex {
    private var small: [ObjectIdentifier] = []
    private var large: [ObjectIdentifier: Int]? = nil
    private static let linearLimit = 32

    /// The new number of `id`, or nil when it was already inserted.
    mutating func insert(_ id: ObjectIdentifier) -> Int? {
        if number(of: id) != nil { return nil }
        let n = small.count
        small.append(id)
        if large != nil {
            large![id] = n
        } else if small.count > Self.linearLimit {
            var d = [ObjectIdentifier: Int](minimumCapacity: small.count * 2)
            for (i, x) in small.enumerated() { d[x] = i }
            large = d
        }
        return n
    }

    /// The number of `id`, or nil when it was never inserted.
    func number(of id: ObjectIdentifier) -> Int? {
        if let large { return large[id] }
        return small.firstIndex(of: id)
    }
}
