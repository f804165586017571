"""Common corruptions of CIFAR-10-C / CIFAR-100-C and ImageNet-C (Hendrycks & Dietterich, ICLR 2019),
made locally or read from the official files.

    >>> from ait.evaluate import load_run
    >>> from ait.evaluate.corruptions import corrupted_test_set, load_cifar_c
    >>> run = load_run("runs/smoke_synthetic_resnet20_ait/seed0", device="cpu")
    >>> images = corrupted_test_set(run.data.test.images, "fog", severity=3, seed=0)  # cached
    >>> images.dtype, tuple(images.shape)  # uint8 (N, C, H, W), as the test set
    (torch.uint8, (128, 3, 32, 32))
    >>> images, labels = load_cifar_c("data/CIFAR-10-C", "fog", 3)  # the official arrays, one severity
    >>> tuple(images.shape), tuple(labels.shape)
    ((100, 3, 32, 32), (100,))

15 corruptions (:data:`CORRUPTIONS`, in the benchmark's order) x 5 severities (1 mildest .. 5).
The severity constants are the CIFAR ones of the official generator, ``make_cifar_c.py``
(github.com/hendrycks/robustness, ``ImageNet-C/create_c/make_cifar_c.py``), which are milder
than the ImageNet-C ones; ``constants="imagenet"`` takes those of ``make_imagenet_c.py`` instead
(:data:`IMAGENET`: for 224x224 crops, the default of image-folder runs, whose sets are made image
by image with :func:`corrupt_image`). The code here is our own (numpy, torch and Pillow: no Wand/ImageMagick,
OpenCV, scikit-image or SciPy), vectorised over the batch except for the two Pillow-based
corruptions (jpeg_compression and pixelate: one Pillow call per image, as the official script).

**Local generation is statistically comparable to, not bit-identical with, the official files.**
The random draws differ (a seeded ``numpy.random.Generator`` instead of numpy's global state) and
the interpolation, JPEG and rounding details of the libraries the official script used are
re-implemented, not called. Two corruptions are approximations by necessity:

- frost: the official script blends random crops of frost photographs (it draws from five of its
  six, scaled by 0.2 for CIFAR) into the image: ``clip(a * image + b * frost)`` with the CIFAR
  constants. Where the ``imagecorruptions`` package is installed (the ``frost`` extra; it ships the
  six photographs), those photographs are used the same way (five of them, scaled by 0.2 with a
  bilinear resize as OpenCV's, a random crop per image). Otherwise the frost layer is a seeded
  procedural ice texture (a plasma-fractal haze plus thin bright crystal streaks, tinted pale
  blue), calibrated to the official crops' statistics: mean about 163 of 255, the means of single
  crops spread by about 39 (a standard deviation of per-image means). The cache key says which.
- motion_blur (and the streaks of snow): the official script calls ImageMagick's motion blur
  through Wand. Here it is a re-implementation of that kernel: a one-sided line of
  ``2 * ceil(radius) + 1`` taps with Gaussian weights ``exp(-i^2 / (2 sigma^2))``, offsets rounded
  to whole pixels along the angle, edge pixels repeated; the benchmark's radius / sigma constants and
  the official random angle ranges (uniform in [-45, 45] degrees; snow [-135, -45]).

Quirks of the official script that are kept on purpose, so that severities mean the same thing:
glass_blur's pixel "swap" is in effect a copy from a neighbour at offset ``randint(-d, d)``
(CIFAR's d = 1: -1 or 0; ImageNet-C's up to 4, where a source may itself have moved: a swap of
numpy views; see :func:`glass_blur`); zoom_blur's zoom factors are ``numpy.arange(1, end, step)``
(step 0.01 for CIFAR, up to 0.03 for ImageNet-C; ``end`` may be included by floating-point
rounding); the defocus disk is smoothed with OpenCV's reflected border; fog's plasma
fractal scales its noise by ``wibble * uniform(-wibble, wibble)``; results are truncated to
uint8 (``np.uint8(x)``), not rounded. Severities are not all monotone in the official constants (the tests check the
monotone parts): elastic_transform's severity 1 is a pure random affine warp (up to 2.56 px per
control point) and severities 2-5 shrink the affine part (2.24 .. 0.96 px) while growing the
elastic, non-affine part, so the pixel difference from the clean image falls with severity while
the local distortion rises; glass_blur's severities 1-3 make one pass of pixel moves under a
growing blur (which smooths the moved pixels back) and 4-5 two passes; motion_blur's severities
3 and 4 differ only in the radius (6 vs 8), beyond three sigmas (sigma 2), so they are all but
equal; frost's image weight falls (1 .. 0.75) as its frost weight rises, so the mean change
peaks at severity 3 although the frost's share of the image grows throughout.

Images: uint8 (N, C, H, W) with C = 1 (grayscale path: snow uses the image itself as its luma,
frost the luma of its texture) or C = 3 (RGB); other channel counts raise ValueError. The
constants are in pixels of the benchmark's images (32x32 for CIFAR's, 224x224 for ImageNet-C's);
other sizes (>= 8 px) work but are not calibrated. With ImageNet-C's constants the functions are
the same ones (their structure is shared by both official scripts), with its constants, zoom
steps, the frost photographs unscaled and a 5x5 smoothing of the defocus disk beyond radius 8; the
procedural frost texture stays calibrated to the CIFAR crops. Glass blur's pixel moves equal the
official loop for any offset (tested against it for offsets up to 4, ImageNet-C's largest).

Randomness: one ``numpy.random.Generator`` per (seed, corruption, chunk of 1000 images); never
the global RNG. The severity is left out of the generator on purpose (common random numbers):
for one seed, every severity of a corruption starts from the same random stream (the same noise
pattern, angles, snow, frost, fog, displacements), so a higher severity is a stronger version of the same
corruption of each image. The official files draw afresh for every severity; the distribution
of each severity's set, hence its expected accuracy, is the same either way. The output is a
pure function of (images, name, severity, seed, constants, CODE_VERSION): bump CODE_VERSION whenever
generation changes, so that cached sets regenerate.

Official files (``load_cifar_c``): one ``<corruption>.npy`` per corruption, uint8
(5 * n, 32, 32, 3) with severities 1..5 stacked as 5 blocks of n = 10000 test images, and
``labels.npy`` (5 * n labels, or the n labels of one block).
"""

from __future__ import annotations

import functools
import importlib.util
import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ait.data.errors import DataError
from ait.evaluate import kernels
from ait.evaluate.testsets import cached_images, images_key

# Bump when generation changes (constants, draw order, chunking): cached sets then regenerate.
CODE_VERSION = "ait-corruptions-2"  # 2: frost from the photographs, or recalibrated

CORRUPTIONS: tuple[str, ...] = (
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "defocus_blur",
    "glass_blur",
    "motion_blur",
    "zoom_blur",
    "snow",
    "frost",
    "fog",
    "brightness",
    "contrast",
    "elastic_transform",
    "pixelate",
    "jpeg_compression",
)
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)

# Corruptions whose result depends on the seed; the others are deterministic functions of the image.
RANDOM_CORRUPTIONS: frozenset[str] = frozenset(
    {
        "gaussian_noise",
        "shot_noise",
        "impulse_noise",
        "glass_blur",
        "motion_blur",
        "snow",
        "frost",
        "fog",
        "elastic_transform",
    }
)

# Images corrupted per generator: bounds the float working memory (~ a few 10 MB per array).
_CHUNK = 1000
_EPS = 1e-3  # added before truncation to uint8, so that k / 255 * 255 computed in float stays k

# ---------------------------------------------------------------- CIFAR severity constants
# From make_cifar_c.py (hendrycks/robustness, ImageNet-C/create_c/make_cifar_c.py), one entry per severity.
GAUSSIAN_NOISE = (0.04, 0.06, 0.08, 0.09, 0.10)  # std on [0, 1]
SHOT_NOISE = (500, 250, 100, 75, 50)  # photons per unit intensity: poisson(x * c) / c
IMPULSE_NOISE = (0.01, 0.02, 0.03, 0.05, 0.07)  # fraction of values set to 0 or 1 (salt and pepper)
DEFOCUS_BLUR = ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1))  # disk radius, anti-alias sigma
GLASS_BLUR = ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2))  # sigma, max delta, iterations
MOTION_BLUR = ((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5))  # ImageMagick radius, sigma
ZOOM_BLUR_END = (1.06, 1.11, 1.16, 1.21, 1.26)  # zoom factors numpy.arange(1, end, 0.01)
SNOW = (
    (0.1, 0.2, 1, 0.6, 8, 3, 0.95),  # loc, scale, zoom, threshold, blur radius, blur sigma, blend
    (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
    (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
    (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
    (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8),
)
FROST = ((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45))  # image weight, frost weight
# The official CIFAR crops: mean 163 / 255, per-image means spread by 39 / 255 (what the crops of
# the photographs give, tested). The texture's own draw is set a little wider, 0.655 and 0.17, so
# that after clipping to [0, 1] it lands on those figures.
OFFICIAL_FROST_MEAN, OFFICIAL_FROST_SPREAD = 163 / 255, 39 / 255
FROST_MEAN, FROST_SPREAD = 0.655, 0.17
FROST_FILES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg")  # the official draw: 5 of 6
FROST_SCALE = 0.2  # the official CIFAR script's resize of the photographs


FOG = ((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75))  # fog amount, plasma wibble decay
BRIGHTNESS = (0.05, 0.1, 0.15, 0.2, 0.3)  # added to HSV value
CONTRAST = (0.75, 0.5, 0.4, 0.3, 0.15)  # factor towards the per-channel mean
_IMSIZE = 32  # elastic constants are multiples of the CIFAR image size
ELASTIC_TRANSFORM = tuple(
    (_IMSIZE * a, _IMSIZE * s, _IMSIZE * f)
    for a, s, f in (  # alpha, sigma, affine (px)
        (0, 0, 0.08),
        (0.05, 0.2, 0.07),
        (0.08, 0.06, 0.06),
        (0.1, 0.04, 0.05),
        (0.1, 0.03, 0.03),
    )
)
PIXELATE = (0.95, 0.9, 0.85, 0.75, 0.65)  # downscale factor (Pillow BOX both ways)
JPEG_COMPRESSION = (80, 65, 58, 50, 40)  # Pillow JPEG quality
ZOOM_BLUR = tuple((end, 0.01) for end in ZOOM_BLUR_END)  # (end, step) of numpy.arange(1, end, step)


@dataclass(frozen=True)
class SeverityConstants:
    """The constants of one benchmark's generator: per corruption one entry per severity 1..5
    (the names and layouts of the CIFAR tables above), and the scale of the frost photographs."""

    name: str
    gaussian_noise: tuple = GAUSSIAN_NOISE
    shot_noise: tuple = SHOT_NOISE
    impulse_noise: tuple = IMPULSE_NOISE
    defocus_blur: tuple = DEFOCUS_BLUR
    glass_blur: tuple = GLASS_BLUR
    motion_blur: tuple = MOTION_BLUR
    zoom_blur: tuple = ZOOM_BLUR
    snow: tuple = SNOW
    frost: tuple = FROST
    fog: tuple = FOG
    brightness: tuple = BRIGHTNESS
    contrast: tuple = CONTRAST
    elastic_transform: tuple = ELASTIC_TRANSFORM
    pixelate: tuple = PIXELATE
    jpeg_compression: tuple = JPEG_COMPRESSION
    frost_scale: float = FROST_SCALE


CIFAR = SeverityConstants("cifar")
# ImageNet-C's, from make_imagenet_c.py of the same repository (for 224x224 images); its elastic
# constants are multiples of 244 ("should have been 224, but ultimately nothing is incorrect").
IMAGENET = SeverityConstants(
    "imagenet",
    gaussian_noise=(0.08, 0.12, 0.18, 0.26, 0.38),
    shot_noise=(60, 25, 12, 5, 3),
    impulse_noise=(0.03, 0.06, 0.09, 0.17, 0.27),
    defocus_blur=((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)),
    glass_blur=((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)),
    motion_blur=((10, 3), (15, 5), (15, 8), (15, 12), (20, 15)),
    zoom_blur=((1.11, 0.01), (1.16, 0.01), (1.21, 0.02), (1.26, 0.02), (1.31, 0.03)),
    snow=(
        (0.1, 0.3, 3, 0.5, 10, 4, 0.8),
        (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
        (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
        (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
        (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55),
    ),
    frost=((1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)),
    fog=((1.5, 2), (2.0, 2), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4)),
    brightness=(0.1, 0.2, 0.3, 0.4, 0.5),
    contrast=(0.4, 0.3, 0.2, 0.1, 0.05),
    elastic_transform=(
        (244 * 2, 244 * 0.7, 244 * 0.1),
        (244 * 2, 244 * 0.08, 244 * 0.2),
        (244 * 0.05, 244 * 0.01, 244 * 0.02),
        (244 * 0.07, 244 * 0.01, 244 * 0.02),
        (244 * 0.12, 244 * 0.01, 244 * 0.02),
    ),
    pixelate=(0.6, 0.5, 0.4, 0.3, 0.25),
    jpeg_compression=(25, 18, 15, 10, 7),
    frost_scale=1.0,  # ImageNet-C crops the photographs as they are
)
CONSTANTS: dict[str, SeverityConstants] = {"cifar": CIFAR, "imagenet": IMAGENET}
# AlexNet's corruption errors (fractions, averaged over the severities) on the official ImageNet-C
# files, in CORRUPTIONS' order: the reference that ImageNet-C's mCE divides by.
ALEXNET_ERRORS: tuple[float, ...] = (
    0.886428,
    0.894468,
    0.922640,
    0.819880,
    0.826268,
    0.785948,
    0.798360,
    0.866816,
    0.826572,
    0.819324,
    0.564592,
    0.853204,
    0.646056,
    0.717840,
    0.606500,
)

Array = np.ndarray  # float32 (N, H, W, C) in [0, 1] unless said otherwise


def _frost_texture(n: int, h: int, w: int, rng: np.random.Generator) -> Array:
    """(n, h, w, 3) procedural frost in [0, 1]: stand-in for the official crops of frost photographs.

    A plasma-fractal haze (ice of varying thickness) plus 16 thin bright streaks per image (crystal
    needles: random centres, directions, lengths 3-14 px, Gaussian profiles of 0.4-0.9 px), with a
    little fine grain, tinted pale blue like the photographs. Mean about 0.55, crystals reach 1.
    """
    size = kernels.power_of_two(max(h, w))
    haze = kernels.plasma_fractal(n, size, 2.0, rng)[:, :h, :w]  # (n, h, w)
    ys, xs = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32), indexing="ij")
    crystals = np.zeros((n, h, w), dtype=np.float32)
    for _ in range(16):
        cy = rng.uniform(-2, h + 2, (n, 1, 1)).astype(np.float32)
        cx = rng.uniform(-2, w + 2, (n, 1, 1)).astype(np.float32)
        angle = rng.uniform(0, np.pi, (n, 1, 1)).astype(np.float32)
        half = rng.uniform(1.5, 7.0, (n, 1, 1)).astype(np.float32)
        width = rng.uniform(0.4, 0.9, (n, 1, 1)).astype(np.float32)
        strength = rng.uniform(0.3, 1.0, (n, 1, 1)).astype(np.float32)
        dy, dx = ys - cy, xs - cx
        along = np.clip(dx * np.cos(angle) + dy * np.sin(angle), -half, half)
        dist2 = (dx - along * np.cos(angle)) ** 2 + (dy - along * np.sin(angle)) ** 2
        crystals = np.maximum(crystals, strength * np.exp(-dist2 / (2 * width * width)))
    grain = rng.uniform(-0.04, 0.04, (n, h, w)).astype(np.float32)
    tint = np.asarray((0.84, 0.92, 1.0), dtype=np.float32)
    # Calibration to the official crops: each image's texture shifted to its own mean (FROST_MEAN,
    # FROST_SPREAD), as crops of different photographs and places differ.
    t = 0.22 + 0.45 * haze + 0.55 * crystals + grain
    t = t - t.mean(axis=(1, 2), keepdims=True) + rng.normal(FROST_MEAN, FROST_SPREAD, (n, 1, 1)).astype(np.float32)
    return np.clip(t / tint.mean(), 0, 1)[..., None] * tint


def _check_c(c: int) -> None:
    if c not in (1, 3):
        raise ValueError(f"common corruptions need 1- or 3-channel images, got {c} channels")


# ---------------------------------------------------------------- the 15 corruptions
# Each takes uint8 (N, H, W, C), a severity 1..5 and a Generator; returns float in [0, 1] or uint8.
def gaussian_noise(u8: Array, severity: int, rng: np.random.Generator, k: SeverityConstants = CIFAR) -> Array:
    x = kernels.to_float(u8)
    noise = rng.standard_normal(x.shape, dtype=np.float32) * np.float32(k.gaussian_noise[severity - 1])
    return np.clip(x + noise, 0, 1)


def shot_noise(u8: Array, severity: int, rng: np.random.Generator, k: SeverityConstants = CIFAR) -> Array:
    c = k.shot_noise[severity - 1]
    return np.clip(rng.poisson(kernels.to_float(u8).astype(np.float64) * c) / c, 0, 1).astype(np.float32)


def impulse_noise(u8: Array, severity: int, rng: np.random.Generator, k: SeverityConstants = CIFAR) -> Array:
    """Salt and pepper on single values (every channel on its own), as scikit-image's 's&p'."""
    x = kernels.to_float(u8)
    flipped = rng.random(x.shape, dtype=np.float32) < k.impulse_noise[severity - 1]
    salted = rng.random(x.shape, dtype=np.float32) < 0.5
    x[flipped & salted] = 1.0
    x[flipped & ~salted] = 0.0
    return x


def _disk_kernel(radius: float, alias_blur: float) -> Array:
    """The official ``disk``: an aliased disk, normalised, then a 3x3 Gaussian (sigma alias_blur;
    5x5 for radii beyond 8, as the official code)."""
    r = max(8, int(math.ceil(radius)))
    half = 1 if radius <= 8 else 2
    grid = np.arange(-r, r + 1)
    yy, xx = np.meshgrid(grid, grid, indexing="ij")
    disk = (xx**2 + yy**2 <= radius**2).astype(np.float64)
    disk /= disk.sum()
    g = np.exp(-(np.arange(-half, half + 1) ** 2) / (2.0 * alias_blur**2))
    g /= g.sum()
    padded = np.pad(disk, half, mode="reflect")  # cv2.GaussianBlur's border, reflect-101 (the disk may touch it)
    n, taps = disk.shape[0], 2 * half + 1
    kernel = sum(g[i] * g[j] * padded[i : i + n, j : j + n] for i in range(taps) for j in range(taps))
    rows, cols = np.nonzero(kernel)
    k = max(np.abs(rows - r).max(), np.abs(cols - r).max())
    return kernel[r - k : r + k + 1, r - k : r + k + 1].astype(np.float32)


def defocus_blur(u8: Array, severity: int, rng: np.random.Generator, k: SeverityConstants = CIFAR) -> Array:
    radius, alias_blur = k.defocus_blur[severity - 1]
    return np.clip(kernels.filter2d(kernels.to_float(u8), _disk_kernel(radius, alias_blur)), 0, 1)


def glass_blur(u8: Array, severity: int, rng: np.random.Generator, k: SeverityConstants = CIFAR) -> Array:
    """Blur, move every pixel by up to ``delta`` pixels (1 to 3 passes), blur again.

    The official loop ``x[h, w], x[h', w'] = x[h', w'], x[h, w]`` (h, w from the bottom-right
    towards the top-left, h' = h + dy, w' = w + dx with dx, dy = randint(-delta, delta)) reads
    like a swap but copies: numpy's ``x[h, w]`` is a view, so ``x[h', w']`` is left as it was.
    Each visited pixel takes the value its source holds at that moment: the source's own new
    value when the loop visited it before (below, or to the right in the same row: possible
    for ImageNet-C's delta >= 2), else its value before the pass. :func:`_glass_sources` follows
    those chains, so each pass is one exact gather.
    """
    sigma, delta, iterations = k.glass_blur[severity - 1]
    n, h, w, c = u8.shape
    x = np.floor(kernels.gaussian_filter(kernels.to_float(u8), sigma) * 255 + _EPS).clip(0, 255).astype(np.uint8)
    rows = np.arange(h - delta, delta, -1)  # the official visiting order (the draws follow it)
    cols = np.arange(w - delta, delta, -1)
    if len(rows) == 0 or len(cols) == 0:  # an image too small for these offsets: the loop visits nothing
        iterations = 0
    for _ in range(iterations):
        offsets = rng.integers(-delta, delta, size=(len(rows), len(cols), 2, n))  # (dx, dy) per position
        dx, dy = offsets[:, :, 0].transpose(2, 0, 1), offsets[:, :, 1].transpose(2, 0, 1)  # (n, rows, cols)
        source = _glass_sources(h, w, rows, cols, dx, dy)  # (n, h * w) flat pixel each one copies
        flat = x.reshape(n, h * w, c)
        x = np.take_along_axis(flat, source[..., None], axis=1).reshape(n, h, w, c)
    return np.clip(kernels.gaussian_filter(kernels.to_float(x), sigma), 0, 1)


def _glass_sources(h: int, w: int, rows: Array, cols: Array, dx: Array, dy: Array) -> Array:
    """(n, h * w) int: the pixel before the pass whose value each pixel holds after it.

    dx, dy: (n, len(rows), len(cols)) offsets of the visited positions. A pixel whose source was
    visited earlier (dy > 0, or dy == 0 and dx > 0, inside the visited block) takes the source's
    own result: the chains shorten the visiting order at every step, so they end.
    """
    n = dx.shape[0]
    position = (rows[:, None] * w + cols[None, :]).reshape(-1)  # flat index of each visited pixel
    src_r, src_c = rows[None, :, None] + dy, cols[None, None, :] + dx
    src = (src_r * w + src_c).reshape(n, -1)
    visited_src = (src_r >= rows[-1]) & (src_r <= rows[0]) & (src_c >= cols[-1]) & (src_c <= cols[0])
    earlier = (visited_src & ((dy > 0) | ((dy == 0) & (dx > 0)))).reshape(n, -1)
    step = np.broadcast_to(np.arange(h * w), (n, h * w)).copy()  # unvisited pixels keep their own value
    step[:, position] = src
    follows = np.zeros((n, h * w), dtype=bool)
    follows[:, position] = earlier
    target = step
    while True:  # answer(p) = answer(step(p)) if follows(p) else step(p); as many rounds as the longest chain
        chained = np.where(follows, np.take_along_axis(target, step, axis=1), step)
        if np.array_equal(chained, target):
            return target
        target = chained


def motion_blur(u8: Array, severity: int, rng: np.random.Generator, k: SeverityConstants = CIFAR) -> Array:
    """ImageMagick's motion blur, approximated (:func:`ait.evaluate.kernels.motion_blur`); angle U(-45, 45) degrees."""
    radius, sigma = k.motion_blur[severity - 1]
    angles = rng.uniform(-45, 45, u8.shape[0])
    return np.clip(kernels.motion_blur(kernels.to_float(u8), radius, sigma, angles), 0, 1)


def zoom_blur(u8: Array, severity: int, rng: np.random.Generator, k: SeverityConstants = CIFAR) -> Array:
    x = kernels.to_float(u8)
    end, step = k.zoom_blur[severity - 1]
    zooms = np.arange(1, end, step)
    out = np.zeros_like(x)
    for zoom in zooms:
        out += kernels.clipped_zoom(x, float(zoom))
    return np.clip((x + out) / (len(zooms) + 1), 0, 1)


def snow(u8: Array, severity: int, rng: np.random.Generator, k: SeverityConstants = CIFAR) -> Array:
    loc, scale, zoom, threshold, blur_radius, blur_sigma, blend = k.snow[severity - 1]
    x = kernels.to_float(u8)
    n, h, w, _ = x.shape
    layer = rng.normal(loc, scale, (n, h, w, 1)).astype(np.float32)
    layer = kernels.clipped_zoom(layer, zoom)
    layer[layer < threshold] = 0
    layer = np.floor(np.clip(layer, 0, 1) * 255) / np.float32(255)  # the official 8-bit PNG round trip
    layer = kernels.motion_blur(layer.astype(np.float32), blur_radius, blur_sigma, rng.uniform(-135, -45, n))
    x = blend * x + (1 - blend) * np.maximum(x, kernels.luma(x) * 1.5 + 0.5)
    return np.clip(x + layer + layer[:, ::-1, ::-1], 0, 1).astype(np.float32)


@functools.lru_cache(maxsize=2)
def frost_photographs(scale: float = FROST_SCALE) -> tuple[Array, ...] | None:
    """The photographs the official generator draws from, as float32 (H, W, 3) in [0, 1] scaled by
    ``scale`` (the CIFAR script's 0.2 by default; ImageNet-C's 1), from the installed
    ``imagecorruptions`` package (not imported: its files are read); None when it is not installed."""
    spec = importlib.util.find_spec("imagecorruptions")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "frost"
    photos = []
    for name in FROST_FILES:
        with Image.open(folder / name) as img:
            rgb = torch.from_numpy(np.asarray(img.convert("RGB"), dtype=np.float32)).permute(2, 0, 1)[None]
        h, w = rgb.shape[2:]
        if scale != 1:
            size = (round(h * scale), round(w * scale))  # OpenCV's INTER_LINEAR: no antialiasing
            rgb = torch.nn.functional.interpolate(rgb, size=size, mode="bilinear", align_corners=False)
        small = rgb
        photos.append(small[0].permute(1, 2, 0).numpy() / 255.0)
    return tuple(photos)


def frost_source() -> str:
    return "photographs" if frost_photographs() is not None else "procedural"


def _frost_crops(n: int, h: int, w: int, rng: np.random.Generator, photos: tuple[Array, ...]) -> Array:
    """(n, h, w, 3): per image a random photograph and a random crop of it (the official draws)."""
    out = np.empty((n, h, w, 3), dtype=np.float32)
    for i in range(n):  # a crop is a slice: per image, but no arithmetic in Python
        photo = photos[int(rng.integers(len(photos)))]
        if photo.shape[0] < h or photo.shape[1] < w:  # larger images than CIFAR: tile the photograph
            reps = (-(-h // photo.shape[0]), -(-w // photo.shape[1]), 1)
            photo = np.tile(photo, reps)
        top, left = int(rng.integers(0, photo.shape[0] - h + 1)), int(rng.integers(0, photo.shape[1] - w + 1))
        out[i] = photo[top : top + h, left : left + w]
    return out


def frost(u8: Array, severity: int, rng: np.random.Generator, k: SeverityConstants = CIFAR) -> Array:
    """The official blend with crops of the frost photographs (or the calibrated procedural texture)."""
    weight, frost_weight = k.frost[severity - 1]
    x = kernels.to_float(u8)
    photos = frost_photographs(k.frost_scale)
    if photos is not None:
        texture = _frost_crops(x.shape[0], x.shape[1], x.shape[2], rng, photos)
    else:
        texture = _frost_texture(x.shape[0], x.shape[1], x.shape[2], rng)
    if x.shape[-1] == 1:
        texture = kernels.luma(texture)
    return np.clip(weight * x + frost_weight * texture, 0, 1).astype(np.float32)


def fog(u8: Array, severity: int, rng: np.random.Generator, k: SeverityConstants = CIFAR) -> Array:
    amount, decay = k.fog[severity - 1]
    x = kernels.to_float(u8)
    n, h, w, _ = x.shape
    plasma = kernels.plasma_fractal(n, kernels.power_of_two(max(h, w)), decay, rng)[:, :h, :w, None]
    top = x.max(axis=(1, 2, 3), keepdims=True)
    return np.clip((x + amount * plasma) * top / (top + amount), 0, 1).astype(np.float32)


def brightness(u8: Array, severity: int, rng: np.random.Generator, k: SeverityConstants = CIFAR) -> Array:
    """HSV value + c (clipped), hue and saturation kept: every channel scales by V' / V."""
    x = kernels.to_float(u8)
    value = x.max(axis=3, keepdims=True)
    new_value = np.clip(value + k.brightness[severity - 1], 0, 1)
    scale = np.divide(new_value, value, out=np.zeros_like(value), where=value > 0)
    return np.clip(np.where(value > 0, x * scale, new_value), 0, 1).astype(np.float32)


def contrast(u8: Array, severity: int, rng: np.random.Generator, k: SeverityConstants = CIFAR) -> Array:
    x = kernels.to_float(u8)
    means = x.mean(axis=(1, 2), keepdims=True)  # per image and channel
    return np.clip((x - means) * k.contrast[severity - 1] + means, 0, 1).astype(np.float32)


def elastic_transform(u8: Array, severity: int, rng: np.random.Generator, k: SeverityConstants = CIFAR) -> Array:
    """Random affine warp of three control points (reflect-101 border), then a smooth random
    displacement field (alpha * Gaussian(sigma) of U(-1, 1) noise, symmetric border), bilinear."""
    alpha, sigma, affine = k.elastic_transform[severity - 1]
    x = kernels.to_float(u8)
    n, h, w, _ = x.shape
    centre = np.asarray((w // 2, h // 2), dtype=np.float64)  # (x, y)
    half = min(h, w) // 3
    src = np.stack([centre + half, (centre[0] + half, centre[1] - half), centre - half])  # (3, 2) as (x, y)
    dst = src[None] + rng.uniform(-affine, affine, (n, 3, 2)).astype(np.float32)
    # The affine map src -> dst (OpenCV getAffineTransform), then its inverse to sample dst from src.
    ones = np.ones((3, 1))
    forward = np.linalg.solve(np.concatenate([src, ones], axis=1)[None], dst).transpose(0, 2, 1)  # (n, 2, 3)
    full = np.concatenate([forward, np.broadcast_to(np.asarray([[[0.0, 0.0, 1.0]]]), (n, 1, 3))], axis=1)
    inverse = np.linalg.inv(full)[:, :2]  # (n, 2, 3)
    ys, xs = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    src_x = inverse[:, 0, 0, None, None] * xs + inverse[:, 0, 1, None, None] * ys + inverse[:, 0, 2, None, None]
    src_y = inverse[:, 1, 0, None, None] * xs + inverse[:, 1, 1, None, None] * ys + inverse[:, 1, 2, None, None]
    x = kernels.bilinear(x, src_y, src_x, kernels.reflect101)
    if alpha > 0:
        dx = kernels.gaussian_filter(rng.uniform(-1, 1, (n, h, w)), sigma, truncate=3, border=kernels.symmetric) * alpha
        dy = kernels.gaussian_filter(rng.uniform(-1, 1, (n, h, w)), sigma, truncate=3, border=kernels.symmetric) * alpha
        x = kernels.bilinear(x, ys + dy, xs + dx, kernels.symmetric)
    return np.clip(x, 0, 1).astype(np.float32)


def _pil_each(u8: Array, fn: Callable[[Image.Image], Image.Image]) -> Array:
    out = np.empty_like(u8)
    for i in range(u8.shape[0]):
        img = Image.fromarray(u8[i, :, :, 0] if u8.shape[-1] == 1 else u8[i])
        res = np.asarray(fn(img))
        out[i] = res.reshape(u8.shape[1:])
    return out


def pixelate(u8: Array, severity: int, rng: np.random.Generator, k: SeverityConstants = CIFAR) -> Array:
    c = k.pixelate[severity - 1]
    h, w = u8.shape[1:3]
    small = (max(1, int(w * c)), max(1, int(h * c)))
    return _pil_each(u8, lambda img: img.resize(small, Image.BOX).resize((w, h), Image.BOX))


def jpeg_compression(u8: Array, severity: int, rng: np.random.Generator, k: SeverityConstants = CIFAR) -> Array:
    quality = k.jpeg_compression[severity - 1]

    def compress(img: Image.Image) -> Image.Image:
        buffer = io.BytesIO()
        img.save(buffer, "JPEG", quality=quality)
        buffer.seek(0)
        with Image.open(buffer) as decoded:
            return decoded.convert(img.mode)

    return _pil_each(u8, compress)


_FUNCTIONS: dict[str, Callable[..., Array]] = {  # (uint8 (N, H, W, C), severity, rng, constants) -> (N, H, W, C)
    "gaussian_noise": gaussian_noise,
    "shot_noise": shot_noise,
    "impulse_noise": impulse_noise,
    "defocus_blur": defocus_blur,
    "glass_blur": glass_blur,
    "motion_blur": motion_blur,
    "zoom_blur": zoom_blur,
    "snow": snow,
    "frost": frost,
    "fog": fog,
    "brightness": brightness,
    "contrast": contrast,
    "elastic_transform": elastic_transform,
    "pixelate": pixelate,
    "jpeg_compression": jpeg_compression,
}
assert tuple(_FUNCTIONS) == CORRUPTIONS


# ---------------------------------------------------------------- public API
def check_constants(constants: str) -> None:
    """Raise ValueError unless ``constants`` names a set of severity constants (:data:`CONSTANTS`)."""
    if constants not in CONSTANTS:
        raise ValueError(f"unknown corruption constants {constants!r}; choose one of {', '.join(CONSTANTS)}")


def check_corruption(name: str, severity: int, constants: str = "cifar") -> None:
    """Raise ValueError for an unknown corruption name, a severity outside 1..5 or unknown constants."""
    check_constants(constants)
    if name not in _FUNCTIONS:
        raise ValueError(f"unknown corruption {name!r}; valid names: {', '.join(CORRUPTIONS)}")
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) or severity not in SEVERITIES:
        raise ValueError(f"corruption severity must be an integer in 1..5, got {severity!r}")


def _to_uint8(result: Array) -> Array:
    if result.dtype == np.uint8:
        return result
    return np.clip(np.floor(result * np.float32(255) + np.float32(_EPS)), 0, 255).astype(np.uint8)


def apply_corruption(
    images: torch.Tensor, name: str, severity: int, seed: int = 0, constants: str = "cifar"
) -> torch.Tensor:
    """uint8 (N, C, H, W) -> the same images with corruption ``name`` at ``severity`` (1..5), uint8 on the CPU.

    C must be 1 or 3 and H, W at least 8 (ValueError otherwise). Deterministic for a given seed;
    corruptions in :data:`RANDOM_CORRUPTIONS` differ between seeds, and different (name,
    severity) pairs draw independent random numbers from the same seed. constants: "cifar"
    (CIFAR-10-C's) or "imagenet" (ImageNet-C's, for 224x224 images).
    """
    source = _checked_source(images, name, severity, constants)
    out = np.empty_like(source)
    entropy = int(seed) % (1 << 64)
    for chunk, start in enumerate(range(0, source.shape[0], _CHUNK)):
        rng = np.random.default_rng([entropy, CORRUPTIONS.index(name), chunk])  # no severity: see below
        part = _FUNCTIONS[name](source[start : start + _CHUNK], int(severity), rng, CONSTANTS[constants])
        out[start : start + _CHUNK] = _to_uint8(part)
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def corrupt_image(image: torch.Tensor, name: str, severity: int, seed: int, index: int, constants: str) -> torch.Tensor:
    """uint8 (C, H, W) -> one image corrupted, for sets streamed from disk image by image.

    Its random numbers come from (seed, corruption, ``index``): the same for every severity
    (common random numbers, as :func:`apply_corruption`), independent between images, and
    independent of how the set is split into batches or loader workers.
    """
    source = _checked_source(image[None], name, severity, constants)
    rng = np.random.default_rng([int(seed) % (1 << 64), CORRUPTIONS.index(name), _PER_IMAGE, int(index)])
    out = _to_uint8(_FUNCTIONS[name](source, int(severity), rng, CONSTANTS[constants]))
    return torch.from_numpy(out[0]).permute(2, 0, 1).contiguous()


_PER_IMAGE = 1 << 32  # in the seed of per-image streams: apart from apply_corruption's per-chunk ones


def _checked_source(images: torch.Tensor, name: str, severity: int, constants: str) -> Array:
    """uint8 (N, C, H, W) -> uint8 (N, H, W, C) numpy, after checking the arguments (ValueError)."""
    check_corruption(name, severity, constants)
    if images.dim() != 4 or images.dtype != torch.uint8:
        raise ValueError(f"images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
    _check_c(images.shape[1])
    if min(images.shape[2:]) < 8:
        raise ValueError(f"common corruptions need images of at least 8x8 pixels, got {tuple(images.shape[2:])}")
    return images.detach().cpu().permute(0, 2, 3, 1).contiguous().numpy()


def corruption_key(images: torch.Tensor, name: str, severity: int, seed: int, constants: str = "cifar") -> str:
    """Cache key: sha256 of the images, the corruption, its severity, the seed, the constants and CODE_VERSION."""
    source = f"|frost={frost_source()}" if name == "frost" else ""  # photographs and texture differ
    source += f"|constants={constants}" if constants != "cifar" else ""  # the CIFAR keys of before stay valid
    return images_key(images, f"{CODE_VERSION}|corruption={name}|severity={int(severity)}|seed={int(seed)}{source}")


def corrupted_test_set(
    images: torch.Tensor,
    name: str,
    severity: int,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    constants: str = "cifar",
) -> torch.Tensor:
    """``apply_corruption(images, name, severity, seed, constants)``, cached like the fixed test sets.

    Cached as ``<cache>/<name>-s<severity>-<key prefix>.pt`` in the fixed test sets' cache
    directory (``cache_dir``, else ``$AIT_CACHE_DIR/testsets``, else ``~/.cache/ait/testsets``),
    with the key checked on every load (see :func:`ait.evaluate.testsets.cached_images`).
    """
    check_corruption(name, severity, constants)
    if images.dim() != 4 or images.dtype != torch.uint8:
        raise ValueError(f"test images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
    key = corruption_key(images, name, severity, seed, constants)
    generate = lambda: apply_corruption(images, name, severity, seed, constants)  # noqa: E731
    return cached_images(images, f"{name}-s{int(severity)}", key, generate, cache_dir)


def load_cifar_c(folder: str | Path, corruption: str, severity: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The official CIFAR-10-C / CIFAR-100-C images of one corruption and severity.

    ``folder`` holds ``<corruption>.npy`` (uint8 (5 * n, H, W, 3), severities 1..5 stacked as 5
    blocks of n images; n = 10000, 32x32 in the official files) and ``labels.npy`` (5 * n labels,
    or the n labels of one block). Returns (uint8 (n, 3, H, W), int64 (n,)). Raises
    :class:`ait.data.errors.DataError` naming the file when it is missing or of the wrong shape.
    """
    check_corruption(corruption, severity)
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise DataError(
            f"{str(root)!r}: not a directory; expected the CIFAR-10-C / CIFAR-100-C folder "
            "with <corruption>.npy and labels.npy"
        )
    images = _load_npy(root / f"{corruption}.npy")
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3) or images.shape[0] % 5:
        raise DataError(
            f"{str(root / f'{corruption}.npy')!r}: expected uint8 (5 * n, H, W, 3) with the 5 "
            f"severities stacked (official: (50000, 32, 32, 3)), got {images.dtype} {images.shape}"
        )
    n = images.shape[0] // 5
    labels = _load_npy(root / "labels.npy")
    if labels.ndim != 1 or labels.shape[0] not in (n, 5 * n) or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(
            f"{str(root / 'labels.npy')!r}: expected {5 * n} (or {n}) integer labels to match "
            f"{corruption}.npy {images.shape}, got {labels.dtype} {labels.shape}"
        )
    block = slice((severity - 1) * n, severity * n)
    out = torch.from_numpy(np.array(images[block])).permute(0, 3, 1, 2).contiguous()  # a copy off the memmap
    labels = labels[block] if labels.shape[0] == 5 * n else labels
    return out, torch.from_numpy(np.array(labels, dtype=np.int64))


def _load_npy(path: Path) -> Array:
    if not path.is_file():
        raise DataError(
            f"{str(path)!r}: file not found (the official CIFAR-10-C / CIFAR-100-C folder has one "
            "<corruption>.npy per corruption and labels.npy)"
        )
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as err:
        raise DataError(f"{str(path)!r}: not a readable .npy file ({err})") from None
