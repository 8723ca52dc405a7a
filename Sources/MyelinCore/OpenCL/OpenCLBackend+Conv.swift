import COpenCL

// Convolution data movement as launches of Kernels/conv.cl.
extension OpenCLBackend {
    private func geometryArgs(_ g: ConvGeometry) -> [KernelArg] {
        [g.channels, g.height, g.width, g.kernelH, g.kernelW, g.strideH, g.strideW, g.padH, g.padW, g.outH, g.outW]
            .map { .int(Int32($0)) }
    }

    func im2col(x: DeviceBuffer, cols: DeviceBuffer, geometry g: ConvGeometry, padValue: Float) {
        guard g.batch > 0, g.patchSize > 0, g.positions > 0 else { return }
        launch("im2col", global: [g.positions, g.patchSize, g.batch],
               args: [.buffer(x), .buffer(cols)] + geometryArgs(g) + [.float(padValue)])
    }

    func col2im(cols: DeviceBuffer, x: DeviceBuffer, geometry g: ConvGeometry) {
        guard g.batch * g.channels > 0, g.height > 0, g.width > 0 else { return }
        launch("col2im", global: [g.width, g.height, g.batch * g.channels],
               args: [.buffer(cols), .buffer(x)] + geometryArgs(g))
    }
}
