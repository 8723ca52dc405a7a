// Tensor operations for the layers above the core (optimizers, data sets, checkpoints) that write into
// existing tensors in place. They are `package`: a user of the library cannot reach them, and nothing in the
// `Myelin` target reaches a backend or a device buffer except through them.

extension Tensor {
    // MARK: writing values

    /// Overwrites this tensor's values with `source`'s (a device copy; same shape). The buffer stays the
    /// same, so optimizers holding this tensor stay valid.
    package func assign(from source: Tensor) {
        precondition(source.shape == shape, "assign: shapes \(source.shape) and \(shape) differ")
        let s = source.device === device ? source : source.to(device)
        backend.copy(s.buffer, sourceOffset: 0, to: buffer, destinationOffset: 0, count: count)
        labelClasses = source.labelClasses
    }

    /// Overwrites this tensor's values with host values (one host-to-device write).
    package func assign(_ values: [Float]) {
        precondition(values.count == count, "assign: \(values.count) values for shape \(shape)")
        values.withUnsafeBufferPointer { backend.write($0, to: buffer, offset: 0) }
        labelClasses = nil
    }

    /// Writes host values into this tensor from element `offset` on (one host-to-device write).
    package func upload(_ values: UnsafeBufferPointer<Float>, at offset: Int) {
        precondition(offset >= 0 && offset + values.count <= count,
                     "upload: \(values.count) values at \(offset) into shape \(shape)")
        backend.write(values, to: buffer, offset: offset)
        labelClasses = nil
    }

    // MARK: in-place arithmetic (state that must keep its buffer, e.g. running statistics under step capture)

    /// self = self op s, in place (the same launch as `self op s` makes, writing into this tensor's buffer).
    package func applyInPlace(_ op: BinaryOp, scalar s: Float) {
        labelClasses = nil
        backend.unary(.scalar(op, s, scalarFirst: false), x: buffer, out: buffer, count: count)
    }

    /// self = self op other, in place, for `other` of the same shape (the launch `self op other` makes).
    package func applyInPlace(_ op: BinaryOp, _ other: Tensor) throws {
        guard other.shape == shape else {
            throw TensorError.shapeMismatch(op: "applyInPlace(\(op))", "differ (an in-place update needs the same shape)", shape, other.shape)
        }
        try checkSameDevice(other, "applyInPlace(\(op))")
        labelClasses = nil
        backend.binary(op, a: buffer, b: other.buffer, out: buffer, layout: .flat(count))
    }

    // MARK: fused optimizer updates (one launch each; self is the parameter, updated in place)

    /// One SGD step on this parameter from `grad`, with its momentum buffer when momentum is used.
    package func sgdStep(grad: Tensor, momentumBuffer: Tensor?, _ hyper: SGDStepParameters) {
        backend.optimizerStep(.sgd(hyper, momentumBuffer: momentumBuffer?.buffer), param: buffer, grad: grad.buffer, count: count)
    }

    /// One Adagrad step on this parameter; `sum` accumulates squared gradients.
    package func adagradStep(grad: Tensor, sum: Tensor, _ hyper: AdagradStepParameters) {
        backend.optimizerStep(.adagrad(hyper, sum: sum.buffer), param: buffer, grad: grad.buffer, count: count)
    }

    /// One RMSProp step on this parameter.
    package func rmspropStep(grad: Tensor, squareAverage: Tensor, gradientAverage: Tensor?, momentumBuffer: Tensor?,
                             _ hyper: RMSPropStepParameters) {
        backend.optimizerStep(.rmsprop(hyper, squareAverage: squareAverage.buffer, gradientAverage: gradientAverage?.buffer,
                                       momentumBuffer: momentumBuffer?.buffer), param: buffer, grad: grad.buffer, count: count)
    }

    /// One Adam / AdamW step on this parameter: enqueued now, or added to `batch` (enqueued with the step's other
    /// updates by its `run()`, in fewer launches).
    package func adamStep(grad: Tensor, expAvg: Tensor, expAvgSq: Tensor, maxExpAvgSq: Tensor?,
                          _ hyper: AdamStepParameters, batch: OptimizerUpdateBatch? = nil) {
        let step = OptimizerStep.adam(hyper, expAvg: expAvg.buffer, expAvgSq: expAvgSq.buffer, maxExpAvgSq: maxExpAvgSq?.buffer)
        guard let batch else { return backend.optimizerStep(step, param: buffer, grad: grad.buffer, count: count) }
        batch.add(OptimizerUpdate(step: step, param: buffer, grad: grad.buffer, count: count), on: device,
                  keeping: [self, grad, expAvg, expAvgSq] + (maxExpAvgSq.map { [$0] } ?? []))
    }
}

/// The fused updates of one optimizer step, collected and then enqueued together (`run()`): a backend may group
/// them into fewer launches (`Backend.optimizerSteps`), with the same results as one launch each.
package final class OptimizerUpdateBatch {
    private var pending: [(device: Device, update: OptimizerUpdate)] = []
    /// The tensors whose buffers the pending updates use, kept alive until they are enqueued.
    private var kept: [Tensor] = []

    package init() {}

    func add(_ update: OptimizerUpdate, on device: Device, keeping tensors: [Tensor]) {
        pending.append((device, update))
        kept += tensors
    }

    /// Enqueues the collected updates, device by device in the order first seen, and empties the batch.
    package func run() {
        var devices: [Device] = []
        for (d, _) in pending where !devices.contains(where: { $0 === d }) { devices.append(d) }
        for d in devices { d.backend.optimizerSteps(pending.filter { $0.device === d }.map(\.update)) }
        pending.removeAll(keepingCapacity: true)
        kept.removeAll(keepingCapacity: true)
    }
}
