import Foundation

extension ParameterStates {
    /// Elements of the state tensors not yet made for the parameters (one per slot per parameter without slots).
    var missingSlotElements: Int {
        zip(parameters, slots).reduce(0) { $0 &+ ($1.1 == nil ? $1.0.count &* slotNames.count : 0) }
    }
}

extension Layer {
    /// Throws `DeviceError.outOfMemory` before training starts when what `fit` still has to allocate for the
    /// parameters does not fit in the memory their device can give now: a gradient per parameter without one, and
    /// the state tensors of a built-in optimizer (`StatefulOptimizer`) not made yet. The message names the counts,
    /// the bytes and the limit (one reading of the device's memory per `fit`). Activations depend on the layers and are not counted here (`ModelMemory` does,
    /// for the models the trainers build).
    func checkTrainingMemory(optimizer: any Optimizer) throws {
        let parameters = self.parameters.filter(\.requiresGrad)
        guard let device = parameters.first?.device else { return }
        let gradients = parameters.reduce(0) { $0 &+ ($1.grad == nil ? $1.count : 0) }
        let slots = (optimizer as? StatefulOptimizer)?.states.missingSlotElements ?? 0
        let count = gradients &+ slots
        guard count != 0 else { return }
        let total = parameters.reduce(0) { $0 &+ $1.count }
        var what = "fit: \(parameters.count) parameter tensors of \(total) elements: their gradients "
            + "(\(formatBytes(checkedFloatBytes(gradients) ?? Int.max)))"
        if slots > 0 { what += " and the \(type(of: optimizer)) state (\(formatBytes(checkedFloatBytes(slots) ?? Int.max)))" }
        try device.checkTotalAllocation(bytes: checkedFloatBytes(count) ?? Int.max, for: what)
    }
}
