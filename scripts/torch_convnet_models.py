"""PyTorch modules equal to Myelin's ConvNets builders (same module order, so the same state-dict keys).

Needs only torch. Used by scripts/torch_convnet_interop.py (which proves the keys and outputs equal to Myelin's)
and by Benchmarks/torch_convnets.py (the bench-peers convnet workloads).
"""
import torch

nn = torch.nn


class BasicBlock(nn.Module):
    """torchvision.models.resnet.BasicBlock (same attribute names, so the same state-dict keys)."""

    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


def fashion_cnn():
    """ConvNets.fashionCNN."""
    return nn.Sequential(nn.Unflatten(1, (1, 28, 28)),
                         nn.Conv2d(1, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))


def resnet(depth, classes=10, in_channels=1, image_size=28):
    """ConvNets.resnet(depth:classes:inChannels:imageSize:)."""
    def stage(inplanes, planes, stride):
        return nn.Sequential(BasicBlock(inplanes, planes, stride), *[BasicBlock(planes, planes) for _ in range(depth - 1)])
    return nn.Sequential(nn.Unflatten(1, (in_channels, image_size, image_size)),
                         nn.Conv2d(in_channels, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                         stage(16, 16, 1), stage(16, 32, 2), stage(32, 64, 2),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, classes))
