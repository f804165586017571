"""Fixed augmented test sets: deterministic, exact, cached by content, regenerated when stale."""

import warnings

import pytest
import torch
from evaluate_testutils import LUMA, colour_images

from ait.evaluate import testsets
from ait.evaluate.testsets import TEST_SETS, applicable_test_sets, fixed_test_set, fixed_test_sets


def shifted(image: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """(C, H, W) moved by (dy, dx) with zero fill: out[y, x] = image[y + dy, x + dx]."""
    c, h, w = image.shape
    padded = torch.nn.functional.pad(image, (4, 4, 4, 4))
    return padded[:, 4 + dy : 4 + dy + h, 4 + dx : 4 + dx + w]


def test_sets_are_deterministic_for_a_seed_and_differ_across_seeds(tmp_path):
    images = colour_images(24)
    for name in ("crop", "color"):
        a = fixed_test_set(images, name, seed=0, cache_dir=tmp_path / "a")
        b = fixed_test_set(images, name, seed=0, cache_dir=tmp_path / "b")  # generated afresh
        c = fixed_test_set(images, name, seed=1, cache_dir=tmp_path / "a")
        assert a.dtype == torch.uint8 and a.shape == images.shape
        assert torch.equal(a, b)
        assert not torch.equal(a, c)
        assert not torch.equal(a, images)
    assert fixed_test_set(images, "original", cache_dir=tmp_path) is images


def test_crop_is_an_exact_zero_filled_shift_of_at_most_4_pixels(tmp_path):
    images = colour_images(30)
    crop = fixed_test_set(images, "crop", seed=0, cache_dir=tmp_path)
    offsets = []
    for img, out in zip(images, crop):
        matches = [(dy, dx) for dy in range(-4, 5) for dx in range(-4, 5) if torch.equal(shifted(img, dy, dx), out)]
        assert len(matches) == 1, matches  # exactly one shift, no flip, no interpolation
        offsets.append(matches[0])
    assert len(set(offsets)) > 5  # one random offset per image, not one for the whole set


def test_gray_is_the_luma_of_every_pixel_and_color_keeps_geometry(tmp_path):
    images = colour_images(10)
    gray = fixed_test_set(images, "gray", cache_dir=tmp_path)
    luma = sum(w * images[:, k].float() / 255 for k, w in enumerate(LUMA))  # (N, H, W)
    for k in range(3):
        assert torch.equal(gray[:, k], gray[:, 0])
    assert (gray[:, 0].float() - luma * 255).abs().max() <= 1.0  # rounding to uint8 only
    color = fixed_test_set(images, "color", cache_dir=tmp_path)
    # Jitter of at most 10 % per factor: every pixel moves, but only a little (no crop, no flip).
    assert not torch.equal(color, images)
    assert (color.float() - images.float()).abs().mean() < 0.2 * 255


def test_cache_is_reused_and_regenerated_when_the_source_changes(tmp_path, monkeypatch):
    calls = []
    real = testsets.generate_test_set
    monkeypatch.setattr(testsets, "generate_test_set", lambda *a: calls.append(a[1].name) or real(*a))
    images = colour_images(12)
    first = fixed_test_set(images, "crop", seed=0, cache_dir=tmp_path)
    files = list(tmp_path.glob("crop-*.pt"))
    assert calls == ["crop"] and len(files) == 1
    mtime = files[0].stat().st_mtime_ns

    again = fixed_test_set(images.clone(), "crop", seed=0, cache_dir=tmp_path)  # same bytes, new tensor
    assert calls == ["crop"] and torch.equal(first, again)
    assert files[0].stat().st_mtime_ns == mtime

    changed = images.clone()
    changed[0, 0, 0, 0] ^= 1  # one bit of one pixel
    fixed_test_set(changed, "crop", seed=0, cache_dir=tmp_path)
    fixed_test_set(images, "crop", seed=3, cache_dir=tmp_path)
    assert calls == ["crop"] * 3 and len(list(tmp_path.glob("crop-*.pt"))) == 3
    assert not list(tmp_path.glob("*.tmp"))  # atomic writes leave no temporary files


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong_key", "wrong_shape"])
def test_damaged_or_mismatching_cache_file_is_regenerated(tmp_path, monkeypatch, damage):
    images = colour_images(12)
    good = fixed_test_set(images, "color", seed=0, cache_dir=tmp_path)
    (path,) = tmp_path.glob("color-*.pt")
    if damage == "garbage":
        path.write_bytes(b"not a torch file at all" * 10)
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    elif damage == "wrong_key":
        torch.save({"images": torch.zeros_like(images), "key": "0" * 64}, path)
    else:
        state = torch.load(path, weights_only=True)
        torch.save({"images": state["images"][:3], "key": state["key"]}, path)
    calls = []
    real = testsets.generate_test_set
    monkeypatch.setattr(testsets, "generate_test_set", lambda *a: calls.append(1) or real(*a))
    again = fixed_test_set(images, "color", seed=0, cache_dir=tmp_path)
    assert calls == [1] and torch.equal(again, good)
    assert torch.equal(torch.load(path, weights_only=True)["images"], good)  # the file was repaired


def test_cache_dir_defaults_to_env_and_unwritable_dir_only_warns(tmp_path, monkeypatch):
    monkeypatch.setenv("AIT_CACHE_DIR", str(tmp_path / "env"))
    images = colour_images(6)
    fixed_test_set(images, "crop")
    assert len(list((tmp_path / "env" / "testsets").glob("crop-*.pt"))) == 1

    blocker = tmp_path / "a_file"
    blocker.write_text("x")  # a file where the cache directory should go: mkdir fails, even as root
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fixed_test_set(images, "crop", cache_dir=blocker / "sub")
    assert out.shape == images.shape
    assert any("could not cache" in str(w.message) and str(blocker) in str(w.message) for w in caught)


def test_one_channel_data_skips_gray_only_and_unknown_names_fail(tmp_path):
    assert list(TEST_SETS) == ["original", "crop", "gray", "color"]
    assert applicable_test_sets(3) == ["original", "crop", "gray", "color"]
    assert applicable_test_sets(1) == ["original", "crop", "color"]
    sets = fixed_test_sets(colour_images(8, channels=1), seed=0, cache_dir=tmp_path)
    assert list(sets) == ["original", "crop", "color"]
    assert not torch.equal(sets["color"], sets["original"])  # brightness / contrast still act
    with pytest.raises(ValueError, match="blur"):
        applicable_test_sets(3, ["original", "blur"])
    with pytest.raises(ValueError, match="uint8"):
        fixed_test_set(torch.zeros(2, 3, 8, 8), "crop", cache_dir=tmp_path)
