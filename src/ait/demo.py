"""``ait demo``: baseline and AIT trained side by side on a small offline dataset, compared.

All runs use the same network, data, schedule shape and seed; AIT adds a second random-crop view
of each sample and the AiLoss between the two predictions, and a second baseline trains for as
many steps as AIT (the compute-fair comparison the paper does not make). The table compares accuracy on the test
set and on a fixed randomly shifted copy of it (the paper's "random crop" test set, sec. 4.4),
plus how much the predictions move under that shift (mean symmetric KL): the invariance AIT
trains for.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from ait.data import DataError
from ait.engine.run import train
from ait.evaluate.loading import load_run
from ait.losses import AiLoss
from ait.runtime.predict import accuracy_table, predict_logits
from ait.views import Recipe, augment

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
SHIFTED_TEST = Recipe(flip_p=0.0, pad=4, name="crop test set")  # one fixed random shift per image


def demo_data_config(data: str | None, train_limit: int | None) -> dict[str, Any]:
    """Fashion-MNIST by default; a folder with train*.npz and test.npz (e.g. shared CIFAR) otherwise."""
    if (
        data is None
        or Path(data, "train-images-idx3-ubyte.gz").exists()
        or Path(data, "train-images-idx3-ubyte").exists()
    ):
        cfg = {"dataset": "fashion_mnist", "root": data or FASHION_MNIST_DIR}
    else:
        folder = Path(data)
        trains = sorted(folder.glob("train*.npz"))
        if not folder.is_dir() or len(trains) != 1 or not (folder / "test.npz").is_file():
            raise DataError(
                f"{data}: expected a Fashion-MNIST IDX folder, or a folder with one train*.npz and a "
                "test.npz (such as ../shared/data/cifar10)"
            )
        cfg = {"dataset": "npz", "train_file": str(trains[0]), "test_file": str(folder / "test.npz")}
    cfg["train_limit"] = train_limit
    return cfg


def demo_configs(data_cfg: dict[str, Any], epochs: int, stamp: str) -> list[dict[str, Any]]:
    common = {
        "seed": 0,
        "data": data_cfg,
        "optim": {"lr": 0.05, "schedule": "cosine", "warmup_epochs": 0.5},
        "train": {"epochs": epochs, "batch_size": 128, "eval_every": epochs},
    }
    baseline = dict(
        common, name=f"demo-{stamp}-baseline", strategy={"name": "baseline", "networks": ["resnet20"], "views": ["rp"]}
    )
    # AIT's epoch has twice the steps: this baseline gets as many steps, so compute is equal.
    baseline_2x = dict(
        baseline,
        name=f"demo-{stamp}-baseline-2x",
        train={**common["train"], "epochs": 2 * epochs, "eval_every": 2 * epochs},
    )
    ait = dict(
        common,
        name=f"demo-{stamp}-ait",
        strategy={"name": "ait", "networks": ["resnet20"], "views": ["rp", "rp"]},
        consistency={"weight": 1.0},
    )
    return [baseline, baseline_2x, ait]


def shifted_copy(images: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """A fixed, seeded random shift (pad 4 + crop) of every test image; uint8 (N, C, H, W)."""
    return augment(images, SHIFTED_TEST, torch.Generator().manual_seed(seed))


def compare(run_dirs: list[Path], labels: list[str]) -> list[dict[str, Any]]:
    """Accuracy on the test set and its shifted copy, and prediction change under the shift."""
    rows = []
    for run_dir, label in zip(run_dirs, labels):
        run = load_run(run_dir)
        nets, data, prepare, precision = run.networks, run.data, run.prepare, run.precision
        test = data.test
        shifted = shifted_copy(test.images)
        logits = predict_logits(nets, test.images, prepare, precision)[0]
        logits_shifted = predict_logits(nets, shifted, prepare, precision)[0]
        original = accuracy_table([logits], test.labels)["net0"]
        moved = accuracy_table([logits_shifted], test.labels)["net0"]
        summary = run.summary or {}
        rows.append(
            {
                "run": label,
                "test_top1": original["top1"],
                "shifted_top1": moved["top1"],
                "kl_under_shift": AiLoss()(logits, logits_shifted).item(),
                "train_seconds": summary.get("train_seconds", float("nan")),
                "steps": summary.get("total_steps", 0),
                "run_dir": str(run_dir),
            }
        )
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    header = "| run | test top-1 (%) | shifted test top-1 (%) | KL(orig, shifted) | steps | train time (s) |"
    lines = [header, "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(
            f"| {r['run']} | {r['test_top1']:.2f} | {r['shifted_top1']:.2f} | {r['kl_under_shift']:.4f} "
            f"| {r['steps']} | {r['train_seconds']:.0f} |"
        )
    return "\n".join(lines)


def run_demo(
    data: str | None = None, epochs: int | None = None, train_limit: int | None = None, out_dir: str = "runs"
) -> list[dict[str, Any]]:
    """Train the two demo runs, print the comparison table and the run directories."""
    data_cfg = demo_data_config(data, 10_000 if train_limit is None else train_limit)
    epochs = 4 if epochs is None else epochs
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dirs = []
    for cfg in demo_configs(data_cfg, epochs, stamp):
        cfg["out_dir"] = out_dir
        summary = train(cfg)
        run_dirs.append(Path(summary["run_dir"]))
    rows = compare(run_dirs, ["baseline (rp)", "baseline (rp), same steps as AIT", "AIT (rp,rp, lambda=1)"])
    print()
    print(format_table(rows))
    print()
    print("AIT trains on two random crops of each sample with the AiLoss between their predictions, so its epoch")
    print("has twice the steps; the second baseline trains for twice the epochs to match AIT's compute. The shifted")
    print("test set moves every test image by one fixed random offset of up to 4 pixels; KL is the mean symmetric")
    print("KL between the predictions for the original and the shifted images (lower: more invariant).")
    for r in rows:
        print(f"  {r['run']}: {r['run_dir']}")
    return rows
