"""Writes the preset configs of configs/paper/ and configs/cpu/ (run from the repo root).

    python configs/make_presets.py

One file per experiment of the paper, so each table row is `ait train FILE`. The presets are
generated so that every row of a table differs from its neighbours only where the paper says it
does; edit this script, not the YAML files, and re-run it.
"""

from __future__ import annotations

from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent

PAPER_TRAIN = {"epochs": 160, "batch_size": 128}  # paper sec. 4.1
PAPER_OPTIM = {"lr": 0.1, "momentum": 0.9, "schedule": "step", "milestones": [80, 120], "gamma": 0.1}
# CPU-sized: the real CIFAR subsets of ../shared/data (20,000 training images, full test sets),
# a short cosine schedule. Paths are relative to the repo root, where commands are run.
CPU_TRAIN = {"epochs": 15, "batch_size": 128, "eval_every": 5}
CPU_OPTIM = {"lr": 0.1, "momentum": 0.9, "schedule": "cosine", "warmup_epochs": 1}
# ImageNet (sec. 4.1): SGD momentum 0.9, weight decay 1e-4, lr 0.1 divided by 10 at epochs 30, 60, 80
# and 90, 100 epochs, batch 256 (images per network per step: AIT takes 128 samples x 2 views).
# An ImageFolder with train/ and val/ under data.root; 8 decoding workers per GPU; a checkpoint
# every 1000 steps as well (an epoch is 5,005 baseline / 10,010 AIT steps), for preemptible jobs.
IMAGENET_TRAIN = {"epochs": 100, "batch_size": 256, "checkpoint_every_steps": 1000}
IMAGENET_OPTIM = {
    "lr": 0.1,
    "momentum": 0.9,
    "weight_decay": 1e-4,
    "schedule": "step",
    "milestones": [30, 60, 80, 90],
    "gamma": 0.1,
}


def paper_data(dataset: str, **extra) -> dict:
    return {"dataset": dataset, "root": "data", "download": True, **extra}


def imagenet_data(**extra) -> dict:
    return {"dataset": "imagefolder", "root": "data/imagenet", "workers": 8, **extra}


def cpu_data(dataset: str, **extra) -> dict:
    folder = f"../shared/data/{dataset}"
    return {"dataset": "npz", "train_file": f"{folder}/train-20000.npz", "test_file": f"{folder}/test.npz", **extra}


def strategy(name: str, networks: list[str], views: list[str]) -> dict:
    return {"name": name, "networks": networks, "views": views}


def preset(name: str, data: dict, strat: dict, optim: dict, train: dict, weight: float | None = None, **consistency):
    cfg = {"name": name, "seed": 0, "data": data, "strategy": strat, "optim": dict(optim), "train": dict(train)}
    if weight is not None or consistency:
        cfg["consistency"] = {**({"weight": weight} if weight is not None else {}), **consistency}
    return cfg


def paper_presets() -> dict[str, dict]:
    out = {}
    # Table 1: baseline vs AIT per dataset and network (CIFAR rows; ImageNet comes with its issue).
    for dataset in ("cifar10", "cifar100"):
        for net in ("resnet32", "mobilenetv2", "wrn28_10"):
            out[f"table1_{dataset}_{net}_baseline"] = preset(
                f"table1_{dataset}_{net}_baseline",
                paper_data(dataset),
                strategy("baseline", [net], ["rp"]),
                PAPER_OPTIM,
                PAPER_TRAIN,
            )
            out[f"table1_{dataset}_{net}_ait"] = preset(
                f"table1_{dataset}_{net}_ait",
                paper_data(dataset),
                strategy("ait", [net], ["rp", "rp"]),
                PAPER_OPTIM,
                PAPER_TRAIN,
                weight=1.0,
            )
    # Table 1, ImageNet rows: ResNet-18 and ResNet-50; views are RandomResizedCrop(224) + flip ("rrc").
    for net in ("resnet18", "resnet50"):
        out[f"table1_imagenet_{net}_baseline"] = preset(
            f"table1_imagenet_{net}_baseline",
            imagenet_data(),
            strategy("baseline", [net], ["rrc"]),
            IMAGENET_OPTIM,
            IMAGENET_TRAIN,
        )
        out[f"table1_imagenet_{net}_ait"] = preset(
            f"table1_imagenet_{net}_ait",
            imagenet_data(),
            strategy("ait", [net], ["rrc", "rrc"]),
            IMAGENET_OPTIM,
            IMAGENET_TRAIN,
            weight=1.0,
        )
    # Table 2: DML vs multi-AIT (lambda = 3) for pairs of networks on CIFAR-100.
    pairs = [
        ("resnet32", "resnet32"),
        ("mobilenetv2", "mobilenetv2"),
        ("wrn28_10", "wrn28_10"),
        ("resnet32", "mobilenetv2"),
        ("resnet32", "wrn28_10"),
        ("mobilenetv2", "wrn28_10"),
    ]
    for a, b in pairs:
        pair = f"{a}_{b}"
        out[f"table2_cifar100_{pair}_dml"] = preset(
            f"table2_cifar100_{pair}_dml",
            paper_data("cifar100"),
            strategy("dml", [a, b], ["rp"]),
            PAPER_OPTIM,
            PAPER_TRAIN,
            weight=1.0,
        )
        out[f"table2_cifar100_{pair}_multi_ait"] = preset(
            f"table2_cifar100_{pair}_multi_ait",
            paper_data("cifar100"),
            strategy("multi_ait", [a, b], ["rp", "rp"]),
            PAPER_OPTIM,
            PAPER_TRAIN,
            weight=3.0,
        )
    # Table 3: label corruption on CIFAR-100 with ResNet-32.
    for noise in (20, 50, 80):
        for strat in ("baseline", "ait"):
            views = ["rp"] if strat == "baseline" else ["rp", "rp"]
            out[f"table3_cifar100_resnet32_noise{noise}_{strat}"] = preset(
                f"table3_cifar100_resnet32_noise{noise}_{strat}",
                paper_data("cifar100", label_noise=noise / 100),
                strategy(strat, ["resnet32"], views),
                PAPER_OPTIM,
                PAPER_TRAIN,
                weight=1.0 if strat == "ait" else None,
            )
    # Table 4: ResNet-18 on a class-balanced fraction of the ImageNet training set (seeded by the run's
    # seed), same recipe; the validation set is whole.
    for frac in (10, 30, 50):
        for strat in ("baseline", "ait"):
            views = ["rrc"] if strat == "baseline" else ["rrc", "rrc"]
            out[f"table4_imagenet_resnet18_frac{frac}_{strat}"] = preset(
                f"table4_imagenet_resnet18_frac{frac}_{strat}",
                imagenet_data(train_fraction=frac / 100),
                strategy(strat, ["resnet18"], views),
                IMAGENET_OPTIM,
                IMAGENET_TRAIN,
                weight=1.0 if strat == "ait" else None,
            )
    # Table 5: augmentation transfer on CIFAR-100 with ResNet-32.
    for recipe in ("rh", "rp", "rg", "rc", "rpg", "rpc", "rgc", "rpgc"):
        out[f"table5_cifar100_resnet32_{recipe}_baseline"] = preset(
            f"table5_cifar100_resnet32_{recipe}_baseline",
            paper_data("cifar100"),
            strategy("baseline", ["resnet32"], [recipe]),
            PAPER_OPTIM,
            PAPER_TRAIN,
        )
        out[f"table5_cifar100_resnet32_{recipe}_ait"] = preset(
            f"table5_cifar100_resnet32_{recipe}_ait",
            paper_data("cifar100"),
            strategy("ait", ["resnet32"], [recipe, recipe]),
            PAPER_OPTIM,
            PAPER_TRAIN,
            weight=1.0,
        )
    for a, b in (("rp", "rg"), ("rp", "rc"), ("rg", "rc")):
        out[f"table5_cifar100_resnet32_{a}-{b}_ait"] = preset(
            f"table5_cifar100_resnet32_{a}-{b}_ait",
            paper_data("cifar100"),
            strategy("ait", ["resnet32"], [a, b]),
            PAPER_OPTIM,
            PAPER_TRAIN,
            weight=1.0,
        )
    # Figure 3: layer x metric ablation, CIFAR-100, ResNet-32, lambda = 1.
    for layer in ("feature_map", "feature", "logits"):
        for metric in ("kl", "euclidean", "kl+euclidean"):
            tag = metric.replace("+", "-")
            out[f"fig3_cifar100_resnet32_{layer}_{tag}"] = preset(
                f"fig3_cifar100_resnet32_{layer}_{tag}",
                paper_data("cifar100"),
                strategy("ait", ["resnet32"], ["rp", "rp"]),
                PAPER_OPTIM,
                PAPER_TRAIN,
                weight=1.0,
                layer=layer,
                metric=metric,
            )
    # Figure 4: loss-weight sweep (lambda = 0 is AIT's data flow with the AiLoss switched off).
    for dataset in ("cifar10", "cifar100"):
        for weight in (0, 0.5, 1, 2, 3, 4):
            out[f"fig4_{dataset}_resnet32_lambda{weight}"] = preset(
                f"fig4_{dataset}_resnet32_lambda{weight}",
                paper_data(dataset),
                strategy("ait", ["resnet32"], ["rp", "rp"]),
                PAPER_OPTIM,
                PAPER_TRAIN,
                weight=float(weight),
            )
    out.update(beyond_the_paper())
    return out


def cpu_presets() -> dict[str, dict]:
    out = {}
    for dataset in ("cifar10", "cifar100"):
        out[f"{dataset}_resnet20_baseline"] = preset(
            f"cpu_{dataset}_resnet20_baseline",
            cpu_data(dataset),
            strategy("baseline", ["resnet20"], ["rp"]),
            CPU_OPTIM,
            CPU_TRAIN,
        )
        out[f"{dataset}_resnet20_ait"] = preset(
            f"cpu_{dataset}_resnet20_ait",
            cpu_data(dataset),
            strategy("ait", ["resnet20"], ["rp", "rp"]),
            CPU_OPTIM,
            CPU_TRAIN,
            weight=1.0,
        )
        # Compute-fair baseline: as many steps as AIT (AIT's epoch has twice the steps).
        out[f"{dataset}_resnet20_baseline_2x"] = preset(
            f"cpu_{dataset}_resnet20_baseline_2x",
            cpu_data(dataset),
            strategy("baseline", ["resnet20"], ["rp"]),
            CPU_OPTIM,
            {**CPU_TRAIN, "epochs": 2 * CPU_TRAIN["epochs"], "eval_every": 10},
        )
    # Table 2 at CPU size: an equal pair, and a small/large pair (ResNet-20 with ResNet-56: 0.28M and
    # 0.86M parameters).
    for tag, nets in (("resnet20", ["resnet20", "resnet20"]), ("resnet20-resnet56", ["resnet20", "resnet56"])):
        out[f"cifar100_{tag}_dml"] = preset(
            f"cpu_cifar100_{tag}_dml",
            cpu_data("cifar100"),
            strategy("dml", nets, ["rp"]),
            CPU_OPTIM,
            CPU_TRAIN,
            weight=1.0,
        )
        out[f"cifar100_{tag}_multi_ait"] = preset(
            f"cpu_cifar100_{tag}_multi_ait",
            cpu_data("cifar100"),
            strategy("multi_ait", nets, ["rp", "rp"]),
            CPU_OPTIM,
            CPU_TRAIN,
            weight=3.0,
        )
    for noise in (20, 50, 80):
        for strat in ("baseline", "ait"):
            views = ["rp"] if strat == "baseline" else ["rp", "rp"]
            out[f"cifar100_resnet20_noise{noise}_{strat}"] = preset(
                f"cpu_cifar100_resnet20_noise{noise}_{strat}",
                cpu_data("cifar100", label_noise=noise / 100),
                strategy(strat, ["resnet20"], views),
                CPU_OPTIM,
                CPU_TRAIN,
                weight=1.0 if strat == "ait" else None,
            )
    out["cifar100_resnet20_rp-rg_ait"] = preset(
        "cpu_cifar100_resnet20_rp-rg_ait",
        cpu_data("cifar100"),
        strategy("ait", ["resnet20"], ["rp", "rg"]),
        CPU_OPTIM,
        CPU_TRAIN,
        weight=1.0,
    )
    out["cifar100_resnet20_rpg_ait"] = preset(
        "cpu_cifar100_resnet20_rpg_ait",
        cpu_data("cifar100"),
        strategy("ait", ["resnet20"], ["rpg", "rpg"]),
        CPU_OPTIM,
        CPU_TRAIN,
        weight=1.0,
    )
    out["cifar100_resnet20_rpg_baseline"] = preset(
        "cpu_cifar100_resnet20_rpg_baseline",
        cpu_data("cifar100"),
        strategy("baseline", ["resnet20"], ["rpg"]),
        CPU_OPTIM,
        CPU_TRAIN,
    )
    out.update(beyond_the_paper_cpu())
    return out


AUGMIX_VIEWS = ["rp", "rp+augmix", "rp+augmix"]  # AugMix's clean view and two AugMix views of one crop


def beyond_the_paper_cpu() -> dict[str, dict]:
    """AugMix and noise/blur views beside AIT on CIFAR-10, ResNet-20 (issue "Beyond the paper").
    Three views take 126 images a step (42 samples); the 3x baseline matches AugMix's steps."""
    data, three = cpu_data("cifar10"), {**CPU_TRAIN, "batch_size": 126}

    def augmix(name: str, **extra) -> dict:
        cfg = preset(name, data, strategy("augmix", ["resnet20"], AUGMIX_VIEWS), CPU_OPTIM, three, 12.0, metric="jsd")
        return {**cfg, **extra}

    return {
        "cifar10_resnet20_augmix_jsd": augmix("cpu_cifar10_resnet20_augmix_jsd"),
        "cifar10_resnet20_augmix_nojsd": preset(
            "cpu_cifar10_resnet20_augmix_nojsd",
            data,
            strategy("ait", ["resnet20"], AUGMIX_VIEWS),
            CPU_OPTIM,
            three,
            weight=0.0,
        ),
        "cifar10_resnet20_augmix_jsd_splitbn": augmix(
            "cpu_cifar10_resnet20_augmix_jsd_splitbn", models={"resnet20": {"split_bn": True}}
        ),
        "cifar10_resnet20_rp-rpnb_ait": preset(
            "cpu_cifar10_resnet20_rp-rpnb_ait",
            data,
            strategy("ait", ["resnet20"], ["rp", "rpnb"]),
            CPU_OPTIM,
            CPU_TRAIN,
            weight=1.0,
        ),
        "cifar10_resnet20_baseline_3x": preset(
            "cpu_cifar10_resnet20_baseline_3x",
            data,
            strategy("baseline", ["resnet20"], ["rp"]),
            CPU_OPTIM,
            {**CPU_TRAIN, "epochs": 3 * CPU_TRAIN["epochs"], "eval_every": 15},
        ),
    }


def beyond_the_paper() -> dict[str, dict]:
    """AugMix's own CIFAR setting: WRN-40-2, 100 epochs, cosine from 0.1, weight decay 5e-4, JSD 12."""
    train = {"epochs": 100, "batch_size": 126}
    optim = {"lr": 0.1, "momentum": 0.9, "nesterov": True, "schedule": "cosine", "weight_decay": 5e-4}
    return {
        f"augmix_{dataset}_wrn40_2_jsd": preset(
            f"augmix_{dataset}_wrn40_2_jsd",
            paper_data(dataset),
            strategy("augmix", ["wrn40_2"], AUGMIX_VIEWS),
            optim,
            train,
            weight=12.0,
            metric="jsd",
        )
        for dataset in ("cifar10", "cifar100")
    }


def smoke_presets() -> dict[str, dict]:
    """Seconds on any machine, offline: generated images, a check that an install trains and evaluates."""
    data = {"dataset": "synthetic", "synthetic_size": 512}
    train = {"epochs": 2, "batch_size": 64}
    optim = {"lr": 0.05, "schedule": "cosine"}
    return {
        "synthetic_resnet20_baseline": preset(
            "smoke_synthetic_resnet20_baseline", data, strategy("baseline", ["resnet20"], ["rp"]), optim, train
        ),
        "synthetic_resnet20_ait": preset(
            "smoke_synthetic_resnet20_ait", data, strategy("ait", ["resnet20"], ["rp", "rp"]), optim, train, 1.0
        ),
    }


def write(folder: Path, presets: dict[str, dict], header: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.yaml"):
        old.unlink()
    for name, cfg in presets.items():
        (folder / f"{name}.yaml").write_text(header + yaml.safe_dump(cfg, sort_keys=False))


if __name__ == "__main__":
    note = "# Generated by configs/make_presets.py; edit that script and re-run it.\n"
    write(
        HERE / "paper",
        paper_presets(),
        note + "# Full scale, as in the paper (sec. 4.1); needs a GPU. CIFAR is read from (or downloaded to) data/.\n"
        "# ImageNet (table1_imagenet_*, table4_*): an ImageFolder data.root/{train,val}/<class>/<images>, e.g.\n"
        "#   torchrun --nproc_per_node=8 -m ait train configs/paper/table1_imagenet_resnet50_ait.yaml "
        "--set data.root=/datasets/imagenet\n",
    )
    write(
        HERE / "cpu",
        cpu_presets(),
        note + "# CPU-sized: the real CIFAR subsets in ../shared/data; run from the repo root.\n",
    )
    write(
        HERE / "smoke",
        smoke_presets(),
        note + "# Smoke runs: generated images, seconds on any machine (ait train configs/smoke/...).\n",
    )
    print(
        f"wrote {len(paper_presets())} paper presets, {len(cpu_presets())} CPU presets "
        f"and {len(smoke_presets())} smoke presets"
    )
