#!/usr/bin/env python3
"""Lays out npm's emoji-datasource-google (Noto emoji, 64x64 RGBA PNGs, MIT) as one folder per
emoji category, the layout `wgen train --data DIR` reads as classes:

    npm pack emoji-datasource-google@16.0.0 && tar xzf emoji-datasource-google-16.0.0.tgz
    scripts/emoji-folders.py package OUT

Skin-tone variations go with their emoji's category; categories with fewer than 50 images
(Component: 5) are left out, since one image in ten of a class is held out for testing.
"""
import json
import shutil
import sys
from collections import Counter
from pathlib import Path

MIN_IMAGES = 50


def main(package: Path, out: Path) -> None:
    emoji = json.loads((package / "emoji.json").read_text())
    images = package / "img" / "google" / "64"
    pairs = []
    for e in emoji:
        names = [e["image"]] + [v["image"] for v in e.get("skin_variations", {}).values()]
        pairs += [(e["category"], n) for n in names if (images / n).is_file()]
    counts = Counter(category for category, _ in pairs)
    for category, name in pairs:
        if counts[category] >= MIN_IMAGES:
            folder = out / category.replace(" & ", "-and-").replace(" ", "-").lower()
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(images / name, folder / name)
    kept = {c: n for c, n in counts.items() if n >= MIN_IMAGES}
    print(f"{sum(kept.values())} images in {len(kept)} class folders under {out}: " + ", ".join(f"{c} {n}" for c, n in sorted(kept.items())))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: scripts/emoji-folders.py PACKAGE_DIR OUT_DIR")
    main(Path(sys.argv[1]), Path(sys.argv[2]))
