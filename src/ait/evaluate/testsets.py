"""Fixed augmented test sets (paper sec. 4.4): generated once from a seed, then kept intact.

    "original"  the test set itself
    "crop"      zero-pad 4, one random 32x32 crop per image (no flip); for other sizes S the
                padding is round(S / 8) (28 for 224-pixel image-folder crops)
    "gray"      every image converted to grayscale (luma, replicated to 3 channels)
    "color"     one random brightness / contrast / saturation jitter (0.1) per image

Each set is a pure function of (source images, recipe, seed, CODE_VERSION). It is cached on disk as
``<cache>/<name>-<key prefix>.pt`` holding ``{"images": uint8 (N, C, H, W), "key": sha256 hex}``;
the key is checked on every load and a missing, damaged or mismatching file is regenerated.
Cache directory: the ``cache_dir`` argument, else ``$AIT_CACHE_DIR/testsets``, else
``$XDG_CACHE_HOME/ait/testsets`` (default ``~/.cache/ait/testsets``).

1-channel data (Fashion-MNIST): "gray" would equal "original" exactly, so it is skipped;
"color" is kept, because brightness and contrast still change a 1-channel image (saturation is
the only no-op part of it).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import torch

from ait.runtime.files import atomic_write
from ait.views import Recipe, augment

# Bump when generation changes (recipe semantics, draw order, chunking): old cache files then
# no longer match their key and are regenerated instead of silently reused.
CODE_VERSION = "ait-testsets-1"

TEST_SETS: dict[str, Recipe | None] = {
    "original": None,
    "crop": Recipe(flip_p=0.0, pad=4, name="crop"),
    "gray": Recipe(flip_p=0.0, gray_p=1.0, name="gray"),
    "color": Recipe(flip_p=0.0, brightness=0.1, contrast=0.1, saturation=0.1, name="color"),
}


def fixed_set_recipe(name: str, size: int) -> Recipe | None:
    """TEST_SETS[name] for images of side ``size``: the crop's padding scales with the image (an
    eighth of its side: 4 for CIFAR's 32 and Fashion-MNIST's 28 pixels, 28 for 224)."""
    recipe = TEST_SETS[name]
    if recipe is not None and recipe.pad:
        recipe = dataclasses.replace(recipe, pad=max(1, round(size / 8)))
    return recipe


# Sets that equal "original" exactly for 1-channel images.
_NO_OP_FOR_ONE_CHANNEL = ("gray",)

# Images augmented per call: bounds the float32 working memory of the colour steps.
_CHUNK = 4096


def applicable_test_sets(channels: int, names: Iterable[str] = tuple(TEST_SETS)) -> list[str]:
    """The names in ``names`` that make sense for images with ``channels`` channels, in order.

    Raises ValueError for unknown names.
    """
    names = list(names)
    unknown = [n for n in names if n not in TEST_SETS]
    if unknown:
        raise ValueError(f"unknown test set(s) {unknown}; valid names: {', '.join(TEST_SETS)}")
    if channels == 1:
        names = [n for n in names if n not in _NO_OP_FOR_ONE_CHANNEL]
    return names


def default_cache_dir() -> Path:
    root = os.environ.get("AIT_CACHE_DIR")
    if root:
        return Path(root).expanduser() / "testsets"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "ait" / "testsets"


def images_key(images: torch.Tensor, descriptor: str) -> str:
    """sha256 hex of ``descriptor`` (what is derived, how, code version) and the source images
    (dtype, shape, bytes): the cache key of any image set derived from ``images``."""
    h = hashlib.sha256()
    h.update(f"{descriptor}|{images.dtype}|{tuple(images.shape)}|".encode())
    array = images.detach().cpu().contiguous().numpy()
    h.update(memoryview(array).cast("B"))  # hashes in place, no copy of the image bytes
    return h.hexdigest()


def cache_key(images: torch.Tensor, recipe: Recipe, seed: int) -> str:
    """sha256 hex of the source images (dtype, shape, bytes), the recipe, the seed and CODE_VERSION."""
    return images_key(images, f"{CODE_VERSION}|{recipe!r}|seed={int(seed)}")


def generate_test_set(images: torch.Tensor, recipe: Recipe, seed: int) -> torch.Tensor:
    """uint8 (N, C, H, W) -> one fixed augmented copy, uint8 (N, C, H, W) on the CPU.

    Generated on the CPU with a CPU generator, so the result does not depend on the device the
    evaluation runs on.
    """
    generator = torch.Generator().manual_seed(int(seed))
    images = images.detach().cpu()
    out = [augment(images[i : i + _CHUNK], recipe, generator) for i in range(0, images.shape[0], _CHUNK)]
    return torch.cat(out).contiguous()


def _read_cached(path: Path, key: str, like: torch.Tensor) -> torch.Tensor | None:
    """The cached images if ``path`` holds a valid file for ``key``, else None."""
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # truncated or garbage file: treat as absent and regenerate
        return None
    if not isinstance(state, dict) or state.get("key") != key:
        return None
    images = state.get("images")
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.shape != like.shape:
        return None
    return images


def _write_atomic(images: torch.Tensor, key: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique temporary name (atomic_write): two processes generating the same set never write the same file.
    atomic_write(path, lambda f: torch.save({"images": images, "key": key}, f))


def fixed_test_set(images: torch.Tensor, name: str, seed: int = 0, cache_dir: str | Path | None = None) -> torch.Tensor:
    """The fixed test set ``name`` (a key of TEST_SETS) made from ``images``, uint8 (N, C, H, W).

    "original" returns ``images`` itself. Others are loaded from the cache when a valid file for
    exactly these images, recipe and seed is there, and generated and cached otherwise. An
    unwritable cache directory only costs a warning: the set is returned uncached.
    """
    if name not in TEST_SETS:
        raise ValueError(f"unknown test set {name!r}; valid names: {', '.join(TEST_SETS)}")
    if images.dim() != 4 or images.dtype != torch.uint8:
        raise ValueError(f"test images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
    recipe = fixed_set_recipe(name, min(images.shape[-2:]))
    if recipe is None:
        return images
    key = cache_key(images, recipe, seed)
    return cached_images(images, name, key, lambda: generate_test_set(images, recipe, seed), cache_dir)


def cached_images(
    images: torch.Tensor, stem: str, key: str, generate: Callable[[], torch.Tensor], cache_dir: str | Path | None = None
) -> torch.Tensor:
    """A uint8 image set of the shape of ``images``, cached as ``<cache>/<stem>-<key[:24]>.pt``.

    Returns the cached copy when that file is valid for ``key`` (see :func:`images_key`), else
    ``generate()``, written atomically. An unwritable cache directory only costs a warning: the
    set is returned uncached. Shared by the fixed test sets and the common corruptions.
    """
    path = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    path = path / f"{stem}-{key[:24]}.pt"
    cached = _read_cached(path, key, images)
    if cached is not None:
        return cached
    out = generate()
    try:
        _write_atomic(out, key, path)
    except OSError as err:
        warnings.warn(f"could not cache test set {stem!r} at {str(path)!r}: {err}", RuntimeWarning, stacklevel=3)
    return out


def fixed_test_sets(
    images: torch.Tensor, names: Iterable[str] = tuple(TEST_SETS), seed: int = 0, cache_dir: str | Path | None = None
) -> dict[str, torch.Tensor]:
    """{name: uint8 (N, C, H, W)} for the names that apply to these images (see applicable_test_sets)."""
    return {n: fixed_test_set(images, n, seed, cache_dir) for n in applicable_test_sets(images.shape[1], names)}
