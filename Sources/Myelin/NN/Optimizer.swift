import Foundation

/// Updates parameters from their gradients, PyTorch style: build it from a model's parameters, then
/// per batch `zeroGrad()`, compute the loss, `backward()`, `step()`.
///
/// ```swift
/// let optimizer = try Adam(parameters: model.parameters, learningRate: 1e-3)
/// for (x, y) in batches {
///     optimizer.zeroGrad()
///     let loss = try meanSquaredError(model(x), y)
///     try loss.backward()
///     try optimizer.step()
/// }
/// ```
///
/// `step()` runs one fused kernel per parameter on the parameter's device and updates it in place (Adam and
/// AdamW on OpenCL: one launch per 8 parameters with the same step count, the same arithmetic);
/// the optimizer state (momentum buffers, moments) lives on the same device, created at the first
/// step. Nothing is read back to the host. Parameters without a gradient are skipped.
/// Build the optimizer after moving the model to its device: `Layer.to(_:)` replaces the parameter
/// tensors, and the optimizer keeps the ones it was given.
public protocol Optimizer: AnyObject {
    /// The learning rate the next `step()` uses (a schedule may set it each epoch).
    var learningRate: Float { get set }
    /// The parameters this optimizer updates, in the order given at creation.
    var parameters: [Tensor] { get }
    /// The number of `step()` calls so far. Bias corrections use each parameter's own step count,
    /// which is part of the state (`stateTensors()`).
    var stepCount: Int { get set }
    /// Clears every parameter's gradient.
    func zeroGrad()
    /// Updates each parameter that has a gradient. Throws, before changing anything, when a gradient's
    /// shape or device does not match its parameter.
    func step() throws
    /// The optimizer's state for checkpoints, keyed like PyTorch's optimizer `state_dict`:
    /// `"<parameter index>.<slot>"` (`0.exp_avg`, `3.momentum_buffer`, ...), `"<index>.step"`
    /// (a one-element tensor) and `"step"` (this optimizer's `stepCount`). The slot tensors are the
    /// live state (updated in place by later steps): read or copy them before stepping again.
    func stateTensors() -> [(String, Tensor)]
    /// Replaces the whole state with one saved by `stateTensors()` (tensors are copied to each
    /// parameter's device; a parameter absent from `state` starts fresh). Throws, changing nothing,
    /// on an unknown key, a missing slot, or a shape that does not match the parameter.
    func loadState(_ state: [String: Tensor]) throws
}

extension Optimizer {
    public func zeroGrad() { for p in parameters { p.zeroGrad() } }
}

/// The shell of the built-in optimizers (`SGD`, `Adagrad`, `RMSProp`, `Adam`, `AdamW`): the parameters, the step
/// count, each parameter's state tensors created at its first step (`stateTensors()`, `loadState(_:)`), and a
/// `step()` that checks every gradient first, then updates each parameter that has one. A subclass only computes
/// one parameter's update. It is subclassed inside Myelin only; a custom optimizer conforms to `Optimizer`.
public class StatefulOptimizer: Optimizer {
    // learningRate and stepCount skip dynamic exclusivity checks: read once per parameter update, written
    // between steps, never passed inout.
    /// The learning rate the next `step()` uses (a schedule may set it each epoch).
    @exclusivity(unchecked) public var learningRate: Float
    /// The number of `step()` calls so far.
    @exclusivity(unchecked) public var stepCount = 0
    /// The parameters this optimizer updates, in the order given at creation.
    public var parameters: [Tensor] { states.parameters }
    /// Each parameter's state slots and step count.
    let states: ParameterStates

    /// `name` is the optimizer's name in errors; `slotNames` are the state tensors each parameter gets
    /// (`exp_avg`, ...), their keys in `stateTensors()`.
    init(name: String, parameters: [Tensor], learningRate: Float, slotNames: [String]) throws {
        self.learningRate = learningRate
        states = try ParameterStates(optimizer: name, parameters: parameters, slotNames: slotNames)
    }

    /// The step's updates that a subclass collects instead of enqueuing them one by one (Adam: the backend then
    /// runs them in fewer launches); `step()` enqueues them after the last parameter.
    let updateBatch = OptimizerUpdateBatch()

    public func step() throws {
        let gradients = try states.gradients()
        // Every missing state tensor first: a refused allocation is an error before any parameter changes.
        let fresh = try states.makeMissingSlots(gradients.map(\.index))
        // A failure of this step's forward or backward (an allocation refused inside an op that cannot throw,
        // whose result was skipped) is thrown before any parameter changes.
        for device in Set(gradients.map(\.1.device)) { try device.throwRecordedFailure() }
        for (i, p, g) in gradients {
            let (slots, first, t) = states.advance(i, fresh: fresh)
            update(p, gradient: g, slots: slots, first: first, step: t)
        }
        updateBatch.run()
        stepCount += 1
    }

    /// Updates one parameter in place from its gradient: `slots` are its state tensors (in the order of the
    /// slot names; uninitialized when `first`), `step` its own step number (1 for its first update).
    func update(_ parameter: Tensor, gradient: Tensor, slots: [Tensor], first: Bool, step: Int) {
        preconditionFailure("\(type(of: self)) does not implement update(_:gradient:slots:first:step:)")
    }

    public func stateTensors() -> [(String, Tensor)] { states.stateTensors(stepCount: stepCount) }

    public func loadState(_ state: [String: Tensor]) throws {
        if let s = try states.load(state) { stepCount = s }
    }
}

/// Errors from building or stepping an optimizer; each names the optimizer and the parameter.
public enum OptimizerError: Error, CustomStringConvertible, Equatable {
    /// A hyperparameter (`name`, e.g. "learningRate") has an invalid `value`; `requirement` says what it must be.
    case invalidHyperparameter(optimizer: String, name: String, value: String, requirement: String)
    /// Parameter `index` of the list cannot be optimized (not a leaf tensor, or listed twice); the text says why.
    case invalidParameter(optimizer: String, index: Int, String)
    /// The gradient of parameter `index` has a different shape from the parameter.
    case gradientShape(optimizer: String, index: Int, parameter: [Int], gradient: [Int])
    /// The gradient of parameter `index` is on another device than the parameter (device names).
    case gradientDevice(optimizer: String, index: Int, parameter: String, gradient: String)
    /// The state entry `key` given to `loadState(_:)` is unknown, missing, or of the wrong shape; the text says which.
    case invalidState(optimizer: String, key: String, String)

    public var description: String {
        switch self {
        case .invalidHyperparameter(let o, let name, let value, let req):
            return "\(o): \(name) = \(value) is invalid, it must be \(req)"
        case .invalidParameter(let o, let i, let why):
            return "\(o): parameter \(i) \(why)"
        case .gradientShape(let o, let i, let p, let g):
            return "\(o): parameter \(i) has shape \(p) but its gradient has shape \(g)"
        case .gradientDevice(let o, let i, let p, let g):
            return "\(o): parameter \(i) is on \(p) but its gradient is on \(g)"
        case .invalidState(let o, let key, let why):
            return "\(o): state '\(key)' \(why)"
        }
    }
}

/// Per-parameter optimizer state shared by every optimizer: named slot tensors created lazily on the
/// parameter's device (uninitialized: the first fused step writes them without reading) and a step count.
final class ParameterStates {
    let optimizer: String
    let parameters: [Tensor]
    /// The slots this configuration uses, in a fixed order (`exp_avg`, `exp_avg_sq`, ...).
    let slotNames: [String]
    // `slots` and `steps` skip Swift's dynamic exclusivity checks (they cost more than the rest of `advance`
    // on small models): they are only read or assigned element by element by the optimizer's own methods,
    // never passed inout, and an optimizer steps on one thread at a time.
    /// Per parameter: its slot tensors (in `slotNames` order), nil before its first step.
    @exclusivity(unchecked) private(set) var slots: [[Tensor]?]
    /// Per parameter: how many updates it has had.
    @exclusivity(unchecked) private(set) var steps: [Int]

    init(optimizer: String, parameters: [Tensor], slotNames: [String]) throws {
        self.optimizer = optimizer
        self.parameters = parameters
        self.slotNames = slotNames
        slots = Array(repeating: nil, count: parameters.count)
        steps = Array(repeating: 0, count: parameters.count)
        var seen = Set<ObjectIdentifier>()
        for (i, p) in parameters.enumerated() {
            guard p.isLeaf else {
                throw OptimizerError.invalidParameter(optimizer: optimizer, index: i,
                    "is not a leaf tensor (it is the result of an op); optimize the tensors you created, e.g. a layer's parameters")
            }
            guard seen.insert(ObjectIdentifier(p)).inserted else {
                throw OptimizerError.invalidParameter(optimizer: optimizer, index: i, "appears more than once in the list")
            }
        }
    }

    /// The parameters that have a gradient, with it, after checking shapes and devices (before any update).
    func gradients() throws -> [(index: Int, param: Tensor, grad: Tensor)] {
        var out: [(Int, Tensor, Tensor)] = []
        for (i, p) in parameters.enumerated() {
            guard let g = p.grad else { continue }
            guard g.shape == p.shape else {
                throw OptimizerError.gradientShape(optimizer: optimizer, index: i, parameter: p.shape, gradient: g.shape)
            }
            guard g.device === p.device else {
                throw OptimizerError.gradientDevice(optimizer: optimizer, index: i, parameter: p.device.name, gradient: g.device.name)
            }
            out.append((i, p, g))
        }
        return out
    }

    /// Creates the slots of the parameters `indices` that have none yet, through the checked allocation: a state
    /// tensor the device (or this process) cannot hold is `DeviceError.outOfMemory` naming the optimizer, the slot,
    /// the parameter and its shape, and no slot is kept. Returns whether any was created.
    func makeMissingSlots(_ indices: [Int]) throws -> Bool {
        var made: [(Int, [Tensor])] = []
        for i in indices where slots[i] == nil {
            let p = parameters[i]
            made.append((i, try slotNames.map { name in
                try Tensor.checkedEmpty(p.shape, on: p.device, op: "\(optimizer): state '\(name)' of parameter \(i)")
            }))
        }
        for (i, s) in made { slots[i] = s; unwritten.insert(i) }
        return !made.isEmpty
    }

    /// The parameters whose slots `makeMissingSlots` created and no update has used yet.
    private var unwritten = Set<Int>()

    /// The slots of parameter `i` (made by `makeMissingSlots`), whether they are new (uninitialized), and its step
    /// number after this update (1 for the first). `fresh`: whether `makeMissingSlots` made any (else no set lookup).
    func advance(_ i: Int, fresh: Bool) -> (slots: [Tensor], first: Bool, step: Int) {
        steps[i] += 1
        let first = fresh && unwritten.remove(i) != nil
        return (slots[i]!, first, steps[i])
    }

    func stateTensors(stepCount: Int) -> [(String, Tensor)] {
        var out: [(String, Tensor)] = [("step", Tensor(scalar: Float(stepCount), on: .cpu))]
        for (i, s) in slots.enumerated() {
            guard let s else { continue }
            out.append(("\(i).step", Tensor(scalar: Float(steps[i]), on: .cpu)))
            for (name, t) in zip(slotNames, s) { out.append(("\(i).\(name)", t)) }
        }
        return out
    }

    /// Loads state saved by `stateTensors`; returns the optimizer step count when present.
    func load(_ state: [String: Tensor]) throws -> Int? {
        var newSlots: [Int: [String: Tensor]] = [:]
        var newSteps: [Int: Int] = [:]
        var stepCount: Int?
        func wholeNumber(_ key: String, _ t: Tensor) throws -> Int {
            guard t.count == 1 else { throw OptimizerError.invalidState(optimizer: optimizer, key: key, "must hold one value, it has shape \(t.shape)") }
            let v = try t.item()
            guard v >= 0, v == v.rounded(), v < Float(Int32.max) else {
                throw OptimizerError.invalidState(optimizer: optimizer, key: key, "must be a whole number >= 0, got \(v)")
            }
            return Int(v)
        }
        for (key, t) in state {
            if key == "step" { stepCount = try wholeNumber(key, t); continue }
            let parts = key.split(separator: ".", maxSplits: 1).map(String.init)
            guard parts.count == 2, let i = Int(parts[0]) else {
                throw OptimizerError.invalidState(optimizer: optimizer, key: key, "is not a key of this optimizer (expected 'step', '<index>.step' or '<index>.<slot>' with slots \(slotNames))")
            }
            guard i >= 0, i < parameters.count else {
                throw OptimizerError.invalidState(optimizer: optimizer, key: key, "names parameter \(i), but the optimizer has \(parameters.count) parameters")
            }
            if parts[1] == "step" { newSteps[i] = try wholeNumber(key, t); continue }
            guard slotNames.contains(parts[1]) else {
                throw OptimizerError.invalidState(optimizer: optimizer, key: key, "names slot '\(parts[1])', which this optimizer's configuration does not use (its slots: \(slotNames))")
            }
            guard t.shape == parameters[i].shape else {
                throw OptimizerError.invalidState(optimizer: optimizer, key: key, "has shape \(t.shape) but parameter \(i) has shape \(parameters[i].shape)")
            }
            newSlots[i, default: [:]][parts[1]] = t
        }
        for i in Set(newSlots.keys).union(newSteps.keys) {
            let given = newSlots[i] ?? [:]
            for name in slotNames where given[name] == nil {
                throw OptimizerError.invalidState(optimizer: optimizer, key: "\(i).\(name)", "is missing (the state of parameter \(i) needs \(slotNames.map { "\(i).\($0)" }) and '\(i).step')")
            }
            guard newSteps[i] != nil else {
                throw OptimizerError.invalidState(optimizer: optimizer, key: "\(i).step", "is missing")
            }
        }
        // Everything checked: copies (so later in-place updates never touch the caller's tensors), made through the
        // allocation check before anything is replaced: a copy the device cannot hold is an error that changes nothing.
        var copies = [[Tensor]?](repeating: nil, count: parameters.count)
        for (i, given) in newSlots {
            let p = parameters[i]
            copies[i] = try slotNames.map { name in
                let t = given[name]!
                let owned = t.device === p.device ? try t.checkedCopy(op: "\(optimizer): state '\(i).\(name)'") : t.to(p.device)
                owned.requiresGrad = false
                return owned
            }
        }
        unwritten.removeAll()
        for i in 0..<parameters.count {
            // A parameter not in the saved state starts fresh, as one that never had a gradient.
            slots[i] = copies[i]
            steps[i] = copies[i] == nil ? 0 : newSteps[i]!
        }
        return stepCount
    }
}

/// Checks a hyperparameter, throwing `OptimizerError.invalidHyperparameter` when `ok` is false.
func requireHyperparameter(_ ok: Bool, _ optimizer: String, _ name: String, _ value: Any, _ requirement: String) throws {
    guard ok else {
        throw OptimizerError.invalidHyperparameter(optimizer: optimizer, name: name, value: "\(value)", requirement: requirement)
    }
}
