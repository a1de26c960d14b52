#!/usr/bin/env python3
"""The DCGAN of `wgen train dcgan` in PyTorch: the yardstick for its figures, and a check that
torch.nn loads wgen's model.safetensors as it is.

  train  trains it on the four MNIST-format files in --data (default: the embedded digits), or
         on a folder of images read as wgen reads it (--folder DIR --size 32 or 64, by
         torch_folder.py; there the model is pytorch/examples' DCGAN, as `wgen train dcgan
         --size 32|64`), with
         pytorch/examples' DCGAN loop, as wgen's default D-first order: D on a real batch and on
         G(z).detach() (two calls, so D's batch norm sees each batch alone), Adam step; then G
         against the updated D on the same G(z). Non-saturating BCE, Adam 2e-4 (0.5, 0.999),
         batch 64, images in [-1, 1]. One JSON line per epoch: d_loss ((real + fake) / 2, as
         wgen reports it), g_loss, mean D(x) and D(G(z)) of D's passes, img/s.
         Recipe knobs for the quality study: wgen's --label-smoothing, --d-lr,
         --no-d-batchnorm (= `--d-batchnorm false`), and at every size --loss bce|hinge,
         --augment POLICY (DiffAugment, drawn per image as wgen draws it; the fakes G learns
         from are the ones D saw) and --spectral-norm (every weight of D, one power iteration
         per pass of D over a real and a fake batch, as wgen's); and some wgen lacks: --instance-noise S
         (Gaussian noise on every image D sees, its std falling linearly from S to 0 over the
         run), --d-dropout P (dropout after each of D's LeakyReLUs) and --mbstd (ProGAN's
         minibatch-std channel before D's Linear); and on G's side
         --g-lr (wgen's --lr), --g-steps N (N G updates per D update, each past the first on fresh noise)
         and --g-ema DECAY (wgen's --g-ema: an exponential moving average of G's parameters and
         batch-norm statistics, warmed up as min(DECAY, t/(9+t)) at 1-based step t, which does not
         change training). --save-every N writes
         OUT/epochE.safetensors every N epochs with wgen's metadata, so `wgen eval FILE` scores
         the generator with wgen's classifier; with --g-ema also OUT/epochE-ema.safetensors,
         the same model with the averaged G. --conditional trains `wgen train dcgan
         --conditional`'s model: G reads [embedding(y) | z], D's last layer gives a shared
         logit and one per class (a projection discriminator), G's rows ask for uniform labels.
  table  the study's table from a folder of runs NAME-seedS (scripts/torch-dcgan-study.sh):
         per run, each scoring's FD, IS and classes at >= 5%; per recipe, the summary at the
         last epoch scored.
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
import torch.nn.utils.parametrize as parametrize

HERE = os.path.dirname(os.path.abspath(__file__))
EMBEDDED = os.path.join(HERE, "..", "assets", "mnist-10k")


def with_label(module, z, y):
    """[embedding(y) | z]: a conditional G's input, as wgen's (the MLP GAN's cgan embedding)."""
    return z if y is None else torch.cat([module.label_emb(y), z], 1)


def projection(out, y):
    """D's logit: its one output, or with a head per class (the projection discriminator) the
    shared head's plus the row's class head's."""
    out = out.flatten(1)
    return out[:, 0] if y is None else out[:, 0] + out.gather(1, 1 + y[:, None])[:, 0]


class Generator(nn.Module):
    def __init__(self, latent=100, classes=0):
        super().__init__()
        if classes:
            self.label_emb = nn.Embedding(classes, classes)
        self.fc = nn.Linear(latent + classes, 128 * 7 * 7)
        self.bn0 = nn.BatchNorm1d(128 * 7 * 7)
        self.deconv1 = nn.ConvTranspose2d(128, 64, 4, 2, 1)
        self.bn1 = nn.BatchNorm2d(64)
        self.deconv2 = nn.ConvTranspose2d(64, 1, 4, 2, 1)

    def forward(self, z, y=None):
        h = F.relu(self.bn0(self.fc(with_label(self, z, y)))).view(-1, 128, 7, 7)
        return torch.tanh(self.deconv2(F.relu(self.bn1(self.deconv1(h))))).flatten(1)


class Discriminator(nn.Module):
    def __init__(self, batchnorm=True, dropout=0.0, mbstd=False, classes=0):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 64, 4, 2, 1)
        self.conv2 = nn.Conv2d(64, 128, 4, 2, 1)
        self.bn2 = nn.BatchNorm2d(128) if batchnorm else nn.Identity()
        self.mbstd = mbstd
        self.fc = nn.Linear((128 + mbstd) * 7 * 7, 1 + classes)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, y=None):
        h = self.dropout(F.leaky_relu(self.conv1(x.view(-1, 1, 28, 28)), 0.2))
        h = self.dropout(F.leaky_relu(self.bn2(self.conv2(h)), 0.2))
        if self.mbstd:
            # ProGAN's minibatch standard deviation: the batch's mean feature std as one more
            # channel, so D can tell a batch that lacks variety.
            std = h.std(0, unbiased=False).mean().expand(len(h), 1, 7, 7)
            h = torch.cat([h, std], 1)
        return projection(self.fc(h.flatten(1)), y)


class ExamplesGenerator(nn.Module):
    """pytorch/examples' DCGAN generator (ngf 64) under wgen's names, with biases as wgen's."""

    def __init__(self, channels, side, latent=100, classes=0):
        super().__init__()
        stages = {32: 3, 64: 4}[side]
        c = 64 << (stages - 1)
        if classes:
            self.label_emb = nn.Embedding(classes, classes)
        self.layers = [("deconv1", nn.ConvTranspose2d(latent + classes, c, 4, 1, 0), nn.BatchNorm2d(c))]
        for i in range(2, stages + 1):
            self.layers.append((f"deconv{i}", nn.ConvTranspose2d(c, c // 2, 4, 2, 1), nn.BatchNorm2d(c // 2)))
            c //= 2
        self.layers.append((f"deconv{stages + 1}", nn.ConvTranspose2d(c, channels, 4, 2, 1), None))
        for i, (name, conv, bn) in enumerate(self.layers):
            self.add_module(name, conv)
            if bn is not None:
                self.add_module(f"bn{i + 1}", bn)

    def forward(self, z, y=None):
        z = with_label(self, z, y)
        h = z.view(len(z), -1, 1, 1)
        for _, conv, bn in self.layers[:-1]:
            h = F.relu(bn(conv(h)))
        return torch.tanh(self.layers[-1][1](h)).flatten(1)


class ExamplesDiscriminator(nn.Module):
    """pytorch/examples' DCGAN discriminator (ndf 64) under wgen's names, with biases."""

    def __init__(self, channels, side, batchnorm=True, classes=0):
        super().__init__()
        stages = {32: 3, 64: 4}[side]
        self.shape = (channels, side, side)
        self.layers, c = [], channels
        for i in range(1, stages + 1):
            bn = nn.BatchNorm2d(64 << (i - 1)) if i > 1 and batchnorm else None
            self.layers.append((f"conv{i}", nn.Conv2d(c, 64 << (i - 1), 4, 2, 1), bn))
            c = 64 << (i - 1)
        self.layers.append((f"conv{stages + 1}", nn.Conv2d(c, 1 + classes, 4, 1, 0), None))
        for i, (name, conv, bn) in enumerate(self.layers):
            self.add_module(name, conv)
            if bn is not None:
                self.add_module(f"bn{i + 1}", bn)

    def forward(self, x, y=None):
        h = x.view(-1, *self.shape)
        for _, conv, bn in self.layers[:-1]:
            h = conv(h)
            h = F.leaky_relu(bn(h) if bn is not None else h, 0.2)
        return projection(self.layers[-1][1](h), y)


class Dcgan(nn.Module):
    def __init__(self, d_batchnorm=True, d_dropout=0.0, spectral_norm=False, mbstd=False, shape=(1, 28), classes=0):
        super().__init__()
        if shape != (1, 28):
            assert not (d_dropout or mbstd), "the study's --d-dropout and --mbstd are for the 28x28 DCGAN"
            self.generator = ExamplesGenerator(*shape, classes=classes)
            self.discriminator = ExamplesDiscriminator(*shape, d_batchnorm, classes)
            d_layers = [conv for _, conv, _ in self.discriminator.layers]
        else:
            self.generator = Generator(classes=classes)
            self.discriminator = Discriminator(d_batchnorm, d_dropout, mbstd, classes)
            d_layers = [self.discriminator.conv1, self.discriminator.conv2, self.discriminator.fc]
        if spectral_norm:
            # As `wgen train --spectral-norm`: every weight of D, beside its batch norm if any.
            for layer in d_layers:
                nn.utils.parametrizations.spectral_norm(layer)


def diff_augment(x, policy, shape):
    """DiffAugment (Zhao et al. 2020) as `wgen train --augment` draws it, per image: brightness
    + U(-0.5, 0.5), saturation x U(0, 2), contrast x U(0.5, 1.5); a translation by up to
    (side + 4) // 8 pixels each way, zeros shifted in; a zeroed square of side ceil(side / 2)
    anywhere it overlaps the image by at least half its side."""
    if policy in ("", "none"):
        return x
    c, s = shape
    n = len(x)
    x = x.view(n, c, s, s)
    rand = lambda: torch.rand(n, 1, 1, 1, device=x.device)
    if "color" in policy:
        x = x + (rand() - 0.5)
        m = x.mean(1, keepdim=True)
        x = (x - m) * (rand() * 2) + m
        m = x.mean([1, 2, 3], keepdim=True)
        x = (x - m) * (rand() + 0.5) + m
    gy, gx = torch.meshgrid(torch.arange(s, device=x.device), torch.arange(s, device=x.device), indexing="ij")
    if "translation" in policy:
        most = (s + 4) // 8
        sy, sx = (torch.randint(-most, most + 1, (n, 1, 1), device=x.device) for _ in range(2))
        src_y, src_x = gy + sy, gx + sx
        inside = ((src_y >= 0) & (src_y < s) & (src_x >= 0) & (src_x < s)).unsqueeze(1)
        idx = (src_y.clamp(0, s - 1) * s + src_x.clamp(0, s - 1)).flatten(1)
        x = torch.gather(x.flatten(2), 2, idx.unsqueeze(1).expand(n, c, s * s)).view(n, c, s, s) * inside
    if "cutout" in policy:
        q = (s + 1) // 2
        oy, ox = (torch.randint(0, s + 1 - q % 2, (n, 1, 1), device=x.device) - q // 2 for _ in range(2))
        cut = ((gy >= oy) & (gy < oy + q) & (gx >= ox) & (gx < ox + q)).unsqueeze(1)
        x = x * ~cut
    return x.flatten(1)


def d_losses(loss, out_real, out_fake, real_label):
    """D's loss on its real and fake outputs, each half summed as pytorch/examples sums them."""
    if loss == "hinge":
        return F.relu(1 - out_real).mean() + F.relu(1 + out_fake).mean()
    bce = nn.BCEWithLogitsLoss()
    return bce(out_real, torch.full_like(out_real, real_label)) + bce(out_fake, torch.zeros_like(out_fake))


def g_loss(loss, out_fake):
    if loss == "hinge":
        return -out_fake.mean()
    return nn.BCEWithLogitsLoss()(out_fake, torch.ones_like(out_fake))


def d_means(loss, out):
    """What wgen logs as D(x) and D(G(z)): the mean probability, or under the hinge loss the
    mean raw output."""
    return float(out.mean() if loss == "hinge" else torch.sigmoid(out).mean())


def wgen_metadata(args):
    """What `wgen train dcgan` writes beside its tensors, with the recipe's wgen knobs; the
    knobs wgen lacks change only D and go in their own key."""
    gan = {"arch": "conv", "latent": 100, "g_hidden": [256, 512, 1024], "d_hidden": [512, 256], "g_activation": "relu",
           "d_activation": "leaky_relu:0.2", "g_batchnorm": True, "bn_eps": 1e-5, "bn_momentum": 0.1, "output": "tanh",
           "label_smoothing": args.label_smoothing, "init": "torch", "update_order": "d-first",
           "d_batchnorm": not args.no_d_batchnorm,
           # Always written: wgen's DCGAN default (2e-5) is not this script's (2e-4).
           "d_lr": args.d_lr or 2e-4, "image": {"channels": args.shape[0], "side": args.shape[1]}}
    if args.g_ema:
        gan["g_ema"] = args.g_ema
    if args.loss != "bce":
        gan["loss"] = args.loss
    if args.augment:
        gan["augment"] = args.augment
    if args.spectral_norm:
        gan["spectral_norm"] = True
    if args.classes:
        gan["classes"], gan["projection"] = args.classes, True
    return {"model": "gan", "config": json.dumps(gan), "wgen_version": "0.1.0", "trained_by": "scripts/torch_dcgan.py",
            "torch_recipe": json.dumps({"instance_noise": args.instance_noise, "d_dropout": args.d_dropout,
                                        "g_lr": args.g_lr, "g_steps": args.g_steps, "g_ema": args.g_ema, "mbstd": args.mbstd, "seed": args.seed})}


def save(model, path, metadata, ema=None):
    """The state dict under wgen's names, which are torch's: a spectrally normalised layer keeps
    its weight as trained and its power iteration's u and v, as wgen saves them; with `ema`, its
    generator stands in for the trained one."""
    from safetensors.torch import save_file
    tensors = {}
    state = model.state_dict()
    if ema is not None:
        state.update({f"generator.{k}": v for k, v in ema.state_dict().items()})
    for k, v in state.items():
        if "num_batches" in k:
            continue
        if k == "discriminator.fc.weight" and has_mbstd(model):
            # wgen's D has no minibatch-std channel: its weights are left out so `wgen eval`,
            # which scores G, loads the file.
            v = v[:, :128 * 7 * 7]
        tensors[k] = v.contiguous()
    save_file(tensors, path, metadata)


def has_mbstd(model):
    return getattr(model.discriminator, "mbstd", False)


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def images(folder):
    x = idx(os.path.join(folder, "train-images-idx3-ubyte.gz")).reshape(-1, 784).astype(np.float32)
    return torch.from_numpy(x / 127.5 - 1.0)


def labels(folder):
    return torch.from_numpy(idx(os.path.join(folder, "train-labels-idx1-ubyte.gz")).astype(np.int64))


def train(args):
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    if args.folder:
        import torch_folder
        x_train, channels = torch_folder.load(args.folder, args.size)
        x_train, args.shape = x_train * 2 - 1, (channels, args.size)
        y_train = torch_folder.labels(args.folder)
    else:
        x_train, args.shape, y_train = images(args.data), (1, 28), labels(args.data)
    x_train, y_train = x_train.to(dev), y_train.to(dev)
    args.classes = int(y_train.max()) + 1 if args.conditional else 0
    model = Dcgan(not args.no_d_batchnorm, args.d_dropout, args.spectral_norm, args.mbstd, args.shape, args.classes).to(dev)
    g, d = model.generator, model.discriminator
    opt_g = torch.optim.Adam(g.parameters(), args.g_lr, betas=(0.5, 0.999))
    ema = None
    if args.g_ema:
        import copy
        ema = copy.deepcopy(g).eval()

    def update_ema():
        # Running statistics are averaged like the weights: the saved G runs in eval mode on them.
        # The decay warms up (as TensorFlow's ExponentialMovingAverage with num_updates) so the
        # initial weights are forgotten within the first hundreds of steps, not after thousands.
        decay = min(args.g_ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for e, v in zip(list(ema.parameters()) + list(ema.buffers()), list(g.parameters()) + list(g.buffers())):
                if e.dtype.is_floating_point:
                    e.lerp_(v, 1 - decay)
                else:
                    e.copy_(v)

    opt_d = torch.optim.Adam(d.parameters(), args.d_lr or 2e-4, betas=(0.5, 0.999))
    augment = lambda x: diff_augment(x, args.augment, args.shape)
    total_steps, step = args.epochs * (len(x_train) // args.batch), 0

    def noisy(x):
        if not args.instance_noise:
            return x
        return x + torch.randn_like(x) * args.instance_noise * (1 - step / total_steps)

    if args.save_every:
        os.makedirs(args.out, exist_ok=True)
    for epoch in range(1, args.epochs + 1):
        order = torch.randperm(len(x_train), device=dev)
        start, steps = time.perf_counter(), 0
        sums = np.zeros(4)
        for i in range(0, len(order) - args.batch + 1, args.batch):
            rows = order[i:i + args.batch]
            real = x_train[rows]
            # Conditioned: real rows carry their labels, G's rows labels drawn uniformly.
            y_real, y_fake = (y_train[rows], torch.randint(0, args.classes, (len(rows),), device=dev)) if args.classes else (None, None)
            fake = g(torch.randn(len(real), 100, device=dev), y_fake)
            # Each image D sees is augmented once; G learns from D's verdict on the same
            # augmented fakes, as wgen's D-first step reuses them.
            seen_real, seen_fake = augment(noisy(real)), augment(noisy(fake))
            opt_d.zero_grad()
            # D's real and fake calls share one power iteration (wgen's one pass of D over
            # both batches); cached() computes W / sigma once for the two.
            with parametrize.cached():
                out_real = d(seen_real, y_real)
                out_fake = d(seen_fake.detach(), y_fake)
                err_d = d_losses(args.loss, out_real, out_fake, 1 - args.label_smoothing)
                err_d.backward()
            opt_d.step()
            opt_g.zero_grad()
            err_g = g_loss(args.loss, d(seen_fake, y_fake))
            err_g.backward()
            opt_g.step()
            for _ in range(args.g_steps - 1):
                opt_g.zero_grad()
                g_loss(args.loss, d(augment(noisy(g(torch.randn(len(real), 100, device=dev), y_fake))), y_fake)).backward()
                opt_g.step()
            if ema is not None:
                update_ema()
            with torch.no_grad():
                sums += [float(err_d) / 2, float(err_g), d_means(args.loss, out_real), d_means(args.loss, out_fake)]
            steps += 1
            step += 1
        if dev.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        m = sums / steps
        print(json.dumps({"epoch": epoch, "d_loss": round(m[0], 4), "g_loss": round(m[1], 4), "d_real": round(m[2], 4), "d_fake": round(m[3], 4),
                          "img_per_s": round(steps * args.batch / seconds, 1), "device": args.device, "threads": args.threads}), flush=True)
        if args.save_every and epoch % args.save_every == 0:
            save(model, os.path.join(args.out, f"epoch{epoch}.safetensors"), wgen_metadata(args))
            if ema is not None:
                save(model, os.path.join(args.out, f"epoch{epoch}-ema.safetensors"), wgen_metadata(args), ema)
    if args.save:
        save(model, args.save, wgen_metadata(args), ema)


def check(args):
    from safetensors.torch import load_file

    from safetensors import safe_open

    with safe_open(args.model, "pt") as f:
        image = json.loads(f.metadata()["config"]).get("image", {"channels": 1, "side": 28})
    with safe_open(args.model, "pt") as f:
        config = json.loads(f.metadata()["config"])
    shape = (image["channels"], image["side"])
    classes = config.get("classes") or 0
    model = Dcgan(config.get("d_batchnorm", True), spectral_norm=config.get("spectral_norm", False), shape=shape, classes=classes)
    tensors = load_file(args.model)
    # Shapes are checked by the load; only BatchNorm's num_batches_tracked counters are absent.
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    assert not missing and not unexpected, f"missing {missing}, unexpected {unexpected}"
    model.eval()
    with torch.no_grad():
        torch.manual_seed(0)
        asked = torch.arange(args.n) % classes if classes else None
        ours = ((model.generator(torch.randn(args.n, 100), asked) + 1) / 2).numpy()
    theirs = np.fromfile(args.raw, dtype="<f4").reshape(-1, shape[0] * shape[1] ** 2)
    stats = lambda a: {"mean": round(float(a.mean()), 4), "std": round(float(a.std()), 4), "ink>0.5": round(float((a > 0.5).mean()), 4)}
    print(json.dumps({"torch_samples": stats(ours), "wgen_samples": stats(theirs), "loaded": len(tensors)}))


def table(args):
    import glob
    import re

    runs = {}
    for path in sorted(glob.glob(os.path.join(args.folder, "*-seed*"))):
        m = re.fullmatch(r"(.+)-seed(\d+)", os.path.basename(path))
        if not m or not os.path.isdir(path):
            continue
        evals = {}
        for f in glob.glob(os.path.join(path, "eval*.json")):
            e = re.fullmatch(r"eval(\d+)(-ema)?\.json", os.path.basename(f))
            if e:
                with open(f) as fh:
                    evals.setdefault(m[1] + (" +ema" if e[2] else ""), {})[int(e[1])] = json.load(fh)["samples"]
        with open(path + ".jsonl") as fh:
            epochs = [json.loads(line) for line in fh if line.startswith("{")]
        for name, ev in evals.items():
            if epochs:
                runs[(name, int(m[2]))] = (ev, epochs[-1])
    print("| recipe | seed | epoch | FD | IS | classes >= 5% | shares of 0-9 (%) | D(x) | D(G(z)) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |")
    for (name, seed), (evals, last) in sorted(runs.items()):
        for e, s in sorted(evals.items()):
            shares = " ".join(f"{100 * v:.0f}" for v in s["class_shares"])
            dx = f"{last['d_real']:.2f} | {last['d_fake']:.2f}" if e == last["epoch"] else " | "
            print(f"| {name} | {seed} | {e} | {s['fd']:.1f} | {s['inception_score']:.2f} | {s['modes']} | {shares} | {dx} |")
    print()
    print("| recipe | runs | epoch | mean FD | mean IS | fewest classes >= 5% | smallest class share (%) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in sorted({n for n, _ in runs}):
        last = [max(evals.items()) for (n, _), (evals, _) in runs.items() if n == name]
        e = min(k for k, _ in last)
        ss = [s for k, s in last if k == e]
        fd = sum(s["fd"] for s in ss) / len(ss)
        is_ = sum(s["inception_score"] for s in ss) / len(ss)
        print(f"| {name} | {len(ss)} | {e} | {fd:.1f} | {is_:.2f} | {min(s['modes'] for s in ss)} | {100 * min(min(s['class_shares']) for s in ss):.1f} |")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--data", default=EMBEDDED)
    t.add_argument("--folder", help="a folder of images (class subfolders), read as wgen reads it; needs --size 32 or 64")
    t.add_argument("--size", type=int, choices=[32, 64], help="the side of --folder's images")
    t.add_argument("--epochs", type=int, default=20)
    t.add_argument("--batch", type=int, default=64)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--device", default="cpu", help="cpu, or cuda")
    t.add_argument("--save", help="write the trained model's safetensors here (with --g-ema, the averaged G)")
    t.add_argument("--save-every", type=int, default=0, help="also write --out/epochE.safetensors every this many epochs")
    t.add_argument("--out", default="runs/torch-dcgan")
    t.add_argument("--label-smoothing", type=float, default=0.0, help="D's target for real images is 1 - this")
    t.add_argument("--d-lr", type=float, help="D's Adam learning rate (default G's, 2e-4)")
    t.add_argument("--no-d-batchnorm", action="store_true", help="no batch norm in D")
    t.add_argument("--spectral-norm", action="store_true", help="spectral norm on every weight of D (its batch norm stays unless --no-d-batchnorm)")
    t.add_argument("--loss", choices=["bce", "hinge"], default="bce", help="the objective, as wgen train --loss")
    t.add_argument("--augment", default="", help="DiffAugment's transforms on every image D sees, as wgen train --augment (e.g. color,translation,cutout)")
    t.add_argument("--instance-noise", type=float, default=0.0, help="std of the noise on D's inputs at the start, annealed to 0")
    t.add_argument("--d-dropout", type=float, default=0.0, help="dropout after D's LeakyReLUs")
    t.add_argument("--mbstd", action="store_true", help="a minibatch-std channel before D's Linear (left out of saved files)")
    t.add_argument("--g-lr", type=float, default=2e-4, help="G's Adam learning rate")
    t.add_argument("--g-steps", type=int, default=1, help="G updates per D update")
    t.add_argument("--conditional", action="store_true", help="G reads [label embedding | z], D has a head per class (wgen's dcgan --conditional)")
    t.add_argument("--g-ema", type=float, default=0.0, help="also save an EMA of G with this decay (e.g. 0.999)")
    c = sub.add_parser("check")
    c.add_argument("model")
    c.add_argument("--raw", required=True, help="the --raw file of `wgen sample MODEL`")
    c.add_argument("--n", type=int, default=64)
    tb = sub.add_parser("table")
    tb.add_argument("folder")
    args = p.parse_args()
    {"train": train, "check": check, "table": table}[args.cmd](args)


if __name__ == "__main__":
    main()
