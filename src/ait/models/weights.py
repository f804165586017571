"""Weights from a local file into a model: a run's initial weights, or a published checkpoint to evaluate.

A file is a state dict as ``.safetensors`` or ``.pt``/``.pth`` (read with ``weights_only=True``:
loading runs no code). Common wrappings are unwrapped: a top-level ``state_dict``/``model`` entry,
DDP's ``module.`` prefix, the ``net0.`` prefix of ``ait export``'s one-network files and the
``model.`` prefix of an adapted model's checkpoint (:mod:`ait.models.adapters`). Every
tensor must fit by name and shape; the one exception is the classifier head when it is replaced on
purpose (ImageNet weights for a 10-class model), which keeps its fresh initialisation.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from torch import nn

from ait.models import split_bn
from ait.models.adapters import weights_target
from ait.models.errors import ModelError

SUFFIXES = (".safetensors", ".pt", ".pth")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a weights file by name; ModelError naming the file when it is not one."""
    path = Path(path).expanduser()
    if path.suffix not in SUFFIXES:
        raise ModelError(f"weights file {str(path)!r}: expected a {', '.join(SUFFIXES)} file")
    if not path.is_file():
        raise ModelError(f"weights file {str(path)!r} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # damaged, or a pickle that needs code: both mean "not a weights file"
        raise ModelError(f"weights file {str(path)!r} cannot be read as a state dict ({load_error(err)})") from None
    return _unwrap(state, path)


def load_error(err: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, in a few words. Torch's own text for a
    pickle it refuses starts by offering ``weights_only=False``, which would run any code in it; its
    words cannot tell code from damage (a payload can read as an unsupported operand), so neither do ours."""
    if isinstance(err, pickle.UnpicklingError):
        return (
            "it does not unpickle as tensors alone: damaged, not written by torch.save, or holding Python "
            "objects whose loading would run code (ait loads none)"
        )
    return f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"


def _unwrap(state, path: Path) -> dict[str, torch.Tensor]:
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"weights file {str(path)!r}: expected a mapping of names to tensors (a state dict)")
    for prefix in ("module.", "net0."):
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    if any(k.startswith("net1.") for k in state):
        raise ModelError(f"weights file {str(path)!r} holds several networks (net0., net1., ...); export one")
    return state


def load_weights(net: nn.Module, path: str | Path, text: str, replace_head: bool = False) -> list[str]:
    """Load the file into ``net`` (for an adapter, into the model it wraps). Returns the names of
    head tensors kept fresh because their shapes differ (only with ``replace_head``).

    Raises ModelError listing the missing, unexpected and misshapen tensors otherwise.
    """
    state = read_state_dict(path)
    target, head = weights_target(net)
    own = target.state_dict()
    if state and all(k.startswith("model.") for k in state) and not all(k.startswith("model.") for k in own):
        state = {k[len("model.") :]: v for k, v in state.items()}  # a checkpoint of the adapter, not the model
    state = split_bn.with_aux_copies(state, own)  # a plain file into a split model
    is_head = (lambda name: head is not None and name.startswith(head + ".")) if replace_head else (lambda name: False)
    misshapen = [k for k in own if k in state and state[k].shape != own[k].shape]
    replaced = [k for k in misshapen if is_head(k)]
    problems = []
    # A head left out of the file stays fresh too; BatchNorm's step counters, which many published
    # files leave out and torch's own strict load accepts missing, keep theirs.
    missing = [k for k in own if k not in state and not is_head(k) and not k.endswith(".num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    wrong = [
        f"{k} {tuple(state[k].shape)} in the file, {tuple(own[k].shape)} here" for k in misshapen if k not in replaced
    ]
    for label, names in (("missing", missing), ("unexpected", unexpected), ("of another shape", wrong)):
        if names:
            problems.append(f"{len(names)} {label}: {', '.join(names[:4])}{', ...' if len(names) > 4 else ''}")
    if problems:
        raise ModelError(f"weights file {str(path)!r} does not fit {text!r}: {'; '.join(problems)}")
    fitting = {k: v for k, v in state.items() if k not in replaced and k in own}
    target.load_state_dict({**own, **fitting})
    return replaced
