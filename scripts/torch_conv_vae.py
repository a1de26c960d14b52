#!/usr/bin/env python3
"""The conv VAE of `wgen train conv-vae` in PyTorch: the yardstick for its figures, and a check
that torch.nn loads wgen's model.safetensors as it is.

  train  trains it on the four MNIST-format files in --data (default: the embedded digits), or
         on a folder of images read as wgen reads it (--folder DIR --size N, by torch_folder.py;
         the model scaled to N as `wgen train conv-vae --size N` scales it), with wgen's recipe
         (Adam 1e-3, batch 128, BCE summed over pixels + KL, test -ELBO per epoch) and prints
         one JSON line per epoch, img/s included. --save FILE writes the model with wgen's
         metadata, so `wgen eval FILE --data DIR` scores its samples. --conditional trains
         `wgen train conv-vae --conditional`'s model: conv1 reads the label as k more channels
         (one-hot planes), decoder.fc1 reads [z | one-hot]; --latent sets z's size and
         --class-prior learns a prior mean per class (wgen's --class-prior).
  check  loads a wgen conv-vae model.safetensors into torch.nn modules (strict names and shapes)
         and compares torch's reconstructions (z = mu) of the first test images with the ones
         `wgen sample MODEL --recon --raw FILE --n N --cols C` wrote.

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


def one_hot(labels, classes):
    return F.one_hot(labels, classes).float()


class Encoder(nn.Module):
    def __init__(self, latent, channels=1, side=28, classes=0):
        super().__init__()
        self.shape, self.classes = (channels, side, side), classes
        self.conv1 = nn.Conv2d(channels + classes, 32, 4, 2, 1)
        self.conv2 = nn.Conv2d(32, 64, 4, 2, 1)
        self.fc = nn.Linear(64 * (side // 4) ** 2, 256)
        self.mu = nn.Linear(256, latent)
        self.logvar = nn.Linear(256, latent)

    def forward(self, x, labels=None):
        x = x.view(-1, *self.shape)
        if self.classes:
            planes = one_hot(labels, self.classes)[:, :, None, None].expand(-1, -1, *self.shape[1:])
            x = torch.cat([x, planes], 1)
        h = F.relu(self.conv2(F.relu(self.conv1(x))))
        h = F.relu(self.fc(h.flatten(1)))
        return self.mu(h), self.logvar(h)


class Decoder(nn.Module):
    def __init__(self, latent, channels=1, side=28, classes=0):
        super().__init__()
        self.quarter, self.classes = side // 4, classes
        self.fc1 = nn.Linear(latent + classes, 256)
        self.fc2 = nn.Linear(256, 64 * self.quarter ** 2)
        self.deconv1 = nn.ConvTranspose2d(64, 32, 4, 2, 1)
        self.deconv2 = nn.ConvTranspose2d(32, channels, 4, 2, 1)

    def forward(self, z, labels=None):
        if self.classes:
            z = torch.cat([z, one_hot(labels, self.classes)], 1)
        h = F.relu(self.fc2(F.relu(self.fc1(z)))).view(-1, 64, self.quarter, self.quarter)
        return self.deconv2(F.relu(self.deconv1(h))).flatten(1)


class ConvVae(nn.Module):
    def __init__(self, latent=32, shape=(1, 28), classes=0, class_prior=False):
        super().__init__()
        self.encoder = Encoder(latent, *shape, classes)
        self.decoder = Decoder(latent, *shape, classes)
        # wgen's --class-prior: p(z|y) = N(m_y, I), the encoder's mu an offset from m_y.
        self.prior = nn.Module()
        if class_prior:
            self.prior.mean = nn.Parameter(torch.zeros(classes, latent))

    def loss(self, x, eps, labels=None):
        """Mean over the batch of (BCE summed over pixels, KL)."""
        mu, logvar = self.encoder(x, labels)
        z = mu + torch.exp(0.5 * logvar) * eps
        if hasattr(self.prior, "mean"):
            z = z + self.prior.mean[labels]
        recon = F.binary_cross_entropy_with_logits(self.decoder(z, labels), x, reduction="none").sum(1)
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)
        return recon.mean(), kl.mean()


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def images(folder, split):
    name = "train-images-idx3-ubyte.gz" if split == "train" else "t10k-images-idx3-ubyte.gz"
    return torch.from_numpy(idx(os.path.join(folder, name)).reshape(-1, 784).astype(np.float32) / 255.0)


def labels(folder, split):
    name = "train-labels-idx1-ubyte.gz" if split == "train" else "t10k-labels-idx1-ubyte.gz"
    return torch.from_numpy(idx(os.path.join(folder, name)).astype(np.int64))


def train(args):
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    if args.folder:
        import torch_folder
        (x_train, channels), (x_test, _) = torch_folder.load(args.folder, args.size), torch_folder.load(args.folder, args.size, test=True)
        y_train, y_test = torch_folder.labels(args.folder), torch_folder.labels(args.folder, test=True)
        shape = (channels, args.size)
    else:
        x_train, x_test, shape = images(args.data, "train"), images(args.data, "test"), (1, 28)
        y_train, y_test = labels(args.data, "train"), labels(args.data, "test")
    x_train, x_test, y_train, y_test = x_train.to(dev), x_test.to(dev), y_train.to(dev), y_test.to(dev)
    classes = int(y_train.max()) + 1 if args.conditional else 0
    model = ConvVae(args.latent, shape, classes, args.class_prior).to(dev)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    for epoch in range(1, args.epochs + 1):
        model.train()
        order = torch.randperm(len(x_train), device=dev)
        start, total, steps = time.perf_counter(), 0.0, 0
        for i in range(0, len(order) - args.batch + 1, args.batch):
            rows = order[i:i + args.batch]
            x = x_train[rows]
            recon, kl = model.loss(x, torch.randn(len(x), args.latent, device=dev), y_train[rows])
            opt.zero_grad()
            (recon + kl).backward()
            opt.step()
            total, steps = total + (recon + kl).item(), steps + 1
        if dev.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        model.eval()
        with torch.no_grad():
            parts = [model.loss(x_test[i:i + 500], torch.randn(len(x_test[i:i + 500]), args.latent, device=dev), y_test[i:i + 500])
                     for i in range(0, len(x_test), 500)]
            weights = [min(500, len(x_test) - i) for i in range(0, len(x_test), 500)]
            recon = sum(float(r) * w for (r, _), w in zip(parts, weights)) / len(x_test)
            kl = sum(float(k) * w for (_, k), w in zip(parts, weights)) / len(x_test)
        print(json.dumps({"epoch": epoch, "train_loss": round(total / steps, 3), "test_neg_elbo": round(recon + kl, 3), "test_recon": round(recon, 3),
                          "test_kl": round(kl, 3), "img_per_s": round(steps * args.batch / seconds, 1), "device": args.device, "threads": args.threads}), flush=True)
    if args.save:
        from safetensors.torch import save_file
        config = {"arch": "conv", "hidden": [256, 128], "latent": args.latent, "init": "torch", "class_prior": args.class_prior, "image": {"channels": shape[0], "side": shape[1]}}
        if classes:
            config["classes"] = classes
        metadata = {"model": "vae", "config": json.dumps(config), "wgen_version": "0.1.0", "trained_by": "scripts/torch_conv_vae.py"}
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, args.save, metadata)


def check(args):
    from safetensors.torch import load_file

    from safetensors import safe_open
    with safe_open(args.model, "pt") as f:
        config = json.loads(f.metadata()["config"])
    classes = config.get("classes", 0)
    model = ConvVae(config["latent"], classes=classes, class_prior=config.get("class_prior", False))
    model.load_state_dict(load_file(args.model), strict=True)
    n, cols = args.n, args.cols
    raw = np.fromfile(args.recon, dtype="<f4").reshape(-1, 784)
    # wgen interleaves rows of `cols` originals with their `cols` reconstructions.
    blocks = raw.reshape(-1, 2, cols, 784)
    originals, recons = blocks[:, 0].reshape(-1, 784)[:n], blocks[:, 1].reshape(-1, 784)[:n]
    x = images(args.data, "test")[:n]
    y = labels(args.data, "test")[:n] if classes else None
    with torch.no_grad():
        mu, _ = model.encoder(x, y)
        if hasattr(model.prior, "mean"):
            mu = mu + model.prior.mean[y]
        want = torch.sigmoid(model.decoder(mu, y)).numpy()
    print(json.dumps({"images": n, "max_abs_diff_inputs": float(np.abs(originals - x.numpy()).max()),
                      "max_abs_diff_reconstructions": float(np.abs(recons - want).max())}))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--data", default=EMBEDDED)
    t.add_argument("--epochs", type=int, default=10)
    t.add_argument("--batch", type=int, default=128)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--device", default="cpu", help="cpu, or cuda")
    t.add_argument("--folder", help="a folder of images (class subfolders), read as wgen reads it; needs --size")
    t.add_argument("--size", type=int, help="the side of --folder's images, a multiple of 4")
    t.add_argument("--save", help="write the trained model here, with wgen's metadata")
    t.add_argument("--conditional", action="store_true", help="condition both networks on the label, as wgen train conv-vae --conditional")
    t.add_argument("--latent", type=int, default=32, help="z's size (wgen's --z-dim)")
    t.add_argument("--class-prior", action="store_true", help="with --conditional: a learned prior mean per class, as wgen's --class-prior")
    c = sub.add_parser("check")
    c.add_argument("model")
    c.add_argument("--recon", required=True, help="the --raw file of `wgen sample MODEL --recon`")
    c.add_argument("--n", type=int, default=32)
    c.add_argument("--cols", type=int, default=8)
    c.add_argument("--data", default=EMBEDDED)
    args = p.parse_args()
    train(args) if args.cmd == "train" else check(args)


if __name__ == "__main__":
    main()
