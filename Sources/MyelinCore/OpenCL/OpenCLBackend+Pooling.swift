import Foundation

// Max pooling on OpenCL (max_pool_forward and max_pool_backward in Kernels/normalization.cl).
extension OpenCLBackend {
    private func poolArgs(_ g: ConvGeometry, count: Int) -> [KernelArg] {
        [g.height, g.width, g.outH, g.outW, g.kernelH, g.kernelW, g.strideH, g.strideW, g.padH, g.padW, count]
            .map { .int(Int32(clamping: $0)) }
    }

    func maxPoolForward(x: DeviceBuffer, y: DeviceBuffer, argmax: DeviceBuffer, geometry g: ConvGeometry) {
        let count = g.batch * g.channels * g.outH * g.outW
        guard count > 0 else { return }
        if g.isPlainTwoByTwo {
            launch(.normalization, "max_pool2x2_forward", global: [g.outW, g.outH, g.batch * g.channels],
                   args: [.buffer(x), .buffer(y), .buffer(argmax)] + [g.height, g.width, g.outH, g.outW].map { .int(Int32(clamping: $0)) })
            return
        }
        launch(.normalization, "max_pool_forward", global: [count], args: [.buffer(x), .buffer(y), .buffer(argmax)] + poolArgs(g, count: count))
    }

    func maxPoolBackward(x: DeviceBuffer, y: DeviceBuffer, argmax: DeviceBuffer, gy: DeviceBuffer, gx: DeviceBuffer,
                         geometry g: ConvGeometry) {
        let count = g.batch * g.channels * g.height * g.width
        guard count > 0 else { return }
        if g.isPlainTwoByTwo {
            launch(.normalization, "max_pool2x2_backward", global: [(g.width + 1) / 2, (g.height + 1) / 2, g.batch * g.channels],
                   args: [.buffer(x), .buffer(y), .buffer(argmax), .buffer(gy), .buffer(gx)]
                       + [g.height, g.width, g.outH, g.outW].map { .int(Int32(clamping: $0)) })
            return
        }
        launch(.normalization, "max_pool_backward", global: [count],
               args: [.buffer(x), .buffer(y), .buffer(argmax), .buffer(gy), .buffer(gx)] + poolArgs(g, count: count))
    }
}
