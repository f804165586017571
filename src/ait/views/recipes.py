"""What a view recipe is, by name: the :class:`Recipe` dataclass, the table of named recipes
(:data:`RECIPES`) and its grammar (:func:`parse_recipe`, :func:`parse_views`), and
:func:`register_recipe` for recipes of your own. No tensors are touched here: the steps a recipe
names are the kernels of :mod:`ait.views.kernels`, which :func:`ait.views.augment` applies.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

import torch

# Recipes made by a data loader from the decoded files, not by :func:`ait.views.augment` on a batch.
LOADER_RECIPES = ("rrc",)


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
        """True when :func:`ait.views.augment` returns its input unchanged."""
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


def base_of(recipe: Recipe) -> Recipe:
    """The crop and flip of a recipe: what its AugMix is applied on top of."""
    return Recipe(flip_p=recipe.flip_p, pad=recipe.pad)  # unnamed: equal crops and flips are one base
