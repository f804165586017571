"""A trained network for inference, without its training data: from a run directory or an exported file.

After ``ait train configs/smoke/synthetic_resnet20_ait.yaml``::

    >>> import ait
    >>> model = ait.load_model("runs/smoke_synthetic_resnet20_ait/seed0")
    >>> model.preprocessing.input_shape, model.classes[:2]
    ((3, 32, 32), ['class0', 'class1'])
    >>> import torch
    >>> probabilities = model.predict(torch.zeros(4, 3, 32, 32, dtype=torch.uint8))  # uint8 (N, C, H, W)
    >>> tuple(probabilities.shape)
    (4, 10)

:class:`Preprocessing` is what the run's evaluation does to an image: the shorter side resized
(image folders: to ``eval_resize``; in-memory data: to the input size), a centre crop, the
normalisation. ``ait predict RUN IMAGE...`` prints the top classes of image files through it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ait import models
from ait.config import Config
from ait.data.errors import DataError
from ait.data.imagefolder import eval_transform
from ait.data.pixels import check_eight_bit
from ait.engine.checkpoint import networks_from_checkpoint
from ait.engine.rundir import RunDirError, read_model_input
from ait.evaluate.loading import check_run_dir, read_config_and_checkpoint
from ait.models.adapters import weights_target
from ait.runtime.precision import resolve_device
from ait.views import normalize

MODEL_FORMAT = "ait-model-1"  # the metadata format of exported safetensors files (ait.evaluate.export)


class ModelLoadError(RunDirError):
    """A run directory or file that cannot be loaded for inference; names it and why."""


@dataclass(frozen=True)
class Preprocessing:
    """How images become network input. input_shape: (C, H, W); mean, std: per channel, of [0, 1]
    images; eval_resize: the shorter side before the centre crop (None: the input height)."""

    input_shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: tuple[str, ...]
    eval_resize: int | None = None

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Preprocessing:
        """From env.json's "model_input" (or an export's metadata)."""
        return cls(
            tuple(int(v) for v in record["input_shape"]),
            tuple(float(v) for v in record["mean"]),
            tuple(float(v) for v in record["std"]),
            tuple(str(c) for c in record["classes"]),
            int(record["eval_resize"]) if record.get("eval_resize") else None,
        )

    def to_record(self) -> dict[str, Any]:
        return {
            "input_shape": list(self.input_shape),
            "mean": list(self.mean),
            "std": list(self.std),
            "classes": list(self.classes),
            "eval_resize": self.eval_resize,
        }

    def image_tensor(self, path: str | Path) -> torch.Tensor:
        """An image file of any size as uint8 (C, H, W): shorter side resized, centre crop; for a
        square input exactly the evaluation transform of an image-folder run (torchvision's rule)."""
        from PIL import Image, UnidentifiedImageError

        channels, height, width = self.input_shape
        if channels not in CHANNEL_MODES:
            raise ModelLoadError(f"{path}: this model takes {channels}-channel input, which no image file mode holds")
        try:
            with Image.open(path) as img:
                check_eight_bit(img.mode, str(path))
                img = img.convert(CHANNEL_MODES[channels])
                side = self.eval_resize or max(height, width)
                img = eval_transform(img, height, side) if height == width else _fit(img, height, width, side)
                data = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8)
        except DataError as err:
            raise ModelLoadError(str(err)) from None
        except (OSError, UnidentifiedImageError) as err:
            raise ModelLoadError(f"{path}: not an image file that can be read ({err})") from None
        return data.view(height, width, channels).permute(2, 0, 1).contiguous()

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, C, H, W), or float in [0, 1] -> normalised float32 network input."""
        return normalize(images if images.dtype == torch.uint8 else images.float(), self.mean, self.std)


@dataclass
class LoadedModel:
    """One trained network in eval mode (float32) with its preprocessing and architecture name."""

    network: nn.Module
    preprocessing: Preprocessing
    architecture: str
    kwargs: dict[str, Any]
    source: str

    @property
    def classes(self) -> list[str]:
        return list(self.preprocessing.classes)

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, C, H, W) (or float in [0, 1]) -> class probabilities (N, K)."""
        device = next(self.network.parameters()).device
        return self.network(self.preprocessing.normalise(images.to(device))).softmax(dim=1).cpu()

    def top_k(self, paths: Sequence[str | Path], k: int = 5) -> list[list[tuple[str, float]]]:
        """Per image file, its ``k`` most probable (class name, probability) pairs."""
        images = torch.stack([self.preprocessing.image_tensor(p) for p in paths])
        probabilities = self.predict(images)
        values, indices = probabilities.topk(min(k, probabilities.shape[1]), dim=1)
        return [[(self.classes[i], float(v)) for v, i in zip(vs, ix)] for vs, ix in zip(values, indices)]


# The Pillow mode an image file is converted to for a model of C input channels.
CHANNEL_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


def _fit(img, height: int, width: int, side: int):
    """A non-square input: the shorter side resized to ``side``, then the centre (height, width)."""
    from PIL import Image

    scale = side / min(img.size)
    size = (max(width, round(img.size[0] * scale)), max(height, round(img.size[1] * scale)))
    img = img.resize(size, Image.BILINEAR)
    left, top = (img.size[0] - width) // 2, (img.size[1] - height) // 2
    return img.crop((left, top, left + width, top + height))


def load_model(source: str | Path, network: int = 0, device: str | torch.device = "cpu") -> LoadedModel:
    """Network ``network`` of a run directory, or the network of an exported ``.safetensors`` file
    (``ait export``), for inference. A module named by the run is not imported (``--import``)."""
    path = Path(source).expanduser()
    try:
        torch_device = resolve_device(str(device), key="device")
    except (ValueError, RuntimeError) as err:
        raise ModelLoadError(f"cannot load {str(path)!r} on device {str(device)!r}: {err}") from None
    if path.is_dir():
        loaded = _from_run(path, network)
    elif path.suffix == ".safetensors" and path.is_file():
        loaded = _from_export(path, network)
    else:
        raise ModelLoadError(f"{str(path)!r}: expected a run directory or an exported .safetensors file")
    loaded.network.to(torch_device).eval()
    return loaded


def _from_run(run_dir: Path, network: int) -> LoadedModel:
    config, state = read_config_and_checkpoint(check_run_dir(run_dir))
    record = read_model_input(run_dir)
    if record is None:
        raise ModelLoadError(
            f"run directory {str(run_dir)!r} records no model input (env.json or summary.json); "
            "evaluate it with its data (ait eval) instead"
        )
    prep = Preprocessing.from_record(record)
    _check_index(network, len(config.strategy.networks), str(run_dir))
    try:
        _, nets = networks_from_checkpoint(state, len(prep.classes), prep.input_shape[0])
    except models.ModelError as err:
        raise ModelLoadError(f"run directory {str(run_dir)!r}: {err}") from None
    name = config.strategy.networks[network]
    return LoadedModel(nets[network], prep, name, _kwargs(config, name), str(run_dir))


def _kwargs(config: Config, name: str) -> dict[str, Any]:
    return dict(config.models[name].kwargs) if name in config.models else {}


def _network_prefix(metadata: dict[str, str], network: int, path: Path) -> str:
    """The key prefix of network ``network`` in an export: "" in a file of one network, "netK."
    in a file of several (``ait export RUN`` of a DML or multi-AIT run)."""
    if "architecture" in metadata:
        _check_index(network, 1, str(path))
        return ""
    count = sum(1 for key in metadata if re.fullmatch(r"net\d+\.architecture", key))
    if not count:
        raise ModelLoadError(f"{path}: its metadata describes no network (no architecture key); export it again")
    _check_index(network, count, str(path))
    return f"net{network}."


def _check_index(network: int, count: int, where: str) -> None:
    if not 0 <= network < count:
        raise ModelLoadError(f"{where}: network {network} asked for; it has networks 0..{count - 1}")


def _from_export(path: Path, network: int) -> LoadedModel:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not a dict)
    except Exception as err:
        raise ModelLoadError(f"{path}: not a safetensors file ({type(err).__name__}: {err})") from None
    if metadata.get("format") != MODEL_FORMAT:
        raise ModelLoadError(
            f"{path}: holds no model description (metadata format {metadata.get('format')!r}, expected "
            f"{MODEL_FORMAT!r}); export it with `ait export RUN --out FILE.safetensors`, or evaluate it "
            "with `ait eval --model NAME --weights FILE`"
        )
    prep = Preprocessing.from_record(json.loads(metadata["model_input"]))
    prefix = _network_prefix(metadata, network, path)
    name, kwargs = metadata[f"{prefix}architecture"], json.loads(metadata.get(f"{prefix}kwargs", "{}"))
    tensors = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
    try:
        net = models.create(name, len(prep.classes), prep.input_shape[0], kwargs=kwargs, allow_import=False)
        weights_target(net)[0].load_state_dict(tensors)
    except (models.ModelError, RuntimeError) as err:
        raise ModelLoadError(f"{path}: cannot rebuild {name!r} from it ({str(err).splitlines()[0][:300]})") from None
    return LoadedModel(net, prep, name, kwargs, str(path))
