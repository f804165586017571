"""Split BatchNorm: a BatchNorm per view in training, the main one in evaluation; checkpoints and
exports of a split model load into the plain model."""

import pytest
import torch
from torch import nn

import ait
from ait import models
from ait.config import ConfigError, load_config
from ait.engine.checkpoint import load_checkpoint
from ait.evaluate.export import export
from ait.models.split_bn import SplitBatchNorm2d, convert, main_only
from ait_testutils import one_torch_thread, tiny_config


def test_each_view_has_its_own_batchnorm_in_training_and_the_main_one_in_evaluation():
    torch.manual_seed(0)
    plain = nn.BatchNorm2d(4)
    split = convert(nn.Sequential(plain), num_splits=3)[0]
    assert isinstance(split, SplitBatchNorm2d) and len(split.aux_bn) == 2
    with torch.no_grad():
        split.aux_bn[0].weight.fill_(2.0)
    views = [torch.randn(5, 4, 6, 6) * (k + 1) + k for k in range(3)]
    out = split(torch.cat(views)).chunk(3)
    for k, (view, got) in enumerate(zip(views, out)):
        reference = nn.BatchNorm2d(4).train()
        with torch.no_grad():
            reference.weight.fill_(2.0 if k == 1 else 1.0)
        torch.testing.assert_close(got, reference(view))  # normalised by its own statistics
    assert not torch.equal(split.running_mean, split.aux_bn[0].running_mean)
    split.eval()
    x = torch.randn(4, 4, 6, 6)
    main = nn.BatchNorm2d(4).eval()
    main.load_state_dict(main_only(split.state_dict()))
    torch.testing.assert_close(split(x), main(x))
    with pytest.raises(ValueError, match="does not split into 3 views"):
        split.train()(torch.randn(4, 4, 2, 2))


def test_a_split_batchnorm_run_evaluates_and_exports_as_the_plain_model(tmp_path):
    cfg = tiny_config(tmp_path, "ait", models={"test_tiny": {"split_bn": True}}, train={"epochs": 1})
    with one_torch_thread():
        summary = ait.train(cfg)
    run = summary["run_dir"]
    weights = load_checkpoint(f"{run}/checkpoint.pt")["networks"][0]
    assert any(".aux_bn.0." in k for k in weights)
    model = ait.load_model(run)  # the plain architecture: aux layers left out
    assert not any(isinstance(m, SplitBatchNorm2d) for m in model.network.modules())
    export(run, tmp_path / "plain.safetensors")
    from safetensors.torch import load_file

    plain = models.create("test_tiny", num_classes=10)
    plain.load_state_dict(load_file(str(tmp_path / "plain.safetensors")))  # strict: no cleaning step
    x = torch.randn(2, *model.preprocessing.input_shape)
    with torch.no_grad():  # the exported file is the network load_model evaluates, main BN and all
        torch.testing.assert_close(plain.eval()(x), model.network(x))


def test_split_batchnorm_needs_views_to_split_by():
    with pytest.raises(ConfigError, match="models.resnet20.split_bn: expected false for a strategy"):
        load_config(
            {
                "strategy": {"name": "baseline", "networks": ["resnet20"], "views": ["rp"]},
                "models": {"resnet20": {"split_bn": True}},
            }
        )


def test_a_plain_checkpoint_starts_a_split_run_each_view_s_batchnorm_a_copy_of_the_main_one(tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(3)
    plain = models.create("test_tiny", num_classes=10)
    save_file({k: v.contiguous() for k, v in plain.state_dict().items()}, str(tmp_path / "start.safetensors"))
    split = convert(models.create("test_tiny", num_classes=10), num_splits=2)
    models.load_weights(split, tmp_path / "start.safetensors", "test_tiny")
    state, start = split.state_dict(), plain.state_dict()
    aux = [k for k in state if ".aux_bn.0." in k]
    assert aux and all(torch.equal(state[k], start[k.replace("aux_bn.0.", "")]) for k in aux)
    assert all(torch.equal(state[k], v) for k, v in start.items())


def test_split_bn_on_a_model_with_nothing_to_split_is_refused_not_ignored():
    timm = pytest.importorskip("timm")
    act_bn = timm.create_model("test_efficientnet", num_classes=10)  # timm's BatchNormAct2d throughout
    convert(act_bn, num_splits=2)
    with pytest.raises(models.ModelError, match=r"models.timm:x.split_bn: nothing to split .*BatchNormAct2d"):
        models.split_bn.check_split(act_bn, "timm:x")
    with pytest.raises(models.ModelError, match="it has no BatchNorm layer"):
        models.split_bn.check_split(nn.Sequential(nn.Conv2d(3, 4, 3), nn.LayerNorm(4)), "mine")
    models.split_bn.check_split(convert(models.create("test_tiny", num_classes=10), 2), "test_tiny")  # splits: fine
