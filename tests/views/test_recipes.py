"""Tests for ait.views.recipes: the named recipes, their grammar and a Recipe's own checks."""

from __future__ import annotations

import dataclasses

import pytest

from ait.views import RECIPES, Recipe, parse_recipe, parse_views


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


def test_noise_and_blur_strengths_are_checked():
    with pytest.raises(ValueError, match="Recipe.blur must be 0 or a standard deviation"):
        Recipe(blur=20.0)
    with pytest.raises(ValueError, match="Recipe.noise must be a finite number >= 0"):
        Recipe(noise=-0.1)
