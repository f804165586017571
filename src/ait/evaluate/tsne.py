"""t-SNE of pooled features of augmented variants (paper Figure 6).

A few test images (paper: 14, from different classes where possible), many random variants of each
(paper: 16; random crop + colour jitter), the pooled features of one network, embedded in 2-D.
An augmentation-invariant network puts the variants of one image in a tight cluster.

    >>> from ait.evaluate import load_run, plot_tsne, tsne_features
    >>> ait_run = load_run("runs/smoke_synthetic_resnet20_ait/seed0", device="cpu")
    >>> base_run = load_run("runs/smoke_synthetic_resnet20_baseline/seed0", device="cpu")
    >>> result = tsne_features(ait_run)
    >>> result.points.shape  # 14 images x 16 variants, in 2-D
    (224, 2)
    >>> plot_tsne({"baseline": tsne_features(base_run), "AIT": result}, "tsne.png")
    PosixPath('tsne.png')

The same seed and test set choose the same images and variants in every run, so panels of
different runs are directly comparable (same colour = same source image).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ait.evaluate.loading import LoadedRun
from ait.runtime.files import atomic_write
from ait.runtime.predict import predict_outputs
from ait.views import Recipe, augment

# Paper sec. 4.5: "random crop and random color jittering"; the flip is part of every recipe.
TSNE_RECIPE = Recipe(flip_p=0.5, pad=4, brightness=0.1, contrast=0.1, saturation=0.1, name="tsne variants")


@dataclass
class TsneResult:
    """points (M, 2) float; sample (M,) test-set index of the source image; variant (M,) in
    [0, num_variants); label (M,) class of the source image. M = num_samples * num_variants."""

    points: np.ndarray
    sample: np.ndarray
    variant: np.ndarray
    label: np.ndarray
    seed: int
    num_samples: int
    num_variants: int

    def to_json(self) -> dict[str, Any]:
        """The tsne.json format: {"seed", "num_samples", "num_variants", "points", "sample", "variant", "label"}."""
        return {
            "seed": int(self.seed),
            "num_samples": int(self.num_samples),
            "num_variants": int(self.num_variants),
            "points": [[float(x), float(y)] for x, y in self.points],
            "sample": [int(v) for v in self.sample],
            "variant": [int(v) for v in self.variant],
            "label": [int(v) for v in self.label],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TsneResult:
        return cls(
            np.asarray(data["points"], dtype=np.float64).reshape(-1, 2),
            np.asarray(data["sample"]),
            np.asarray(data["variant"]),
            np.asarray(data["label"]),
            int(data["seed"]),
            int(data["num_samples"]),
            int(data["num_variants"]),
        )


def choose_samples(labels: torch.Tensor, num_samples: int, seed: int) -> torch.Tensor:
    """Indices (num_samples,) of test samples: seeded, one per class first, so that the samples
    come from different classes when there are enough classes, then round-robin over classes."""
    labels = labels.cpu()
    if not 1 <= num_samples <= labels.numel():
        raise ValueError(f"num_samples must be in [1, {labels.numel()}] (the test set size), got {num_samples}")
    g = torch.Generator().manual_seed(int(seed))
    classes = labels.unique()
    classes = classes[torch.randperm(classes.numel(), generator=g)]
    pools = []
    for c in classes.tolist():
        idx = (labels == c).nonzero().flatten()
        pools.append(idx[torch.randperm(idx.numel(), generator=g)].tolist())
    chosen: list[int] = []
    depth = 0
    while len(chosen) < num_samples:
        for pool in pools:
            if depth < len(pool) and len(chosen) < num_samples:
                chosen.append(pool[depth])
        depth += 1
    return torch.tensor(chosen, dtype=torch.long)


def make_variants(images: torch.Tensor, num_variants: int, seed: int, recipe: Recipe = TSNE_RECIPE) -> torch.Tensor:
    """uint8 (S, C, H, W) -> (S * num_variants, C, H, W): variant v of image s at row s * num_variants + v."""
    if num_variants < 1:
        raise ValueError(f"num_variants must be >= 1, got {num_variants}")
    generator = torch.Generator().manual_seed(int(seed) + 1)  # a stream apart from the sample choice
    return augment(images.cpu().repeat_interleave(num_variants, dim=0), recipe, generator)


def embed_2d(features: np.ndarray, seed: int, perplexity: float = 30.0) -> np.ndarray:
    """(M, F) -> (M, 2) with sklearn's t-SNE (PCA init, seeded); perplexity capped below M / 3."""
    try:
        from sklearn.manifold import TSNE
    except ImportError as err:  # scikit-learn is the optional "report" extra
        raise RuntimeError("t-SNE needs scikit-learn: pip install 'ait[report]'") from err
    m = features.shape[0]
    if m < 4:
        raise ValueError(f"t-SNE needs at least 4 points, got {m}")
    features = features.astype(np.float64)
    if not np.isfinite(features).all():
        raise ValueError("t-SNE features contain NaN or inf (did the network diverge?)")
    if np.ptp(features, axis=0).max() <= 1e-12 * max(1.0, float(np.abs(features).max())):
        # All points identical (an input-independent network): sklearn's PCA init divides by a zero
        # standard deviation and its Barnes-Hut code then crashes the process. One point is the truth.
        return np.zeros((m, 2))
    perplexity = min(float(perplexity), (m - 1) / 3.0)
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=int(seed))
    return tsne.fit_transform(features)


def tsne_features(
    run: LoadedRun,
    num_samples: int = 14,
    num_variants: int = 16,
    seed: int = 0,
    network: int = 0,
    perplexity: float = 30.0,
    batch_size: int | None = None,
) -> TsneResult:
    """t-SNE of the pooled features (network ``network``) of ``num_variants`` random variants
    (TSNE_RECIPE) of each of ``num_samples`` seeded test samples (paper Figure 6: 14 x 16)."""
    if not 0 <= network < len(run.networks):
        raise ValueError(f"network must be in [0, {len(run.networks)}), got {network}")
    test = run.data.test
    chosen = choose_samples(test.labels, num_samples, seed)  # (S,)
    variants = make_variants(test.images[chosen], num_variants, seed)  # (S * V, C, H, W)
    preds = predict_outputs(
        [run.networks[network]], variants, run.prepare, run.precision, batch_size or run.eval_batch_size
    )[0]
    points = embed_2d(preds.feature.numpy(), seed, perplexity)  # (S * V, 2)
    sample = chosen.repeat_interleave(num_variants).numpy()
    variant = np.tile(np.arange(num_variants), num_samples)
    label = test.labels.cpu()[chosen].repeat_interleave(num_variants).numpy()
    return TsneResult(points, sample, variant, label, seed, num_samples, num_variants)


def _styles(n: int) -> list[tuple[Any, str]]:
    """n distinguishable (colour, marker) pairs: tab10 circles, then tab10 triangles, squares, ...

    Later rounds shift the colours by 5: with 10 classes the 11th sample repeats the 1st one's
    class, and the same colour would make the two clusters indistinguishable.
    """
    from matplotlib import colormaps

    tab10 = colormaps["tab10"].colors
    markers = "o^sDvP"
    return [(tab10[(i + 5 * (i // 10)) % 10], markers[(i // 10) % len(markers)]) for i in range(n)]


def plot_tsne(
    results_by_run: Mapping[str, TsneResult | Mapping[str, Any]],
    path: str | Path,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """One PNG, one panel per run side by side; points coloured by source image.

    results_by_run: {panel label: TsneResult or a tsne.json dict}. Colours follow the order in
    which source images first appear, so runs evaluated with the same seed share colours.
    """
    # An explicit Agg canvas, no pyplot: no global backend switch, no display, safe in threads.
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:  # matplotlib is the optional "report" extra
        raise RuntimeError("plotting needs matplotlib: pip install 'ait[report]'") from err

    if not results_by_run:
        raise ValueError("plot_tsne needs at least one result")
    results = {k: v if isinstance(v, TsneResult) else TsneResult.from_json(v) for k, v in results_by_run.items()}
    # One colour per source image across all panels (test index -> class, first-appearance order).
    legend_samples: dict[int, int] = {}
    for res in results.values():
        for s, c in zip(res.sample.tolist(), res.label.tolist()):
            legend_samples.setdefault(int(s), int(c))
    styles = dict(zip(legend_samples, _styles(len(legend_samples))))

    n = len(results)
    fig = Figure(figsize=(max(5.0 * n, 8.0), 5.8))  # >= 8 in wide: room for the two-line title
    FigureCanvasAgg(fig)
    for ax, (label, res) in zip(fig.subplots(1, n, squeeze=False)[0], results.items()):
        _scatter_panel(ax, label, res, styles)
    first = next(iter(results.values()))
    fig.suptitle(
        title
        or (
            f"t-SNE of pooled features: {first.num_samples} test images x {first.num_variants} "
            f"random variants (crop + colour jitter)\nsame colour and marker = variants of the same image; "
            f"tight clusters = augmentation invariance"
        ),
        fontsize=11,
    )
    rows = _legend(fig, legend_samples, styles, class_names, ncol=7 if n > 1 else 5)
    fig.tight_layout(rect=(0, 0.04 + 0.035 * rows, 1, 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: fig.savefig(f, dpi=120, format="png"))
    return path


def _scatter_panel(ax, label: str, res: TsneResult, styles: dict[int, tuple[Any, str]]) -> None:
    """One run's points, one colour and marker per source image."""
    for s in dict.fromkeys(res.sample.tolist()):
        mask = res.sample == s
        colour, marker = styles[int(s)]
        ax.scatter(
            res.points[mask, 0],
            res.points[mask, 1],
            s=24,
            color=colour,
            marker=marker,
            alpha=0.85,
            edgecolors="white",
            linewidths=0.4,
        )
    ax.set_title(label, fontsize=12)
    ax.set_xlabel("t-SNE 1")
    ax.set_ylabel("t-SNE 2")
    ax.set_xticks([])  # t-SNE coordinates have no units: ticks would only suggest they do
    ax.set_yticks([])
    ax.set_aspect("equal", adjustable="datalim")


def _legend(fig, legend_samples: dict[int, int], styles, class_names: Sequence[str] | None, ncol: int) -> int:
    """The legend of source images (index, class) under the panels; returns its number of rows."""
    from matplotlib.lines import Line2D

    def name(c: int) -> str:
        return class_names[c] if class_names is not None and c < len(class_names) else f"class {c}"

    handles = [
        Line2D([], [], marker=styles[s][1], linestyle="", color=styles[s][0], markersize=6, label=f"#{s} ({name(c)})")
        for s, c in legend_samples.items()
    ]
    ncol = min(len(handles), ncol)
    fig.legend(
        handles=handles,
        loc="lower center",
        ncol=ncol,
        fontsize=8,
        frameon=False,
        title="source test image (index, class)",
        title_fontsize=8,
    )
    return -(-len(handles) // ncol)
