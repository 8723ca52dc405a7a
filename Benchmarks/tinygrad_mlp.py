"""Fashion-MNIST MLP 784-512-256-10 (ReLU, Adam 1e-3, batch 128) in tinygrad with TinyJit.

The device comes from tinygrad's DEV environment variable (CL or CPU). Prints one JSON line:
training samples/s over one shuffled epoch (after --warmup jitted steps) and test-set inference samples/s.
"""
import argparse
import json
import time

from fashion_mnist import epoch_batches, load
from tinygrad import Context, Device, Tensor, TinyJit, nn

p = argparse.ArgumentParser()
p.add_argument("--batch", type=int, default=128)
p.add_argument("--eval-batch", type=int, default=1000)
p.add_argument("--warmup", type=int, default=20, help="training steps before the timed epoch (JIT capture)")
p.add_argument("--seed", type=int, default=0)
args = p.parse_args()
Tensor.manual_seed(args.seed)

x_train, y_train = load("train")
x_test, y_test = load("t10k")


class MLP:
    def __init__(self):
        self.layers = [nn.Linear(784, 512), Tensor.relu, nn.Linear(512, 256), Tensor.relu, nn.Linear(256, 10)]

    def __call__(self, x):
        return x.sequential(self.layers)


model = MLP()
opt = nn.optim.Adam(nn.state.get_parameters(model), lr=1e-3)


@TinyJit
def train_step(x, y):
    with Context(TRAINING=1):
        opt.zero_grad()
        loss = model(x).sparse_categorical_crossentropy(y).backward()
        opt.step()
    return loss.realize()


@TinyJit
def predict(x):
    return model(x).argmax(1).realize()


def step(idx):
    return train_step(Tensor(x_train[idx]), Tensor(y_train[idx].astype("int32")))


batches = epoch_batches(len(x_train), args.batch, args.seed)
for idx in batches[:args.warmup]:
    step(idx)
t0 = time.perf_counter()
for idx in batches:
    loss = step(idx)
loss = loss.item()
train_s = time.perf_counter() - t0

for i in range(2):  # JIT capture of the inference graph
    predict(Tensor(x_test[:args.eval_batch])).numpy()
t0 = time.perf_counter()
correct = sum(int((predict(Tensor(x_test[i:i + args.eval_batch])).numpy() == y_test[i:i + args.eval_batch]).sum())
              for i in range(0, len(x_test), args.eval_batch))
test_s = time.perf_counter() - t0

print(json.dumps({"device": Device.DEFAULT, "train_samples_per_s": len(batches) * args.batch / train_s,
                  "test_samples_per_s": len(x_test) / test_s, "final_loss": loss,
                  "test_accuracy": correct / len(x_test)}), flush=True)
