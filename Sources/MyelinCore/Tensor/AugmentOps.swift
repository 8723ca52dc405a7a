import Foundation

// Data augmentation as a tensor op: random crop with zero padding and random horizontal flip, one launch per batch.

/// One image's random crop offsets and mirror bit, from a counter-based hash of (seed, image index): the same bits
/// as `augment_bits` in Kernels/augment.cl, so every device augments a batch identically.
struct AugmentDraw: Equatable, Sendable {
    /// Row and column of the crop's corner in the padded image, each in 0...2·padding (padding: no shift).
    let dy: Int, dx: Int
    /// Whether the crop is mirrored left-right.
    let mirrored: Bool

    init(seed: UInt64, image: Int, padding: Int, flip: Bool) {
        var z = seed &+ (UInt64(image) &+ 1) &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z = z ^ (z >> 31)
        let span = UInt64(2 * padding + 1)
        dy = Int(((z >> 48) &* span) >> 16)
        dx = Int((((z >> 32) & 0xFFFF) &* span) >> 16)
        mirrored = flip && (z >> 31) & 1 != 0
    }
}

extension Tensor {
    /// Images [N, C, H, W] randomly shifted and mirrored, as `torchvision`'s `RandomCrop(H, padding: padding)`
    /// followed by `RandomHorizontalFlip()`: each image is padded with `padding` zeros on every side, an H×W window
    /// is cut at a random corner (each of the (2·padding + 1)² equally likely), and, when `flip` is true, mirrored
    /// left-right with probability ½. The draws are a counter-based hash of (`seed`, image index), so a seed gives the
    /// same result on every device; one launch, nothing read back. A data transform: no gradient flows through it.
    ///
    /// ```swift
    /// let augmented = try images.randomCropFlip(padding: 2, seed: 7)   // [128, 1, 28, 28] -> [128, 1, 28, 28]
    /// ```
    public func randomCropFlip(padding: Int, flip: Bool = true, seed: UInt64) throws -> Tensor {
        guard rank == 4 else { throw TensorError.invalidShape(op: "randomCropFlip", shape, "must be [N, C, H, W]") }
        guard padding >= 0, padding <= 1 << 12 else {
            throw TensorError.invalidShape(op: "randomCropFlip", shape, "cannot take padding \(padding) (0...4096)")
        }
        let out = Tensor.empty(shape, on: device)
        guard count > 0 else { return out }
        backend.randomCropFlip(x: buffer, out: out.buffer, batch: shape[0], channels: shape[1], height: shape[2],
                               width: shape[3], padding: padding, flip: flip, seed: seed)
        return out
    }
}
