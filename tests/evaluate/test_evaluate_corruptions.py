"""Common corruptions (CIFAR-10-C style): the 15 generators, the official-file reader, the cache,
corruption accuracy / mCE and `ait eval --corruptions`."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import ait
from ait.data.errors import DataError
from ait.evaluate import corruptions as corr
from ait.evaluate.cli import _corruptions_selected, _selected, add_eval_parser, run_eval
from ait.evaluate.corruption_eval import (
    corruption_accuracy,
    corruption_errors,
    mean_corruption_accuracy,
    mean_corruption_error,
)
from ait.evaluate.corruptions import (
    CORRUPTIONS,
    RANDOM_CORRUPTIONS,
    apply_corruption,
    corrupted_test_set,
    load_cifar_c,
)
from ait.evaluate.loading import load_run
from ait.runtime.predict import accuracy_table, predict_logits
from ait_testutils import SHARED_DATA, tiny_config

torch.set_num_threads(1)  # a 2-core machine with background jobs: one thread is faster and steadier
SEVERITIES = (1, 2, 3, 4, 5)


def smooth_image(n: int = 32) -> torch.Tensor:
    """uint8 (1, 3, n, n): smooth colour sinusoids and a ramp (no noise, no hard edges)."""
    y, x = torch.meshgrid(torch.arange(n, dtype=torch.float32), torch.arange(n, dtype=torch.float32), indexing="ij")
    r = 0.5 + 0.35 * torch.sin(2 * np.pi * x / 16) * torch.cos(2 * np.pi * y / 13)
    g = 0.5 + 0.35 * torch.cos(2 * np.pi * (x + y) / 20)
    b = 0.2 + 0.6 * x / (n - 1)
    return (torch.stack([r, g, b]) * 255).round().to(torch.uint8)[None]


def textured_images(count: int = 3, n: int = 32) -> torch.Tensor:
    """uint8 (count, 3, n, n) stand-ins for photographs: coloured blocks with hard edges, a smooth
    shading and pixel noise, seeded. Used where the real CIFAR images are absent."""
    g = torch.Generator().manual_seed(0)
    blocks = torch.rand(count, 3, 7, 7, generator=g)  # 7 does not divide 32: edges off every pixel grid
    edges = torch.nn.functional.interpolate(blocks, size=(n, n), mode="nearest")
    shade = torch.linspace(0.7, 1.0, n).view(1, 1, 1, n)
    noise = 0.06 * torch.randn(count, 3, n, n, generator=g)
    return ((edges * shade + noise).clamp(0, 1) * 255).round().to(torch.uint8)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    """The smooth synthetic image plus 3 real CIFAR-10 test images when the shared data is here,
    or 3 textured synthetic images otherwise."""
    path = SHARED_DATA / "cifar10" / "test.npz"
    if path.is_file():
        with np.load(path) as data:
            extra = torch.from_numpy(data["images"][[3, 7, 21]]).permute(0, 3, 1, 2).contiguous()
    else:
        extra = textured_images()
    return torch.cat([smooth_image(), extra])


@pytest.fixture(scope="module")
def all_sets(images) -> dict[tuple[str, int], torch.Tensor]:
    """Every corruption and severity of ``images`` with seed 0 (computed once for the module)."""
    return {(name, s): apply_corruption(images, name, s, seed=0) for name in CORRUPTIONS for s in SEVERITIES}


def mad(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.float() - b.float()).abs().mean().item()


def decorrelation(a: torch.Tensor, b: torch.Tensor) -> float:
    """1 - Pearson correlation of each image with its clean version, averaged over images."""
    a, b = a.float().flatten(1), b.float().flatten(1)
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    return (1 - (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))).mean().item()


def total_variation(a: torch.Tensor) -> float:
    a = a.float()
    return ((a[..., 1:, :] - a[..., :-1, :]).abs().mean() + (a[..., :, 1:] - a[..., :, :-1]).abs().mean()).item()


def non_decreasing(values, tol: float = 0.0) -> bool:
    return all(b >= a - tol for a, b in zip(values, values[1:]))


# ---------------------------------------------------------------- the generators
def test_the_fifteen_corruptions_of_the_benchmark_in_order():
    assert CORRUPTIONS == (
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
    assert RANDOM_CORRUPTIONS < set(CORRUPTIONS)


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_each_corruption_changes_every_image_keeps_shape_and_is_seeded(images, all_sets, name):
    for s in SEVERITIES:
        out = all_sets[name, s]
        assert out.shape == images.shape and out.dtype == torch.uint8 and out.is_contiguous()
        changed = (out != images).flatten(1).any(dim=1)
        assert changed.all(), f"{name} severity {s} left image(s) {torch.nonzero(~changed).flatten().tolist()} intact"
        assert out.float().std() > 10  # still an image, not a constant
    again = apply_corruption(images, name, 3, seed=0)
    assert torch.equal(again, all_sets[name, 3])  # deterministic for a seed
    other = apply_corruption(images, name, 3, seed=1)
    if name in RANDOM_CORRUPTIONS:
        assert not torch.equal(other, all_sets[name, 3])
    else:
        assert torch.equal(other, all_sets[name, 3])


def test_one_image_does_not_depend_on_the_global_rng(images):
    torch.manual_seed(123)
    np.random.seed(123)
    a = apply_corruption(images, "snow", 4, seed=5)
    torch.manual_seed(7)
    np.random.seed(7)
    torch.rand(10)
    np.random.rand(10)
    assert torch.equal(a, apply_corruption(images, "snow", 4, seed=5))


# Corruptions whose mean absolute difference from the clean image grows with severity. The others
# are tested below with the measure that does grow in the official constants.
MAD_MONOTONE = [c for c in CORRUPTIONS if c not in ("glass_blur", "frost", "elastic_transform", "motion_blur")]


@pytest.mark.parametrize("name", MAD_MONOTONE)
def test_mean_absolute_change_grows_with_severity(images, all_sets, name):
    values = [mad(all_sets[name, s], images) for s in SEVERITIES]
    assert non_decreasing(values) and values[-1] > values[0], f"{name}: {values}"


def test_motion_blur_grows_except_between_severities_3_and_4(images, all_sets):
    # (radius, sigma) = (6, 2) and (8, 2): the two extra taps lie beyond 3 sigma, so with the same
    # random angles the two severities are all but equal; every other step is a larger sigma.
    v = [mad(all_sets["motion_blur", s], images) for s in SEVERITIES]
    assert v[0] < v[1] < v[2] < v[4] and v[3] < v[4]
    assert v[3] == pytest.approx(v[2], rel=0.02)


def test_frost_takes_a_growing_share_of_the_image(images, all_sets):
    # The image weight falls (1 .. 0.75) as the frost weight rises (0.2 .. 0.45): the mean change peaks
    # at severity 3, while the frost-to-image ratio, hence the decorrelation from the clean image, grows.
    # Severities 3 and 4 share the frost weight (0.4; the image's falls 0.9 -> 0.85): each severity
    # draws its own crops of the photographs, whose brightness varies by far more than that step, so
    # on four images those two may come out in either order. Every other step grows.
    values = [decorrelation(all_sets["frost", s], images) for s in SEVERITIES]
    assert values[0] < values[1] < values[2] < values[4] and values[1] < values[3] < values[4], values


def test_glass_blur_monotone_parts(images, all_sets):
    # Severities 1-3: one pass of pixel moves under a growing blur (0.05, 0.25, 0.4); 4-5: two passes
    # (blur 0.25, 0.4). More passes change more; more blur leaves a smoother image within a group.
    change = [mad(all_sets["glass_blur", s], images) for s in SEVERITIES]
    assert max(change[:3]) < min(change[3:]), change
    tv = [total_variation(all_sets["glass_blur", s]) for s in SEVERITIES]
    assert tv[0] > tv[1] > tv[2] and tv[3] > tv[4], tv


def test_elastic_transform_trades_affine_for_elastic_distortion():
    # On a coordinate ramp (R = 8 x, G = 8 y) bilinear sampling is exact, so each output pixel tells the
    # source position it was sampled from. Fit an affine map to those positions (interior pixels):
    # the displacement shrinks with severity (affine amplitude 2.56 .. 0.96 px) while the non-affine
    # residual grows (elastic part: alpha / sigma grows). Severity 2's elastic part (alpha 1.6 px over
    # sigma 6.4 px, ~0.04 px) is below the 1/8 px resolution of the ramp, so it equals severity 1's.
    n = 32
    y, x = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    ramp = torch.stack([x * 8, y * 8, torch.full_like(x, 128)]).to(torch.uint8)[None].repeat(6, 1, 1, 1)
    inner = slice(6, 26)
    xs, ys = x[inner, inner].flatten().double(), y[inner, inner].flatten().double()
    design = torch.stack([xs, ys, torch.ones_like(xs)], dim=1)
    displacement, residual = [], []
    for s in SEVERITIES:
        out = apply_corruption(ramp, "elastic_transform", s, seed=0).double()
        src_x = out[:, 0, inner, inner].flatten(1) / 8 + 1 / 16  # truncation to uint8: half a step back
        src_y = out[:, 1, inner, inner].flatten(1) / 8 + 1 / 16
        displacement.append(((src_x - xs).abs().mean() + (src_y - ys).abs().mean()).item())
        res = []
        for target in (*src_x, *src_y):
            fit = design @ torch.linalg.lstsq(design, target[:, None]).solution
            res.append((target - fit[:, 0]).pow(2).mean().sqrt().item())
        residual.append(sum(res) / len(res))
    assert all(a > b for a, b in zip(displacement, displacement[1:])), displacement
    assert residual[1] < residual[2] < residual[3] < residual[4], residual
    assert residual[0] < 0.08 and residual[4] > 0.3, residual


def test_official_cifar_constants_show_in_simple_images():
    # Literal values of make_cifar_c.py (hendrycks/robustness), not read from the module under test.
    gray = torch.full((2, 3, 32, 32), 128, dtype=torch.uint8)
    for s, c in zip(SEVERITIES, (0.04, 0.06, 0.08, 0.09, 0.10)):  # no clipping around mid-gray
        noise = apply_corruption(gray, "gaussian_noise", s, seed=0).float() - 128
        assert noise.std().item() == pytest.approx(c * 255, rel=0.05)
    for s, c in zip(SEVERITIES, (500, 250, 100, 75, 50)):  # poisson(x c) / c: variance x / c
        noise = apply_corruption(gray, "shot_noise", s, seed=0).float() / 255
        assert noise.std().item() == pytest.approx((128 / 255 / c) ** 0.5, rel=0.06)
    for s, c in zip(SEVERITIES, (0.01, 0.02, 0.03, 0.05, 0.07)):  # each value replaced by 0 or 255 with probability c
        out = apply_corruption(gray.repeat(4, 1, 1, 1), "impulse_noise", s, seed=0)  # 24576 values
        assert (out == 255).float().mean().item() == pytest.approx(c / 2, rel=0.15)  # salt
        assert (out == 0).float().mean().item() == pytest.approx(c / 2, rel=0.15)  # pepper
    for s, c in zip(SEVERITIES, (0.05, 0.1, 0.15, 0.2, 0.3)):  # HSV value + c on a gray image: every channel + c
        out = apply_corruption(gray, "brightness", s, seed=0)
        assert (out.float() - (128 + c * 255)).abs().max() <= 1
    colour = smooth_image()
    for s, c in zip(SEVERITIES, (0.75, 0.5, 0.4, 0.3, 0.15)):  # (x - channel mean) * c + mean, truncated
        mean = colour.float().mean(dim=(2, 3), keepdim=True)
        want = ((colour.float() - mean) * c + mean).clamp(0, 255)
        assert (apply_corruption(colour, "contrast", s, seed=0).float() - want).abs().max() <= 1
    dot = torch.zeros(1, 3, 32, 32, dtype=torch.uint8)
    dot[:, :, 16, 16] = 255
    box = apply_corruption(dot, "defocus_blur", 5, seed=0)[0, 0].float()  # radius 1.5: a 3x3 disk
    assert box[15:18, 15:18].sub(255 / 9).abs().max() <= 1.5 and box.sum().item() == pytest.approx(255, abs=12)
    assert (box[15:18, 15:18] > 0).all() and box[14].sum() == 0 and box[:, 14].sum() == 0


def test_pixelate_and_jpeg_follow_pillow():
    from PIL import Image

    img = smooth_image()
    out = apply_corruption(img, "pixelate", 5, seed=0)  # 32 -> int(32 * 0.65) = 20 -> 32, box filter
    pil = Image.fromarray(img[0].permute(1, 2, 0).numpy()).resize((20, 20), Image.BOX).resize((32, 32), Image.BOX)
    assert torch.equal(out[0].permute(1, 2, 0), torch.from_numpy(np.array(pil)))
    q80 = apply_corruption(img, "jpeg_compression", 1, seed=0)
    q40 = apply_corruption(img, "jpeg_compression", 5, seed=0)
    assert mad(q80, img) < mad(q40, img)


def test_grayscale_images_are_supported_and_other_channel_counts_refused():
    gray = smooth_image()[:, :1]
    for name in CORRUPTIONS:
        out = apply_corruption(gray, name, 3, seed=0)
        assert out.shape == gray.shape and out.dtype == torch.uint8 and not torch.equal(out, gray), name
    with pytest.raises(ValueError, match="1- or 3-channel"):
        apply_corruption(torch.zeros(1, 2, 32, 32, dtype=torch.uint8), "fog", 1)


def test_bad_arguments_are_refused_with_the_valid_values():
    img = smooth_image()
    with pytest.raises(ValueError, match="valid names: gaussian_noise"):
        apply_corruption(img, "spatter", 1)
    for severity in (0, 6, 2.0, True):
        with pytest.raises(ValueError, match="1..5"):
            apply_corruption(img, "fog", severity)
    with pytest.raises(ValueError, match="uint8"):
        apply_corruption(img.float(), "fog", 1)
    with pytest.raises(ValueError, match="8x8"):
        apply_corruption(img[:, :, :4, :4], "fog", 1)


def test_chunked_generation_matches_for_every_chunk(images, monkeypatch):
    """Images past the first chunk get their own generator: still deterministic, still corrupted."""
    monkeypatch.setattr(corr, "_CHUNK", 2)
    a = apply_corruption(images, "gaussian_noise", 2, seed=0)
    assert torch.equal(a, apply_corruption(images, "gaussian_noise", 2, seed=0))
    assert (a != images).flatten(1).any(dim=1).all()


# ---------------------------------------------------------------- official files and the cache
def write_fake_cifar_c(folder: Path, names, per_block: int = 4, labels_per_block: bool = False, seed: int = 0):
    """<name>.npy (5 * per_block, 32, 32, 3) whose block k holds value 10 * k + image index; labels.npy."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name in names:
        data = np.zeros((5 * per_block, 32, 32, 3), dtype=np.uint8)
        for k in range(5):
            for i in range(per_block):
                data[k * per_block + i] = 10 * k + i
        data[:, 0, 0, :] = rng.integers(0, 255, (5 * per_block, 3))  # a little per-file content
        np.save(folder / f"{name}.npy", data)
    labels = np.arange(per_block, dtype=np.uint8) % 10
    np.save(folder / "labels.npy", labels if labels_per_block else np.tile(labels, 5))


def test_load_cifar_c_reads_each_severity_block(tmp_path):
    write_fake_cifar_c(tmp_path, ["fog"])
    for s in SEVERITIES:
        images, labels = load_cifar_c(tmp_path, "fog", s)
        assert images.shape == (4, 3, 32, 32) and images.dtype == torch.uint8
        assert images[:, :, 5, 5].tolist() == [[10 * (s - 1) + i] * 3 for i in range(4)]
        assert labels.dtype == torch.int64 and labels.tolist() == [0, 1, 2, 3]
    write_fake_cifar_c(tmp_path / "one_block", ["fog"], labels_per_block=True)
    assert load_cifar_c(tmp_path / "one_block", "fog", 5)[1].tolist() == [0, 1, 2, 3]


def test_load_cifar_c_errors_name_the_file(tmp_path):
    write_fake_cifar_c(tmp_path, ["fog"])
    with pytest.raises(DataError, match="snow.npy.*not found"):
        load_cifar_c(tmp_path, "snow", 1)
    with pytest.raises(DataError, match="not a directory"):
        load_cifar_c(tmp_path / "missing", "fog", 1)
    np.save(tmp_path / "frost.npy", np.zeros((12, 32, 32, 3), dtype=np.uint8))  # not 5 blocks
    with pytest.raises(DataError, match=r"frost\.npy.*\(5 \* n, H, W, 3\)"):
        load_cifar_c(tmp_path, "frost", 1)
    np.save(tmp_path / "frost.npy", np.zeros((10, 3, 32, 32), dtype=np.uint8))  # channels first
    with pytest.raises(DataError, match=r"frost\.npy"):
        load_cifar_c(tmp_path, "frost", 1)
    np.save(tmp_path / "labels.npy", np.zeros(7, dtype=np.uint8))
    with pytest.raises(DataError, match=r"labels\.npy.*20 \(or 4\)"):
        load_cifar_c(tmp_path, "fog", 1)
    (tmp_path / "labels.npy").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"labels\.npy.*not a readable"):
        load_cifar_c(tmp_path, "fog", 1)
    with pytest.raises(ValueError, match="valid names"):
        load_cifar_c(tmp_path, "Fog", 1)


def test_corrupted_test_set_is_cached_and_reused(images, tmp_path, monkeypatch):
    first = corrupted_test_set(images, "zoom_blur", 2, seed=0, cache_dir=tmp_path)
    assert torch.equal(first, apply_corruption(images, "zoom_blur", 2, seed=0))
    files = list(tmp_path.glob("zoom_blur-s2-*.pt"))
    assert len(files) == 1

    def fail(*args, **kwargs):
        raise AssertionError("regenerated although cached")

    monkeypatch.setattr(corr, "apply_corruption", fail)
    assert torch.equal(corrupted_test_set(images, "zoom_blur", 2, seed=0, cache_dir=tmp_path), first)
    monkeypatch.undo()
    # Another seed, severity or image set is another file; a damaged file is regenerated.
    corrupted_test_set(images, "zoom_blur", 2, seed=1, cache_dir=tmp_path)
    corrupted_test_set(images, "zoom_blur", 3, seed=0, cache_dir=tmp_path)
    corrupted_test_set(images[:2], "zoom_blur", 2, seed=0, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("zoom_blur-*.pt"))) == 4
    files[0].write_bytes(b"damaged")
    assert torch.equal(corrupted_test_set(images, "zoom_blur", 2, seed=0, cache_dir=tmp_path), first)


# ---------------------------------------------------------------- accuracy, mCE and the command
def test_mean_corruption_error_by_hand():
    run = {"fog": {"1": 10.0, "2": 30.0}, "snow": {"1": 20.0, "2": 20.0}}
    base = {"fog": {"1": 20.0, "2": 20.0}, "snow": {"1": 10.0, "2": 10.0, "3": 50.0}}
    res = mean_corruption_error(run, base)
    assert res["ce"] == {"fog": pytest.approx(100.0), "snow": pytest.approx(200.0)}
    assert res["mce"] == pytest.approx(150.0) and res["mean_error"] == pytest.approx(20.0)
    assert mean_corruption_error(run, run)["mce"] == pytest.approx(100.0)
    with pytest.raises(ValueError, match="'snow' at severities \\['3'\\]"):
        mean_corruption_error(base, run)
    with pytest.raises(ValueError, match="no error on corruption 'fog'"):
        mean_corruption_error(run, {"fog": {"1": 0.0, "2": 0.0}, "snow": base["snow"]})
    assert corruption_errors({"fog": {"1": 75.0}}) == {"fog": {"1": 25.0}}
    assert mean_corruption_accuracy({"fog": {"1": 70.0, "5": 50.0}, "snow": {"1": 90.0, "5": 30.0}}) == 60.0


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A one-epoch AIT run of the tiny network on synthetic data (80 test images of 3x32x32)."""
    root = tmp_path_factory.mktemp("corruption_runs")
    return Path(ait.train(tiny_config(root, "ait", train={"epochs": 1, "num_threads": 1}))["run_dir"])


NAMES, SEVS = ["gaussian_noise", "fog"], [1, 5]


def test_corruption_accuracy_local_and_official_sources_agree(run_dir, tmp_path):
    run = load_run(run_dir, device="cpu")
    acc = corruption_accuracy(run, NAMES, SEVS, seed=0, cache_dir=tmp_path / "cache")
    assert list(acc) == ["net0"] and list(acc["net0"]) == NAMES
    assert all(list(acc["net0"][n]) == ["1", "5"] for n in NAMES)
    test = run.data.test
    images = corrupted_test_set(test.images, "fog", 5, seed=0, cache_dir=tmp_path / "cache")
    want = accuracy_table(predict_logits(run.networks, images, run.prepare, run.precision), test.labels)
    assert acc["net0"]["fog"]["5"] == pytest.approx(want["net0"]["top1"])
    assert all(0 <= v <= 100 for per in acc["net0"].values() for v in per.values())

    # Official-format files holding exactly those corrupted sets give the same accuracies.
    folder = tmp_path / "CIFAR-10-C"
    folder.mkdir()
    for name in NAMES:
        blocks = [corrupted_test_set(test.images, name, s, seed=0, cache_dir=tmp_path / "cache") for s in SEVERITIES]
        np.save(folder / f"{name}.npy", torch.cat(blocks).permute(0, 2, 3, 1).numpy())
    np.save(folder / "labels.npy", np.tile(test.labels.numpy().astype(np.uint8), 5))
    official = corruption_accuracy(run, NAMES, SEVS, source=folder)
    assert official == acc

    np.save(folder / "labels.npy", np.full(5 * len(test), 12, dtype=np.uint8))  # more classes than the run has
    with pytest.raises(DataError, match="labels go up to 12 but the run has 10 classes"):
        corruption_accuracy(run, NAMES, SEVS, source=folder)
    with pytest.raises(ValueError, match="valid names"):
        corruption_accuracy(run, ["fog", "rain"], SEVS)
    with pytest.raises(ValueError, match="1..5"):
        corruption_accuracy(run, NAMES, [0, 1])


def parse(argv):
    parser = argparse.ArgumentParser(prog="ait")
    add_eval_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["eval", *argv])


def test_eval_corruptions_writes_the_json_format_and_mce_against_itself(run_dir, tmp_path, capsys):
    shutil.rmtree(run_dir / "eval", ignore_errors=True)
    argv = [
        str(run_dir),
        "--corruptions",
        "--corruption-names",
        ",".join(NAMES),
        "--severities",
        "1,5",
        "--baseline",
        str(run_dir),
        "--cache-dir",
        str(tmp_path),
        "--device",
        "cpu",
        "--seed",
        "3",
    ]
    assert run_eval(parse(argv)) == 0
    eval_dir = run_dir / "eval"
    assert sorted(p.name for p in eval_dir.iterdir()) == ["accuracy.json", "corruptions.json"]  # no transfer etc.
    data = json.loads((eval_dir / "corruptions.json").read_text())
    keys = ["seed", "source", "severities", "corruptions", "networks", "mean_top1", "mce", "baseline", "constants"]
    assert list(data) == [*keys, "mce_reference"] and data["constants"] == "cifar" and data["mce_reference"] is None
    assert data["seed"] == 3 and data["source"] == "local" and data["severities"] == [1, 5]
    assert data["corruptions"] == NAMES and list(data["networks"]) == ["net0"]
    assert list(data["networks"]["net0"]) == NAMES and list(data["networks"]["net0"]["fog"]) == ["1", "5"]
    values = [v for per in data["networks"]["net0"].values() for v in per.values()]
    assert data["mean_top1"]["net0"] == pytest.approx(sum(values) / 4)
    assert data["mce"]["net0"] == pytest.approx(100.0) and data["baseline"] == str(run_dir)
    assert len(list(tmp_path.glob("*.pt"))) == 4  # 2 corruptions x 2 severities, generated once for both runs
    out = capsys.readouterr().out
    assert "| corruption | net0 (test_tiny) |" in out and "| fog |" in out and "| mCE (%) vs" in out

    # Without --baseline: mce and baseline are null.
    assert (
        run_eval(
            parse(
                [
                    str(run_dir),
                    "--corruption-names",
                    "fog",
                    "--severities",
                    "2",
                    "--cache-dir",
                    str(tmp_path),
                    "--device",
                    "cpu",
                ]
            )
        )
        == 0
    )
    data = json.loads((eval_dir / "corruptions.json").read_text())
    assert data["mce"] is None and data["baseline"] is None and data["corruptions"] == ["fog"]


def test_corruptions_are_opt_in_and_their_options_are_checked(tmp_path):
    args = parse(["run", "--all"])
    assert not _corruptions_selected(args) and _selected(args) == (True, True, True)
    assert _selected(parse(["run"])) == (True, True, False) and not _corruptions_selected(parse(["run"]))
    assert _corruptions_selected(parse(["run", "--corruptions"])) and _selected(parse(["run", "--corruptions"])) == (
        False,
        False,
        False,
    )
    assert _selected(parse(["run", "--corruptions", "--transfer"])) == (True, False, False)
    assert _corruptions_selected(parse(["run", "--baseline", "b"]))
    assert parse(["run", "--severities", "5,1"]).severities == [5, 1]
    for bad in (
        ["--severities", "0,1"],
        ["--severities", "x"],
        ["--corruption-names", "fog,rain"],
        ["--severities", "1,1"],
    ):
        with pytest.raises(SystemExit):
            parse(["run", *bad])


def test_frost_crops_of_the_photographs_have_the_official_statistics():
    """The imagecorruptions package (the frost extra) ships the photographs; crops of five of them
    at the CIFAR scale give the official generator's figures: mean about 163, spread about 39."""
    from ait.evaluate import corruptions as c

    photos = c.frost_photographs()
    assert photos is not None and len(photos) == 5 and c.frost_source() == "photographs"
    crops = c._frost_crops(2000, 32, 32, np.random.default_rng(0), photos)
    assert abs(crops.mean() - c.OFFICIAL_FROST_MEAN) < 5 / 255
    assert abs(crops.mean(axis=(1, 2, 3)).std() - c.OFFICIAL_FROST_SPREAD) < 5 / 255


def test_the_procedural_frost_is_calibrated_to_the_official_statistics():
    from ait.evaluate import corruptions as c

    texture = c._frost_texture(2000, 32, 32, np.random.default_rng(0))
    assert abs(texture.mean() - c.OFFICIAL_FROST_MEAN) < 4 / 255
    assert abs(texture.mean(axis=(1, 2, 3)).std() - c.OFFICIAL_FROST_SPREAD) < 4 / 255
    assert 0 <= texture.min() and texture.max() <= 1


def test_the_cache_key_of_frost_names_its_source(monkeypatch):
    """Frost from the photographs and from the texture are different test sets: never one cache entry."""
    from ait.evaluate import corruptions as c

    images = torch.zeros(2, 3, 32, 32, dtype=torch.uint8)
    keys = {name: c.corruption_key(images, name, 3, 0) for name in ("frost", "fog")}
    monkeypatch.setattr(c, "frost_source", lambda: "procedural")  # as on a machine without the extra
    assert c.corruption_key(images, "frost", 3, 0) != keys["frost"]
    assert c.corruption_key(images, "fog", 3, 0) == keys["fog"]


@pytest.mark.parametrize("delta", [1, 2, 3, 4])
def test_glass_blur_moves_equal_the_official_loop(delta):
    """The official per-pixel loop (a copy from each position's source, in its visiting order) and
    the one gather of _glass_sources agree exactly, also for ImageNet-C's offsets of 2 to 4."""
    from ait.evaluate.corruptions import _glass_sources

    rng = np.random.default_rng(delta)
    n, h, w = 2, 19, 16
    before = rng.integers(0, 256, (n, h, w, 3)).astype(np.uint8)
    rows, cols = np.arange(h - delta, delta, -1), np.arange(w - delta, delta, -1)
    offsets = rng.integers(-delta, delta, size=(len(rows), len(cols), 2, n))
    dx, dy = offsets[:, :, 0].transpose(2, 0, 1), offsets[:, :, 1].transpose(2, 0, 1)
    official = before.copy()
    for i in range(n):
        for a, y in enumerate(rows):
            for b, x in enumerate(cols):
                ys, xs = y + dy[i, a, b], x + dx[i, a, b]
                official[i, y, x], official[i, ys, xs] = official[i, ys, xs], official[i, y, x]
    sources = _glass_sources(h, w, rows, cols, dx, dy)
    gathered = np.take_along_axis(before.reshape(n, h * w, 3), sources[..., None], axis=1).reshape(n, h, w, 3)
    assert np.array_equal(gathered, official)


def test_imagenet_constants_are_their_own_sets_and_harsher():
    from ait.evaluate.corruptions import corruption_key

    images = textured_images(2, 64)
    cifar = apply_corruption(images, "gaussian_noise", 3, seed=0)
    imagenet = apply_corruption(images, "gaussian_noise", 3, seed=0, constants="imagenet")
    change = [(x.float() - images.float()).abs().mean().item() for x in (cifar, imagenet)]
    assert change[1] > 1.5 * change[0]  # std 0.18 against 0.08
    keys = {corruption_key(images, "fog", 2, 0, c) for c in ("cifar", "imagenet")}
    assert len(keys) == 2
    with pytest.raises(ValueError, match="unknown corruption constants 'mnist'"):
        apply_corruption(images, "fog", 2, constants="mnist")


def test_cifar_cache_keys_are_those_of_before_the_constants():
    """Sets cached before ImageNet-C's constants existed stay valid: the CIFAR key is unchanged."""
    from ait.evaluate.corruptions import CODE_VERSION, corruption_key
    from ait.evaluate.testsets import images_key

    images = textured_images(1)
    expected = images_key(images, f"{CODE_VERSION}|corruption=fog|severity=2|seed=0")
    assert corruption_key(images, "fog", 2, 0) == expected


def test_reference_errors_alexnet_and_files(tmp_path):
    from ait.data.errors import DataError
    from ait.evaluate.corruption_eval import reference_errors, reference_mce

    name, alexnet = reference_errors("alexnet")
    assert name == "alexnet" and len(alexnet) == 15 and alexnet["brightness"] == pytest.approx(56.4592)
    accuracies = {"fog": {str(s): 40.0 for s in SEVERITIES}}  # 60 % error at every severity
    assert reference_mce(accuracies, alexnet) == pytest.approx(100 * 60 / 81.9324)
    with pytest.raises(ValueError, match="all five severities"):
        reference_mce({"fog": {"1": 40.0}}, alexnet)
    mine = tmp_path / "resnet50.json"
    mine.write_text(json.dumps({"fog": 30.0}))
    assert reference_errors(str(mine)) == ("resnet50", {"fog": 30.0})
    mine.write_text(json.dumps({"fgo": 30.0}))
    with pytest.raises(DataError, match=r"resnet50.json.*bad entries: \['fgo'\]"):
        reference_errors(str(mine))
    with pytest.raises(DataError, match="missing.json.*'alexnet' or a JSON file"):
        reference_errors(str(tmp_path / "missing.json"))


@pytest.mark.parametrize("radius, alias_blur", [(0.3, 0.4), (1.5, 0.1), (8, 0.5), (10, 0.5)])
def test_defocus_disk_is_smoothed_with_a_reflected_border(radius, alias_blur):
    """The official disk: cv2.GaussianBlur (3x3, 5x5 beyond radius 8) with its reflect-101 border,
    here reproduced with SciPy's 'mirror' correlation; ImageNet-C's radii 8 and 10 touch that border."""
    from scipy.ndimage import correlate

    from ait.evaluate.corruptions import _disk_kernel

    r = max(8, int(np.ceil(radius)))
    grid = np.arange(-r, r + 1)
    yy, xx = np.meshgrid(grid, grid, indexing="ij")
    disk = (xx**2 + yy**2 <= radius**2).astype(np.float64)
    disk /= disk.sum()
    half = 1 if radius <= 8 else 2
    g = np.exp(-(np.arange(-half, half + 1) ** 2) / (2.0 * alias_blur**2))
    expected = correlate(disk, np.outer(g / g.sum(), g / g.sum()), mode="mirror")
    kernel = _disk_kernel(radius, alias_blur)
    k = kernel.shape[0] // 2
    assert np.allclose(kernel, expected[r - k : r + k + 1, r - k : r + k + 1], atol=1e-7)
    assert kernel.sum() == pytest.approx(expected.sum(), abs=1e-6)  # the trimmed support loses nothing


def test_glass_blur_on_images_too_small_for_its_offsets():
    images = textured_images(2, 8)  # ImageNet-C's offset of 4 leaves no position to visit in 8 pixels
    out = apply_corruption(images, "glass_blur", 4, seed=0, constants="imagenet")
    assert out.shape == images.shape and out.dtype == torch.uint8
