import Foundation

// Batch normalization on OpenCL (Kernels/normalization.cl).
extension OpenCLBackend {
    /// A power-of-two work-group size for a per-channel kernel over m values, within the kernel's limits.
    private func channelGroupSize(_ kernel: String, values m: Int) -> Int {
        var wg = m >= 256 ? 256 : (m >= 64 ? 64 : 16)
        while wg > workGroupLimit(.normalization, kernel) || wg > limits.maxWorkItemSizes[0] { wg /= 2 }
        return max(wg, 1)
    }

    /// Work-groups per compute unit that the per-channel sums aim at on a GPU (`channelParts`).
    static let batchNormGroupsPerComputeUnit = 4
    /// The fewest values per work-item of a part (`channelParts` splits a channel no finer).
    static let batchNormValuesPerWorkItem = 8

    /// How many work-groups share one channel's m values (stage 1 of the sums, Kernels/normalization.cl): enough
    /// for `batchNormGroupsPerComputeUnit` groups per compute unit over all channels on a GPU, and one group per
    /// compute unit on other devices (PoCL: 1 as soon as there are as many channels as cores), but no part
    /// smaller than `batchNormValuesPerWorkItem` values per work-item of a `groupSize` group.
    func channelParts(channels: Int, values m: Int, groupSize: Int) -> Int {
        let groups = max(1, info.computeUnits) * (info.isGPU ? Self.batchNormGroupsPerComputeUnit : 1)
        let wanted = (groups + channels - 1) / channels
        return max(1, min(wanted, m / (groupSize * Self.batchNormValuesPerWorkItem)))
    }

    func batchNormMoments(x: DeviceBuffer, mean: DeviceBuffer, variance: DeviceBuffer, running: BatchNormRunning?,
                          outer: Int, channels: Int, inner: Int) {
        batchNormMoments(x: x, mean: mean, variance: variance, running: running, outer: outer, channels: channels,
                         inner: inner, parts: nil)
    }

    /// The arguments of the running-statistics update that closes `bn_moments` (and `bn_moments_combine`).
    private func runningArgs(_ r: BatchNormRunning?) -> [KernelArg] {
        guard let r else { return [.null, .null, .null, .float(0), .float(0), .float(0), .int(0)] }
        return [.buffer(r.mean), .buffer(r.variance), .buffer(r.tracked), .float(r.keep), .float(r.momentum),
                .float(r.varianceFactor), .int(1)]
    }

    /// `parts` work-groups per channel, or the device's choice (`channelParts`) when nil; tests force several.
    func batchNormMoments(x: DeviceBuffer, mean: DeviceBuffer, variance: DeviceBuffer, running: BatchNormRunning? = nil,
                          outer: Int, channels: Int, inner: Int, parts: Int?) {
        guard outer > 0, channels > 0, inner > 0 else { return }
        let m = outer * inner
        let wg = channelGroupSize("bn_moments", values: m)
        let g = min(max(parts ?? channelParts(channels: channels, values: m, groupSize: wg), 1), m)
        let partials = g > 1 ? allocate(2 * channels * g) : nil
        launch(.normalization, "bn_moments", global: [channels * g * wg], local: [wg],
               args: [.buffer(x), .buffer(mean), .buffer(variance), partials.map { .buffer($0) } ?? .null,
                      .int(Int32(clamping: outer)), .int(Int32(clamping: channels)), .int(Int32(clamping: inner)), .int(Int32(clamping: g)), .local(2 * wg * 4)]
                   + runningArgs(g > 1 ? nil : running))
        guard let partials else { return }
        launch(.normalization, "bn_moments_combine", global: [channels],
               args: [.buffer(x), .buffer(partials), .buffer(mean), .buffer(variance), .int(Int32(clamping: outer)),
                      .int(Int32(clamping: channels)), .int(Int32(clamping: inner)), .int(Int32(clamping: g))] + runningArgs(running))
    }

    func batchNormApply(x: DeviceBuffer, y: DeviceBuffer, mean: DeviceBuffer, variance: DeviceBuffer, weight: DeviceBuffer,
                        bias: DeviceBuffer, residual: DeviceBuffer?, relu: Bool, epsilon: Float, outer: Int, channels: Int,
                        inner: Int) {
        let count = outer * channels * inner
        guard count > 0 else { return }
        // A kernel per fusion (Kernels/normalization.cl): its flags are compile-time constants there.
        let kernel = "bn_apply" + (residual == nil ? "" : "_residual") + (relu ? "_relu" : "")
        launch(.normalization, kernel, global: [inner, channels, outer],
               args: [.buffer(x), .buffer(y), .buffer(mean), .buffer(variance), .buffer(weight), .buffer(bias),
                      residual.map { .buffer($0) } ?? .null, .float(epsilon), .int(Int32(clamping: channels)), .int(Int32(clamping: inner))])
    }

    func batchNormBackwardSums(x: DeviceBuffer, gy: DeviceBuffer, mask: DeviceBuffer?, mean: DeviceBuffer,
                               variance: DeviceBuffer, gweight: DeviceBuffer, gbias: DeviceBuffer, epsilon: Float,
                               outer: Int, channels: Int, inner: Int) {
        batchNormBackwardSums(x: x, gy: gy, mask: mask, mean: mean, variance: variance, gweight: gweight, gbias: gbias,
                              epsilon: epsilon, outer: outer, channels: channels, inner: inner, parts: nil)
    }

    /// `parts` work-groups per channel, or the device's choice (`channelParts`) when nil; tests force several.
    func batchNormBackwardSums(x: DeviceBuffer, gy: DeviceBuffer, mask: DeviceBuffer? = nil, mean: DeviceBuffer,
                               variance: DeviceBuffer, gweight: DeviceBuffer, gbias: DeviceBuffer, epsilon: Float,
                               outer: Int, channels: Int, inner: Int, parts: Int?) {
        guard channels > 0 else { return }
        let m = outer * inner
        guard m > 0 else {
            // Sums over no values.
            fill(gweight, value: 0, offset: 0, count: channels)
            fill(gbias, value: 0, offset: 0, count: channels)
            return
        }
        let kernel = mask == nil ? "bn_backward_sums" : "bn_backward_sums_masked"
        let wg = channelGroupSize(kernel, values: m)
        let g = min(max(parts ?? channelParts(channels: channels, values: m, groupSize: wg), 1), m)
        let partials = g > 1 ? allocate(2 * channels * g) : nil
        launch(.normalization, kernel, global: [channels * g * wg], local: [wg],
               args: [.buffer(x), .buffer(gy), mask.map { .buffer($0) } ?? .null, .buffer(mean), .buffer(variance), .buffer(gweight), .buffer(gbias),
                      partials.map { .buffer($0) } ?? .null, .float(epsilon), .int(Int32(clamping: outer)), .int(Int32(clamping: channels)),
                      .int(Int32(clamping: inner)), .int(Int32(clamping: g)), .local(2 * wg * 4)])
        guard let partials else { return }
        launch(.normalization, "bn_backward_sums_combine", global: [channels],
               args: [.buffer(partials), .buffer(variance), .buffer(gweight), .buffer(gbias), .float(epsilon),
                      .int(Int32(clamping: channels)), .int(Int32(clamping: g))])
    }

    func batchNormBackwardInput(x: DeviceBuffer, gy: DeviceBuffer, mask: DeviceBuffer?, mean: DeviceBuffer,
                                variance: DeviceBuffer, weight: DeviceBuffer, gweight: DeviceBuffer, gbias: DeviceBuffer,
                                gx: DeviceBuffer, gresidual: DeviceBuffer?, epsilon: Float, batchStatistics: Bool,
                                outer: Int, channels: Int, inner: Int) {
        let count = outer * channels * inner
        guard count > 0 else { return }
        let kernel = "bn_backward_input" + (mask == nil ? "" : "_masked") + (gresidual == nil ? "" : "_residual")
        launch(.normalization, kernel, global: [inner, channels, outer],
               args: [.buffer(x), .buffer(gy), mask.map { .buffer($0) } ?? .null, .buffer(mean), .buffer(variance),
                      .buffer(weight), .buffer(gweight), .buffer(gbias), .buffer(gx), gresidual.map { .buffer($0) } ?? .null,
                      .float(epsilon), .int(batchStatistics ? 1 : 0), .int(Int32(clamping: outer)), .int(Int32(clamping: channels)),
                      .int(Int32(clamping: inner))])
    }
}
