"""Augmentation recipes of the paper, applied to whole batches with per-sample randomness.

The paper (sec. 4.4) names its training augmentations by letters; horizontal flip (p = 0.5) is
part of every training recipe::

    none   identity (no flip): the test-time "original" view
    rh     random horizontal flip
    rp     flip + zero-pad 4 pixels, random crop back to the original size
    rg     flip + grayscale with p = 0.1
    rc     flip + colour jitter, brightness / contrast / saturation 0.1, hue 0
    rpg, rpc, rgc, rpgc        the combinations
    rc+hue, rpc+hue, ...       as above with hue 0.1, as in the authors' code
    rp+augmix  (beyond the paper) pad-crop + flip, then AugMix of severity 3 (ait.views.augmix)
    rn, rb, rnb, rpn, rpb, rpnb  (beyond the paper) flip (rp: + pad-crop) + Gaussian noise of std up
                               to 0.08 and/or Gaussian blur of sigma 0.1-1.5 px, per sample; other
                               strengths: Recipe(noise=..., blur=...)

Different recipes per view are written with a comma: ``parse_views("rp,rg")`` gives one recipe
per view. Other settings: construct a :class:`Recipe` directly. An augmentation of your own:
:func:`register_recipe` names a function of a batch, which ``strategy.views`` may then use::

    >>> import torch
    >>> from ait import views
    >>> def invert(x, generator):  # float32 (N, C, H, W) in [0, 1] -> the same shape, in [0, 1]
    ...     flip = torch.rand(x.shape[0], generator=generator, device=generator.device) < 0.5
    ...     return torch.where(flip.to(x.device)[:, None, None, None], 1.0 - x, x)
    >>> recipe = views.register_recipe("rp+invert", invert, pad=4, flip_p=0.5)
    >>> images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    >>> tuple(views.make_views(images, ["rp", "rp+invert"], torch.Generator().manual_seed(0)).shape)
    (2, 4, 3, 32, 32)

The paper's ImageNet training view, ``rrc`` (sec. 4.1: RandomResizedCrop, scale 0.08-1, ratio
3/4-4/3, then a horizontal flip, drawn independently for every view of a sample), exists twice:
for image folders the loader makes it from the full-size decoded image (:mod:`ait.data.imagefolder`,
:data:`LOADER_RECIPES`, at ``data.image_size``); for in-memory arrays it is a batch recipe here,
resized back to the arrays' size (64x64 arrays, or 224x224 uint8 data resident on a GPU).

:func:`augment` works on a batch ``(N, C, H, W)`` at once, on whatever device the batch lives on
(keep the data set on the GPU and augment there: docs/design.md, "Speed"), with no per-image Python
loop and no host-device synchronisation (no ``.item()``, no boolean-mask indexing). The steps,
in the order of the authors' torchvision pipeline::

    pad + random crop  ->  horizontal flip  ->  colour jitter  ->  random grayscale  ->  blur  ->  noise

Every random parameter is drawn per sample from ``generator``, always in that same order, so a
generator in a given state gives the same output. Colour jitter applies brightness, contrast,
saturation and hue in this fixed order (torchvision's ``ColorJitter`` permutes the four per
image; a fixed order keeps the batch vectorised). For 1-channel images grayscale, saturation and
hue are no-ops.

The package in parts, its imports pointing one way (down)::

    ait.views             the entry points: augment, make_views, check_unit_range, to_float, normalize
      ait.views.recipes     what a view recipe is, by name: Recipe, RECIPES, parse_recipe, parse_views,
                            register_recipe (no tensor work)
      ait.views.augmix      AugMix on a batch
        ait.views.kernels   the batched random draws, geometric and colour steps on (N, C, H, W)
          ait.views.constants small constant tensors, made once per device

``recipes`` and ``kernels`` import neither each other nor the package: a recipe only names the
steps, and :func:`augment` calls the kernels with the recipe's strengths (an import-linter contract
in pyproject.toml holds the order). The names of
``recipes`` and the resized crop of ``kernels`` are imported from ``ait.views`` too (``__all__``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch

from ait.views import kernels
from ait.views.kernels import resized_crop, resized_crop_boxes
from ait.views.recipes import (
    AUGMIX_SEVERITY,
    BLUR_STD,
    LOADER_RECIPES,
    MAX_BLUR,
    NOISE_STD,
    RECIPES,
    Recipe,
    base_of,
    parse_recipe,
    parse_views,
    register_recipe,
)

__all__ = [
    "AUGMIX_SEVERITY",
    "BLUR_STD",
    "LOADER_RECIPES",
    "MAX_BLUR",
    "NOISE_STD",
    "RECIPES",
    "Recipe",
    "augment",
    "base_of",
    "check_unit_range",
    "make_views",
    "normalize",
    "parse_recipe",
    "parse_views",
    "register_recipe",
    "resized_crop",
    "resized_crop_boxes",
    "to_float",
]


def augment(images: torch.Tensor, recipe: str | Recipe, generator: torch.Generator | None = None) -> torch.Tensor:
    """Augment a batch, each sample with its own random parameters.

    images: (N, C, H, W), uint8 in [0, 255] or float in [0, 1] before normalisation (float input
    outside [0, 1], such as normalised images, is refused: colour steps would clamp it), on any
    device. Returns (N, C, H, W) with the same dtype and device. Crop and flip are exact in any dtype;
    colour steps run in float32 (uint8 results are rounded back; bf16/fp16 cast back).

    generator: the source of every random draw (None: the global generator of images.device).
    A generator on another device than ``images`` (say, a CPU generator for CUDA images) is
    used on its own device and the small parameter tensors are moved to ``images.device``.
    The same generator state gives the same output on the same device.
    For an identity recipe ("none") ``images`` itself is returned, not a copy.
    """
    r = parse_recipe(recipe)
    if images.dim() != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
    dtype = images.dtype
    if dtype != torch.uint8 and not dtype.is_floating_point:
        raise TypeError(f"images must be uint8 or floating point, got {dtype}")
    if dtype.is_floating_point:
        check_unit_range(images)
    return _augment(images, r, generator)


def _augment(images: torch.Tensor, r: Recipe, generator: torch.Generator | None) -> torch.Tensor:
    """:func:`augment` without its checks (the input is known to be uint8, or float in [0, 1])."""
    dtype, device = images.dtype, images.device
    x = images
    if r.resized_crop:
        boxes = resized_crop_boxes(x.shape[0], x.shape[2], x.shape[3], generator, device)
        cropped = resized_crop(to_float(x) if dtype == torch.uint8 else x.float(), boxes)
        x = (cropped * 255.0).round_().clamp_(0, 255).to(torch.uint8) if dtype == torch.uint8 else cropped.to(dtype)
    if r.pad:
        x = kernels.pad_crop(x, r.pad, generator, device)
    if r.flip_p:
        x = kernels.flip(x, r.flip_p, generator, device)
    if r.has_color:
        y = _float_steps(to_float(x) if dtype == torch.uint8 else x.float(), r, generator, device)
        if dtype == torch.uint8:
            x = (y * 255.0).round_().clamp_(0, 255).to(torch.uint8)
        else:
            x = y.to(dtype)
    return x


def _float_steps(y: torch.Tensor, r: Recipe, generator, device) -> torch.Tensor:
    """A recipe's steps after the crop and flip, on float32 (N, C, H, W) in [0, 1]: AugMix, its own
    function, colour jitter and grayscale, blur, noise."""
    if r.augmix:  # on the cropped, flipped image, as AugMix's data pipeline does
        from ait.views.augmix import augmix  # here: a package-level `augmix` would hide the module

        y = augmix(y, r.augmix, generator)
    if r.function is not None:
        y = _apply_function(r, y, generator)
    y = kernels.color(
        y,
        generator,
        device,
        brightness=r.brightness,
        contrast=r.contrast,
        saturation=r.saturation,
        hue=r.hue,
        gray_p=r.gray_p,
    )
    if r.blur:  # then blur, then noise: a camera's order
        y = kernels.blur(y, r.blur, generator, device)
    if r.noise:
        y = kernels.noise(y, r.noise, generator, device)
    return y


def _apply_function(r: Recipe, y: torch.Tensor, generator) -> torch.Tensor:
    """A recipe's own function on float32 (N, C, H, W); its result must keep the shape (checked on
    the host: no device synchronisation)."""
    out = r.function(y, generator)
    if not isinstance(out, torch.Tensor) or out.shape != y.shape or not out.dtype.is_floating_point:
        got = f"{out.dtype} {tuple(out.shape)}" if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"recipe {r.name or r.function!r}: its function must return float {tuple(y.shape)}, got {got}")
    return out.float()


def check_unit_range(images: torch.Tensor) -> None:
    """ValueError unless float ``images`` lie in [0, 1]. It reads two numbers on the host (a
    synchronisation on a GPU): uint8 input, what the trainer passes, is never checked."""
    if images.numel() == 0 or images.device.type == "meta":  # nothing to read
        return
    lo, hi = (float(v) for v in torch.aminmax(images.detach()))
    if lo < 0.0 or hi > 1.0:
        raise ValueError(
            f"float images must lie in [0, 1] (before normalisation), got values in [{lo:.3g}, {hi:.3g}]; "
            "pass uint8 images, or float images in [0, 1], and normalise the views afterwards"
        )


def make_views(
    images: torch.Tensor, recipes: Sequence[str | Recipe], generator: torch.Generator | None = None
) -> torch.Tensor:
    """V augmented views of a batch in one call, as the trainer makes them: (N, C, H, W) uint8 (or
    float in [0, 1]) -> float32 (V, N, C, H, W) in [0, 1], view-major; normalise it afterwards.

    Views with the same recipe are made by one :func:`augment` call on the repeated batch (the
    draws stay per sample, so the copies are independent views), in the order the recipes first
    appear; so the same generator state gives the trainer's views of a step. With AugMix views
    (``rp+augmix``), views of one crop and flip share its draw instead: AugMix's clean view and
    its AugMix views are made from one cropped image.

        >>> import torch
        >>> from ait.views import make_views
        >>> images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
        >>> tuple(make_views(images, ["rp", "rp"], torch.Generator().manual_seed(0)).shape)
        (2, 8, 3, 32, 32)
    """
    recipes = [parse_recipe(r) for r in recipes]
    if images.dim() != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
    if not recipes:
        raise ValueError("make_views needs at least one recipe")
    if images.dtype.is_floating_point:
        check_unit_range(images)
    x = to_float(images)
    if any(r.augmix for r in recipes):
        return _views_on_shared_bases(x, recipes, generator)
    return _views_by_recipe(x, recipes, generator)


def _views_by_recipe(x: torch.Tensor, recipes: list[Recipe], generator) -> torch.Tensor:
    """Each view its own draw; one augment call per distinct recipe, on the repeated batch."""
    groups: dict[Recipe, list[int]] = {}
    for v, recipe in enumerate(recipes):
        groups.setdefault(recipe, []).append(v)
    n = x.shape[0]
    made = {r: _augment(x if len(vs) == 1 else x.repeat(len(vs), 1, 1, 1), r, generator) for r, vs in groups.items()}
    if len(groups) == 1:  # one call, and its result is already view-major: no copy
        return next(iter(made.values())).view(len(recipes), *x.shape)
    out = x.new_empty((len(recipes), *x.shape))
    for recipe, vs in groups.items():
        _put(out, vs, made[recipe].view(len(vs), n, *x.shape[1:]))
    return out


def _put(out: torch.Tensor, indices: list[int], values: torch.Tensor) -> None:
    """``out[indices] = values`` one index at a time: indexing with a list would copy an index
    tensor from the host, which a captured CUDA graph (train.cuda_graphs) cannot."""
    for j, v in enumerate(indices):
        out[v] = values[j]


def _views_on_shared_bases(x: torch.Tensor, recipes: list[Recipe], generator) -> torch.Tensor:
    """AugMix's views: all views with one crop and flip share one draw of it (per sample), as in
    AugMix's code, where the clean image and its AugMix views come from one cropped image; the
    AugMix views are then made on top of it. Draws: the bases in order of first appearance, then
    the AugMix views' recipes likewise."""
    n = x.shape[0]
    out = x.new_empty((len(recipes), *x.shape))
    bases: dict[Recipe, list[int]] = {}
    for v, recipe in enumerate(recipes):
        bases.setdefault(base_of(recipe), []).append(v)
    drawn = {b: _augment(x, b, generator) for b in bases}  # one crop and flip per sample and base
    tops: dict[Recipe, list[int]] = {}
    for b, vs in bases.items():
        for v in vs:
            if recipes[v].augmix:
                tops.setdefault(dataclasses.replace(recipes[v], pad=0, flip_p=0.0), []).append(v)
            else:
                out[v] = _augment(drawn[b], dataclasses.replace(recipes[v], pad=0, flip_p=0.0), generator)
    for top, vs in tops.items():
        source = torch.cat([drawn[base_of(recipes[v])] for v in vs])  # (len(vs) * N, C, H, W)
        _put(out, vs, _augment(source, top, generator).view(len(vs), n, *x.shape[1:]))
    return out


def to_float(images: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 (N, C, H, W) in [0, 255] -> float in [0, 1]. Floating input is returned as is."""
    if images.dtype.is_floating_point:
        return images
    if images.dtype != torch.uint8:
        raise TypeError(f"to_float expects uint8 (or float) images, got {images.dtype}")
    return images.to(dtype) / 255.0


def normalize(
    images: torch.Tensor, mean: Sequence[float] | torch.Tensor, std: Sequence[float] | torch.Tensor
) -> torch.Tensor:
    """(x - mean) / std per channel. images (N, C, H, W) float in [0, 1] (uint8 is converted first).

    mean, std: C values each (e.g. ``ait.data.NORMALIZATION["cifar10"]``).
    """
    if images.dim() != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
    x = to_float(images)
    c = x.shape[1]
    # Validate on the host: checking a device tensor would force a GPU sync every step.
    m = torch.as_tensor(mean, dtype=torch.float64, device="cpu").reshape(-1)
    s = torch.as_tensor(std, dtype=torch.float64, device="cpu").reshape(-1)
    if m.numel() != c or s.numel() != c:
        raise ValueError(f"mean and std need {c} values (one per channel), got {m.numel()} and {s.numel()}")
    if not bool((s > 0).all()):
        raise ValueError(f"std must be > 0, got {s.tolist()}")
    m, s = m.to(device=x.device, dtype=x.dtype), s.to(device=x.device, dtype=x.dtype)
    return (x - m[None, :, None, None]) / s[None, :, None, None]
