"""The batched image kernels of the views: random draws, geometric steps and colour steps on
(N, C, H, W) tensors, every random parameter drawn per sample from a generator.

A kernel knows nothing of recipes: it takes its strengths as plain numbers, and
:func:`ait.views.augment` calls the kernels a recipe names, in the order of the authors'
torchvision pipeline. No kernel loops over images in Python or synchronises with the host.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from ait.views.constants import device_constant

# ITU-R 601 luma weights (what PIL's convert("L") and torchvision's grayscale use, up to rounding).
_LUMA = (0.299, 0.587, 0.114)


# --------------------------------------------------------------------------------------------
# Random draws


def _draw_device(generator: torch.Generator | None, device: torch.device) -> torch.device:
    # A torch.Generator can only fill tensors on its own device: draw there and move.
    return generator.device if generator is not None else device


def uniform(n: int, lo: float, hi: float, generator, device) -> torch.Tensor:
    """(n,) float32 uniform in [lo, hi] on ``device``."""
    u = torch.rand(n, generator=generator, device=_draw_device(generator, device))
    return (lo + (hi - lo) * u).to(device)


def _bernoulli(n: int, p: float, generator, device) -> torch.Tensor:
    """(n,) bool, each True with probability p."""
    u = torch.rand(n, generator=generator, device=_draw_device(generator, device))
    return (u < p).to(device)


# --------------------------------------------------------------------------------------------
# Geometric steps (exact in any dtype)


def pad_crop(x: torch.Tensor, pad: int, generator, device) -> torch.Tensor:
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
    draw = lambda: uniform(RRC_ATTEMPTS * n, 0.0, 1.0, generator, device).view(RRC_ATTEMPTS, n)  # noqa: E731
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


def flip(x: torch.Tensor, p: float, generator, device) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, H, W): each sample flipped horizontally with probability p."""
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


def color(
    x: torch.Tensor,
    generator,
    device,
    *,
    brightness: float = 0.0,
    contrast: float = 0.0,
    saturation: float = 0.0,
    hue: float = 0.0,
    gray_p: float = 0.0,
) -> torch.Tensor:
    """Colour jitter then random grayscale on float32 (N, C, H, W) in [0, 1]: brightness, contrast
    and saturation factors uniform in [max(0, 1 - s), 1 + s], a hue shift uniform in [-hue, hue]
    (turns), grayscale with probability gray_p; a strength of 0 skips its step and its draw."""
    n, c = x.shape[:2]
    rgb = c == 3
    if c not in (1, 3) and (contrast or saturation or hue or gray_p):
        raise ValueError(f"contrast, saturation, hue and grayscale need 1 or 3 channels, got C={c}")
    if brightness:
        f = uniform(n, max(0.0, 1.0 - brightness), 1.0 + brightness, generator, device)
        x = (x * f[:, None, None, None]).clamp_(0.0, 1.0)
    if contrast:
        f = uniform(n, max(0.0, 1.0 - contrast), 1.0 + contrast, generator, device)
        mean = (_grayscale(x) if rgb else x).mean(dim=(1, 2, 3), keepdim=True)  # (N, 1, 1, 1)
        x = _blend(x, mean, f)
    if saturation:
        f = uniform(n, max(0.0, 1.0 - saturation), 1.0 + saturation, generator, device)
        if rgb:
            x = _blend(x, _grayscale(x), f)
    if hue:
        shift = uniform(n, -hue, hue, generator, device)
        if rgb:
            hsv = _rgb_to_hsv(x)
            shifted = torch.remainder(hsv[:, 0:1] + shift[:, None, None, None], 1.0)
            x = _hsv_to_rgb(torch.cat((shifted, hsv[:, 1:]), dim=1)).clamp_(0.0, 1.0)
    if gray_p:
        mask = _bernoulli(n, gray_p, generator, device)
        if rgb:
            x = torch.where(mask[:, None, None, None], _grayscale(x).expand_as(x), x)
    return x


def blur(x: torch.Tensor, max_sigma: float, generator, device) -> torch.Tensor:
    """Gaussian blur of float (N, C, H, W), each sample with its own sigma in [0.1, max_sigma]:
    one separable grouped convolution per axis for the whole batch (reflected borders)."""
    n, c, h, w = x.shape
    sigma = uniform(n, 0.1, max_sigma, generator, device)  # (N,)
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


def noise(x: torch.Tensor, max_std: float, generator, device) -> torch.Tensor:
    """Additive Gaussian noise, std uniform in [0, max_std] per sample, clamped to [0, 1]."""
    std = uniform(x.shape[0], 0.0, max_std, generator, device)
    draw = torch.randn(x.shape, generator=generator, device=_draw_device(generator, device)).to(device)
    return (x + std[:, None, None, None] * draw).clamp_(0.0, 1.0)
