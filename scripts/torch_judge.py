#!/usr/bin/env python3
"""An independent judge of wgen's samples: a small CNN classifier written and trained in
PyTorch, none of wgen's code, to check the scores of wgen's built-in classifier against.

  train  trains a CNN on the four MNIST-format files in --data (default: the embedded digits),
         or on a folder of class folders of images (--folder DIR --size N, read as wgen reads
         it by torch_folder.py: the same split), with random shifts of up to 2 pixels (Adam
         1e-3 falling linearly to 0, batch 128: wgen's classifier recipe), and saves its
         weights; prints the test accuracy.
         --arch pool (default): Conv2d(1→32, 3, p1)-ReLU-MaxPool2, Conv2d(32→64, 3, p1)-ReLU-
         MaxPool2, Linear(3136→128)-ReLU, Linear(128→10): a different design from wgen's own.
         --arch stride: wgen's built-in design (stride-2 convolutions with batch norm, no
         pooling, 256 features), to measure the two side by side.
  score  reads sample files written by `wgen sample MODEL --n N --raw FILE` (f32 rows of C·H·W
         values in [0, 1]; the same --data or --folder/--size as train) and prints one JSON line each: the class shares, the smallest one,
         the effective number of classes (exp of the shares' entropy), classes at >= 5%, the
         Inception Score and the FD against the test digits in this CNN's features.

Needs torch, numpy and safetensors (pip); never a dependency of wgen itself.
"""
import argparse
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from torch_conv_vae import EMBEDDED, idx  # the IDX reader the PyTorch scripts share


class PoolCnn(nn.Module):
    def __init__(self, channels=1, side=28, classes=10):
        super().__init__()
        self.shape = (channels, side, side)
        self.conv1 = nn.Conv2d(channels, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = nn.Linear(64 * (side // 4) ** 2, 128)
        self.fc2 = nn.Linear(128, classes)

    def features(self, x):
        h = F.max_pool2d(F.relu(self.conv1(x.view(-1, *self.shape))), 2)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)
        return F.relu(self.fc1(h.flatten(1)))

    def forward(self, x):
        return self.fc2(self.features(x))


class StrideCnn(nn.Module):
    """wgen's built-in classifier's layers (src/models/classifier.rs), under its names."""

    def __init__(self, channels=1, side=28, classes=10):
        super().__init__()
        self.shape = (channels, side, side)
        self.conv1 = nn.Conv2d(channels, 32, 4, 2, 1)
        self.bn1 = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 64, 4, 2, 1)
        self.bn2 = nn.BatchNorm2d(64)
        self.fc1 = nn.Linear(64 * (side // 4) ** 2, 256)
        self.fc2 = nn.Linear(256, classes)

    def features(self, x):
        h = F.relu(self.bn1(self.conv1(x.view(-1, *self.shape))))
        h = F.relu(self.bn2(self.conv2(h)))
        return F.relu(self.fc1(h.flatten(1)))

    def forward(self, x):
        return self.fc2(self.features(x))


ARCHS = {"pool": PoolCnn, "stride": StrideCnn}


def split(folder, name):
    prefix = "train" if name == "train" else "t10k"
    x = idx(os.path.join(folder, f"{prefix}-images-idx3-ubyte.gz")).reshape(-1, 784).astype(np.float32) / 255.0
    y = idx(os.path.join(folder, f"{prefix}-labels-idx1-ubyte.gz")).astype(np.int64)
    return torch.from_numpy(x), torch.from_numpy(y)


def data(args, name):
    """(images [N, C·S·S], labels, (C, S, classes)) of one split of --folder or --data."""
    if args.folder:
        import torch_folder

        x, channels = torch_folder.load(args.folder, args.size, test=name == "test")
        y = torch_folder.labels(args.folder, test=name == "test")
        return x.float(), y, (channels, args.size, int(torch_folder.labels(args.folder).max()) + 1)
    x, y = split(args.data, name)
    return x, y, (1, 28, 10)


def shifted(x, most, shape):
    """Each image moved by its own random (dy, dx) in [-most, most], zeros shifted in."""
    n, (c, s, _) = len(x), shape
    padded = F.pad(x.view(n, c, s, s), (most, most, most, most))
    dy = torch.randint(0, 2 * most + 1, (n,))
    dx = torch.randint(0, 2 * most + 1, (n,))
    rows = (dy[:, None] + torch.arange(s)[None, :])[:, None, :, None].expand(n, c, s, s)
    cols = (dx[:, None] + torch.arange(s)[None, :])[:, None, None, :].expand(n, c, s, s)
    return padded[torch.arange(n)[:, None, None, None], torch.arange(c)[None, :, None, None], rows, cols].reshape(n, -1)


def accuracy(model, x, y):
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def train(args):
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    x_train, y_train, shape = data(args, "train")
    x_test, y_test, _ = data(args, "test")
    model = ARCHS[args.arch](*shape)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    # wgen's classifier recipe: the rate falls linearly to 0 over the run.
    steps = args.epochs * (len(x_train) // args.batch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1 - step / steps)
    for epoch in range(1, args.epochs + 1):
        model.train()
        start = time.perf_counter()
        order = torch.randperm(len(x_train))
        for i in range(0, len(order) - args.batch + 1, args.batch):
            b = order[i:i + args.batch]
            loss = F.cross_entropy(model(shifted(x_train[b], args.shift, shape)), y_train[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        model.eval()
        print(json.dumps({"epoch": epoch, "arch": args.arch, "seed": args.seed, "test_acc": round(accuracy(model, x_test, y_test), 4),
                          "seconds": round(time.perf_counter() - start, 1)}), flush=True)
    if args.out:
        from safetensors.torch import save_file

        save_file(model.state_dict(), args.out, metadata={"arch": args.arch, "shape": json.dumps(shape)})


def trace_sqrt(s1, s2):
    """tr (S1 S2)^1/2 as the sum of the square roots of the eigenvalues of S1^1/2 S2 S1^1/2."""
    w, v = np.linalg.eigh(s1)
    r1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = r1 @ s2 @ r1
    return float(np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum())


def fd(a, b):
    mu = a.mean(0) - b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    return float(mu @ mu + np.trace(s1) + np.trace(s2) - 2 * trace_sqrt(s1, s2))


def score(args):
    from safetensors.torch import load_file
    from safetensors import safe_open

    with safe_open(args.model, "pt") as f:
        arch = f.metadata().get("arch", "pool")
        shape = json.loads(f.metadata().get("shape", "[1, 28, 10]"))
    model = ARCHS[arch](*shape)
    model.load_state_dict(load_file(args.model), strict=True)
    model.eval()
    x_test, _, _ = data(args, "test")
    with torch.no_grad():
        reference = model.features(x_test).double().numpy()
    for path in args.samples:
        x = torch.from_numpy(np.fromfile(path, dtype="<f4").reshape(-1, shape[0] * shape[1] ** 2))
        with torch.no_grad():
            feats = model.features(x)
            probs = F.softmax(model.fc2(feats), 1).double().numpy()
        shares = np.bincount(probs.argmax(1), minlength=shape[2]) / len(probs)
        marginal = probs.mean(0)
        kl = (probs * (np.log(np.clip(probs, 1e-300, None)) - np.log(marginal))).sum(1).mean()
        entropy = -sum(s * math.log(s) for s in shares if s > 0)
        print(json.dumps({"file": path, "judge": f"torch {arch} cnn", "images": len(x), "fd": round(fd(feats.double().numpy(), reference), 3),
                          "inception_score": round(math.exp(kl), 3), "modes": int((shares >= 0.05).sum()),
                          "smallest_share": round(float(shares.min()), 4), "effective_classes": round(math.exp(entropy), 3),
                          "class_shares": [round(float(s), 4) for s in shares]}), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--data", default=EMBEDDED)
    t.add_argument("--folder", help="a folder of class folders of images, read as wgen reads it")
    t.add_argument("--size", type=int, help="with --folder: the side images are resized to")
    t.add_argument("--arch", choices=sorted(ARCHS), default="pool")
    t.add_argument("--epochs", type=int, default=15)
    t.add_argument("--batch", type=int, default=128)
    t.add_argument("--shift", type=int, default=2)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--out")
    s = sub.add_parser("score")
    s.add_argument("model")
    s.add_argument("samples", nargs="+")
    s.add_argument("--data", default=EMBEDDED)
    s.add_argument("--folder")
    s.add_argument("--size", type=int)
    args = p.parse_args()
    {"train": train, "score": score}[args.cmd](args)


if __name__ == "__main__":
    main()
