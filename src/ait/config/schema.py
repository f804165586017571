"""The config's schema: a tree of dataclasses with their defaults, each numeric key with its range."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from ait import strategies
from ait.config.checks import check_config

SEED_MAX = 2**63 - 1  # torch and numpy generators take 64-bit seeds; step seeds wrap below 2**63


@dataclass(frozen=True)
class Range:
    """The values a numeric key may take: always finite, within ``lo`` and ``hi`` (None: unbounded),
    each bound closed unless said open. Every int and float key of the schema declares one
    (:func:`ranged`); a value outside is refused at load time with the key named."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def holds(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo):
            return False
        return self.hi is None or (value < self.hi if self.hi_open else value <= self.hi)

    def describe(self, integer: bool) -> str:
        """ "an integer >= 1", "a number in [0, 1)", ... as error messages say it."""
        kind = "an integer" if integer else "a finite number"
        lo, hi = _number_text(self.lo), _number_text(self.hi)
        if self.lo is not None and self.hi is not None:
            return f"{kind} in {'(' if self.lo_open else '['}{lo}, {hi}{')' if self.hi_open else ']'}"
        if self.lo is not None:
            return f"{kind} {'>' if self.lo_open else '>='} {lo}"
        if self.hi is not None:
            return f"{kind} {'<' if self.hi_open else '<='} {hi}"
        return kind


def _number_text(x: float | None) -> str:
    return "" if x is None else str(int(x)) if float(x).is_integer() else f"{x:g}"


def ranged(default: Any = dataclasses.MISSING, lo=None, hi=None, *, lo_open=False, hi_open=False, factory=None):
    """A dataclass field whose value (each value, for a list) must lie in :class:`Range` (lo, hi)."""
    metadata = {"range": Range(lo, hi, lo_open, hi_open)}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class DataConfig:
    dataset: str = "cifar10"  # one of DATASETS
    root: str | None = None  # dataset folder (cifar*, fashion_mnist; imagefolder: holds train/ and val/; hf: see below)
    train_file: str | None = None  # npz: training arrays
    test_file: str | None = None  # npz: test arrays
    # hf only (root: a DatasetDict saved with save_to_disk, or a folder of parquet files; ait.data.hf):
    image_column: str | None = None  # the column of the images; None: the dataset's single Image column
    label_column: str = "label"  # the column of the integer labels (a ClassLabel's names become the classes)
    train_split: str = "train"  # the split trained on
    test_split: str = "test"  # the split tested on (e.g. "validation")
    download: bool = False  # cifar: fetch the official archive when the folder is absent
    label_noise: float = ranged(0.0, 0, 1)  # fraction of training labels replaced by random classes (Table 3)
    train_fraction: float = ranged(1.0, 0, 1, lo_open=True)  # stratified fraction of the training set kept (Table 4)
    val_fraction: float = ranged(0.0, 0, 1, hi_open=True)  # class-balanced share of those held out as a validation set
    # Both limits warn when the samples kept leave out classes of the whole set (a file sorted by class).
    train_limit: int | None = ranged(None, 1)  # keep the first N training samples (imagefolder: N evenly spaced)
    test_limit: int | None = ranged(None, 1)  # evaluate on the first N test samples only (imagefolder: N evenly spaced)
    synthetic_size: int = ranged(512, 1, 1_000_000)  # synthetic: number of training samples (tests and smoke runs)
    # imagefolder only (ImageNet layout root/{train,val}/<class>/<image>; views are strategy.views "rrc"):
    image_size: int = ranged(224, 8, 4096)  # side of the training views and of the evaluation centre crop
    eval_resize: int | None = ranged(None, 8, 8192)  # shorter side before the centre crop; None: image_size / 0.875
    workers: int = ranged(8, 0, 256)  # DataLoader processes decoding images (per rank); 0: in the training process
    skip_corrupt: bool = False  # a file that fails to decode is replaced by the next one instead of failing
    verify_images: bool = False  # decode every file once before training; with skip_corrupt drop bad ones


@dataclass
class StrategyConfig:
    name: str = "ait"  # a name of ait.strategies.STRATEGIES
    networks: list[str] = field(default_factory=lambda: ["resnet32"])  # model names, one per network
    views: list[str] = field(default_factory=lambda: ["rp", "rp"])  # recipe names, one per view

    @property
    def definition(self) -> strategies.Strategy:
        """This strategy's entry in :mod:`ait.strategies` (the name must be valid)."""
        return strategies.get(self.name)

    def branches(self) -> list[tuple[int, int]]:
        """(network index, view index) pairs trained each step."""
        return self.definition.branches(len(self.networks), len(self.views))

    def samples_per_step(self, batch_size: int) -> int:
        """Samples drawn per step when every network sees ``batch_size`` images per step."""
        return self.definition.samples_per_step(batch_size, len(self.networks), len(self.views))


@dataclass
class ModelOptions:
    """How one architecture of ``strategy.networks`` is built and first initialised (``models: {NAME: ...}``)."""

    # Its factory's keyword arguments (timm: drop_path_rate, img_size; torchvision: image_size).
    kwargs: dict[str, Any] = field(default_factory=dict)
    weights: str | None = None  # initial weights: a .safetensors / .pt state dict (a published checkpoint, ...)
    replace_head: bool = False  # with weights: a classifier head of another class count keeps its fresh init
    pretrained: bool = False  # timm: its pretrained weights, from the local Hugging Face cache only
    split_bn: bool = False  # a BatchNorm per view in training, the first view's in evaluation (AugMix's)


@dataclass
class ConsistencyConfig:
    weight: float = ranged(1.0, 0)  # lambda; the paper uses 1 for AIT and 3 for multi-AIT
    layer: str = "logits"  # one of LAYERS (paper sec. 4.2.1)
    metric: str = "kl"  # one of ait.losses.METRICS
    detach_target: bool = True  # stop-gradient on each KL direction's target, as the authors' code
    temperature: float = ranged(1.0, 0, lo_open=True)


@dataclass
class OptimConfig:
    name: str = "sgd"  # one of OPTIMIZERS: "sgd" (the paper's) or "adamw" (modern recipes: ViTs, ConvNeXts)
    lr: float = ranged(0.1, 0, lo_open=True)
    momentum: float = ranged(0.9, 0, 1, hi_open=True)  # sgd
    betas: list[float] = ranged(lo=0, hi=1, hi_open=True, factory=lambda: [0.9, 0.999])  # adamw
    nesterov: bool = False
    weight_decay: float | None = ranged(None, 0)  # None: sgd 5e-4 for wide ResNets, else 1e-4; adamw 0.05
    schedule: str = "step"  # "step" (the paper's), "cosine", or "onecycle" (OneCycleLR's curve, its own warm-up)
    milestones: list[int] = ranged(lo=0, factory=lambda: [80, 120])  # epochs, for "step"
    gamma: float = ranged(0.1, 0, 1, lo_open=True)
    warmup_epochs: float = ranged(0.0, 0)  # linear warm-up from lr / 10, in epochs


@dataclass
class TrainConfig:
    epochs: int = ranged(160, 1)
    batch_size: int = ranged(128, 1)  # images per network per step (AIT: batch_size / views samples per step)
    eval_every: int = ranged(1, 1)  # evaluate on the test set every k epochs (and always after the last)
    eval_batch_size: int = ranged(500, 1)
    precision: str = "auto"  # "auto" (bf16 where it helps), "bf16", "fp32"
    channels_last: bool | None = None  # None: on where it helps (CPU and CUDA convolutions)
    device: str = "auto"  # "auto" (cuda if available, else cpu), "cpu", "cuda", "cuda:1"
    num_threads: int | None = ranged(None, 1, 1024)  # torch CPU threads; None = torch's default
    compile: bool = False  # torch.compile the training forward passes (GPUs; it did not help on CPUs)
    cuda_graphs: bool = False  # capture the whole step once in a CUDA graph and replay it (one CUDA device)
    max_steps_per_epoch: int | None = ranged(None, 1)  # cut epochs short (smoke tests)
    progress: str = "auto"  # "bar", "plain" (one line per epoch, for logs), "none", "auto"
    checkpoint: bool = True  # save the whole training state at the end of each epoch
    checkpoint_every_steps: int | None = ranged(None, 1)  # also save every N steps (long epochs, preemptible jobs)
    max_nonfinite_skips: int = ranged(0, 0)  # steps with a NaN/inf loss that may be skipped before the run fails
    label_smoothing: float = ranged(0.0, 0, 1, hi_open=True)  # of the training cross-entropy; 0: the paper's
    loggers: list[str] = field(default_factory=list)  # csv, tensorboard, mlflow, wandb (ait.callbacks), or yours
    log_every: int = ranged(50, 1)  # per-step scalars of the loggers every N global steps
    sync_batchnorm: bool = False  # distributed: BatchNorm statistics over the global batch
    dist_timeout_s: float = ranged(1800.0, 0, lo_open=True)  # distributed: a collective waiting longer fails the run


@dataclass
class Config:
    name: str = "run"
    seed: int = ranged(0, 0, SEED_MAX)
    out_dir: str = "runs"  # run directories are created under it
    data: DataConfig = field(default_factory=DataConfig)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    models: dict[str, ModelOptions] = field(default_factory=dict)  # per name of strategy.networks (optional)
    consistency: ConsistencyConfig = field(default_factory=ConsistencyConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> Config:
        """Check values that types alone do not (:mod:`ait.config.checks`); raises ConfigError naming the key."""
        check_config(self)
        return self
