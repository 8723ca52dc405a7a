import Foundation

/// A training step (forward pass, loss, backward pass, optimizer update) recorded once and then replayed: later
/// calls copy the new batch into the recorded input buffers and enqueue the recorded device calls again, without
/// building tensors, graph nodes or closures, and with every intermediate buffer allocated once. The optimizer
/// update runs as usual after the replayed backward pass (fused launches: one per parameter, or per 8 for Adam on
/// OpenCL), so learning-rate schedules and bias corrections see the current step. The results are bit-identical to eager steps.
///
/// Make one with `Layer.captureStep(loss:optimizer:)`:
///
/// ```swift
/// let step = try model.captureStep(loss: .softmaxCrossEntropy, optimizer: optimizer)
/// for batch in train.batches(size: 128, shuffle: true, seed: 1, epoch: 0) {
///     let loss = try step(batch.features, batch.targets)   // the batch's loss, on the device
/// }
/// ```
///
/// **Recording.** The first call for a shape of features and targets (and a train or eval mode) runs the step
/// eagerly while recording it; a new shape (the last, smaller batch of an epoch) records again, keeping up to
/// `maximumRecordings` records. Call `invalidate()` after replacing any of the model's tensors (`setTensor`,
/// `to(_:)`): a record keeps using the buffers it was made with (values written in place, such as
/// `loadStateDict`, are seen).
///
/// **What capture refuses** (`CaptureError`, thrown by the call that records): reading a value back to the host
/// inside the step (`item()`, `toArray()`), making a tensor from host values inside it, an op on another device,
/// a random seed drawn on the host that does not reach a device random op, and a layer that replaces its state
/// tensors instead of updating them in place. Dropout masks and BatchNorm running statistics are supported. When a
/// call throws a `CaptureError`, its forward and backward pass have run (gradients are set, running statistics and
/// dropout counters advanced) but the optimizer has not updated the parameters.
///
/// **The returned loss** is a device scalar whose buffer the next call overwrites: read it (`item()`) or copy it
/// (`copy()`) before the next call when you need it later.
public final class CapturedStep {
    /// The model being trained.
    public let model: any Layer
    /// The optimizer that updates the model's parameters after each replayed backward pass.
    public let optimizer: any Optimizer
    /// Runs after the backward pass and before the optimizer update of every step (recorded or replayed), with
    /// each parameter's `grad` set: gradient clipping, averaging gradients across processes, ... It runs eagerly
    /// (it is not recorded) and may replace or change the gradients.
    public var beforeUpdate: (() throws -> Void)?
    /// How many records are kept (one per shape of features and targets and train or eval mode); the oldest is
    /// dropped when a new one would exceed it. Default 4.
    public var maximumRecordings = 4
    /// How many times a step was recorded so far (tests and benchmarks read it).
    public private(set) var recordCount = 0

    private let lossFunction: (Tensor, Tensor) throws -> Tensor
    private var recordings: [Recording] = []

    /// One record of the step for one input shape.
    final class Recording {
        let key: Key
        let program: CapturedProgram
        /// The recorded input buffers: each call copies its batch into them.
        let features: Tensor, targets: Tensor
        /// The recorded loss and model output (overwritten by each replay).
        let loss: Tensor, output: Tensor
        /// Each optimizer parameter's gradient tensor as the record writes it (nil where the step gives none).
        let gradients: [Tensor?]
        /// The identities of the model's tensors when recorded (a record is stale once one is replaced).
        let state: [ObjectIdentifier]

        init(key: Key, program: CapturedProgram, features: Tensor, targets: Tensor, loss: Tensor, output: Tensor,
             gradients: [Tensor?], state: [ObjectIdentifier]) {
            self.key = key; self.program = program; self.features = features; self.targets = targets
            self.loss = loss; self.output = output; self.gradients = gradients; self.state = state
        }
    }

    /// What a record depends on besides the model's buffers.
    struct Key: Equatable {
        var features: [Int], targets: [Int], training: Bool
    }

    init(model: any Layer, optimizer: any Optimizer, loss: @escaping (Tensor, Tensor) throws -> Tensor) {
        self.model = model
        self.optimizer = optimizer
        self.lossFunction = loss
    }

    /// One training step on a batch: the batch's loss as a device scalar (overwritten by the next call). The first
    /// call for a new shape records the step (and throws `CaptureError` when it cannot); later calls replay it.
    ///
    /// ```swift
    /// let loss = try step(features, targets)
    /// ```
    @discardableResult
    public func callAsFunction(_ features: Tensor, _ targets: Tensor) throws -> Tensor {
        try run(features, targets).loss
    }

    /// Drops every record: the next call records again (after replacing a tensor of the model, for example).
    public func invalidate() { recordings.removeAll() }

    /// The number of device calls a replay of the record for these shapes enqueues (nil when not recorded yet).
    public func recordedCallCount(features: [Int], targets: [Int]) -> Int? {
        recordings.first { $0.key == Key(features: features, targets: targets, training: model.isTraining) }?.program.callCount
    }

    /// How many of the record's calls replay as prepared launches (OpenCL kernels with their arguments set once).
    func preparedCallCount(features: [Int], targets: [Int]) -> Int? {
        recordings.first { $0.key == Key(features: features, targets: targets, training: model.isTraining) }?.program.preparedCallCount
    }

    /// Drops the records made before one of the model's tensors was replaced (`fit` checks once per epoch).
    func dropStaleRecordings() {
        guard !recordings.isEmpty else { return }
        let now = model.namedTensors.map { ObjectIdentifier($0.1) }
        recordings.removeAll { $0.state != now }
    }

    /// The step, returning its loss and the model's output (both overwritten by the next call).
    func run(_ features: Tensor, _ targets: Tensor) throws -> (loss: Tensor, output: Tensor) {
        let key = Key(features: features.shape, targets: targets.shape, training: model.isTraining)
        if let r = recordings.first(where: { $0.key == key }) { return try replay(r, features, targets) }
        let (loss, output, refusal) = try record(key, features, targets)
        if let refusal { throw refusal }
        try beforeUpdate?()
        try optimizer.step()
        return (loss, output)
    }

    /// Set when `fit`'s capture was refused: every later `fitStep` runs eagerly.
    private(set) var refusal: CaptureError?

    /// `fit`'s step: replays or records like `run`, but when the capture is refused it completes the step eagerly
    /// (it has run for real) and runs every later step eagerly, so training goes on exactly as without capture.
    func fitStep(_ features: Tensor, _ targets: Tensor) throws -> (loss: Tensor, output: Tensor) {
        if refusal != nil {
            optimizer.zeroGrad()
            let output = try model(features)
            let loss = try lossFunction(output, targets)
            try loss.backward()
            try beforeUpdate?()
            try optimizer.step()
            return (loss.detach(), output.detach())
        }
        let key = Key(features: features.shape, targets: targets.shape, training: model.isTraining)
        if let r = recordings.first(where: { $0.key == key }) { return try replay(r, features, targets) }
        let (loss, output, refusal) = try record(key, features, targets)
        if let refusal {
            self.refusal = refusal
            recordings.removeAll()
        }
        try beforeUpdate?()
        try optimizer.step()
        return (loss, output)
    }

    /// Copies the batch into the record's inputs, replays it, points each parameter's `grad` at its recorded
    /// gradient, then runs `beforeUpdate` and the optimizer.
    private func replay(_ r: Recording, _ features: Tensor, _ targets: Tensor) throws -> (loss: Tensor, output: Tensor) {
        try features.checkSameDevice(r.features, "CapturedStep")
        try targets.checkSameDevice(r.targets, "CapturedStep")
        // Recorded with checked class labels (the loss's label check is not replayed): these must be labels too.
        if let classes = r.targets.labelLossClasses { try targets.checkLabels(classes: classes, op: "CapturedStep") }
        r.features.assign(from: features)
        r.targets.assign(from: targets)
        r.program.replay()
        for (p, g) in zip(optimizer.parameters, r.gradients) { p.grad = g }
        try beforeUpdate?()
        try optimizer.step()
        return (r.loss, r.output)
    }

    /// Whether every layer of `layer` is one of Myelin's own, which keep capture's rules (state updated in place,
    /// per-step seeds noted): a `CapturableLayer`, or a `Sequential` or `Residual` of such layers. A layer type of
    /// your own may depend on host state that changes between steps, which a record would freeze without noticing,
    /// so `fit` runs such models eagerly unless asked otherwise.
    static func isBuiltIn(_ layer: any Layer) -> Bool {
        switch layer {
        case let s as Sequential: return s.layers.allSatisfy(isBuiltIn)
        case let r as Residual: return isBuiltIn(r.inner) && (r.shortcut.map(isBuiltIn) ?? true)
        default: return layer is any CapturableLayer
        }
    }

    /// Runs the step's forward and backward pass eagerly while recording it. On success the record is kept; on a
    /// refusal the pass has run all the same (its loss, output and gradients are valid) and the error is returned.
    func record(_ key: Key, _ features: Tensor, _ targets: Tensor) throws -> (loss: Tensor, output: Tensor, refusal: CaptureError?) {
        try features.checkSameDevice(targets, "CapturedStep")
        let device = features.device
        // Own input buffers, made outside the record: each replay copies its batch into them.
        let x = features.copy(), y = targets.copy()
        let before = model.namedTensors
        optimizer.zeroGrad()
        let ((loss, output), recorded) = try StepCapture.record(on: device) { () throws -> (Tensor, Tensor) in
            let output = try model(x)
            let loss = try lossFunction(output, y)
            try loss.backward()
            return (loss.detach(), output.detach())
        }
        let after = model.namedTensors
        let program: CapturedProgram
        switch recorded {
        case .failure(let refusal): return (loss, output, refusal)
        case .success(let p): program = p
        }
        let replaced = zip(before, after).filter { $0.0.1 !== $0.1.1 }.map(\.0.0)
        if !replaced.isEmpty || before.count != after.count {
            return (loss, output, .stateReplaced(keys: replaced.isEmpty ? ["(the set of tensors changed)"] : replaced))
        }
        let recording = Recording(key: key, program: program, features: x, targets: y, loss: loss, output: output,
                                  gradients: optimizer.parameters.map(\.grad), state: after.map { ObjectIdentifier($0.1) })
        recordCount += 1
        if recordings.count >= Swift.max(maximumRecordings, 1) { recordings.removeFirst() }
        recordings.append(recording)
        return (loss, output, nil)
    }
}

extension Layer {
    /// A captured training step of this model with `loss` and `optimizer` (see `CapturedStep`): the first call
    /// records one eager step, later calls replay it on new batches with bit-identical results.
    ///
    /// ```swift
    /// let step = try model.captureStep(loss: .meanSquaredError, optimizer: optimizer)
    /// for _ in 0..<1000 { try step(x, y) }
    /// ```
    ///
    /// - Throws: `TrainingError.invalid` when `optimizer` updates a tensor that is not a parameter of this model.
    public func captureStep(loss: Loss, optimizer: any Optimizer) throws -> CapturedStep {
        try captureStep(optimizer: optimizer) { try loss($0, $1) }
    }

    /// A captured training step with a loss of your own, `loss(output, targets)` (a scalar tensor), e.g. one
    /// with a penalty. The loss may use any device op; it may not read values back to the host or make tensors
    /// from host values (see `CapturedStep`).
    ///
    /// ```swift
    /// let step = try model.captureStep(optimizer: adam) { output, targets in
    ///     try meanSquaredError(predictions: output, targets: targets) + l2Penalty(model.parameters, lambda: 1e-4)
    /// }
    /// ```
    public func captureStep(optimizer: any Optimizer,
                            loss: @escaping (_ output: Tensor, _ targets: Tensor) throws -> Tensor) throws -> CapturedStep {
        let own = Set(parameters.map(ObjectIdentifier.init))
        if let i = optimizer.parameters.firstIndex(where: { !own.contains(ObjectIdentifier($0)) }) {
            throw TrainingError.invalid("captureStep: the optimizer's parameter \(i) is not a parameter of \(layerDescription); build the optimizer from this model's parameters (after moving it to its device)")
        }
        return CapturedStep(model: self, optimizer: optimizer, loss: loss)
    }
}
