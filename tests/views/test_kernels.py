"""Tests for ait.views.kernels: the geometric and colour steps, each sample with its own draw
(through ait.views.augment, which applies them, and directly)."""

from __future__ import annotations

import colorsys
import math

import pytest
import torch
from torch.nn import functional as F
from views_testutils import gen, rand_u8

from ait.views import Recipe, augment, kernels


def shift(x: torch.Tensor, dx: int, dy: int, pad: int) -> torch.Tensor:
    """Reference crop: window at (dy, dx) of the zero-padded batch, written the plain way."""
    h, w = x.shape[-2:]
    return F.pad(x, (pad, pad, pad, pad))[..., dy : dy + h, dx : dx + w]


def masked_spread(v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per sample max - min of v over the positions where mask is True, (N, ...) -> (N,)."""
    v, mask = v.flatten(1), mask.flatten(1)
    hi = torch.where(mask, v, -torch.inf).amax(1)
    lo = torch.where(mask, v, torch.inf).amin(1)
    return torch.where(mask.any(1), hi - lo, torch.zeros_like(hi))


def binomial_ok(count: int, n: int, p: float, sigmas: float = 5.0) -> bool:
    return abs(count - n * p) <= sigmas * math.sqrt(n * p * (1 - p))


# ------------------------------------------------------------------------------------------
# Geometry


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_rp_is_an_exact_shift_with_zero_fill(dtype):
    n, pad = 64, 4
    x = rand_u8(n, low=1)  # no zeros in the content, so the zero fill identifies the shift
    x = x if dtype == torch.uint8 else x.float() / 255
    y = augment(x, "rp", gen(3))
    # Brute force over the 81 windows x 2 flips: which candidates equal each output exactly?
    matches = []  # (n,) per candidate
    candidates = []
    for dy in range(2 * pad + 1):
        for dx in range(2 * pad + 1):
            s = shift(x, dx, dy, pad)
            for flip in (False, True):
                c = s.flip(-1) if flip else s
                matches.append((c == y).flatten(1).all(1))
                candidates.append((dx - pad, dy - pad, flip))
    m = torch.stack(matches, 1)  # (n, 162)
    assert bool((m.sum(1) == 1).all()), "every output must be exactly one shifted (flipped) copy"
    found = [candidates[int(i)] for i in m.float().argmax(1)]
    assert all(abs(dx) <= pad and abs(dy) <= pad for dx, dy, _ in found)
    # Per-sample offsets, spread over the range, both flip states present.
    assert len({(dx, dy) for dx, dy, _ in found}) > 20
    assert {f for _, _, f in found} == {False, True}
    assert {dx for dx, _, _ in found} >= {-pad, pad} or {dy for _, dy, _ in found} >= {-pad, pad}


def test_flip_frequency_is_half():
    n = 4000
    x = torch.arange(4.0).expand(n, 1, 2, 4) / 4  # asymmetric rows: a flip is visible
    y = augment(x, "rh", gen(5))
    flipped = int((y == x.flip(-1)).flatten(1).all(1).sum())
    kept = int((y == x).flatten(1).all(1).sum())
    assert flipped + kept == n
    assert binomial_ok(flipped, n, 0.5)


def test_in_memory_resized_crops_are_torchvisions():
    from torchvision.transforms.v2 import functional as TF

    x = torch.rand(6, 3, 24, 40, generator=gen(3))
    boxes = kernels.resized_crop_boxes(6, 24, 40, gen(8), torch.device("cpu"))
    ours = kernels.resized_crop(x, boxes)
    for k, (top, left, h, w) in enumerate(boxes.tolist()):
        assert 0 <= top and top + h <= 24 and 0 <= left and left + w <= 40 and h > 0 and w > 0
        theirs = TF.resized_crop(x[k : k + 1], top, left, h, w, [24, 40], antialias=False)
        torch.testing.assert_close(ours[k : k + 1], theirs, rtol=1e-5, atol=1e-5)
    from torchvision.transforms import RandomResizedCrop

    many = kernels.resized_crop_boxes(4000, 32, 32, gen(1), torch.device("cpu")).double()
    area = many[:, 2] * many[:, 3] / 1024
    torch.manual_seed(0)  # torchvision's own draws, for the distribution: 10 attempts, then the fallback
    square = torch.zeros(3, 32, 32)
    theirs = [RandomResizedCrop.get_params(square, [0.08, 1.0], [3 / 4, 4 / 3]) for _ in range(4000)]
    their_area = torch.tensor([h * w / 1024 for _, _, h, w in theirs], dtype=torch.float64)
    assert area.min() >= 0.07 and area.max() <= 1 and abs(area.mean() - their_area.mean()) < 0.02
    strip = kernels.resized_crop_boxes(5, 4, 200, gen(2), torch.device("cpu"))  # no attempt fits: the centred fallback
    assert strip.tolist() == [[0, 97, 4, 5]] * 5
    u8 = augment(torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8, generator=gen(4)), "rrc", gen(5))
    assert u8.dtype == torch.uint8 and u8.shape == (3, 3, 32, 32)


# ------------------------------------------------------------------------------------------
# Colour


def test_grayscale_frequency_and_p1_equal_channels():
    n = 4000
    x = torch.rand(n, 3, 2, 2, generator=gen(6))
    y = augment(x, "rg", gen(7))
    gray = (y[:, 0] == y[:, 1]).flatten(1).all(1) & (y[:, 1] == y[:, 2]).flatten(1).all(1)
    assert binomial_ok(int(gray.sum()), n, 0.1)

    y = augment(x, Recipe(flip_p=0.0, gray_p=1.0), gen())
    assert torch.equal(y[:, 0], y[:, 1]) and torch.equal(y[:, 1], y[:, 2])
    luma = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    torch.testing.assert_close(y[:, 0], luma)

    xu = rand_u8(32)
    yu = augment(xu, Recipe(flip_p=0.0, gray_p=1.0), gen())
    ref = (0.299 * xu[:, 0].float() + 0.587 * xu[:, 1].float() + 0.114 * xu[:, 2].float()).round()
    assert (yu[:, 0].float() - ref).abs().max() <= 1
    assert torch.equal(yu[:, 0], yu[:, 2])
    # uint8 goes through float and is rounded back (not truncated): gray stays exactly gray.
    g = rand_u8(32, c=1).expand(-1, 3, -1, -1).contiguous()
    assert torch.equal(augment(g, Recipe(flip_p=0.0, gray_p=1.0), gen()), g)


def test_brightness_ratio_within_strength_and_per_sample():
    n = 256
    x = 0.1 + 0.8 * torch.rand(n, 3, 4, 4, generator=gen(8))
    y = augment(x, Recipe(flip_p=0.0, brightness=0.1), gen(9))
    ratio = y / x
    unclamped = y < 1.0
    assert float(ratio[unclamped].min()) >= 0.9 - 1e-6
    assert float(ratio[unclamped].max()) <= 1.1 + 1e-6
    assert bool((y[~unclamped] == 1.0).all())
    # One factor per image (where not clamped), different across images and covering the range.
    assert float(masked_spread(ratio, unclamped).max()) < 1e-5
    factors = torch.where(unclamped, ratio, torch.nan).flatten(1).nanmean(1)
    assert float(factors.min()) < 0.92 and float(factors.max()) > 1.08


def _fit_factor(y, x, anchor):
    """Least-squares f per sample in (y - a) = f (x - a); returns f (N,) and max residual."""
    u, v = (x - anchor).flatten(1), (y - anchor).flatten(1)
    f = (u * v).sum(1) / (u * u).sum(1)
    return f, float((v - f[:, None] * u).abs().max())


def test_contrast_and_saturation_blend_within_strength():
    n = 128
    x = 0.3 + 0.4 * torch.rand(n, 3, 6, 6, generator=gen(10))  # no clamping possible at 0.1
    luma = 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]

    y = augment(x, Recipe(flip_p=0.0, contrast=0.1), gen(11))
    f, res = _fit_factor(y, x, luma.mean(dim=(1, 2, 3), keepdim=True))
    assert res < 1e-5 and float(f.min()) >= 0.9 - 1e-5 and float(f.max()) <= 1.1 + 1e-5
    assert float(f.max() - f.min()) > 0.1  # per sample

    y = augment(x, Recipe(flip_p=0.0, saturation=0.1), gen(12))
    f, res = _fit_factor(y, x, luma)
    assert res < 1e-5 and float(f.min()) >= 0.9 - 1e-5 and float(f.max()) <= 1.1 + 1e-5
    assert float(f.max() - f.min()) > 0.1


def test_hsv_helpers_match_colorsys():
    x = torch.rand(2, 3, 5, 7, generator=gen(13))
    x[0, :, 0, 0] = 0.5  # a gray pixel: hue and saturation 0
    hsv = kernels._rgb_to_hsv(x)
    for n, i, j in [(0, 0, 0), (0, 1, 2), (1, 4, 6), (1, 3, 0)]:
        ref = colorsys.rgb_to_hsv(*x[n, :, i, j].tolist())
        assert hsv[n, :, i, j].tolist() == pytest.approx(ref, abs=1e-5)
    torch.testing.assert_close(kernels._hsv_to_rgb(hsv), x, atol=1e-5, rtol=0)


def test_hue_shift_keeps_value_and_saturation_and_is_bounded():
    x = torch.rand(64, 3, 4, 4, generator=gen(14))
    y = augment(x, Recipe(flip_p=0.0, hue=0.1), gen(15))
    hx, hy = kernels._rgb_to_hsv(x), kernels._rgb_to_hsv(y)
    torch.testing.assert_close(hy[:, 1:], hx[:, 1:], atol=1e-4, rtol=0)
    d = torch.remainder(hy[:, 0] - hx[:, 0] + 0.5, 1.0) - 0.5  # circular hue difference
    sat = hx[:, 1] > 0.1  # hue is ill-defined for near-gray pixels
    assert float(d[sat].abs().max()) <= 0.1 + 1e-3
    assert float(masked_spread(d, sat).max()) < 1e-3  # one shift per image
    shifts = torch.where(sat, d, torch.nan).flatten(1).nanmean(1)
    assert float(shifts.min()) < -0.08 and float(shifts.max()) > 0.08  # per sample, full range


def test_one_channel_colour_ops_are_noops_except_brightness_contrast():
    x = torch.rand(8, 1, 6, 6, generator=gen(16))
    y = augment(x, Recipe(flip_p=0.0, gray_p=1.0, saturation=0.5, hue=0.5), gen())
    assert torch.equal(y, x)
    y = augment(x, "rpgc+hue", gen())
    assert y.shape == x.shape and float(y.min()) >= 0 and float(y.max()) <= 1


# ------------------------------------------------------------------------------------------
# Blur and noise


def test_blur_matches_torchvisions_gaussian_blur_at_each_samples_drawn_sigma():
    from torchvision.transforms.v2 import functional as TF

    x = torch.rand(4, 3, 16, 16, generator=gen(2))
    recipe = Recipe(flip_p=0.0, blur=1.5)
    ours = augment(x, recipe, gen(9))
    sigmas = torch.rand(4, generator=gen(9)) * (1.5 - 0.1) + 0.1  # the step's one draw, as kernels.uniform makes it
    for i, sigma in enumerate(sigmas.tolist()):
        reference = TF.gaussian_blur(x[i : i + 1], kernel_size=[11, 11], sigma=[sigma, sigma])  # radius ceil(4.5) = 5
        torch.testing.assert_close(ours[i : i + 1], reference, rtol=1e-5, atol=1e-5)
    flat = torch.full((2, 3, 8, 8), 0.25)
    torch.testing.assert_close(augment(flat, recipe, gen(1)), flat, rtol=0, atol=1e-6)  # a flat image stays flat


def test_noise_is_per_sample_gaussian_clamped_and_seeded():
    x = torch.full((64, 3, 32, 32), 0.5)
    recipe = Recipe(flip_p=0.0, noise=0.08)
    y = augment(x, recipe, gen(3))
    assert torch.equal(y, augment(x, recipe, gen(3))) and not torch.equal(y, augment(x, recipe, gen(4)))
    stds = (y - x).flatten(1).std(dim=1)
    drawn = torch.rand(64, generator=gen(3)) * 0.08
    torch.testing.assert_close(stds, drawn, rtol=0.05, atol=2e-3)  # 3072 pixels a sample: a close estimate
    assert 0 <= y.min() and y.max() <= 1
    u8 = augment((x * 255).to(torch.uint8), "rpnb", gen(3))
    assert u8.dtype == torch.uint8 and u8.shape == x.shape
