import Foundation

/// Ready-made convolutional networks for 28x28 images such as Fashion-MNIST, built from Myelin's layers with
/// PyTorch's state-dict keys (see each builder for the equivalent PyTorch module). Both take flat rows
/// [N, 784] (what `MNIST.load` gives) or images [N, 1, 28, 28] and return logits [N, classes], so they train
/// with `fit` and `softmaxCrossEntropy` directly. The same seed gives the same weights on every device.
///
/// ```swift
/// let cnn = ConvNets.fashionCNN(seed: 1, device: device)
/// let resnet8 = ConvNets.resnet(depth: 1, seed: 1, device: device)
/// ```
public enum ConvNets {
    /// The course's small CNN: conv3x3(1 -> 32, padding 1, no bias)-BN-ReLU-maxpool2 ->
    /// conv3x3(32 -> 64, padding 1, no bias)-BN-ReLU-maxpool2 -> flatten -> dense 3136 -> 128 ReLU -> dense 10
    /// (logits). Input [N, 784] or [N, 1, 28, 28].
    ///
    /// Its keys are those of this PyTorch module (index 0 reshapes flat rows into images):
    ///
    ///     nn.Sequential(nn.Unflatten(1, (1, 28, 28)),
    ///                   nn.Conv2d(1, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
    ///                   nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
    ///                   nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))
    ///
    /// that is `1.weight`, `2.{weight, bias, running_mean, running_var, num_batches_tracked}`, `5.weight`,
    /// `6.*`, `10.weight`, `10.bias`, `12.weight`, `12.bias`.
    ///
    /// - Parameters:
    ///   - seed: fixes every initial weight (He uniform for the convolutions and the hidden dense layer,
    ///     Glorot uniform for the output layer).
    ///   - device: where the tensors live.
    public static func fashionCNN(seed: UInt64, device: Device = .default) -> Sequential {
        var seeds = SeededGenerator(seed: seed)
        return Sequential {
            Reshape([1, 28, 28])
            Conv2D(inChannels: 1, outChannels: 32, kernelSize: 3, padding: 1, bias: false, seed: seeds.next(), device: device)
            BatchNorm(features: 32, device: device)
            ReLU()
            MaxPool2D(kernelSize: 2)
            Conv2D(inChannels: 32, outChannels: 64, kernelSize: 3, padding: 1, bias: false, seed: seeds.next(), device: device)
            BatchNorm(features: 64, device: device)
            ReLU()
            MaxPool2D(kernelSize: 2)
            Flatten()
            Dense(inputSize: 64 * 7 * 7, outputSize: 128, activation: .relu, weightInit: .heUniform,
                  seed: seeds.next(), device: device)
            Dense(inputSize: 128, outputSize: 10, seed: seeds.next(), device: device)
        }
    }

    /// A ResNet in the CIFAR style (He et al. 2016, section 4.2) for `imageSize`x`imageSize` images: a stem
    /// conv3x3(inChannels -> 16, no bias)-BN-ReLU, three stages of `depth` `ResidualBlock`s with 16, 32 (first
    /// block stride 2) and 64 (first block stride 2) channels, a projection shortcut (1x1 convolution + BN)
    /// where the shape changes, global average pooling and a dense layer to `classes` logits. `depth` 1 is
    /// ResNet-8, 2 ResNet-14, 3 ResNet-20 (6·depth + 2 layers with weights). Input [N, inChannels·imageSize²]
    /// or [N, inChannels, imageSize, imageSize].
    ///
    /// Its keys are those of this PyTorch module, `BasicBlock` being torchvision's (`conv1`, `bn1`, `conv2`,
    /// `bn2`, `downsample` = `nn.Sequential(conv1x1, BatchNorm2d)`), e.g. `1.weight` (stem), `4.0.conv1.weight`,
    /// `5.0.downsample.0.weight`, `9.weight`:
    ///
    ///     nn.Sequential(nn.Unflatten(1, (inChannels, imageSize, imageSize)),
    ///                   nn.Conv2d(inChannels, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
    ///                   nn.Sequential(*[BasicBlock(16, 16) for _ in range(depth)]),
    ///                   nn.Sequential(BasicBlock(16, 32, stride=2), *[BasicBlock(32, 32) for _ in range(depth - 1)]),
    ///                   nn.Sequential(BasicBlock(32, 64, stride=2), *[BasicBlock(64, 64) for _ in range(depth - 1)]),
    ///                   nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, classes))
    ///
    /// - Parameters:
    ///   - depth: residual blocks per stage, at least 1.
    ///   - classes: output logits. Default 10.
    ///   - inChannels: channels of the input images. Default 1.
    ///   - imageSize: height and width of the input images (for flat input rows). Default 28.
    ///   - seed: fixes every initial weight (He uniform convolutions, Glorot uniform output layer).
    ///   - device: where the tensors live.
    public static func resnet(depth: Int, classes: Int = 10, inChannels: Int = 1, imageSize: Int = 28,
                              seed: UInt64, device: Device = .default) -> Sequential {
        precondition(depth >= 1, "ConvNets.resnet: depth must be at least 1, got \(depth)")
        precondition(classes >= 1 && inChannels >= 1 && imageSize >= 1,
                     "ConvNets.resnet: classes, inChannels and imageSize must be positive")
        var seeds = SeededGenerator(seed: seed)
        func stage(_ from: Int, _ to: Int, stride: Int) -> Sequential {
            Sequential {
                for i in 0..<depth {
                    ResidualBlock(inChannels: i == 0 ? from : to, outChannels: to, stride: i == 0 ? stride : 1,
                                  seed: seeds.next(), device: device)
                }
            }
        }
        return Sequential {
            Reshape([inChannels, imageSize, imageSize])
            Conv2D(inChannels: inChannels, outChannels: 16, kernelSize: 3, padding: 1, bias: false, seed: seeds.next(), device: device)
            BatchNorm(features: 16, device: device)
            ReLU()
            stage(16, 16, stride: 1)
            stage(16, 32, stride: 2)
            stage(32, 64, stride: 2)
            GlobalAvgPool2D()
            Dense(inputSize: 64, outputSize: classes, seed: seeds.next(), device: device)
        }
    }
}
