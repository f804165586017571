"""ait export: safetensors with what the model is, ONNX checked with onnxruntime, torch.export programs."""

from __future__ import annotations

import stat
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from safetensors import safe_open

import ait
from ait.cli import main
from ait.engine.checkpoint import load_checkpoint
from ait.evaluate.export import export
from ait.evaluate.inference import ModelLoadError
from ait_testutils import one_torch_thread, tiny_config


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("export")
    with one_torch_thread():
        one = ait.train(tiny_config(tmp, "baseline", train={"epochs": 1}))
        two = ait.train(tiny_config(tmp, "dml", train={"epochs": 1}))
        timm_run = ait.train(
            tiny_config(tmp, "baseline", name="timm", strategy={"networks": ["timm:test_resnet"]}, train={"epochs": 1})
        )
    return {"one": Path(one["run_dir"]), "two": Path(two["run_dir"]), "timm": Path(timm_run["run_dir"])}


def images(n: int) -> torch.Tensor:
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(n))


def reference(run: Path, x: torch.Tensor, network: int = 0) -> torch.Tensor:
    """The logits of the run's network for [0, 1] images, in float32 PyTorch."""
    model = ait.load_model(run, network)
    with torch.no_grad():
        return model.network(model.preprocessing.normalise(x))


def test_safetensors_of_one_network_has_plain_keys_and_what_the_model_is(runs, tmp_path):
    out = tmp_path / "one.safetensors"
    assert main(["export", str(runs["one"]), "--out", str(out)]) == 0
    with safe_open(str(out), framework="pt") as f:
        metadata, keys = f.metadata(), set(f.keys())
    state = load_checkpoint(runs["one"] / "checkpoint.pt")["networks"][0]
    assert keys == set(state) and metadata["architecture"] == "test_tiny"
    assert '"classes": ["class0"' in metadata["model_input"] and '"input_shape": [3, 32, 32]' in metadata["model_input"]
    again = ait.load_model(out)
    x = images(3)
    assert torch.equal(again.predict(x), ait.load_model(runs["one"]).predict(x))
    assert main(["export", str(runs["one"]), "--out", str(out)]) == 2  # never overwritten


def test_safetensors_of_several_networks_prefixes_each(runs, tmp_path):
    out = tmp_path / "two.safetensors"
    export(runs["two"], out)
    with safe_open(str(out), framework="pt") as f:
        metadata, keys = f.metadata(), set(f.keys())
    assert {k.split(".")[0] for k in keys} == {"net0", "net1"} and metadata["net1.architecture"] == "test_tiny"
    for k in (0, 1):  # the file of both loads each, as the run does
        assert torch.equal(ait.load_model(out, k).predict(images(2)), ait.load_model(runs["two"], k).predict(images(2)))
    assert ait.load_model(out).architecture == "test_tiny"  # network 0 unless asked, as for a run
    with pytest.raises(ModelLoadError, match="network 2 asked for; it has networks 0..1"):
        ait.load_model(out, 2)
    export(out, tmp_path / "net1.onnx", network=1)  # an export of the export, as of the run
    session = onnxruntime.InferenceSession(str(tmp_path / "net1.onnx"), providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {"images": images(2).numpy()})
    np.testing.assert_allclose(logits, reference(runs["two"], images(2), network=1).numpy(), rtol=1e-4, atol=1e-5)
    export(runs["two"], tmp_path / "second.safetensors", network=1)
    with pytest.raises(ModelLoadError, match="network 1 asked for; it has networks 0..0"):
        ait.load_model(tmp_path / "second.safetensors", 1)  # one network: 1 is not silently 0
    assert torch.equal(
        ait.load_model(tmp_path / "second.safetensors").predict(images(2)),
        ait.load_model(runs["two"], 1).predict(images(2)),
    )


def test_a_timm_network_exports_weights_timm_loads(runs, tmp_path):
    import timm
    from safetensors.torch import load_file

    out = tmp_path / "timm.safetensors"
    export(runs["timm"], out)
    model = timm.create_model("test_resnet", num_classes=10)
    model.load_state_dict(load_file(str(out)))  # strict: every name as timm gives it
    model.eval()
    x = images(2)
    loaded = ait.load_model(runs["timm"])
    with torch.no_grad():
        assert torch.allclose(model(loaded.preprocessing.normalise(x)), reference(runs["timm"], x), atol=1e-6)


@pytest.mark.parametrize(("name", "architecture"), [("one", "test_tiny"), ("timm", "timm:test_resnet")])
def test_onnx_runs_in_onnxruntime_as_pytorch_does(runs, tmp_path, name, architecture):
    out = tmp_path / f"{name}.onnx"
    export(runs[name], out)
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    for n in (1, 5):  # any batch size
        x = images(n)
        (logits,) = session.run(None, {"images": x.numpy()})
        np.testing.assert_allclose(logits, reference(runs[name], x).numpy(), rtol=1e-4, atol=1e-5)
    properties = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert properties["ait.architecture"] == architecture and "mean" in properties["ait.model_input"]


def test_a_torch_export_program_loads_back_and_agrees(runs, tmp_path):
    out = tmp_path / "one.pt2"
    assert main(["export", str(runs["one"]), "--out", str(out)]) == 0
    program = torch.export.load(str(out)).module()
    for n in (1, 4):
        x = images(n)
        torch.testing.assert_close(program(x), reference(runs["one"], x), rtol=1e-5, atol=1e-6)


def test_bad_export_requests_are_named(runs, tmp_path):
    with pytest.raises(ModelLoadError, match="give --format safetensors, onnx or exported"):
        export(runs["one"], tmp_path / "model.bin")
    (tmp_path / "taken.onnx").write_text("mine")
    with pytest.raises(ModelLoadError, match="exists; choose another path"):
        export(runs["one"], tmp_path / "taken.onnx")
    assert (tmp_path / "taken.onnx").read_text() == "mine"
    with pytest.raises(ModelLoadError, match=r"the suffix '\.onnx' names onnx, not --format safetensors"):
        export(runs["one"], tmp_path / "o4.onnx", fmt="safetensors")
    assert not (tmp_path / "o4.onnx").exists()
    export(runs["one"], tmp_path / "weights.bin", fmt="safetensors")  # a suffix that names no format is the user's


@pytest.mark.parametrize("name", ["model.onnx", "model.safetensors"])
def test_an_export_into_a_new_folder_creates_it_readable_by_all_and_leaves_no_temporary_file(runs, tmp_path, name):
    out = tmp_path / "new" / "deeper" / name
    export(runs["one"], out)
    assert out.is_file() and [p.name for p in out.parent.iterdir()] == [name]
    assert stat.S_IMODE(out.stat().st_mode) == 0o644  # as every file ait writes (safetensors makes 0600)
    (tmp_path / "a_file").write_text("mine")
    with pytest.raises(ModelLoadError, match="cannot make its folder"):
        export(runs["one"], tmp_path / "a_file" / "model.onnx")


def test_weights_with_nan_are_exported_in_no_format(runs, tmp_path):
    from safetensors.torch import load_file, save_file

    good = tmp_path / "good.safetensors"
    export(runs["one"], good)
    with safe_open(str(good), framework="pt") as f:
        metadata = f.metadata()
    tensors = load_file(str(good))
    first = next(k for k, v in tensors.items() if v.is_floating_point())
    tensors[first] = torch.full_like(tensors[first], float("nan"))
    save_file(tensors, str(tmp_path / "nan.safetensors"), metadata=metadata)
    for name in ("again.safetensors", "again.onnx", "again.pt2"):
        with pytest.raises(ModelLoadError, match="hold NaN or infinite values; nothing exported"):
            export(tmp_path / "nan.safetensors", tmp_path / name)
        assert not (tmp_path / name).exists()
