"""``ait export``: a trained network as a file other tools load.

    ait export runs/cifar10_ait/seed0 --out resnet20.safetensors      # weights + what the model is
    ait export runs/cifar10_ait/seed0 --out resnet20.onnx             # ONNX (onnxruntime, ...)
    ait export runs/cifar10_ait/seed0 --out resnet20.pt2              # a torch.export program

Formats (chosen by ``--format`` or the file's suffix; a suffix that names another format is refused):

- ``safetensors``: the weights, named as the architecture names them (a timm model's load into
  timm), with metadata: the architecture and its keyword arguments, the class names, the input
  shape, the normalisation (``ait.load_model(FILE)`` reads it back). With several networks and no
  ``--network``, every one, prefixed ``net0.``, ``net1.``, ...;
- ``onnx`` and ``exported`` (``torch.export``, saved with ``torch.export.save``): one network with
  its normalisation inside, taking float images in [0, 1], (N, C, H, W) with any N, giving logits
  (N, K). TorchScript is not offered: it is deprecated in current PyTorch.

An existing file is never overwritten.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from ait.evaluate.inference import MODEL_FORMAT, LoadedModel, ModelLoadError, load_model
from ait.models.adapters import weights_target
from ait.models.split_bn import main_only
from ait.runtime.files import atomic_write_path

FORMATS = {".safetensors": "safetensors", ".onnx": "onnx", ".pt2": "exported"}


class Normalised(nn.Module):
    """A network with its input normalisation: float [0, 1] images (N, C, H, W) -> logits (N, K)."""

    def __init__(self, network: nn.Module, mean, std):
        super().__init__()
        self.network = network
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network((images - self.mean) / self.std)


def export(source: str | Path, out: str | Path, fmt: str | None = None, network: int | None = None) -> str:
    """Write the run directory ``source`` (or an exported safetensors file) to ``out`` as ``fmt``.

    Returns a one-line description of what was written. Raises ModelLoadError naming the problem:
    an existing ``out``, an unknown format, a missing extra (onnx), a network index out of range.
    """
    out = Path(out)
    fmt = _format(out, fmt)
    if out.exists():
        raise ModelLoadError(f"{str(out)!r} exists; choose another path (nothing was overwritten)")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)  # before the model is loaded: a bad path fails fast
    except OSError as err:
        raise ModelLoadError(f"{out}: cannot make its folder {str(out.parent)!r} ({err.strerror or err})") from None
    if fmt == "safetensors" and network is None and Path(source).is_dir():
        return _all_networks(Path(source), out)
    model = load_model(source, network or 0)
    _check_finite(model)
    write = {"safetensors": lambda m, path: write_safetensors(path, {"": m}), "onnx": write_onnx}
    # Whole or not at all: a partial file left by an exporter's error would block the next try.
    atomic_write_path(out, lambda path: write.get(fmt, write_exported)(model, path))
    return f"{out}: {model.architecture} ({fmt}, {len(model.classes)} classes, input {model.preprocessing.input_shape})"


def _format(out: Path, fmt: str | None) -> str:
    """The format to write: ``fmt``, else the one ``out``'s suffix names. A suffix that names another
    format than ``fmt`` is refused: a file called .onnx that holds safetensors misleads every reader."""
    named = FORMATS.get(out.suffix.lower())
    fmt = fmt or named
    if fmt not in FORMATS.values():
        raise ModelLoadError(f"{out}: give --format safetensors, onnx or exported (or a .safetensors/.onnx/.pt2 name)")
    if named is not None and named != fmt:
        raise ModelLoadError(f"{out}: the suffix {out.suffix!r} names {named}, not --format {fmt}; rename the file")
    return fmt


def _check_finite(model: LoadedModel) -> None:
    from ait.engine.checkpoint import nonfinite_tensors

    if nonfinite_tensors({"networks": [weights_target(model.network)[0].state_dict()]}):
        raise ModelLoadError(f"{model.source}: weight tensors hold NaN or infinite values; nothing exported")


def _all_networks(run_dir: Path, out: Path) -> str:
    first = load_model(run_dir, 0)
    count = len(_network_names(run_dir))
    loaded = {"": first} if count == 1 else {f"net{k}.": load_model(run_dir, k) for k in range(count)}
    for model in loaded.values():
        _check_finite(model)
    atomic_write_path(out, lambda path: write_safetensors(path, loaded))
    names = ", ".join(m.architecture for m in loaded.values())
    return f"{out}: {names} (safetensors, {len(first.classes)} classes, input {first.preprocessing.input_shape})"


def _network_names(run_dir: Path) -> list[str]:
    from ait.evaluate.loading import read_config_and_checkpoint

    return list(read_config_and_checkpoint(run_dir)[0].strategy.networks)


def write_safetensors(out: Path, loaded: dict[str, LoadedModel]) -> None:
    """Weights of each model under its prefix ("" for one), with the metadata ait.load_model reads."""
    from safetensors.torch import save_file

    tensors, metadata = {}, {"format": MODEL_FORMAT}
    for prefix, model in loaded.items():
        own = main_only(weights_target(model.network)[0].state_dict())  # a split BatchNorm's main layers
        state = {k: v.detach().contiguous().cpu() for k, v in own.items()}
        tensors.update({prefix + k: v for k, v in state.items()})
        key = prefix.rstrip(".")
        metadata[f"{key}.architecture" if key else "architecture"] = model.architecture
        metadata[f"{key}.kwargs" if key else "kwargs"] = json.dumps(model.kwargs)
        metadata["model_input"] = json.dumps(model.preprocessing.to_record())
    save_file(tensors, str(out), metadata=metadata)


def _example(model: LoadedModel) -> torch.Tensor:
    return torch.rand(2, *model.preprocessing.input_shape, generator=torch.Generator().manual_seed(0))


def write_onnx(model: LoadedModel, out: Path) -> None:
    """ONNX through torch.onnx's exporter (it needs onnx and onnxscript: the onnx extra)."""
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        raise ModelLoadError("ONNX export needs onnx and onnxscript: pip install 'ait-train[onnx]'") from None
    wrapped = Normalised(model.network, model.preprocessing.mean, model.preprocessing.std).eval()
    batch = torch.export.Dim("batch", min=1)
    program = torch.onnx.export(
        wrapped,
        (_example(model),),
        dynamo=True,
        input_names=["images"],
        output_names=["logits"],
        dynamic_shapes={"images": {0: batch}},
        verbose=False,
    )
    program.model.metadata_props.update(_metadata(model))  # the model's metadata_props, as ONNX tools show them
    program.save(str(out))


def _metadata(model: LoadedModel) -> dict[str, str]:
    return {"ait.architecture": model.architecture, "ait.model_input": json.dumps(model.preprocessing.to_record())}


def write_exported(model: LoadedModel, out: Path) -> None:
    """A ``torch.export`` program (load it with ``torch.export.load(FILE).module()``)."""
    wrapped = Normalised(model.network, model.preprocessing.mean, model.preprocessing.std).eval()
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(wrapped, (_example(model),), dynamic_shapes={"images": {0: batch}})
    torch.export.save(program, str(out), extra_files={"ait.json": json.dumps(_metadata(model))})
