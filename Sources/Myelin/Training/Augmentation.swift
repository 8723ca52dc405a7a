import Foundation

/// A random change to training images that `fit` makes on the device before each step, to training batches only
/// (never to validation or test data): random crops with zero padding and random horizontal flips, one launch per
/// batch. The draws are fixed by `fit`'s seed, the epoch and the batch (`batchSeed(_:epoch:batch:)`), so a seed
/// gives the same augmented batches on every device, and a resumed run continues exactly.
///
/// ```swift
/// try model.fit(train, epochs: 15, batchSize: 128, loss: .softmaxCrossEntropy, optimizer: optimizer,
///               augmentation: .randomCropFlip(padding: 2), seed: 1)
/// ```
public struct Augmentation: Sendable, Equatable {
    /// Zeros added on every side before the crop: images move by up to `padding` pixels each way.
    public let padding: Int
    /// Whether images are mirrored left-right with probability ½.
    public let flip: Bool
    /// The shape [C, H, W] of one sample's image; nil reads it from the data: samples [C, H, W], or [H, W] as one
    /// channel. Give it for flattened samples ([784] as [1, 28, 28]).
    public let imageShape: [Int]?

    /// Random crops after padding each image with `padding` zeros on every side (torchvision's
    /// `RandomCrop(size, padding)`), then, when `flip` is true, a left-right mirror with probability ½
    /// (`RandomHorizontalFlip`). `imageShape` [C, H, W] reads flat samples as images.
    ///
    /// ```swift
    /// let augmentation = Augmentation.randomCropFlip(padding: 2, imageShape: [1, 28, 28])   // samples [784]
    /// ```
    public static func randomCropFlip(padding: Int = 2, flip: Bool = true, imageShape: [Int]? = nil) -> Augmentation {
        Augmentation(padding: padding, flip: flip, imageShape: imageShape)
    }

    /// The image shape [C, H, W] that samples of `sampleShape` are read as; throws, naming both shapes, when they
    /// cannot be (or when `padding` is negative or above 4096).
    public func image(forSampleShape sampleShape: [Int]) throws -> [Int] {
        let source = "Augmentation.randomCropFlip"
        guard padding >= 0, padding <= 4096 else {
            throw DataError.invalid(source, reason: "padding \(padding) must be in 0...4096")
        }
        if let imageShape {
            guard imageShape.count == 3, imageShape.allSatisfy({ $0 > 0 }) else {
                throw DataError.invalid(source, reason: "imageShape \(imageShape) must be [C, H, W] with positive sizes")
            }
            guard imageShape.reduce(1, *) == sampleShape.reduce(1, *) else {
                throw DataError.invalid(source, reason: "samples of shape \(sampleShape) cannot be read as images \(imageShape) (\(sampleShape.reduce(1, *)) values, not \(imageShape.reduce(1, *)))")
            }
            return imageShape
        }
        switch sampleShape.count {
        case 3: return sampleShape
        case 2: return [1] + sampleShape
        default:
            throw DataError.invalid(source, reason: "samples of shape \(sampleShape) are not images [C, H, W] or [H, W]; give imageShape (e.g. [1, 28, 28] for [784])")
        }
    }

    /// The batch `features` [N, ...] augmented with the draws of `seed`, in the same shape (one launch on the
    /// features' device; nothing is read back).
    public func apply(to features: Tensor, seed: UInt64) throws -> Tensor {
        guard features.rank >= 1 else {
            throw DataError.invalid("Augmentation.randomCropFlip", reason: "features of shape \(features.shape) have no batch dimension")
        }
        let image = try self.image(forSampleShape: Array(features.shape.dropFirst()))
        let images = features.rank == 4 ? features : try features.reshaped([features.shape[0]] + image)
        let out = try images.randomCropFlip(padding: padding, flip: flip, seed: seed)
        return features.rank == 4 ? out : try out.reshaped(features.shape)
    }

    /// The seed of batch `batch` of epoch `epoch` (both 0-based) in a run seeded with `seed`: what `fit` gives
    /// `apply(to:seed:)`.
    public static func batchSeed(_ seed: UInt64, epoch: Int, batch: Int) -> UInt64 {
        var g = SeededGenerator(seed: seed ^ 0xA076_1D64_78BD_642F)
        var h = SeededGenerator(seed: g.next() ^ (UInt64(truncatingIfNeeded: epoch) &* 0x9E37_79B9_7F4A_7C15))
        var k = SeededGenerator(seed: h.next() ^ (UInt64(truncatingIfNeeded: batch) &* 0xD6E8_FEB8_6659_FD93))
        return k.next()
    }
}
