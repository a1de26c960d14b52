#!/usr/bin/env python3
"""The DCGAN of `wgen train dcgan` in PyTorch: the yardstick for its figures, and a check that
torch.nn loads wgen's model.safetensors as it is.

  train  trains it on the four MNIST-format files in --data (default: the embedded digits) with
         pytorch/examples' DCGAN loop, as wgen's default D-first order: D on a real batch and on
         G(z).detach() (two calls, so D's batch norm sees each batch alone), Adam step; then G
         against the updated D on the same G(z). Non-saturating BCE, Adam 2e-4 (0.5, 0.999),
         batch 64, images in [-1, 1]. One JSON line per epoch: d_loss ((real + fake) / 2, as
         wgen reports it), g_loss, mean D(x) and D(G(z)) of D's passes, img/s.
  check  loads a wgen dcgan model.safetensors into torch.nn modules (strict names and shapes),
         draws --n samples in eval mode and prints their pixel statistics beside those of the
         samples `wgen sample MODEL --raw FILE` wrote (different noise: a sanity check).

Needs torch, numpy and safetensors (pip); never a dependency of wgen itself.
"""
import argparse
import gzip
import json
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
EMBEDDED = os.path.join(HERE, "..", "assets", "mnist-10k")


class Generator(nn.Module):
    def __init__(self, latent=100):
        super().__init__()
        self.fc = nn.Linear(latent, 128 * 7 * 7)
        self.bn0 = nn.BatchNorm1d(128 * 7 * 7)
        self.deconv1 = nn.ConvTranspose2d(128, 64, 4, 2, 1)
        self.bn1 = nn.BatchNorm2d(64)
        self.deconv2 = nn.ConvTranspose2d(64, 1, 4, 2, 1)

    def forward(self, z):
        h = F.relu(self.bn0(self.fc(z))).view(-1, 128, 7, 7)
        return torch.tanh(self.deconv2(F.relu(self.bn1(self.deconv1(h))))).flatten(1)


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 64, 4, 2, 1)
        self.conv2 = nn.Conv2d(64, 128, 4, 2, 1)
        self.bn2 = nn.BatchNorm2d(128)
        self.fc = nn.Linear(128 * 7 * 7, 1)

    def forward(self, x):
        h = F.leaky_relu(self.conv1(x.view(-1, 1, 28, 28)), 0.2)
        h = F.leaky_relu(self.bn2(self.conv2(h)), 0.2)
        return self.fc(h.flatten(1)).squeeze(1)


class Dcgan(nn.Module):
    def __init__(self):
        super().__init__()
        self.generator = Generator()
        self.discriminator = Discriminator()


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def images(folder):
    x = idx(os.path.join(folder, "train-images-idx3-ubyte.gz")).reshape(-1, 784).astype(np.float32)
    return torch.from_numpy(x / 127.5 - 1.0)


def train(args):
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    x_train = images(args.data).to(dev)
    model = Dcgan().to(dev)
    g, d = model.generator, model.discriminator
    opt_g = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    for epoch in range(1, args.epochs + 1):
        order = torch.randperm(len(x_train), device=dev)
        start, steps = time.perf_counter(), 0
        sums = np.zeros(4)
        for i in range(0, len(order) - args.batch + 1, args.batch):
            real = x_train[order[i:i + args.batch]]
            ones, zeros = torch.ones(len(real), device=dev), torch.zeros(len(real), device=dev)
            fake = g(torch.randn(len(real), 100, device=dev))
            opt_d.zero_grad()
            out_real = d(real)
            err_real = bce(out_real, ones)
            err_real.backward()
            out_fake = d(fake.detach())
            err_fake = bce(out_fake, zeros)
            err_fake.backward()
            opt_d.step()
            opt_g.zero_grad()
            err_g = bce(d(fake), ones)
            err_g.backward()
            opt_g.step()
            with torch.no_grad():
                sums += [float(err_real + err_fake) / 2, float(err_g), float(torch.sigmoid(out_real).mean()), float(torch.sigmoid(out_fake).mean())]
            steps += 1
        if dev.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        m = sums / steps
        print(json.dumps({"epoch": epoch, "d_loss": round(m[0], 4), "g_loss": round(m[1], 4), "d_real": round(m[2], 4), "d_fake": round(m[3], 4),
                          "img_per_s": round(steps * args.batch / seconds, 1), "device": args.device, "threads": args.threads}), flush=True)
    if args.save:
        from safetensors.torch import save_file
        save_file({k: v.contiguous() for k, v in model.state_dict().items() if "num_batches" not in k}, args.save)


def check(args):
    from safetensors.torch import load_file

    model = Dcgan()
    tensors = load_file(args.model)
    # Shapes are checked by the load; only BatchNorm's num_batches_tracked counters are absent.
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    assert not missing and not unexpected, f"missing {missing}, unexpected {unexpected}"
    model.eval()
    with torch.no_grad():
        torch.manual_seed(0)
        ours = ((model.generator(torch.randn(args.n, 100)) + 1) / 2).numpy()
    theirs = np.fromfile(args.raw, dtype="<f4").reshape(-1, 784)
    stats = lambda a: {"mean": round(float(a.mean()), 4), "std": round(float(a.std()), 4), "ink>0.5": round(float((a > 0.5).mean()), 4)}
    print(json.dumps({"torch_samples": stats(ours), "wgen_samples": stats(theirs), "loaded": len(tensors)}))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--data", default=EMBEDDED)
    t.add_argument("--epochs", type=int, default=20)
    t.add_argument("--batch", type=int, default=64)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--device", default="cpu", help="cpu, or cuda")
    t.add_argument("--save", help="write the trained model's safetensors here")
    c = sub.add_parser("check")
    c.add_argument("model")
    c.add_argument("--raw", required=True, help="the --raw file of `wgen sample MODEL`")
    c.add_argument("--n", type=int, default=64)
    args = p.parse_args()
    train(args) if args.cmd == "train" else check(args)


if __name__ == "__main__":
    main()
