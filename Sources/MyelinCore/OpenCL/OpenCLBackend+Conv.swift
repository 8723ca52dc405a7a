import COpenCL

// Convolution data movement as launches of Kernels/conv.cl.
extension OpenCLBackend {
    func geometryArgs(_ g: ConvGeometry) -> [KernelArg] {
        [g.channels, g.height, g.width, g.kernelH, g.kernelW, g.strideH, g.strideW, g.padH, g.padW, g.outH, g.outW]
            .map { .int(Int32(clamping: $0)) }
    }

    func im2col(x: DeviceBuffer, cols: DeviceBuffer, geometry g: ConvGeometry, padValue: Float) {
        guard g.batch > 0, g.patchSize > 0, g.positions > 0 else { return }
        launch(.conv, "im2col", global: [g.positions, g.patchSize, g.batch],
               args: [.buffer(x), .buffer(cols)] + geometryArgs(g) + [.float(padValue)])
    }

    func col2im(cols: DeviceBuffer, x: DeviceBuffer, geometry g: ConvGeometry) {
        guard g.batch * g.channels > 0, g.height > 0, g.width > 0 else { return }
        launch(.conv, "col2im", global: [g.width, g.height, g.batch * g.channels],
               args: [.buffer(cols), .buffer(x)] + geometryArgs(g))
    }
}

// The chunked convolution's data movement (ChunkedConvolution.swift) as launches of Kernels/conv.cl.
extension OpenCLBackend {
    /// Columns per chunk: 4 MiB on a CPU-like device (PoCL), 64 MiB on a GPU (`MYELIN_CONV_CHUNK` overrides).
    var convChunkElements: Int { ConvChunking.budget(default: info.isGPU ? 1 << 24 : 1 << 20) }

    func convUnfold(x: DeviceBuffer, cols: DeviceBuffer, geometry g: ConvGeometry, firstImage: Int, images: Int) {
        convUnfold(x: x, cols: cols, geometry: g, firstImage: firstImage, images: images, byRows: !info.isGPU)
    }

    /// `byRows`: one work item per patch row and image walking its positions (`conv_unfold_rows`, no integer
    /// division per element: what a CPU-like device wants), else one per column entry (`conv_unfold`, coalesced
    /// writes for a GPU). Both are tested on every OpenCL device.
    func convUnfold(x: DeviceBuffer, cols: DeviceBuffer, geometry g: ConvGeometry, firstImage: Int, images: Int,
                    byRows: Bool) {
        guard images > 0, g.patchSize > 0, g.positions > 0 else { return }
        let args: [KernelArg] = [.buffer(x), .buffer(cols)] + geometryArgs(g) + [.int(Int32(clamping: firstImage)), .int(Int32(clamping: images))]
        if byRows {
            launch(.conv, "conv_unfold_rows", global: [g.patchSize, images], args: args)
        } else {
            launch(.conv, "conv_unfold", global: [g.positions, g.patchSize, images], args: args)
        }
    }

    func convFold(cols: DeviceBuffer, x: DeviceBuffer, geometry g: ConvGeometry, firstImage: Int, images: Int) {
        convFold(cols: cols, x: x, geometry: g, firstImage: firstImage, images: images, byPlanes: !info.isGPU)
    }

    /// `byPlanes`: one work item per image plane adding its channel's column entries in order
    /// (`conv_fold_planes`, for a CPU-like device), else one per pixel gathering the entries read from it
    /// (`conv_fold`, for a GPU). Both are tested on every OpenCL device.
    func convFold(cols: DeviceBuffer, x: DeviceBuffer, geometry g: ConvGeometry, firstImage: Int, images: Int,
                  byPlanes: Bool) {
        guard images * g.channels > 0, g.height > 0, g.width > 0 else { return }
        let args: [KernelArg] = [.buffer(cols), .buffer(x)] + geometryArgs(g) + [.int(Int32(clamping: firstImage)), .int(Int32(clamping: images))]
        if byPlanes {
            launch(.conv, "conv_fold_planes", global: [g.channels, images], args: args)
        } else {
            launch(.conv, "conv_fold", global: [g.width, g.height, images * g.channels], args: args)
        }
    }

    func convGatherOutput(y: DeviceBuffer, chunk: DeviceBuffer, outChannels o: Int, positions l: Int,
                          firstImage: Int, images: Int) {
        guard images > 0, o > 0, l > 0 else { return }
        launch(.conv, "conv_gather_output", global: [l, o, images],
               args: [.buffer(y), .buffer(chunk), .int(Int32(clamping: o)), .int(Int32(clamping: l)), .int(Int32(clamping: firstImage)), .int(Int32(clamping: images))])
    }

    func convScatterOutput(chunk: DeviceBuffer, y: DeviceBuffer, bias: DeviceBuffer?, outChannels o: Int, positions l: Int,
                           firstImage: Int, images: Int) {
        guard images > 0, o > 0, l > 0 else { return }
        launch(.conv, "conv_scatter_output", global: [l, o, images],
               args: [.buffer(chunk), .buffer(y), bias.map { .buffer($0) } ?? .null, .int(bias == nil ? 0 : 1),
                      .int(Int32(clamping: o)), .int(Int32(clamping: l)), .int(Int32(clamping: firstImage)), .int(Int32(clamping: images))])
    }
}
