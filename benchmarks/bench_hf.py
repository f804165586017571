"""Time to read a Hugging Face dataset on disk into memory (ait.data.hf), both layouts.

    .venv/bin/python benchmarks/bench_hf.py                  # 50,000 32x32 PNGs, as CIFAR-10's train split
    .venv/bin/python benchmarks/bench_hf.py --images 10000 --size 64

Builds a temporary DatasetDict of random PNG images (an Image column, a ClassLabel), saves it with
``save_to_disk`` and as parquet files in the hub's layout, then times ``load_hf`` on each, median of
--repeats, and checks that the pixels read back are the ones written. These machines are shared:
the seconds are this machine's at this moment, not a target. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def build(root: Path, images: int, size: int) -> np.ndarray:
    """root/saved (save_to_disk) and root/parquet/data/train-*.parquet of the same rows; returns the pixels."""
    import datasets
    from PIL import Image

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (images, size, size, 3), dtype=np.uint8)
    encoded = []
    for image in pixels:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, "PNG")
        encoded.append({"bytes": buffer.getvalue(), "path": None})
    features = datasets.Features({"img": datasets.Image(), "label": datasets.ClassLabel(names=list("abcdefghij"))})
    labels = rng.integers(0, 10, images).tolist()
    split = datasets.Dataset.from_dict({"img": encoded, "label": labels}, features=features)
    datasets.DatasetDict({"train": split, "test": split.select(range(10))}).save_to_disk(str(root / "saved"))
    (root / "parquet" / "data").mkdir(parents=True)
    split.to_parquet(str(root / "parquet" / "data" / "train-00000-of-00001.parquet"))
    return pixels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from ait.data.hf import load_hf

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        pixels = build(root, args.images, args.size)
        result = {"images": args.images, "size": args.size}
        for layout in ("saved", "parquet"):
            seconds = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                arrays = load_hf(root / layout, "train", "img", "label")
                seconds.append(time.perf_counter() - start)
            same = np.array_equal(arrays.images.permute(0, 2, 3, 1).numpy(), pixels)
            result[layout] = {"median_s": round(statistics.median(seconds), 2), "pixels_equal": bool(same)}
        print(json.dumps(result))


if __name__ == "__main__":
    main()
