"""Tests for ait.views' entry points: augment and make_views on whole batches (shapes, dtypes,
devices, per-sample randomness), to_float and normalize, recipes of your own in use. The steps
themselves: test_kernels.py; the recipes and their grammar: test_recipes.py."""

from __future__ import annotations

import pytest
import torch
from torch.overrides import TorchFunctionMode
from views_testutils import gen, rand_u8

from ait.views import RECIPES, Recipe, augment, make_views, normalize, parse_recipe, to_float

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


def test_none_is_identity():
    x = rand_u8(16)
    assert torch.equal(augment(x, "none", gen()), x)
    xf = x.float() / 255
    assert torch.equal(augment(xf, "none"), xf)


def test_float_images_outside_the_unit_range_are_refused():
    from ait.views import make_views

    normalised = torch.randn(2, 3, 8, 8)
    with pytest.raises(ValueError, match=r"float images must lie in \[0, 1\] \(before normalisation\)"):
        augment(normalised, "rc", gen())
    with pytest.raises(ValueError, match="pass uint8 images, or float images in"):
        make_views(normalised, ["rp", "rp"], gen())
    assert augment(torch.rand(2, 3, 8, 8), "rc", gen()).shape == (2, 3, 8, 8)


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


# ------------------------------------------------------------------------------------------
# make_views: the trainer's views, AugMix's shared crops


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


def test_an_in_memory_ait_run_with_resized_crop_views_trains(tmp_path):
    import ait
    from ait_testutils import one_torch_thread, tiny_config

    cfg = tiny_config(tmp_path, "ait", strategy={"views": ["rrc", "rrc"]}, train={"epochs": 1})
    with one_torch_thread():
        summary = ait.train(cfg)
    assert summary["views"] == ["rrc", "rrc"] and 0 <= summary["networks"][0]["final_top1"] <= 100


# ------------------------------------------------------------------------------------------
# Recipes of your own


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


def test_the_package_still_exports_what_moved_to_its_modules():
    from ait import views
    from ait.views import kernels, recipes

    assert all(hasattr(views, name) for name in views.__all__)
    assert views.RECIPES is recipes.RECIPES  # one table: register_recipe and views.RECIPES see the same recipes
    assert views.Recipe is recipes.Recipe and views.parse_recipe is recipes.parse_recipe
    assert views.resized_crop is kernels.resized_crop and views.resized_crop_boxes is kernels.resized_crop_boxes
