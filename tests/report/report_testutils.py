"""Fake run directories for the report tests: the files `ait train` and `ait eval` write, no training."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import yaml

from ait.config import Config

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def cell(values: list[float]) -> str:
    """The report's "mean ± std (n=k)" text, computed independently of the report code."""
    mean = sum(values) / len(values)
    std = "–" if len(values) == 1 else f"{statistics.stdev(values):.2f}"
    return f"{mean:.2f} ± {std} (n={len(values)})"


def make_run(
    root: Path,
    name: str,
    seed: int,
    top1: float | list[float],
    *,
    strategy: str = "ait",
    networks: list[str] | None = None,
    views: list[str] | None = None,
    weight: float | None = None,
    dataset: str = "cifar100",
    noise: float = 0.0,
    fraction: float = 1.0,
    epochs: int = 4,
    steps_per_epoch: int | None = None,
    top5: float | list[float] | None = None,
    layer: str = "logits",
    metric: str = "kl",
    lr: float = 0.1,
    transfer: dict | None = None,
    variation: dict | None = None,
    tsne: bool = False,
    label_changed: float | None = None,
    corruptions: dict | None = None,
    mce: float | None = None,
) -> Path:
    """Write RUN_DIR = root/name/seed{seed} with config.yaml, summary.json, metrics.jsonl (+ eval/*.json)."""
    networks = networks or (["resnet20"] if strategy in ("baseline", "ait") else ["resnet20", "resnet20"])
    default_views = {"baseline": ["rp"], "ait": ["rp", "rp"], "dml": ["rp"], "multi_ait": ["rp"] * len(networks)}
    views = views or default_views[strategy]
    if weight is None:
        weight = {"baseline": 1.0, "ait": 1.0, "dml": 1.0, "multi_ait": 3.0}[strategy]
    top1s = top1 if isinstance(top1, list) else [top1]
    top5s = top5 if isinstance(top5, list) else [top5 if top5 is not None else t + 20 for t in top1s]
    if steps_per_epoch is None:
        steps_per_epoch = 20 if strategy == "ait" else 10  # AIT: half the samples per step, twice the steps
    cfg = Config().to_dict()
    cfg.update(name=name, seed=seed, out_dir=str(root))
    cfg["data"].update(dataset=dataset, label_noise=noise, train_fraction=fraction)
    cfg["strategy"].update(name=strategy, networks=networks, views=views)
    cfg["consistency"].update(weight=weight, layer=layer, metric=metric)
    cfg["optim"]["lr"] = lr
    cfg["train"]["epochs"] = epochs

    run = root / name / f"seed{seed}"
    (run / "eval").mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    keys = [f"net{i}" for i in range(len(networks))]
    nets = [
        {"key": k, "name": n, "final_top1": t1, "final_top5": t5, "best_top1": t1 + 1.0, "best_epoch": epochs - 1}
        for k, n, t1, t5 in zip(keys, networks, top1s, top5s)
    ]
    ensemble = None
    if len(networks) > 1:
        ensemble = {
            "key": "ensemble",
            "name": "ensemble",
            "final_top1": max(top1s) + 0.5,
            "final_top5": max(top5s),
            "best_top1": max(top1s) + 1.0,
            "best_epoch": epochs,
        }
    data = {"train_size": 1000, "test_size": 500, "num_classes": 100}
    if label_changed is not None:
        data["label_noise_changed_fraction"] = label_changed
    summary = {
        "name": name,
        "run_dir": str(run),
        "strategy": strategy,
        "views": views,
        "consistency_weight": weight,
        "dataset": dataset,
        "seed": seed,
        "epochs": epochs,
        "steps_per_epoch": steps_per_epoch,
        "total_steps": steps_per_epoch * epochs,
        "networks": nets,
        "ensemble": ensemble,
        "wall_seconds": 10.0,
        "train_seconds": 9.0,
        "images_per_s": 100.0,
        "precision": "fp32",
        "device": "cpu",
        "data": data,
    }
    (run / "summary.json").write_text(json.dumps(summary))
    with (run / "metrics.jsonl").open("w") as f:
        for e in range(1, epochs + 1):
            test = {k: {"top1": t * e / epochs, "top5": t5 * e / epochs} for k, t, t5 in zip(keys, top1s, top5s)}
            f.write(
                json.dumps(
                    {
                        "epoch": e,
                        "lr": 0.1,
                        "train_ce": [1.0] * len(keys),
                        "train_consistency": 0.1,
                        "train_top1": [50.0] * len(keys),
                        "images_per_s": 100.0,
                        "epoch_seconds": 1.0,
                        "test": test,
                        "wall_seconds": float(e),
                    }
                )
                + "\n"
            )
    if transfer is not None:  # {"original": top1, "crop": top1, ...}
        (run / "eval" / "transfer.json").write_text(
            json.dumps(
                {
                    "seed": seed,
                    "test_sets": list(transfer),
                    "networks": {"net0": {t: {"top1": v, "top5": v + 20} for t, v in transfer.items()}},
                }
            )
        )
    if variation is not None:  # {"original,crop": (kl, l2), ...}
        (run / "eval" / "variation.json").write_text(
            json.dumps(
                {
                    "seed": seed,
                    "pairs": list(variation),
                    "networks": {"net0": {p: {"kl": kl, "feature_l2": l2} for p, (kl, l2) in variation.items()}},
                }
            )
        )
    if corruptions is not None:  # {"gaussian_noise": {"1": top1, "2": top1}, ...}
        (run / "eval" / "corruptions.json").write_text(
            json.dumps(
                {
                    "seed": 0,
                    "source": "local",
                    "severities": sorted({int(k) for c in corruptions.values() for k in c}),
                    "corruptions": list(corruptions),
                    "networks": {"net0": corruptions},
                    "mean_top1": {"net0": 0.0},
                    "mce": {"net0": mce} if mce is not None else None,
                    "baseline": None,
                }
            )
        )
    if tsne:
        samples, variants = 6, 8
        points, sample, variant, label = [], [], [], []
        for s in range(samples):
            for v in range(variants):
                points.append([10.0 * s + 0.3 * v + seed, 5.0 * (s % 3) - 0.2 * v])
                sample.append(s)
                variant.append(v)
                label.append(s % 3)
        (run / "eval" / "tsne.json").write_text(
            json.dumps(
                {
                    "seed": seed,
                    "num_samples": samples,
                    "num_variants": variants,
                    "points": points,
                    "sample": sample,
                    "variant": variant,
                    "label": label,
                }
            )
        )
    return run
