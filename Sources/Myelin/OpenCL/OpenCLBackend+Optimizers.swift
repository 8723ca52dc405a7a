/// The fused optimizer updates as launches of the kernels in Kernels/optimizers.cl (one per call).
extension OpenCLBackend {
    private static func flag(_ b: Bool) -> KernelArg { .int(b ? 1 : 0) }
    private static func optional(_ b: DeviceBuffer?) -> KernelArg { b.map { .buffer($0) } ?? .null }

    func sgdStep(param: DeviceBuffer, grad: DeviceBuffer, momentumBuffer: DeviceBuffer?, count: Int,
                 _ h: SGDStepParameters) {
        guard count > 0 else { return }
        precondition(h.momentum == 0 || momentumBuffer != nil, "sgdStep: momentum \(h.momentum) needs a momentum buffer")
        launch("sgd_step", global: [count], args: [
            .buffer(param), .buffer(grad), Self.optional(momentumBuffer), .int(Int32(count)),
            .float(h.learningRate), .float(h.momentum), .float(h.dampening), .float(h.weightDecay),
            Self.flag(h.nesterov), Self.flag(h.decoupled), Self.flag(h.first),
        ])
    }

    func adagradStep(param: DeviceBuffer, grad: DeviceBuffer, sum: DeviceBuffer, count: Int,
                     _ h: AdagradStepParameters) {
        guard count > 0 else { return }
        launch("adagrad_step", global: [count], args: [
            .buffer(param), .buffer(grad), .buffer(sum), .int(Int32(count)),
            .float(h.learningRate), .float(h.weightDecay), .float(h.eps), .float(h.initialAccumulatorValue),
            Self.flag(h.first),
        ])
    }

    func rmspropStep(param: DeviceBuffer, grad: DeviceBuffer, squareAverage: DeviceBuffer,
                     gradientAverage: DeviceBuffer?, momentumBuffer: DeviceBuffer?, count: Int,
                     _ h: RMSPropStepParameters) {
        guard count > 0 else { return }
        precondition(!h.centered || gradientAverage != nil, "rmspropStep: centered needs a gradient-average buffer")
        precondition(h.momentum <= 0 || momentumBuffer != nil, "rmspropStep: momentum \(h.momentum) needs a momentum buffer")
        launch("rmsprop_step", global: [count], args: [
            .buffer(param), .buffer(grad), .buffer(squareAverage), Self.optional(gradientAverage),
            Self.optional(momentumBuffer), .int(Int32(count)),
            .float(h.learningRate), .float(h.alpha), .float(h.eps), .float(h.weightDecay), .float(h.momentum),
            Self.flag(h.centered), Self.flag(h.first),
        ])
    }

    func adamStep(param: DeviceBuffer, grad: DeviceBuffer, expAvg: DeviceBuffer, expAvgSq: DeviceBuffer,
                  maxExpAvgSq: DeviceBuffer?, count: Int, _ h: AdamStepParameters) {
        guard count > 0 else { return }
        precondition(!h.amsgrad || maxExpAvgSq != nil, "adamStep: amsgrad needs a max_exp_avg_sq buffer")
        launch("adam_step", global: [count], args: [
            .buffer(param), .buffer(grad), .buffer(expAvg), .buffer(expAvgSq), Self.optional(maxExpAvgSq),
            .int(Int32(count)),
            .float(h.learningRate), .float(h.beta1), .float(h.beta2), .float(h.eps), .float(h.weightDecay),
            .float(h.stepSize), .float(h.biasCorrection2Sqrt),
            Self.flag(h.decoupled), Self.flag(h.amsgrad), Self.flag(h.first),
        ])
    }
}
