"""``forward_all`` for models from outside the zoo: timm's, torchvision's and a user's own.

Every consistency layer (paper sec. 4.2.1) needs the feature map, the pooled feature and the logits
of one forward pass. The zoo's :class:`~ait.models.base.Classifier` gives them by construction; an
adapter gives them for any other classifier:

- :class:`TimmClassifier` through timm's own split, ``forward_features`` and
  ``forward_head(pre_logits=True)``;
- :class:`HookedClassifier` for any ``nn.Module`` (torchvision's, a user's): the logits are the
  model's own output, the pooled feature is the input of its last ``nn.Linear`` (the classifier
  head), and the feature map the output of its last stage (torchvision's ``layer4``, ``features``,
  ...) or else the input of its last adaptive average pool. Forward hooks read them, so the model
  computes exactly what it computes without ``ait``.

A model without a spatial feature map (a ViT's tokens) gives ``feature_map=None``; asking for that
layer is then an error naming the model (:func:`ait.models.build.check_outputs`).
"""

from __future__ import annotations

import torch
from torch import nn

from ait.models.base import ModelOutputs
from ait.models.errors import ModelError

# Submodules whose output is the last spatial feature map, in the order they are looked for:
# Swin's "permute" (its features are NHWC until then), ResNets' "layer4", RegNet's "trunk_output",
# "features" of VGG, MobileNet, EfficientNet, ConvNeXt, DenseNet; MNASNet's "layers"; ShuffleNet's "conv5".
TRUNK_ENDS = ("permute", "layer4", "trunk_output", "features", "layers", "conv5")


def _spatial(x: torch.Tensor, layout: str = "NCHW") -> torch.Tensor | None:
    """``x`` as an (N, F, h, w) map, or None when it is not one (tokens (N, T, D), vectors)."""
    if x.ndim != 4:
        return None
    return x.permute(0, 3, 1, 2) if layout == "NHWC" else x


class TimmClassifier(nn.Module):
    """A timm model with ``forward_all``; its weights live under ``model.`` as timm names them."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.num_classes = int(model.num_classes)
        head = model.get_classifier()
        # The head by name, not as a second attribute: a module kept twice would be saved twice.
        self.head_name = next((n for n, m in model.named_modules() if m is head), None)
        self._linear_head = isinstance(head, nn.Linear) and self.head_name is not None
        self.layout = str(getattr(model, "output_fmt", "NCHW"))

    def forward_all(self, x: torch.Tensor) -> ModelOutputs:
        features = self.model.forward_features(x)  # (N, F, h, w), or tokens (N, T, D)
        pooled = self.model.forward_head(features, pre_logits=True)  # (N, F)
        if self._linear_head:  # one pass through the head: its dropout draws once
            logits = self.model.get_submodule(self.head_name)(pooled)
        else:  # e.g. distilled ViTs, whose head averages two classifiers
            logits = self.model.forward_head(features)
        return ModelOutputs(_spatial(features, self.layout), pooled, logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_all(x).logits


def _last(model: nn.Module, kind: type) -> str | None:
    names = [name for name, m in model.named_modules() if isinstance(m, kind)]
    return names[-1] if names else None


class HookedClassifier(nn.Module):
    """Any classifier ``nn.Module`` with ``forward_all``, read by forward hooks (see the module docstring).

    trunk: the submodule whose output is the feature map (default: the first of TRUNK_ENDS the
    model has, else the input of its last nn.AdaptiveAvgPool2d, else none).
    """

    def __init__(self, model: nn.Module, trunk: str | None = None):
        super().__init__()
        self.model = model
        self.head_name = _last(model, nn.Linear)
        self._seen: dict[str, torch.Tensor] = {}
        # Bound methods as hooks, so that a deep copy of the adapter hooks into the copy.
        if self.head_name is not None:
            model.get_submodule(self.head_name).register_forward_pre_hook(self._head_input)
        trunk = trunk or next((t for t in TRUNK_ENDS if isinstance(getattr(model, t, None), nn.Module)), None)
        pool = _last(model, nn.AdaptiveAvgPool2d)
        if trunk is not None:
            model.get_submodule(trunk).register_forward_hook(self._trunk_output)
        elif pool is not None:
            model.get_submodule(pool).register_forward_pre_hook(self._pool_input)
        self.trunk_name = trunk or (f"input of {pool}" if pool else None)

    def _head_input(self, module: nn.Module, inputs: tuple) -> None:
        self._seen["feature"] = inputs[0]

    def _trunk_output(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        self._seen["feature_map"] = output

    def _pool_input(self, module: nn.Module, inputs: tuple) -> None:
        self._seen["feature_map"] = inputs[0]

    def forward_all(self, x: torch.Tensor) -> ModelOutputs:
        self._seen.clear()
        logits = self.model(x)
        if not isinstance(logits, torch.Tensor):
            raise ModelError(
                f"{type(self.model).__name__} returned {type(logits).__name__}, not a tensor of logits (N, classes)"
            )
        seen, self._seen = self._seen, {}  # keep no activations between passes
        feature_map = _spatial(seen["feature_map"]) if "feature_map" in seen else None
        feature = seen.get("feature")
        if feature is not None:
            feature = feature.flatten(1)
        elif feature_map is not None:  # no linear head (a convolutional classifier): pool the map
            feature = feature_map.mean(dim=(2, 3))
        return ModelOutputs(feature_map, feature, logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_all(x).logits  # through forward_all: the hooks' tensors are let go


def as_classifier(model: nn.Module) -> nn.Module:
    """``model`` itself when it has ``forward_all`` (a zoo Classifier, a user's own), else hooked."""
    if not isinstance(model, nn.Module):
        raise ModelError(f"a model factory returned {type(model).__name__}, not a torch.nn.Module")
    return model if callable(getattr(model, "forward_all", None)) else HookedClassifier(model)


def weights_target(net: nn.Module) -> tuple[nn.Module, str | None]:
    """Where a state dict of the model goes (the wrapped model, for an adapter) and the name of its
    classifier head there (what initial weights may replace on purpose), or None when it has none."""
    if isinstance(net, (TimmClassifier, HookedClassifier)):
        return net.model, net.head_name
    return net, "head" if isinstance(getattr(net, "head", None), nn.Linear) else None
