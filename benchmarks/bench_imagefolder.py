"""Throughput of the ImageNet input pipeline alone (ait.data.imagefolder): no model, no device.

    .venv/bin/python benchmarks/bench_imagefolder.py                     # 200 JPEGs, workers 0 1 2
    .venv/bin/python benchmarks/bench_imagefolder.py --workers 0 4 8 --images 1000
    .venv/bin/python benchmarks/bench_imagefolder.py --root /data/imagenet/train   # a real folder

Generates a temporary ImageFolder of 500x375 JPEGs (ImageNet's typical size and aspect; smooth
gradients plus mild noise, quality 90, so files and decode cost are close to real photos) unless
--root is given, then measures samples/s through :func:`ait.data.imagefolder_loader` for

* train  two RandomResizedCrop(224) + flip views per sample (the AIT setting), uint8 out;
* eval   resize shorter side 256 + centre crop 224, one view;
* decode Pillow open + convert("RGB") only, in-process (the floor under both).

Each configuration runs one untimed warm-up epoch (worker start-up, page cache), then --epochs
timed epochs; rates are medians over --repeats. These machines are shared: compare only numbers
from one run. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ait.data import ImageFolderViews, imagefolder_loader, scan_image_folder  # noqa: E402
from ait.data.imagefolder import load_rgb  # noqa: E402


def make_folder(root: Path, images: int, classes: int, width: int, height: int) -> Path:
    """``images`` JPEGs spread over ``classes`` folders under ``root``."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    for k in range(images):
        folder = root / f"n{k % classes:08d}"
        folder.mkdir(parents=True, exist_ok=True)
        a, b, c = rng.uniform(0.2, 1.0, 3)
        base = np.stack([xx / width * 255 * a, yy / height * 255 * b, (xx + yy) / (width + height) * 255 * c], -1)
        pixels = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"img_{k:05d}.JPEG", quality=90)
    return root


def time_loader(index, train: bool, workers: int, batch_size: int, epochs: int) -> float:
    """Samples/s over ``epochs`` epochs after one warm-up epoch."""
    ds = ImageFolderViews(index, num_views=2 if train else 1, train=train, seed=0)
    loader = imagefolder_loader(ds, batch_size, workers=workers, seed=0, shuffle=train)
    for _ in loader:  # warm-up: worker start-up, page cache
        pass
    n = 0
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        loader.set_epoch(epoch)
        for views, _ in loader:
            n += views.shape[0]
    elapsed = time.perf_counter() - start
    del loader
    return n / elapsed


def time_decode(index, epochs: int) -> float:
    start = time.perf_counter()
    for _ in range(epochs):
        for p in index.paths:
            load_rgb(p)
    return epochs * len(index) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", help="an existing ImageFolder to read instead of generating one")
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--width", type=int, default=500)
    parser.add_argument("--height", type=int, default=375)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="also write the numbers to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(1)  # the main process only stacks tensors; keep it off the workers' cores

    with tempfile.TemporaryDirectory() as tmp:
        if args.root:
            folder = Path(args.root)
        else:
            folder = make_folder(Path(tmp) / "train", args.images, args.classes, args.width, args.height)
        index = scan_image_folder(folder)
        if args.root and len(index) > args.images:
            pick = torch.randperm(len(index), generator=torch.Generator().manual_seed(0))
            index = index.subset(pick[: args.images].sort().values)
        results: dict[str, list[float]] = {}
        for _ in range(args.repeats):  # interleaved so drifting load hits every configuration
            for w in args.workers:
                for mode in ("train", "eval"):
                    rate = time_loader(index, mode == "train", w, args.batch_size, args.epochs)
                    results.setdefault(f"{mode} w{w}", []).append(rate)
            results.setdefault("decode", []).append(time_decode(index, 1))
    med = {k: statistics.median(v) for k, v in results.items()}

    print(
        f"# input pipeline: {len(index)} images, "
        + (f"from {args.root}" if args.root else f"generated {args.width}x{args.height} JPEGs")
        + f", batch {args.batch_size}, median of {args.repeats}\n"
    )
    print("| workers | train, 2 views (samples/s) | train (views/s) | eval (images/s) |")
    print("|---:|---:|---:|---:|")
    for w in args.workers:
        tr, ev = med[f"train w{w}"], med[f"eval w{w}"]
        print(f"| {w} | {tr:.0f} | {2 * tr:.0f} | {ev:.0f} |")
    print(f"\ndecode only (open + convert, in-process): {med['decode']:.0f} images/s")
    print(
        f"\ncommand: {' '.join([Path(sys.executable).name] + sys.argv)}; torch {torch.__version__}, "
        f"Pillow {Image.__version__}, {len(os.sched_getaffinity(0))} CPUs available, load average "
        f"{os.getloadavg()[0]:.1f} at the end"
    )
    if args.json:
        Path(args.json).write_text(json.dumps({"median": med, "all": results, "args": vars(args)}, indent=2))


if __name__ == "__main__":
    main()
