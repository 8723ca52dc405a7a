import Foundation

/// One recorded op in the graph: its inputs and how to turn the output's gradient into theirs.
final class GradNode {
    let name: String
    let inputs: [Tensor]
    /// Given the output gradient, the gradient of each input (nil where an input needs none).
    var backward: ((Tensor) throws -> [Tensor?])?

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
    /// Records `output` as the result of an op on `inputs` when any of them needs a gradient.
    @discardableResult
    func recorded(_ name: String, _ inputs: [Tensor], backward: @escaping (Tensor) throws -> [Tensor?]) -> Tensor {
        guard GradMode.isEnabled, inputs.contains(where: { $0.requiresGrad }) else { return self }
        requiresGrad = true
        node = GradNode(name: name, inputs: inputs, backward: backward)
        return self
    }

    /// Whether this tensor is a leaf (made by the user, not by a recorded op).
    public var isLeaf: Bool { node == nil }

    /// The same data, cut from the graph.
    public func detach() -> Tensor {
        Tensor(shape: shape, device: device, buffer: buffer)
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
        // Topological order by depth-first search from self.
        var order: [Tensor] = []
        var seen = Set<ObjectIdentifier>()
        var stack: [(Tensor, Bool)] = [(self, false)]
        while let (t, expanded) = stack.popLast() {
            if expanded { order.append(t); continue }
            if !seen.insert(ObjectIdentifier(t)).inserted { continue }
            stack.append((t, true))
            if let node = t.node { for i in node.inputs where i.requiresGrad { stack.append((i, false)) } }
        }
        var grads: [ObjectIdentifier: Tensor] = [ObjectIdentifier(self): seed]
        try withNoGrad {
            for t in order.reversed() {
                guard let g = grads.removeValue(forKey: ObjectIdentifier(t)) else { continue }
                guard let node = t.node else {
                    // A leaf: accumulate.
                    t.grad = try t.grad.map { try $0 + g } ?? g
                    continue
                }
                guard let backward = node.backward else {
                    throw TensorError.noGradient("the graph through '\(node.name)' was already used by backward(); pass retainGraph: true to run backward twice")
                }
                let inputGrads = try backward(g)
                for (input, ig) in zip(node.inputs, inputGrads) {
                    guard input.requiresGrad, let ig else { continue }
                    let key = ObjectIdentifier(input)
                    grads[key] = try grads[key].map { try $0 + ig } ?? ig
                }
                if !retainGraph { node.backward = nil }
            }
        }
    }
}
