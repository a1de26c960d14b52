"""A folder of images read as `wgen train --data DIR --size N` reads it, for the PyTorch twins:
class subfolders (sorted names are labels 0, 1, ...), transparency over black, resized on the
short side with PIL's bilinear filter (antialiased as it shrinks, as wgen's triangle filter)
and centre-cropped; one image in ten of each class, by the SHA-256 of its path within the
folder, is a test image, and small classes still split as wgen splits them (`test_images`).
Pixels may differ from wgen's by a rounding step; the split is the same."""
import hashlib
import os

import numpy as np
import torch


def paths(folder):
    """The images' paths within `folder`, '/'-separated and sorted, hidden files left out."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for f in files:
            if not f.startswith(".") and f.lower().endswith((".png", ".jpg", ".jpeg")):
                found.append(os.path.relpath(os.path.join(root, f), folder).replace(os.sep, "/"))
    return sorted(found)


def path_hash(path):
    return int.from_bytes(hashlib.sha256(path.encode()).digest()[:8], "little")


def class_of(path):
    return path.split("/")[0] if "/" in path else ""


def test_images(all_paths):
    """The test images among `all_paths`, as wgen's `folder::test_images` picks them: one in ten
    by the hash of its path, class by class (a flat folder is one class); a class of two or more
    with none picked gives its image of lowest hash, one with all picked keeps its image of
    highest hash for training, and a class of one image only trains."""
    test = {p for p in all_paths if path_hash(p) % 10 == 0}
    for c in {class_of(p) for p in all_paths}:
        members = [p for p in all_paths if class_of(p) == c]
        key = lambda p: (path_hash(p), all_paths.index(p))
        if len(members) < 2:
            test -= set(members)
        elif not any(p in test for p in members):
            test.add(min(members, key=key))
        elif all(p in test for p in members):
            test.discard(max(members, key=key))
    return test


def labels(folder, test=False):
    """The class of each image of one split, in `load`'s order: the index of its top-level
    subfolder among the sorted subfolder names (0 for every image of a flat folder)."""
    every = paths(folder)
    chosen = test_images(every)
    split = [p for p in every if (p in chosen) == test]
    classes = sorted({class_of(p) for p in every if "/" in p})
    return torch.tensor([classes.index(class_of(p)) if "/" in p else 0 for p in split])


def load(folder, size, test=False):
    """One split as [N, C·size·size] floats in [0, 1], and C (1 if every pixel is grey)."""
    from PIL import Image

    kept = []
    every = paths(folder)
    chosen = test_images(every)
    for path in every:
        if (path in chosen) != test:
            continue
        rgba = Image.open(os.path.join(folder, path)).convert("RGBA")
        image = Image.new("RGB", rgba.size, (0, 0, 0))
        image.paste(rgba, mask=rgba.getchannel("A"))
        w, h = image.size
        nw, nh = (size, size * h // w) if w <= h else (size * w // h, size)
        image = image.resize((nw, nh), Image.BILINEAR)
        left, top = round((nw - size) / 2), round((nh - size) / 2)
        kept.append(np.asarray(image.crop((left, top, left + size, top + size)), np.float32))
    x = np.stack(kept).transpose(0, 3, 1, 2)
    if (x[:, 0] == x[:, 1]).all() and (x[:, 1] == x[:, 2]).all():
        x = x[:, :1]
    return torch.from_numpy(x.reshape(len(x), -1) / 255.0), x.shape[1]
