"""Trained networks for inference without their data: ait.load_model, load_run(data=False), ait predict."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ait
from ait.cli import main
from ait.evaluate.inference import ModelLoadError, Preprocessing
from ait.evaluate.loading import load_run
from ait_testutils import one_torch_thread, tiny_config


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("inference")
    with one_torch_thread():
        summary = ait.train(tiny_config(tmp, "dml", train={"epochs": 1}))
    return Path(summary["run_dir"])


def test_load_model_predicts_as_the_evaluation_does(run):
    model = ait.load_model(run, network=1)
    full = load_run(run, device="cpu")
    assert model.preprocessing.input_shape == (3, 32, 32) and model.classes == full.data.test.classes
    images = full.data.test.images[:6]
    probabilities = model.predict(images)
    assert probabilities.shape == (6, 10) and torch.allclose(probabilities.sum(1), torch.ones(6))
    with torch.no_grad():
        logits = full.networks[1].float()(full.prepare(images).float())
    assert torch.allclose(probabilities, logits.softmax(1), atol=1e-6)
    assert model.architecture == "test_tiny" and not model.network.training


def test_load_run_without_data_gives_the_same_networks(run):
    light, full = load_run(run, device="cpu", data=False), load_run(run, device="cpu")
    assert light.data is None
    x = full.prepare(full.data.test.images[:4])
    assert torch.equal(light.prepare(full.data.test.images[:4]), x)
    with torch.no_grad():
        assert torch.equal(light.networks[0](x), full.networks[0](x))


def test_a_run_made_before_model_input_was_recorded_falls_back_to_its_summary(run, tmp_path):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(run, old)
    env = json.loads((old / "env.json").read_text())
    del env["model_input"]
    (old / "env.json").write_text(json.dumps(env))
    model = ait.load_model(old)
    assert model.classes == [str(i) for i in range(10)] and model.preprocessing.input_shape == (3, 32, 32)
    (old / "summary.json").unlink()
    with pytest.raises(ModelLoadError, match="records no model input"):
        ait.load_model(old)


def test_images_of_any_size_are_resized_and_centre_cropped(tmp_path):
    prep = Preprocessing((3, 32, 32), (0.5,) * 3, (0.25,) * 3, ("a", "b"))
    pixels = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "same.png")
    assert torch.equal(prep.image_tensor(tmp_path / "same.png"), torch.from_numpy(pixels).permute(2, 0, 1))
    Image.fromarray(np.zeros((40, 90, 3), np.uint8)).convert("L").save(tmp_path / "wide.jpg")
    assert prep.image_tensor(tmp_path / "wide.jpg").shape == (3, 32, 32)
    folder = Preprocessing((3, 8, 8), (0.5,) * 3, (0.25,) * 3, ("a",), eval_resize=10)
    stripes = np.zeros((20, 20, 3), np.uint8)
    stripes[:, :2] = 255  # only the border: gone after the resize to 10 and the centre crop of 8
    Image.fromarray(stripes).save(tmp_path / "stripes.png")
    assert folder.image_tensor(tmp_path / "stripes.png").max() < 128
    (tmp_path / "broken.png").write_bytes(b"not an image")
    with pytest.raises(ModelLoadError, match="broken.png: not an image file"):
        prep.image_tensor(tmp_path / "broken.png")


def test_a_photo_is_cropped_for_prediction_exactly_as_an_image_folder_run_evaluates_it(tmp_path):
    from ait.data.imagefolder import eval_transform

    folder = Preprocessing((3, 224, 224), (0.5,) * 3, (0.25,) * 3, ("a",), eval_resize=256)
    for w, h in ((640, 427), (451, 300), (375, 500)):  # sizes whose long side rounds and truncates apart
        pixels = np.random.default_rng(w).integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / f"{w}.png")
        expected = np.array(eval_transform(Image.fromarray(pixels), 224, 256), dtype=np.uint8)
        assert torch.equal(folder.image_tensor(tmp_path / f"{w}.png"), torch.from_numpy(expected).permute(2, 0, 1))


def test_sixteen_bit_images_are_refused_and_four_channel_models_read_rgba(tmp_path):
    deep = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")  # mode I;16: convert("RGB") clips 99% to 255
    prep = Preprocessing((3, 32, 32), (0.5,) * 3, (0.25,) * 3, ("a",))
    with pytest.raises(ModelLoadError, match=r"deep.png has 'I;16' pixels \(16-bit or float\)"):
        prep.image_tensor(tmp_path / "deep.png")
    rgba = np.random.default_rng(1).integers(0, 256, (32, 32, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    four = Preprocessing((4, 32, 32), (0.5,) * 4, (0.25,) * 4, ("a",))
    assert torch.equal(four.image_tensor(tmp_path / "rgba.png"), torch.from_numpy(rgba).permute(2, 0, 1))
    with pytest.raises(ModelLoadError, match="takes 5-channel input"):
        Preprocessing((5, 32, 32), (0.5,) * 5, (0.25,) * 5, ("a",)).image_tensor(tmp_path / "rgba.png")


def test_ait_predict_prints_the_top_classes_of_each_image(run, tmp_path, capsys):
    for name, size in (("a.png", (32, 32)), ("b.jpg", (64, 48))):
        Image.fromarray(np.full((*size, 3), 120, np.uint8)).save(tmp_path / name)
    assert main(["predict", str(run), str(tmp_path / "a.png"), str(tmp_path / "b.jpg"), "--top-k", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"{tmp_path / 'a.png'}: ") and lines[0].count("%") == 3
    assert main(["predict", str(tmp_path), str(tmp_path / "a.png")]) == 2
    assert "has no config.yaml" in capsys.readouterr().err
    for device, why in (("bogus", "bogus"), ("cuda:99", "torch sees")):
        assert main(["predict", str(run), str(tmp_path / "a.png"), "--device", device]) == 2
        err = capsys.readouterr().err
        assert f"cannot load '{run}' on device '{device}'" in err and why in err and len(err.strip().splitlines()) == 1


def test_what_is_not_a_model_is_named(tmp_path, run):
    with pytest.raises(ModelLoadError, match="expected a run directory or an exported .safetensors file"):
        ait.load_model(tmp_path / "nothing.bin")
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "bare.safetensors"))
    with pytest.raises(ModelLoadError, match="holds no model description.*ait eval --model NAME --weights FILE"):
        ait.load_model(tmp_path / "bare.safetensors")
    with pytest.raises(ModelLoadError, match="network 2 asked for; it has networks 0..1"):
        ait.load_model(run, network=2)
