"""A model that ``ait`` did not train, made ready for ``ait eval`` like a run: a published
checkpoint beside your AIT runs, on the same test sets.

    ait eval --model timm:resnet18 --weights resnet18_cifar10.safetensors --out evals/resnet18 \\
        --set data.dataset=cifar10 --set data.root=data/cifar-10-batches-py --all --corruptions

The model is named as in ``strategy.networks`` (its keyword arguments as ``models.NAME.kwargs``),
the weights are a state dict (:mod:`ait.models.weights`, every tensor must fit), and the data keys
choose the test set; its images are normalised with the dataset's statistics and the precision
follows ``train.precision`` (auto: bf16 on CPUs), as for a run. Results go to OUT/eval/, beside
OUT/model.json, which says what was evaluated.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from ait import models
from ait.config import UnknownModelError, apply_override, config_from_dict, resolve_data_paths
from ait.evaluate.loading import LoadedRun, RunLoadError, evaluation_data
from ait.runtime.files import write_json
from ait.runtime.precision import resolve_device, resolve_precision


def outside_config(model: str, weights: str | Path, overrides: list[str] | tuple = ()) -> dict[str, Any]:
    """The config of a one-network evaluation: ``model`` as a baseline's network, plus ``overrides``."""
    data: dict[str, Any] = {
        "name": Path(weights).stem,
        "strategy": {"name": "baseline", "networks": [model], "views": ["rp"]},
    }
    for override in overrides:
        apply_override(data, override)
    if data.get("data", {}).get("dataset") == "imagefolder" and data["strategy"]["views"] == ["rp"]:
        data["strategy"]["views"] = ["rrc"]  # the view image folders train with; evaluation uses none
    return data


def load_outside_model(
    model: str, weights: str | Path, out_dir: str | Path, overrides: list[str] | tuple = (), device: str = "auto"
) -> LoadedRun:
    """``model`` with the weights file loaded, its test data, and OUT as the place of its results.

    Raises ConfigError (bad keys), ModelError (a model or weights that do not fit), DataError.
    """
    try:  # named here, before the config would name it strategy.networks[0], a key the user never wrote
        models.check_name(model)
    except models.ModelError as err:
        raise UnknownModelError(f"--model: {err}", model) from None
    # Data paths as a run's: relative ones under $AIT_DATA or here, recorded absolute in model.json.
    config = resolve_data_paths(config_from_dict(outside_config(model, weights, overrides)))
    data = evaluation_data(config)
    try:
        torch_device = resolve_device(device)
    except (ValueError, RuntimeError) as err:
        raise RunLoadError(f"cannot evaluate {model!r} on device {device!r}: {err}") from None
    precision = resolve_precision(torch_device, config.train.precision, config.train.channels_last)
    options = config.models.get(model)
    in_channels, num_classes = data.test.image_shape[0], data.test.num_classes
    net = models.create(model, num_classes, in_channels, kwargs=options.kwargs if options else None)
    models.load_weights(net, weights, model)
    net = net.to(torch_device)
    if precision.channels_last:
        net = net.to(memory_format=torch.channels_last)
    models.check_outputs(net, model, num_classes, tuple(data.test.image_shape))
    out, record = Path(out_dir), _record(model, Path(weights), config.to_dict())
    _check_out_dir(out, record)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "model.json", record)
    return LoadedRun(out, config, [net.eval()], data, precision, None)


def _check_out_dir(out: Path, record: dict[str, Any]) -> None:
    """``--out`` must be new, empty, or this model's and weights' earlier evaluation: the results of
    a run directory or of another model are never overwritten."""
    if not out.is_dir() or not any(out.iterdir()):
        return
    try:
        held = json.loads((out / "model.json").read_text())
    except (OSError, ValueError):
        held = None
    if not isinstance(held, dict) or "model" not in held:  # none, or a model.json that ait did not write
        raise RunLoadError(
            f"--out {str(out)!r} holds files but no model.json of an earlier `ait eval --model`; "
            "choose a new or empty folder (a run directory is evaluated with `ait eval RUN_DIR`)"
        )
    if (held.get("model"), held.get("weights_sha256")) != (record["model"], record["weights_sha256"]):
        raise RunLoadError(
            f"--out {str(out)!r} holds the evaluation of {held.get('model')!r} with {held.get('weights')!r}; "
            f"choose another folder for {record['model']!r} with {record['weights']!r}"
        )


def _record(model: str, weights: Path, config: dict[str, Any]) -> dict[str, Any]:
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    return {"model": model, "weights": str(weights.resolve()), "weights_sha256": digest, "config": config}
