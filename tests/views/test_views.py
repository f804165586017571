"""Tests for ait.views: recipes, their grammar and the batched per-sample augmentation."""

from __future__ import annotations

import colorsys
import dataclasses
import math

import pytest
import torch
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode

from ait import views
from ait.views import RECIPES, Recipe, augment, make_views, normalize, parse_recipe, parse_views, to_float


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def rand_u8(n, c=3, h=8, w=8, seed=0, low=0):
    return torch.randint(low, 256, (n, c, h, w), generator=gen(seed), dtype=torch.uint8)


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
# Recipes and their grammar


def test_recipes_match_the_paper():
    assert RECIPES["none"].is_identity
    for name, r in RECIPES.items():
        assert r.name == name
        if name == "rrc":  # the paper's ImageNet view, on arrays: no letters to read
            assert r.resized_crop and r.flip_p == 0.5 and r.pad == 0 and not r.has_color
            continue
        letters = name.split("+augmix")[0]  # AugMix's view (beyond the paper) is named after its crop
        if name != "none":
            assert r.flip_p == 0.5, name  # flip is part of every training recipe
        assert r.pad == (4 if "p" in letters else 0), name
        assert r.gray_p == (0.1 if "g" in letters else 0.0), name
        jitter = 0.1 if "c" in letters else 0.0
        assert (r.brightness, r.contrast, r.saturation) == (jitter, jitter, jitter), name
        assert r.hue == (0.1 if name.endswith("+hue") else 0.0), name
    for name in ("none", "rh", "rp", "rg", "rc", "rpg", "rpc", "rgc", "rpgc", "rc+hue"):
        assert name in RECIPES


def test_parse_recipe_and_views():
    assert parse_recipe("rp") is RECIPES["rp"]
    assert parse_recipe(" RPGC ") is RECIPES["rpgc"]
    custom = Recipe(pad=2, name="mine")
    assert parse_recipe(custom) is custom
    assert parse_views("rp,rg") == [RECIPES["rp"], RECIPES["rg"]]
    assert parse_views("rp") == [RECIPES["rp"]]
    assert parse_views(["rc", custom]) == [RECIPES["rc"], custom]
    for bad in ("", ",", "rp,", [], ()):
        with pytest.raises(ValueError):
            parse_views(bad)
    with pytest.raises(TypeError):
        parse_recipe(3)


def test_unknown_recipe_lists_names_and_suggests():
    with pytest.raises(ValueError) as err:
        parse_recipe("rpgcc")
    msg = str(err.value)
    assert "'rpgcc'" in msg
    assert ", ".join(sorted(RECIPES)) in msg
    assert "Did you mean 'rpgc'?" in msg
    with pytest.raises(ValueError, match="valid names"):
        parse_views("rp,zz")


@pytest.mark.parametrize(
    "field, value",
    [
        ("flip_p", 1.5),
        ("flip_p", -0.1),
        ("gray_p", 2.0),
        ("gray_p", float("nan")),
        ("brightness", -0.1),
        ("contrast", -1.0),
        ("saturation", float("inf")),
        ("hue", 0.6),
        ("hue", -0.1),
        ("pad", -1),
        ("pad", 1.5),
        ("pad", True),
    ],
)
def test_recipe_validation_names_field_and_value(field, value):
    with pytest.raises(ValueError) as err:
        Recipe(**{field: value})
    assert field in str(err.value) and repr(value) in str(err.value)


def test_recipe_is_frozen_and_hashable():
    r = Recipe(pad=4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.pad = 2  # type: ignore[misc]
    assert hash(r) == hash(Recipe(pad=4))


# ------------------------------------------------------------------------------------------
# augment: shapes, dtypes, devices


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.bfloat16])
def test_shape_dtype_device_kept_for_every_recipe(dtype):
    x = rand_u8(6, h=10, w=12)
    x = x if dtype == torch.uint8 else (x.float() / 255).to(dtype)
    for name in RECIPES:
        y = augment(x, name, gen(1))
        assert y.shape == x.shape and y.dtype == dtype and y.device == x.device, name
        if dtype != torch.uint8:
            assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0, name


def test_generator_on_another_device_draws_there_and_moves():
    # "meta" stands in for an accelerator here: the CPU generator's draws must be moved.
    x = torch.empty(4, 3, 8, 8, device="meta")
    y = augment(x, "rpgc+hue", gen(0))
    assert y.device.type == "meta" and y.shape == x.shape
    assert augment(x.to(torch.uint8), "rpgc", None).device.type == "meta"


def test_bad_inputs():
    with pytest.raises(ValueError, match="N, C, H, W"):
        augment(torch.rand(3, 8, 8), "rp")
    with pytest.raises(TypeError, match="uint8 or floating"):
        augment(torch.zeros(2, 3, 8, 8, dtype=torch.int32), "rp")
    with pytest.raises(ValueError, match="channels"):
        augment(torch.rand(2, 4, 8, 8), "rg")
    assert augment(torch.rand(2, 4, 8, 8), "rp", gen()).shape == (2, 4, 8, 8)  # geometry: any C


def test_empty_batch():
    x = torch.rand(0, 3, 8, 8)
    assert augment(x, "rpgc+hue", gen()).shape == x.shape


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


def test_none_is_identity():
    x = rand_u8(16)
    assert torch.equal(augment(x, "none", gen()), x)
    xf = x.float() / 255
    assert torch.equal(augment(xf, "none"), xf)


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
    hsv = views._rgb_to_hsv(x)
    for n, i, j in [(0, 0, 0), (0, 1, 2), (1, 4, 6), (1, 3, 0)]:
        ref = colorsys.rgb_to_hsv(*x[n, :, i, j].tolist())
        assert hsv[n, :, i, j].tolist() == pytest.approx(ref, abs=1e-5)
    torch.testing.assert_close(views._hsv_to_rgb(hsv), x, atol=1e-5, rtol=0)


def test_hue_shift_keeps_value_and_saturation_and_is_bounded():
    x = torch.rand(64, 3, 4, 4, generator=gen(14))
    y = augment(x, Recipe(flip_p=0.0, hue=0.1), gen(15))
    hx, hy = views._rgb_to_hsv(x), views._rgb_to_hsv(y)
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
# Randomness


def test_same_seed_same_output_other_seed_differs():
    x = rand_u8(32)
    for name in ("rp", "rg", "rc+hue", "rpgc"):
        a = augment(x, name, gen(42))
        assert torch.equal(a, augment(x, name, gen(42))), name
        assert not torch.equal(a, augment(x, name, gen(43))), name
    # Global generator: torch.manual_seed makes generator=None reproducible too.
    torch.manual_seed(1)
    a = augment(x, "rpgc")
    torch.manual_seed(1)
    assert torch.equal(a, augment(x, "rpgc"))


@pytest.mark.parametrize("name", ["rh", "rp", "rc", "rpgc", "rc+hue"])
def test_randomness_is_per_sample(name):
    x = rand_u8(1, h=16, w=16, low=1).expand(64, -1, -1, -1).contiguous()
    y = augment(x, name, gen(17))
    distinct = torch.unique(y.flatten(1), dim=0).shape[0]
    assert distinct >= (2 if name == "rh" else 32), (name, distinct)


def test_generator_advances():
    x = rand_u8(16)
    g = gen(0)
    assert not torch.equal(augment(x, "rp", g), augment(x, "rp", g))


# ------------------------------------------------------------------------------------------
# normalize / to_float


def test_to_float_and_normalize():
    x = torch.tensor([0, 51, 255], dtype=torch.uint8).view(1, 3, 1, 1)
    f = to_float(x)
    assert f.dtype == torch.float32
    torch.testing.assert_close(f.flatten(), torch.tensor([0.0, 0.2, 1.0]))
    assert to_float(f) is f
    with pytest.raises(TypeError):
        to_float(x.to(torch.int32))

    mean, std = (0.491, 0.482, 0.447), (0.247, 0.243, 0.262)
    z = normalize(f, mean, std)
    ref = (f.flatten() - torch.tensor(mean)) / torch.tensor(std)
    torch.testing.assert_close(z.flatten(), ref)
    torch.testing.assert_close(normalize(x, mean, std), z)  # uint8 is converted first
    with pytest.raises(ValueError, match="3 values"):
        normalize(f, (0.5,), (0.5,))
    with pytest.raises(ValueError, match="std"):
        normalize(f, mean, (0.2, 0.0, 0.2))


# ------------------------------------------------------------------------------------------
# Performance sanity (no timing assertion): the number of torch calls must not grow with N,
# which rules out a per-image Python loop.


class _CountCalls(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.calls += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("name", ["rpgc", "rpgc+hue"])
def test_op_count_independent_of_batch_size(name):
    counts = []
    for n in (2, 64):
        x = rand_u8(n)
        with _CountCalls() as mode:
            augment(x, name, gen())
        counts.append(mode.calls)
    assert counts[0] == counts[1] and counts[0] > 0


# ------------------------------------------------------------------------------------------
# Accelerator (runs only where one is present)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_device_and_generators():
    x = rand_u8(32).cuda()
    g_cuda = torch.Generator(device="cuda").manual_seed(0)
    for g in (g_cuda, gen(0), None):
        y = augment(x, "rpgc+hue", g)
        assert y.device == x.device and y.dtype == x.dtype
    a = augment(x, "rpgc", torch.Generator(device="cuda").manual_seed(1))
    b = augment(x, "rpgc", torch.Generator(device="cuda").manual_seed(1))
    assert torch.equal(a, b)
    # Same CPU-generator stream on both devices gives the same geometry.
    assert torch.equal(augment(x, "rp", gen(2)).cpu(), augment(x.cpu(), "rp", gen(2)))


def test_make_views_gives_the_trainers_views_of_a_step():
    from ait import models
    from ait.config import ConsistencyConfig
    from ait.engine.trainer import BranchTrainer
    from ait.runtime.precision import resolve_precision
    from ait.views import make_views

    images = torch.randint(0, 256, (6, 3, 16, 16), dtype=torch.uint8, generator=gen(1))
    recipes = ["rp", "rgc", "rp"]
    made = make_views(images, recipes, gen(7))
    assert made.shape == (3, 6, 3, 16, 16) and made.dtype == torch.float32 and 0 <= made.min() <= made.max() <= 1
    precision = resolve_precision(torch.device("cpu"), "fp32", False)
    branches = [(0, 0), (0, 1), (0, 2)]
    net = models.create("resnet20", num_classes=10)
    trainer = BranchTrainer(
        [net], [parse_recipe(r) for r in recipes], branches, ConsistencyConfig(), precision, (0.0,) * 3, (1.0,) * 3
    )
    views = trainer.make_views(images, gen(7))  # normalised with mean 0, std 1: the [0, 1] views themselves
    for v in range(3):
        assert torch.equal(views[v], made[v])
    assert not torch.equal(made[0], made[2])  # two views of one recipe are drawn independently


def test_float_images_outside_the_unit_range_are_refused():
    from ait.views import make_views

    normalised = torch.randn(2, 3, 8, 8)
    with pytest.raises(ValueError, match=r"float images must lie in \[0, 1\] \(before normalisation\)"):
        augment(normalised, "rc", gen())
    with pytest.raises(ValueError, match="pass uint8 images, or float images in"):
        make_views(normalised, ["rp", "rp"], gen())
    assert augment(torch.rand(2, 3, 8, 8), "rc", gen()).shape == (2, 3, 8, 8)


def test_blur_matches_torchvisions_gaussian_blur_at_each_samples_drawn_sigma():
    from torchvision.transforms.v2 import functional as TF

    x = torch.rand(4, 3, 16, 16, generator=gen(2))
    recipe = Recipe(flip_p=0.0, blur=1.5)
    ours = augment(x, recipe, gen(9))
    sigmas = torch.rand(4, generator=gen(9)) * (1.5 - 0.1) + 0.1  # the step's one draw, as _uniform makes it
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


def test_noise_and_blur_strengths_are_checked():
    with pytest.raises(ValueError, match="Recipe.blur must be 0 or a standard deviation"):
        Recipe(blur=20.0)
    with pytest.raises(ValueError, match="Recipe.noise must be a finite number >= 0"):
        Recipe(noise=-0.1)


def test_augmix_views_share_the_clean_views_crop_and_flip():
    from ait.views import make_views

    x = torch.rand(6, 3, 16, 16, generator=gen(1))
    views = make_views(x, ["rp", "rp+augmix", "rp+augmix"], gen(7))
    g = gen(7)  # the same draws by hand: one crop and flip, then both AugMix views on top of it
    base = augment(x, Recipe(pad=4), g)
    tops = augment(torch.cat([base, base]), Recipe(flip_p=0.0, augmix=3.0), g).view(2, *x.shape)
    assert torch.equal(views[0], base) and torch.equal(views[1:], tops)
    assert not torch.equal(views[1], views[2])  # each AugMix view its own chains


def test_an_augmix_run_trains_with_cross_entropy_on_the_clean_view_and_jsd(tmp_path):
    import ait
    from ait.strategies import get
    from ait_testutils import one_torch_thread, tiny_config

    assert get("augmix").ce_branches(1, 3) == [(0, 0)] and get("augmix").branches(1, 3) == [(0, 0), (0, 1), (0, 2)]
    cfg = tiny_config(
        tmp_path,
        "ait",
        strategy={"name": "augmix", "views": ["rp", "rp+augmix", "rp+augmix"]},
        consistency={"metric": "jsd", "weight": 12.0},
        train={"epochs": 1, "batch_size": 30},
    )
    with one_torch_thread():
        summary = ait.train(cfg)
    assert summary["strategy"] == "augmix" and 0 <= summary["networks"][0]["final_top1"] <= 100


def test_in_memory_resized_crops_are_torchvisions():
    from torchvision.transforms.v2 import functional as TF

    from ait.views import resized_crop, resized_crop_boxes

    x = torch.rand(6, 3, 24, 40, generator=gen(3))
    boxes = resized_crop_boxes(6, 24, 40, gen(8), torch.device("cpu"))
    ours = resized_crop(x, boxes)
    for k, (top, left, h, w) in enumerate(boxes.tolist()):
        assert 0 <= top and top + h <= 24 and 0 <= left and left + w <= 40 and h > 0 and w > 0
        theirs = TF.resized_crop(x[k : k + 1], top, left, h, w, [24, 40], antialias=False)
        torch.testing.assert_close(ours[k : k + 1], theirs, rtol=1e-5, atol=1e-5)
    from torchvision.transforms import RandomResizedCrop

    many = resized_crop_boxes(4000, 32, 32, gen(1), torch.device("cpu")).double()
    area = many[:, 2] * many[:, 3] / 1024
    torch.manual_seed(0)  # torchvision's own draws, for the distribution: 10 attempts, then the fallback
    square = torch.zeros(3, 32, 32)
    theirs = [RandomResizedCrop.get_params(square, [0.08, 1.0], [3 / 4, 4 / 3]) for _ in range(4000)]
    their_area = torch.tensor([h * w / 1024 for _, _, h, w in theirs], dtype=torch.float64)
    assert area.min() >= 0.07 and area.max() <= 1 and abs(area.mean() - their_area.mean()) < 0.02
    strip = resized_crop_boxes(5, 4, 200, gen(2), torch.device("cpu"))  # no attempt fits: the centred fallback
    assert strip.tolist() == [[0, 97, 4, 5]] * 5
    u8 = augment(torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8, generator=gen(4)), "rrc", gen(5))
    assert u8.dtype == torch.uint8 and u8.shape == (3, 3, 32, 32)


def test_an_in_memory_ait_run_with_resized_crop_views_trains(tmp_path):
    import ait
    from ait_testutils import one_torch_thread, tiny_config

    cfg = tiny_config(tmp_path, "ait", strategy={"views": ["rrc", "rrc"]}, train={"epochs": 1})
    with one_torch_thread():
        summary = ait.train(cfg)
    assert summary["views"] == ["rrc", "rrc"] and 0 <= summary["networks"][0]["final_top1"] <= 100


def _darken(x, generator):
    """Each sample times a factor in [0.5, 1] drawn from the generator (CPU draws, moved to x)."""
    return x * (0.5 + 0.5 * torch.rand(x.shape[0], 1, 1, 1, generator=generator, device=generator.device).to(x.device))


def test_a_recipe_of_your_own_runs_after_the_crop_and_flip_with_the_same_generator():
    from ait.views import register_recipe

    recipe = register_recipe("test+darken", _darken, pad=4, flip_p=0.5)
    try:
        assert RECIPES["test+darken"] is recipe and recipe.has_color and not recipe.is_identity
        images = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
        got = make_views(images, ["test+darken"], torch.Generator().manual_seed(3))[0]
        g = torch.Generator().manual_seed(3)
        cropped = augment(images.float() / 255, Recipe(pad=4, flip_p=0.5), g)  # the same draws, in order
        assert torch.allclose(got, _darken(cropped, g))
        with pytest.raises(ValueError, match="'test\\+darken' is taken"):
            register_recipe("test+darken", _darken)
        with pytest.raises(ValueError, match="'rp,dark' is not usable in a views list"):
            register_recipe("rp,dark", _darken)
    finally:
        del RECIPES["test+darken"]


def test_a_recipe_function_must_keep_the_shape_and_be_callable():
    images = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)
    shrink = Recipe(name="shrink", function=lambda x, g: x[:, :, :4])
    with pytest.raises(ValueError, match=r"recipe 'shrink': its function must return float \(2, 3, 8, 8\)"):
        augment(images, shrink)
    with pytest.raises(TypeError, match="Recipe.function must be callable"):
        Recipe(function="darken")
