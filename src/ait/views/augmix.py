"""AugMix (Hendrycks et al., ICLR 2020) on whole batches, every draw per sample from the generator.

Each sample gets ``width`` = 3 chains of 1 to 3 operations (depth drawn per chain), each operation
drawn from :data:`OPERATIONS` with a level uniform in [0.1, severity]; the chains are mixed with
Dirichlet(1, 1, 1) weights and the result with the image by a Beta(1, 1) weight::

    augmix(x) = (1 - m) * x + m * sum_i w_i * chain_i(x)

These are the operations and parameters of AugMix's code (``augmentations.py``) in its CIFAR
setting, without the ones that overlap the test corruptions (colour, contrast, brightness and
sharpness are left out, as the paper does for its CIFAR-10-C evaluation). Like PIL, which that
code uses, every operation works on 8-bit pixel values: a chain's image is rounded to integers
after each operation; geometric operations sample bilinearly and fill with black.

Every operation is computed for the whole batch and each sample takes the one it drew: no
per-image Python loop, no host synchronisation. alpha = 1 (AugMix's default) makes the Dirichlet
and Beta draws normalised exponentials and uniforms, which a seeded generator gives directly.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from ait.views.constants import device_constant
from ait.views.kernels import uniform

WIDTH, MAX_DEPTH = 3, 3


def _u(n: int, generator, device) -> torch.Tensor:
    """(n,) float32 uniform in [0, 1) on ``device``."""
    return uniform(n, 0.0, 1.0, generator, device)


def _levels(n: int, severity: float, generator, device) -> torch.Tensor:
    """AugMix's ``sample_level``: uniform in [0.1, severity], per sample."""
    return 0.1 + (severity - 0.1) * _u(n, generator, device)


def _signed(values: torch.Tensor, generator) -> torch.Tensor:
    """Each value with a random sign (AugMix flips it with probability 1/2)."""
    return torch.where(_u(len(values), generator, values.device) < 0.5, -values, values)


# -- pixel operations on (N, C, H, W) float holding integers 0..255 -----------------------------


def autocontrast(x: torch.Tensor) -> torch.Tensor:
    """PIL's ImageOps.autocontrast (cutoff 0): each channel stretched to 0..255."""
    values = x.double()  # PIL computes its table in Python floats: int(v * scale + offset)
    lo = values.amin(dim=(2, 3), keepdim=True)
    hi = values.amax(dim=(2, 3), keepdim=True)
    scale = 255.0 / (hi - lo).clamp(min=1.0)
    out = torch.floor(values * scale - lo * scale).clamp(0, 255).to(x.dtype)
    return torch.where(hi > lo, out, x)


def equalize(x: torch.Tensor) -> torch.Tensor:
    """PIL's ImageOps.equalize: each channel's histogram spread through a look-up table."""
    n, c, h, w = x.shape
    flat = x.reshape(n * c, h * w).long()
    hist = torch.zeros(n * c, 256, device=x.device, dtype=torch.long).scatter_add_(1, flat, torch.ones_like(flat))
    last = torch.where(hist > 0, torch.arange(256, device=x.device), -1).amax(dim=1, keepdim=True)
    step = (h * w - hist.gather(1, last.clamp(min=0))) // 255  # PIL: (sum - the last non-zero bin) // 255
    before = torch.cumsum(hist, dim=1) - hist  # pixels below each value
    lut = ((step // 2 + before) // step.clamp(min=1)).clamp(max=255)
    lut = torch.where(step > 0, lut, torch.arange(256, device=x.device).expand_as(lut))
    return lut.gather(1, flat).reshape(n, c, h, w).to(x.dtype)


def posterize(x: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """PIL's ImageOps.posterize: keep the top ``bits`` (N,) bits of every value."""
    keep = (256 - 2 ** (8 - bits)).view(-1, 1, 1, 1)  # the mask of the top bits, as an integer
    return torch.bitwise_and(x.long(), keep.long()).to(x.dtype)


def solarize(x: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    """PIL's ImageOps.solarize: values at or above ``threshold`` (N,) inverted."""
    return torch.where(x >= threshold.view(-1, 1, 1, 1), 255.0 - x, x)


def affine(x: torch.Tensor, matrices: torch.Tensor) -> torch.Tensor:
    """PIL's Image.transform(AFFINE, BILINEAR) per sample: ``matrices`` (N, 2, 3) map output pixel
    coordinates to input ones (pixel centres at i + 0.5); outside the image is black; rounded."""
    n, _, h, w = x.shape
    # pixel coordinates <-> affine_grid's [-1, 1], and the inverse in closed form (linalg.inv would
    # check for a singular matrix on the host, which a captured CUDA graph cannot)
    to_norm = device_constant(((2.0 / w, 0.0, -1.0), (0.0, 2.0 / h, -1.0), (0.0, 0.0, 1.0)), x.device)
    from_norm = device_constant(((w / 2.0, 0.0, w / 2.0), (0.0, h / 2.0, h / 2.0), (0.0, 0.0, 1.0)), x.device)
    full = torch.cat([matrices, device_constant((0.0, 0.0, 1.0), x.device).expand(n, 1, 3)], dim=1)
    theta = (to_norm @ full @ from_norm)[:, :2]  # normalised output -> normalised input
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False).round()


def rotation_matrices(degrees: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(N, 2, 3) output -> input matrices of PIL's Image.rotate: counter-clockwise about the centre."""
    t = torch.deg2rad(degrees)
    cos, sin = torch.cos(t), torch.sin(t)
    cx, cy = w / 2.0, h / 2.0
    return _matrices(
        len(degrees), degrees.device, cos, -sin, cx - cos * cx + sin * cy, sin, cos, cy - sin * cx - cos * cy
    )


def rotate(x: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """PIL's Image.rotate(degrees, BILINEAR) per sample."""
    return affine(x, rotation_matrices(degrees, *x.shape[2:]))


def _matrices(n: int, device, a=1.0, b=0.0, c=0.0, d=0.0, e=1.0, f=0.0) -> torch.Tensor:
    def col(v):
        return v if isinstance(v, torch.Tensor) else torch.full((n,), float(v), device=device)

    return torch.stack([torch.stack([col(a), col(b), col(c)], 1), torch.stack([col(d), col(e), col(f)], 1)], 1)


# -- the operations as AugMix draws them ------------------------------------------------------


def _int_parameter(level: torch.Tensor, maxval: float) -> torch.Tensor:
    return torch.floor(level * maxval / 10)


def _float_parameter(level: torch.Tensor, maxval: float) -> torch.Tensor:
    return level * maxval / 10


OPERATIONS = (
    "autocontrast",
    "equalize",
    "posterize",
    "solarize",
    "rotate",
    "shear_x",
    "shear_y",
    "translate_x",
    "translate_y",
)
GEOMETRIC = OPERATIONS[4:]


def _geometry(x: torch.Tensor, level: torch.Tensor, generator) -> dict[str, torch.Tensor]:
    """Each geometric operation's (N, 2, 3) output -> input matrix at these levels, with AugMix's
    random signs (drawn in GEOMETRIC's order, one per sample each)."""
    n, device = len(x), x.device
    h, w = x.shape[2:]
    rotation = rotation_matrices(_signed(_int_parameter(level, 30), generator), h, w)
    shear_x = _signed(_float_parameter(level, 0.3), generator)
    shear_y = _signed(_float_parameter(level, 0.3), generator)
    move_x = _signed(_int_parameter(level, w / 3), generator)
    move_y = _signed(_int_parameter(level, h / 3), generator)
    return {
        "rotate": rotation,
        "shear_x": _matrices(n, device, b=shear_x),
        "shear_y": _matrices(n, device, d=shear_y),
        "translate_x": _matrices(n, device, c=move_x),
        "translate_y": _matrices(n, device, f=move_y),
    }


def apply_operations(x: torch.Tensor, choice: torch.Tensor, level: torch.Tensor, generator) -> torch.Tensor:
    """Sample i gets operation OPERATIONS[choice[i]] at level[i]: the pixel operations computed for
    the batch, the geometric ones as one affine resampling with each sample's own matrix."""
    n = len(x)
    matrices = _geometry(x, level, generator)
    identity = _matrices(n, x.device)
    chosen = identity
    for k, name in enumerate(OPERATIONS):
        if name in matrices:
            chosen = torch.where((choice == k).view(n, 1, 1), matrices[name], chosen)
    pixel = [
        autocontrast(x),
        equalize(x),
        posterize(x, 4 - _int_parameter(level, 4)),
        solarize(x, 256 - _int_parameter(level, 256)),
    ]
    out = affine(x, chosen)  # the geometric choices (and an exact copy elsewhere, replaced below)
    for k, image in enumerate(pixel):
        out = torch.where((choice == k).view(n, 1, 1, 1), image, out)
    return out


def augmix(x: torch.Tensor, severity: float, generator: torch.Generator | None) -> torch.Tensor:
    """AugMix of float (N, C, H, W) in [0, 1]; the same shape, float in [0, 1] (see the module docstring).

    Draw order, fixed: chain weights, the mix weight, then per chain its depth and per step the
    operation, its level and the geometric operations' signs, every draw one value per sample."""
    n, device = x.shape[0], x.device
    pixels = (x * 255.0).round()
    exp = -torch.log(torch.stack([_u(n, generator, device) for _ in range(WIDTH)]).clamp(min=1e-12))  # (W, N)
    weights = exp / exp.sum(dim=0, keepdim=True)  # Dirichlet(1, ..., 1)
    mix_weight = _u(n, generator, device)  # Beta(1, 1)
    mixed = torch.zeros_like(x)
    for chain in range(WIDTH):
        depth = torch.floor(_u(n, generator, device) * MAX_DEPTH) + 1  # 1..3
        image = pixels
        for step in range(MAX_DEPTH):
            choice = torch.floor(_u(n, generator, device) * len(OPERATIONS)).clamp(max=len(OPERATIONS) - 1).long()
            level = _levels(n, severity, generator, device)
            image = torch.where(
                (step < depth).view(n, 1, 1, 1), apply_operations(image, choice, level, generator), image
            )
        mixed = mixed + weights[chain].view(n, 1, 1, 1) * image / 255.0
    m = mix_weight.view(n, 1, 1, 1)
    return ((1 - m) * x + m * mixed).clamp(0.0, 1.0)
