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
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

import torch
from torch.nn import functional as F

from ait.views.constants import device_constant

# Recipes made by a data loader from the decoded files, not by :func:`augment` on a batch.
LOADER_RECIPES = ("rrc",)

# ITU-R 601 luma weights (what PIL's convert("L") and torchvision's grayscale use, up to rounding).
_LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class Recipe:
    """One augmentation recipe.

    flip_p: probability of a horizontal flip. pad: zero-pad this many pixels per side, then crop
    a random window of the original size (0 = no crop). gray_p: probability of grayscale.
    brightness / contrast / saturation: jitter factor uniform in [max(0, 1 - s), 1 + s].
    hue: hue shift uniform in [-hue, hue] (in turns of the colour wheel, at most 0.5).
    function: a callable ``(x, generator) -> x`` of float32 (N, C, H, W) in [0, 1] (your own
    augmentation, :func:`register_recipe`), applied after the crop and flip, before the colour steps.
    name: label used in logs and reports.
    """

    flip_p: float = 0.5
    pad: int = 0
    gray_p: float = 0.0
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    hue: float = 0.0
    blur: float = 0.0
    noise: float = 0.0
    augmix: float = 0.0
    resized_crop: bool = False
    function: Callable[[torch.Tensor, torch.Generator | None], torch.Tensor] | None = None
    name: str = ""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "resized_crop":
                if not isinstance(value, bool):
                    raise ValueError(f"Recipe.resized_crop must be true or false, got {value!r}")
                continue
            if f.name == "name":
                if not isinstance(value, str):
                    raise TypeError(f"Recipe.name must be a str, got {value!r}")
                continue
            if f.name == "function":
                if value is not None and not callable(value):
                    raise TypeError(f"Recipe.function must be callable (x, generator) -> x, got {value!r}")
                continue
            if f.name == "pad":
                # bool is an int subclass; Recipe(pad=True) is almost certainly a mistake.
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ValueError(f"Recipe.pad must be an int >= 0, got {value!r}")
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"Recipe.{f.name} must be a number, got {value!r}")
            if f.name in ("flip_p", "gray_p"):
                # `not (a <= v <= b)` also rejects NaN.
                if not (0.0 <= value <= 1.0):
                    raise ValueError(f"Recipe.{f.name} must be a probability in [0, 1], got {value!r}")
            elif f.name == "hue":
                if not (0.0 <= value <= 0.5):
                    raise ValueError(f"Recipe.hue must be in [0, 0.5], got {value!r}")
            elif f.name == "augmix" and value and not (0.1 < value <= 10):
                raise ValueError(f"Recipe.augmix must be 0 or a severity in (0.1, 10], got {value!r}")
            elif f.name == "blur" and value and not (0.1 <= value <= MAX_BLUR):
                raise ValueError(f"Recipe.blur must be 0 or a standard deviation in [0.1, {MAX_BLUR}], got {value!r}")
            elif not (0.0 <= value < math.inf):
                raise ValueError(f"Recipe.{f.name} must be a finite number >= 0, got {value!r}")

    @property
    def has_color(self) -> bool:
        """True when any step needs float arithmetic (jitter, grayscale, blur or noise)."""
        return bool(
            self.function
            or self.gray_p
            or self.brightness
            or self.contrast
            or self.saturation
            or self.hue
            or self.blur
            or self.noise
            or self.augmix
        )

    @property
    def is_identity(self) -> bool:
        """True when :func:`augment` returns its input unchanged."""
        return self.flip_p == 0 and self.pad == 0 and not self.resized_crop and not self.has_color


MAX_BLUR = 8.0  # pixels: the kernel spans 3 standard deviations each side
# Noise and blur views (beyond the paper): the kinds of corruption AIT with crop views did not
# resist (docs/results.md); strengths of the order of CIFAR-10-C's middle severities.
NOISE_STD, BLUR_STD = 0.08, 1.5
AUGMIX_SEVERITY = 3.0  # AugMix's default


def _build_recipes() -> dict[str, Recipe]:
    parts = {
        "p": {"pad": 4},
        "g": {"gray_p": 0.1},
        "c": {"brightness": 0.1, "contrast": 0.1, "saturation": 0.1},
    }
    recipes = {"none": Recipe(flip_p=0.0, name="none"), "rh": Recipe(name="rh")}
    for letters in ("p", "g", "c", "pg", "pc", "gc", "pgc"):
        kwargs: dict = {}
        for letter in letters:
            kwargs.update(parts[letter])
        name = "r" + letters
        recipes[name] = Recipe(name=name, **kwargs)
        if "c" in letters:
            recipes[name + "+hue"] = Recipe(name=name + "+hue", hue=0.1, **kwargs)
    for base in ("rh", "rp"):  # rn, rb, rnb (flip + ...), rpn, rpb, rpnb (pad-crop + flip + ...)
        for letters, extra in (
            ("n", {"noise": NOISE_STD}),
            ("b", {"blur": BLUR_STD}),
            ("nb", {"noise": NOISE_STD, "blur": BLUR_STD}),
        ):
            name = ("r" if base == "rh" else "rp") + letters
            recipes[name] = Recipe(name=name, pad=4 if base == "rp" else 0, **extra)
    # AugMix's CIFAR view: pad-crop and flip, then AugMix of severity 3.
    recipes["rp+augmix"] = Recipe(name="rp+augmix", pad=4, augmix=AUGMIX_SEVERITY)
    # The paper's ImageNet view on in-memory arrays (image folders make it in their loader).
    recipes["rrc"] = Recipe(name="rrc", resized_crop=True)
    return recipes


RECIPES: dict[str, Recipe] = _build_recipes()


def parse_recipe(spec: str | Recipe) -> Recipe:
    """A recipe by name (a key of :data:`RECIPES`, case-insensitive), or a :class:`Recipe` as is."""
    if isinstance(spec, Recipe):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"recipe must be a name (str) or a Recipe, got {type(spec).__name__}: {spec!r}")
    key = spec.strip().lower()
    if key in RECIPES:
        return RECIPES[key]
    names = sorted(RECIPES)
    close = difflib.get_close_matches(key, names, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(
        f"unknown augmentation recipe {spec!r}; valid names: {', '.join(names)}.{hint} (A recipe of your "
        "own: ait.views.register_recipe, in a module given with --import)"
    )


def parse_views(spec: str | Sequence[str | Recipe] | Recipe) -> list[Recipe]:
    """One recipe per view: ``"rp,rg"`` -> [rp, rg]; a list of names / Recipes likewise.

    A single name gives a one-element list; repeating it for V views is the caller's choice.
    """
    if isinstance(spec, Recipe):
        return [spec]
    if isinstance(spec, str):
        items: list = spec.split(",")
        if any(not s.strip() for s in items):
            raise ValueError(f"empty recipe name in views spec {spec!r} (expected e.g. 'rp' or 'rp,rg')")
    else:
        items = list(spec)
    if not items:
        raise ValueError(f"views spec is empty: {spec!r} (expected e.g. 'rp' or 'rp,rg')")
    return [parse_recipe(s) for s in items]


# --------------------------------------------------------------------------------------------
# Random draws


def _draw_device(generator: torch.Generator | None, device: torch.device) -> torch.device:
    # A torch.Generator can only fill tensors on its own device: draw there and move.
    return generator.device if generator is not None else device


def _uniform(n: int, lo: float, hi: float, generator, device) -> torch.Tensor:
    """(n,) float32 uniform in [lo, hi] on ``device``."""
    u = torch.rand(n, generator=generator, device=_draw_device(generator, device))
    return (lo + (hi - lo) * u).to(device)


def _bernoulli(n: int, p: float, generator, device) -> torch.Tensor:
    """(n,) bool, each True with probability p."""
    u = torch.rand(n, generator=generator, device=_draw_device(generator, device))
    return (u < p).to(device)


# --------------------------------------------------------------------------------------------
# Geometric steps (exact in any dtype)


def _pad_crop(x: torch.Tensor, pad: int, generator, device) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, H, W): output = input shifted by (dx - pad, dy - pad), zero fill."""
    n, c, h, w = x.shape
    draw_on = _draw_device(generator, device)
    dxy = torch.randint(0, 2 * pad + 1, (2, n), generator=generator, device=draw_on).to(device)
    padded = F.pad(x, (pad, pad, pad, pad))  # (N, C, H+2p, W+2p), zeros (F.pad works on uint8)
    rows = dxy[1, :, None] + torch.arange(h, device=device)  # (N, H) window rows in padded
    cols = dxy[0, :, None] + torch.arange(w, device=device)  # (N, W) window columns
    # Two gathers (rows, then columns): exact, no interpolation, and about 2x faster on the CPU
    # than one 4-index advanced-indexing gather.
    x = padded.gather(2, rows[:, None, :, None].expand(n, c, h, w + 2 * pad))  # (N, C, H, W+2p)
    return x.gather(3, cols[:, None, None, :].expand(n, c, h, w))  # (N, C, H, W)


RRC_SCALE, RRC_RATIO, RRC_ATTEMPTS = (0.08, 1.0), (3 / 4, 4 / 3), 10  # torchvision's defaults


def resized_crop_boxes(n: int, h: int, w: int, generator, device) -> torch.Tensor:
    """(N, 4) int64 boxes (top, left, height, width), torchvision's RandomResizedCrop draw per sample:
    up to 10 attempts of a random area and log-uniform aspect ratio, the first that fits is kept,
    else the central crop of the closest allowed ratio. All attempts are drawn at once."""
    draw = lambda: _uniform(RRC_ATTEMPTS * n, 0.0, 1.0, generator, device).view(RRC_ATTEMPTS, n)  # noqa: E731
    area = h * w * (RRC_SCALE[0] + (RRC_SCALE[1] - RRC_SCALE[0]) * draw())
    log_lo, log_hi = math.log(RRC_RATIO[0]), math.log(RRC_RATIO[1])
    aspect = torch.exp(log_lo + (log_hi - log_lo) * draw())
    cw, ch = torch.round(torch.sqrt(area * aspect)), torch.round(torch.sqrt(area / aspect))
    fits = (cw > 0) & (cw <= w) & (ch > 0) & (ch <= h)  # (A, N)
    top = torch.floor(draw() * (h - ch + 1))
    left = torch.floor(draw() * (w - cw + 1))
    first = torch.argmax(fits.int(), dim=0)  # the first attempt that fits (0 when none does)
    pick = lambda t: t.gather(0, first[None])[0]  # noqa: E731
    boxes = torch.stack([pick(top), pick(left), pick(ch), pick(cw)], dim=1)
    ratio = w / h  # the fallback: the whole image, at the nearest allowed ratio, centred
    fh, fw = (
        (h, w)
        if RRC_RATIO[0] <= ratio <= RRC_RATIO[1]
        else ((round(w / RRC_RATIO[0]), w) if ratio < RRC_RATIO[0] else (h, round(h * RRC_RATIO[1])))
    )
    fallback = device_constant(((h - fh) // 2, (w - fw) // 2, fh, fw), torch.device(device), boxes.dtype)
    return torch.where(fits.any(dim=0)[:, None], boxes, fallback).long()


def resized_crop(x: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Float (N, C, H, W): each sample's box (top, left, height, width) resized to (H, W), bilinear
    without antialiasing and with the box's edge pixels repeated, exactly as torchvision's
    resized_crop of a tensor (crop, then interpolate with align_corners=False)."""
    n, _, h, w = x.shape
    b = boxes.to(torch.float32)
    top, left, bh, bw = (b[:, k : k + 1] for k in range(4))  # (N, 1) each

    def source(size: int, start: torch.Tensor, span: torch.Tensor) -> torch.Tensor:
        centres = torch.arange(size, device=x.device, dtype=torch.float32) + 0.5
        inside = ((centres * span / size) - 0.5).clamp(min=0.0)  # in the box, as interpolate maps them
        return start + torch.minimum(inside, span - 1)  # (N, size) input pixel coordinates

    gx = (source(w, left, bw) + 0.5) / w * 2 - 1
    gy = (source(h, top, bh) + 0.5) / h * 2 - 1
    grid = torch.stack([gx[:, None, :].expand(n, h, w), gy[:, :, None].expand(n, h, w)], dim=-1)
    return F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode="border", align_corners=False)


def _flip(x: torch.Tensor, p: float, generator, device) -> torch.Tensor:
    mask = _bernoulli(x.shape[0], p, generator, device)
    return torch.where(mask[:, None, None, None], x.flip(-1), x)


# --------------------------------------------------------------------------------------------
# Colour steps (float32 in [0, 1])


def _grayscale(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) -> (N, 1, H, W) luma."""
    r, g, b = x.unbind(1)
    return (_LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b).unsqueeze(1)


def _blend(x: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """factor * x + (1 - factor) * other, clamped (torchvision's _blend); factor (N,)."""
    f = factor[:, None, None, None]
    return (f * x + (1.0 - f) * other).clamp_(0.0, 1.0)


def _rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB in [0, 1] -> HSV with h in [0, 1) (same conventions as torchvision)."""
    r, g, b = x.unbind(1)
    maxc = x.amax(1)
    minc = x.amin(1)
    cr = maxc - minc
    gray = cr == 0
    # Where all channels are equal hue and saturation are 0; dodge 0/0 with a dummy divisor.
    s = cr / torch.where(gray, torch.ones_like(maxc), maxc)
    crd = torch.where(gray, torch.ones_like(cr), cr)
    rc, gc, bc = (maxc - r) / crd, (maxc - g) / crd, (maxc - b) / crd
    is_r = maxc == r
    is_g = (maxc == g) & ~is_r
    is_b = ~is_r & ~is_g
    h = is_r * (bc - gc) + is_g * (2.0 + rc - bc) + is_b * (4.0 + gc - rc)
    h = torch.remainder(h / 6.0, 1.0)
    return torch.stack((h, s, maxc), dim=1)


def _hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) HSV (h in [0, 1)) -> RGB, via channel_n = v - v s clamp(min(k, 4 - k), 0, 1)."""
    h, s, v = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    n = device_constant((5.0, 3.0, 1.0), x.device, x.dtype)[None, :, None, None]
    k = torch.remainder(n + 6.0 * h, 6.0)  # (N, 3, H, W)
    return v - v * s * torch.minimum(k, 4.0 - k).clamp(0.0, 1.0)


def _color(x: torch.Tensor, r: Recipe, generator, device) -> torch.Tensor:
    """Colour jitter then random grayscale on float32 (N, C, H, W) in [0, 1]."""
    n, c = x.shape[:2]
    rgb = c == 3
    if c not in (1, 3) and (r.contrast or r.saturation or r.hue or r.gray_p):
        raise ValueError(f"contrast, saturation, hue and grayscale need 1 or 3 channels, got C={c}")
    if r.brightness:
        f = _uniform(n, max(0.0, 1.0 - r.brightness), 1.0 + r.brightness, generator, device)
        x = (x * f[:, None, None, None]).clamp_(0.0, 1.0)
    if r.contrast:
        f = _uniform(n, max(0.0, 1.0 - r.contrast), 1.0 + r.contrast, generator, device)
        mean = (_grayscale(x) if rgb else x).mean(dim=(1, 2, 3), keepdim=True)  # (N, 1, 1, 1)
        x = _blend(x, mean, f)
    if r.saturation:
        f = _uniform(n, max(0.0, 1.0 - r.saturation), 1.0 + r.saturation, generator, device)
        if rgb:
            x = _blend(x, _grayscale(x), f)
    if r.hue:
        shift = _uniform(n, -r.hue, r.hue, generator, device)
        if rgb:
            hsv = _rgb_to_hsv(x)
            hue = torch.remainder(hsv[:, 0:1] + shift[:, None, None, None], 1.0)
            x = _hsv_to_rgb(torch.cat((hue, hsv[:, 1:]), dim=1)).clamp_(0.0, 1.0)
    if r.gray_p:
        mask = _bernoulli(n, r.gray_p, generator, device)
        if rgb:
            x = torch.where(mask[:, None, None, None], _grayscale(x).expand_as(x), x)
    return x


def _blur(x: torch.Tensor, max_sigma: float, generator, device) -> torch.Tensor:
    """Gaussian blur of float (N, C, H, W), each sample with its own sigma in [0.1, max_sigma]:
    one separable grouped convolution per axis for the whole batch (reflected borders)."""
    n, c, h, w = x.shape
    sigma = _uniform(n, 0.1, max_sigma, generator, device)  # (N,)
    radius = min(int(math.ceil(3 * max_sigma)), (min(h, w) - 1))
    if radius < 1:
        return x
    offsets = torch.arange(-radius, radius + 1, device=device, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (offsets[None, :] / sigma[:, None]) ** 2)  # (N, K)
    kernel = (kernel / kernel.sum(dim=1, keepdim=True)).repeat_interleave(c, dim=0)  # (N * C, K)
    flat = F.pad(x.reshape(1, n * c, h, w), (radius, radius, radius, radius), mode="reflect")
    flat = F.conv2d(flat, kernel.view(n * c, 1, 1, -1).to(x.dtype), groups=n * c)
    flat = F.conv2d(flat, kernel.view(n * c, 1, -1, 1).to(x.dtype), groups=n * c)
    return flat.view(n, c, h, w)


def _noise(x: torch.Tensor, max_std: float, generator, device) -> torch.Tensor:
    """Additive Gaussian noise, std uniform in [0, max_std] per sample, clamped to [0, 1]."""
    std = _uniform(x.shape[0], 0.0, max_std, generator, device)
    draw = torch.randn(x.shape, generator=generator, device=_draw_device(generator, device)).to(device)
    return (x + std[:, None, None, None] * draw).clamp_(0.0, 1.0)


# --------------------------------------------------------------------------------------------
# Public entry points


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
        x = _pad_crop(x, r.pad, generator, device)
    if r.flip_p:
        x = _flip(x, r.flip_p, generator, device)
    if r.has_color:
        y = to_float(x) if dtype == torch.uint8 else x.float()
        if r.augmix:  # on the cropped, flipped image, as AugMix's data pipeline does
            from ait.views.augmix import augmix

            y = augmix(y, r.augmix, generator)
        if r.function is not None:
            y = _apply_function(r, y, generator)
        y = _color(y, r, generator, device)
        if r.blur:  # then blur, then noise: a camera's order
            y = _blur(y, r.blur, generator, device)
        if r.noise:
            y = _noise(y, r.noise, generator, device)
        if dtype == torch.uint8:
            x = (y * 255.0).round_().clamp_(0, 255).to(torch.uint8)
        else:
            x = y.to(dtype)
    return x


def _apply_function(r: Recipe, y: torch.Tensor, generator) -> torch.Tensor:
    """A recipe's own function on float32 (N, C, H, W); its result must keep the shape (checked on
    the host: no device synchronisation)."""
    out = r.function(y, generator)
    if not isinstance(out, torch.Tensor) or out.shape != y.shape or not out.dtype.is_floating_point:
        got = f"{out.dtype} {tuple(out.shape)}" if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"recipe {r.name or r.function!r}: its function must return float {tuple(y.shape)}, got {got}")
    return out.float()


def register_recipe(name: str, function, **steps) -> Recipe:
    """Name a recipe made by ``function(x, generator) -> x`` (float32 (N, C, H, W) in [0, 1] on the
    training device, one augmented image per sample), so that ``strategy.views`` can use ``name``.

    ``steps``: built-in steps around it (Recipe fields: ``pad=4, flip_p=0.5`` crop and flip
    before it; colour steps after it); by default the function alone (no flip). Draw every random
    number from ``generator`` (a torch.Generator, possibly on another device than ``x``): the
    trainer seeds it per step, so a resumed run makes the same views. Register before the config
    is read: in Python before ``ait.train``, from the command line in a module given with
    ``--import``. A name already taken is a ValueError.
    """
    key = name.strip().lower()
    if not key or key in RECIPES or any(ch in key for ch in ", \t"):
        why = "empty" if not key else "taken" if key in RECIPES else "not usable in a views list (comma or space)"
        raise ValueError(f"recipe name {name!r} is {why}; choose another")
    if "name" in steps or "function" in steps:
        raise ValueError("register_recipe: give the name and the function as its first two arguments, not in steps")
    try:
        hash(function)  # views are grouped by recipe: the recipe, so its function, must be hashable
    except TypeError:
        raise TypeError(f"register_recipe: the function of {name!r} must be hashable, got {function!r}") from None
    recipe = Recipe(name=key, function=function, **{"flip_p": 0.0, **steps})
    RECIPES[key] = recipe
    return recipe


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


def base_of(recipe: Recipe) -> Recipe:
    """The crop and flip of a recipe: what its AugMix is applied on top of."""
    return Recipe(flip_p=recipe.flip_p, pad=recipe.pad)  # unnamed: equal crops and flips are one base


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
