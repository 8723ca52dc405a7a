import Foundation

// Batch normalization on OpenCL (Kernels/normalization.cl).
extension OpenCLBackend {
    /// A power-of-two work-group size for a per-channel kernel over m values, within the kernel's limits.
    private func channelGroupSize(_ kernel: String, values m: Int) -> Int {
        var wg = m >= 256 ? 256 : (m >= 64 ? 64 : 16)
        while wg > workGroupLimit(.normalization, kernel) || wg > limits.maxWorkItemSizes[0] { wg /= 2 }
        return max(wg, 1)
    }

    func batchNormMoments(x: DeviceBuffer, mean: DeviceBuffer, variance: DeviceBuffer, outer: Int, channels: Int, inner: Int) {
        guard outer > 0, channels > 0, inner > 0 else { return }
        let wg = channelGroupSize("bn_moments", values: outer * inner)
        launch(.normalization, "bn_moments", global: [channels * wg], local: [wg],
               args: [.buffer(x), .buffer(mean), .buffer(variance), .int(Int32(outer)), .int(Int32(channels)),
                      .int(Int32(inner)), .local(wg * 4)])
    }

    func batchNormApply(x: DeviceBuffer, y: DeviceBuffer, mean: DeviceBuffer, variance: DeviceBuffer, weight: DeviceBuffer,
                        bias: DeviceBuffer, epsilon: Float, outer: Int, channels: Int, inner: Int) {
        let count = outer * channels * inner
        guard count > 0 else { return }
        launch(.normalization, "bn_apply", global: [inner, channels, outer],
               args: [.buffer(x), .buffer(y), .buffer(mean), .buffer(variance), .buffer(weight), .buffer(bias),
                      .float(epsilon), .int(Int32(channels)), .int(Int32(inner))])
    }

    func batchNormBackwardSums(x: DeviceBuffer, gy: DeviceBuffer, mean: DeviceBuffer, variance: DeviceBuffer,
                               gweight: DeviceBuffer, gbias: DeviceBuffer, epsilon: Float, outer: Int, channels: Int, inner: Int) {
        guard channels > 0 else { return }
        let wg = channelGroupSize("bn_backward_sums", values: outer * inner)
        launch(.normalization, "bn_backward_sums", global: [channels * wg], local: [wg],
               args: [.buffer(x), .buffer(gy), .buffer(mean), .buffer(variance), .buffer(gweight), .buffer(gbias),
                      .float(epsilon), .int(Int32(outer)), .int(Int32(channels)), .int(Int32(inner)), .local(2 * wg * 4)])
    }

    func batchNormBackwardInput(x: DeviceBuffer, gy: DeviceBuffer, mean: DeviceBuffer, variance: DeviceBuffer,
                                weight: DeviceBuffer, gweight: DeviceBuffer, gbias: DeviceBuffer, gx: DeviceBuffer,
                                epsilon: Float, batchStatistics: Bool, outer: Int, channels: Int, inner: Int) {
        let count = outer * channels * inner
        guard count > 0 else { return }
        launch(.normalization, "bn_backward_input", global: [inner, channels, outer],
               args: [.buffer(x), .buffer(gy), .buffer(mean), .buffer(variance), .buffer(weight), .buffer(gweight),
                      .buffer(gbias), .buffer(gx), .float(epsilon), .int(batchStatistics ? 1 : 0), .int(Int32(outer)),
                      .int(Int32(channels)), .int(Int32(inner))])
    }
}
