"""Weights files into models: every tensor must fit, except a head replaced on purpose."""

import pickle

import pytest
import torch
from safetensors.torch import save_file

from ait import models
from ait.models.weights import read_state_dict


def zoo(num_classes=10, seed=0):
    torch.manual_seed(seed)
    return models.create("resnet20", num_classes=num_classes)


def saved(tmp_path, state, name="w.safetensors"):
    path = tmp_path / name
    if name.endswith(".safetensors"):
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)
    return path


@pytest.mark.parametrize("name", ["w.safetensors", "w.pt", "w.pth"])
def test_a_state_dict_loads_exactly(tmp_path, name):
    source, target = zoo(seed=1), zoo(seed=2)
    assert models.load_weights(target, saved(tmp_path, source.state_dict(), name), "resnet20") == []
    assert all(torch.equal(a, b) for a, b in zip(source.state_dict().values(), target.state_dict().values()))


@pytest.mark.parametrize(
    "wrap",
    [
        lambda s: {"state_dict": s},
        lambda s: {"model": s, "epoch": 3},
        lambda s: {f"module.{k}": v for k, v in s.items()},  # saved from a DDP wrapper
        lambda s: {f"net0.{k}": v for k, v in s.items()},  # ait export of one network
    ],
)
def test_common_wrappings_are_unwrapped(tmp_path, wrap):
    source, target = zoo(seed=1), zoo(seed=2)
    models.load_weights(target, saved(tmp_path, wrap(source.state_dict()), "w.pt"), "resnet20")
    assert torch.equal(target.head.weight, source.head.weight)


def test_a_head_of_another_class_count_is_an_error_unless_replaced_on_purpose(tmp_path):
    path = saved(tmp_path, zoo(num_classes=100, seed=1).state_dict())
    with pytest.raises(
        models.ModelError, match=r"of another shape: head.weight \(100, 64\) in the file, \(10, 64\) here"
    ):
        models.load_weights(zoo(), path, "resnet20")
    target = zoo(seed=2)
    fresh_head = target.head.weight.clone()
    kept = models.load_weights(target, path, "resnet20", replace_head=True)
    assert kept == ["head.weight", "head.bias"]
    assert torch.equal(target.head.weight, fresh_head)
    assert torch.equal(
        target.conv1.weight if hasattr(target, "conv1") else next(target.parameters()),
        next(zoo(num_classes=100, seed=1).parameters()),
    )


def test_other_misfits_are_listed_by_name(tmp_path):
    state = zoo().state_dict()
    state.pop(next(iter(state)))
    state["extra.weight"] = torch.zeros(3)
    with pytest.raises(models.ModelError, match=r"1 missing: .*; 1 unexpected: extra.weight"):
        models.load_weights(zoo(), saved(tmp_path, state), "resnet20")
    wrong = {k: (v[:1] if k.startswith("layer") and v.ndim else v) for k, v in zoo().state_dict().items()}
    with pytest.raises(models.ModelError, match="of another shape"):
        models.load_weights(zoo(), saved(tmp_path, wrong, "x.pt"), "resnet20", replace_head=True)


def test_files_that_are_not_weights_are_refused_with_their_name(tmp_path):
    with pytest.raises(models.ModelError, match="does not exist"):
        read_state_dict(tmp_path / "none.pt")
    with pytest.raises(models.ModelError, match="expected a .safetensors, .pt, .pth file"):
        read_state_dict(tmp_path / "w.ckpt")
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(models.ModelError, match="bad.safetensors' cannot be read as a state dict"):
        read_state_dict(tmp_path / "bad.safetensors")
    # A pickle that would run code when loaded: weights_only refuses it.
    (tmp_path / "code.pt").write_bytes(pickle.dumps(type("Evil", (), {"__reduce__": lambda self: (print, ("ran",))})()))
    with pytest.raises(models.ModelError, match="code.pt' cannot be read as a state dict"):
        read_state_dict(tmp_path / "code.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(models.ModelError, match="expected a mapping of names to tensors"):
        read_state_dict(tmp_path / "list.pt")
    two = {**{f"net0.{k}": v for k, v in zoo().state_dict().items()}, "net1.x": torch.zeros(1)}
    with pytest.raises(models.ModelError, match="holds several networks"):
        read_state_dict(saved(tmp_path, two, "two.pt"))


def test_timm_weights_go_into_the_wrapped_model(tmp_path):
    import timm

    torch.manual_seed(1)
    published = timm.create_model("test_resnet", num_classes=1000)
    path = saved(tmp_path, published.state_dict())
    net = models.create("timm:test_resnet", num_classes=10)
    assert models.load_weights(net, path, "timm:test_resnet", replace_head=True) == ["fc.weight", "fc.bias"]
    assert torch.equal(net.model.conv1[0].weight, published.conv1[0].weight)


def test_a_file_without_batchnorm_step_counters_loads_as_torch_loads_it(tmp_path):
    source, target = zoo(seed=1), zoo(seed=2)
    state = {k: v for k, v in source.state_dict().items() if not k.endswith("num_batches_tracked")}
    target.load_state_dict(state, strict=True)  # what torch accepts
    loaded = zoo(seed=2)
    assert models.load_weights(loaded, saved(tmp_path, state), "resnet20") == []
    for k, v in target.state_dict().items():  # the same tensors as torch's strict load
        torch.testing.assert_close(loaded.state_dict()[k], v, rtol=0, atol=0, msg=k)
    with pytest.raises(models.ModelError, match="1 missing: head.weight"):  # every other tensor is still needed
        models.load_weights(zoo(), saved(tmp_path, {k: v for k, v in state.items() if k != "head.weight"}, "b.pt"), "r")
