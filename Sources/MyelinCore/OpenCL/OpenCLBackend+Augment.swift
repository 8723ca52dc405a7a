// Data augmentation as launches of Kernels/augment.cl.
extension OpenCLBackend {
    func randomCropFlip(x: DeviceBuffer, out: DeviceBuffer, batch: Int, channels: Int, height: Int, width: Int,
                        padding: Int, flip: Bool, seed: UInt64) {
        guard batch * channels > 0, height > 0, width > 0 else { return }
        launch(.augment, "random_crop_flip", global: [width, height, batch * channels],
               args: [.buffer(x), .buffer(out), .int(Int32(clamping: channels)), .int(Int32(clamping: height)), .int(Int32(clamping: width)),
                      .int(Int32(clamping: padding)), .int(flip ? 1 : 0), .ulong(seed)])
    }
}
