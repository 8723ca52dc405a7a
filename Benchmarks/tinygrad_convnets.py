"""Fashion-MNIST `cnn` and ResNet-8 (`resnet`) training in tinygrad with TinyJit (Adam 1e-3, batch 128, no
augmentation): the architectures of ConvNets.fashionCNN and ConvNets.resnet(depth: 1) (see Benchmarks/torch_convnets.py).

The device comes from tinygrad's DEV environment variable (CL or CPU). Prints one JSON line: training samples/s
over --batches batches (0: the whole shuffled epoch) after --warmup jitted steps (JIT capture), on the batch order
of Benchmarks/fashion_mnist.py.
"""
import argparse
import json
import time

from fashion_mnist import epoch_batches, load
from tinygrad import Context, Device, Tensor, TinyJit, nn


class BasicBlock:
    """torchvision's BasicBlock: conv3x3-BN-ReLU-conv3x3-BN, plus the input or a 1x1 conv + BN projection, ReLU."""

    def __init__(self, inplanes, planes, stride=1):
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm(planes)
        self.downsample = []
        if stride != 1 or inplanes != planes:
            self.downsample = [nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False), nn.BatchNorm(planes)]

    def __call__(self, x):
        out = self.bn2(self.conv2(self.bn1(self.conv1(x)).relu()))
        return (out + x.sequential(self.downsample)).relu()


class CNN:
    """ConvNets.fashionCNN."""

    def __init__(self):
        self.layers = [lambda x: x.reshape(-1, 1, 28, 28),
                       nn.Conv2d(1, 32, 3, padding=1, bias=False), nn.BatchNorm(32), Tensor.relu, Tensor.max_pool2d,
                       nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm(64), Tensor.relu, Tensor.max_pool2d,
                       lambda x: x.flatten(1), nn.Linear(3136, 128), Tensor.relu, nn.Linear(128, 10)]

    def __call__(self, x):
        return x.sequential(self.layers)


class ResNet8:
    """ConvNets.resnet(depth: 1)."""

    def __init__(self):
        self.layers = [lambda x: x.reshape(-1, 1, 28, 28),
                       nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm(16), Tensor.relu,
                       BasicBlock(16, 16), BasicBlock(16, 32, 2), BasicBlock(32, 64, 2),
                       lambda x: x.mean(axis=(2, 3)), nn.Linear(64, 10)]

    def __call__(self, x):
        return x.sequential(self.layers)


p = argparse.ArgumentParser()
p.add_argument("--model", choices=["cnn", "resnet"], required=True, help="cnn, or resnet (ResNet-8)")
p.add_argument("--batch", type=int, default=128)
p.add_argument("--warmup", type=int, default=10, help="training steps before the timed ones (JIT capture)")
p.add_argument("--batches", type=int, default=0, help="timed training batches (0: the whole epoch)")
p.add_argument("--seed", type=int, default=0)
args = p.parse_args()
Tensor.manual_seed(args.seed)

x_train, y_train = load("train")
model = CNN() if args.model == "cnn" else ResNet8()
opt = nn.optim.Adam(nn.state.get_parameters(model), lr=1e-3)


@TinyJit
def train_step(x, y):
    with Context(TRAINING=1):
        opt.zero_grad()
        loss = model(x).sparse_categorical_crossentropy(y).backward()
        opt.step()
    return loss.realize()


def step(idx):
    return train_step(Tensor(x_train[idx]), Tensor(y_train[idx].astype("int32")))


batches = epoch_batches(len(x_train), args.batch, args.seed)
timed = batches[:args.batches] if args.batches > 0 else batches
for idx in batches[:max(args.warmup, 3)]:  # TinyJit captures on the second call and replays from the third
    step(idx)
t0 = time.perf_counter()
for idx in timed:
    loss = step(idx)
loss = loss.item()
train_s = time.perf_counter() - t0
print(json.dumps({"device": Device.DEFAULT, "model": args.model, "batches": len(timed),
                  "train_samples_per_s": len(timed) * args.batch / train_s, "final_loss": loss}), flush=True)
