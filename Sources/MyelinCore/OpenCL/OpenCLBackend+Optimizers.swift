/// The fused optimizer updates as launches of the kernels in Kernels/optimizers.cl (one per call).
/// Options that change which state buffers are used pick a kernel variant; a variant's unused buffer
/// arguments get a null buffer and are never touched. The kernels have no bounds check: every launch here
/// covers exactly `count` work-items (global size `count`, no work-group size) and none is made for 0.
extension OpenCLBackend: OptimizerUpdates {
    private static func flag(_ b: Bool) -> KernelArg { .int(b ? 1 : 0) }
    private static func optional(_ b: DeviceBuffer?) -> KernelArg { b.map { .buffer($0) } ?? .null }

    /// (θ multiplier, gradient L2 coefficient) for decoupled or coupled weight decay.
    static func decay(lr: Float, weightDecay: Float, decoupled: Bool) -> (Float, Float) {
        decoupled ? (1 - lr * weightDecay, 0) : (1, weightDecay)
    }

    func sgd(param: DeviceBuffer, grad: DeviceBuffer, momentumBuffer: DeviceBuffer?, count: Int,
                     _ h: SGDStepParameters) {
        guard count > 0 else { return }
        let (decay, l2) = Self.decay(lr: h.learningRate, weightDecay: h.weightDecay, decoupled: h.decoupled)
        if h.momentum == 0 {
            launch(.optimizers, "sgd_step", global: [count], args: [
                .buffer(param), .buffer(grad), .int(Int32(clamping: count)), .float(h.learningRate), .float(decay), .float(l2),
            ])
            return
        }
        guard let momentumBuffer else { preconditionFailure("sgdStep: momentum \(h.momentum) needs a momentum buffer") }
        launch(.optimizers, "sgd_momentum_step", global: [count], args: [
            .buffer(param), .buffer(grad), .buffer(momentumBuffer), .int(Int32(clamping: count)),
            .float(h.learningRate), .float(decay), .float(l2), .float(h.momentum), .float(h.dampening),
            Self.flag(h.nesterov), Self.flag(h.first),
        ])
    }

    func adagrad(param: DeviceBuffer, grad: DeviceBuffer, sum: DeviceBuffer, count: Int,
                     _ h: AdagradStepParameters) {
        guard count > 0 else { return }
        launch(.optimizers, "adagrad_step", global: [count], args: [
            .buffer(param), .buffer(grad), .buffer(sum), .int(Int32(clamping: count)),
            .float(h.learningRate), .float(h.weightDecay), .float(h.eps), .float(h.initialAccumulatorValue),
            Self.flag(h.first),
        ])
    }

    func rmsprop(param: DeviceBuffer, grad: DeviceBuffer, squareAverage: DeviceBuffer,
                     gradientAverage: DeviceBuffer?, momentumBuffer: DeviceBuffer?, count: Int,
                     _ h: RMSPropStepParameters) {
        guard count > 0 else { return }
        precondition(!h.centered || gradientAverage != nil, "rmspropStep: centered needs a gradient-average buffer")
        precondition(h.momentum <= 0 || momentumBuffer != nil, "rmspropStep: momentum \(h.momentum) needs a momentum buffer")
        let name = "rmsprop" + (h.centered ? "_centered" : "") + (h.momentum > 0 ? "_momentum" : "") + "_step"
        launch(.optimizers, name, global: [count], args: [
            .buffer(param), .buffer(grad), .buffer(squareAverage),
            h.centered ? Self.optional(gradientAverage) : .null, h.momentum > 0 ? Self.optional(momentumBuffer) : .null,
            .int(Int32(clamping: count)),
            .float(h.learningRate), .float(h.alpha), .float(h.eps), .float(h.weightDecay), .float(h.momentum),
            Self.flag(h.first),
        ])
    }

    func adam(param: DeviceBuffer, grad: DeviceBuffer, expAvg: DeviceBuffer, expAvgSq: DeviceBuffer,
                  maxExpAvgSq: DeviceBuffer?, count: Int, _ h: AdamStepParameters) {
        guard count > 0 else { return }
        precondition(!h.amsgrad || maxExpAvgSq != nil, "adamStep: amsgrad needs a max_exp_avg_sq buffer")
        let (decay, l2) = Self.decay(lr: h.learningRate, weightDecay: h.weightDecay, decoupled: h.decoupled)
        launch(.optimizers, h.amsgrad ? "adam_amsgrad_step" : "adam_step", global: [count], args: [
            .buffer(param), .buffer(grad), .buffer(expAvg), .buffer(expAvgSq), h.amsgrad ? Self.optional(maxExpAvgSq) : .null,
            .int(Int32(clamping: count)),
            .float(decay), .float(l2), .float(h.beta1), .float(h.beta2), .float(h.eps),
            .float(h.stepSize), .float(h.biasCorrection2Sqrt), Self.flag(h.first),
        ])
    }
}
