import Foundation

// Max pooling on OpenCL (max_pool_forward and max_pool_backward in Kernels/normalization.cl).
extension OpenCLBackend {
    private func poolArgs(_ g: ConvGeometry, count: Int) -> [KernelArg] {
        [g.height, g.width, g.outH, g.outW, g.kernelH, g.kernelW, g.strideH, g.strideW, g.padH, g.padW, count]
            .map { .int(Int32($0)) }
    }

    func maxPoolForward(x: DeviceBuffer, y: DeviceBuffer, ties: DeviceBuffer, geometry g: ConvGeometry) {
        let count = g.batch * g.channels * g.outH * g.outW
        guard count > 0 else { return }
        launch("max_pool_forward", global: [count], args: [.buffer(x), .buffer(y), .buffer(ties)] + poolArgs(g, count: count))
    }

    func maxPoolBackward(x: DeviceBuffer, y: DeviceBuffer, ties: DeviceBuffer, gy: DeviceBuffer, gx: DeviceBuffer,
                         geometry g: ConvGeometry) {
        let count = g.batch * g.channels * g.height * g.width
        guard count > 0 else { return }
        launch("max_pool_backward", global: [count],
               args: [.buffer(x), .buffer(y), .buffer(ties), .buffer(gy), .buffer(gx)] + poolArgs(g, count: count))
    }
}
