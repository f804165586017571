"""timm's and torchvision's models (the real libraries, installed by make setup), import-path
factories and --import modules: built for the data, with forward_all, and errors that name them."""

import subprocess
import sys
import textwrap

import pytest
import timm
import torch
from safetensors.torch import save_file
from torch import nn

from ait import models
from ait.models.adapters import weights_target
from ait.models.outside import check_library_name
from ait.models.specs import parse


@pytest.mark.parametrize(
    "name,kwargs,spatial",
    [
        ("timm:resnet18", {}, True),
        ("timm:test_vit", {"img_size": 32}, False),
        ("timm:test_convnext", {}, True),
        ("torchvision:resnet18", {}, True),
        ("torchvision:mobilenet_v3_small", {}, True),
        ("torchvision:swin_t", {}, True),
        ("torchvision:vit_b_16", {"image_size": 32}, False),
    ],
)
def test_library_models_give_their_own_logits_and_each_layer_they_have(name, kwargs, spatial):
    torch.manual_seed(0)
    net = models.create(name, num_classes=7, in_channels=3, kwargs=kwargs).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = net.forward_all(x)
        inner = net.model(x)
    assert torch.allclose(out.logits, inner, atol=1e-5) and out.logits.shape == (2, 7)
    assert out.feature.ndim == 2 and out.feature.shape[0] == 2
    assert (out.feature_map is not None) == spatial
    if spatial:
        assert out.feature_map.ndim == 4 and out.feature_map.shape[0] == 2
    _, head = weights_target(net)
    assert isinstance(net.model.get_submodule(head), nn.Linear)


def test_swin_feature_map_is_channels_first():
    net = models.create("torchvision:swin_t", num_classes=3).eval()
    with torch.no_grad():
        out = net.forward_all(torch.randn(1, 3, 64, 64))
    assert out.feature_map.shape[1] == 768  # (N, C, h, w), not Swin's NHWC


@pytest.mark.parametrize("name", ["timm:resnet18", "torchvision:resnet18"])
def test_channels_and_classes_come_from_the_data(name):
    net = models.create(name, num_classes=4, in_channels=1).eval()
    with torch.no_grad():
        assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 4)


def test_keyword_arguments_reach_the_library():
    net = models.create("timm:test_vit", num_classes=3, kwargs={"img_size": 32, "drop_path_rate": 0.1})
    assert net.model.patch_embed.img_size == (32, 32)
    assert net.model.blocks[-1].drop_path1.drop_prob == pytest.approx(0.1)


def test_a_keyword_the_model_does_not_take_is_an_error_naming_it():
    with pytest.raises(
        models.ModelError, match=r"'torchvision:resnet18' cannot be built with kwargs \{'img_size': 32\}"
    ):
        models.create("torchvision:resnet18", num_classes=3, kwargs={"img_size": 32})


def test_a_keyword_value_the_model_refuses_is_an_error_naming_it_not_a_traceback():
    with pytest.raises(models.ModelError, match=r"'timm:resnet10t' cannot be built with kwargs \{'output_stride': 7\}"):
        models.create("timm:resnet10t", num_classes=3, kwargs={"output_stride": 7})


@pytest.mark.parametrize("text,close", [("timm:resnet181", "resnet18"), ("torchvision:resnet181", "resnet18")])
def test_unknown_library_names_suggest_close_ones(text, close):
    with pytest.raises(models.ModelError, match=rf"has no classification model .*close names: .*{close}"):
        check_library_name(parse(text))


def test_timm_pretrained_reads_the_local_cache_and_replaces_the_head(tmp_path):
    """A Hugging Face cache laid out as the hub writes it, in a fresh process pointed at it."""
    repo = "timm/test_resnet.r160_in1k"
    folder = tmp_path / "hub" / f"models--{repo.replace('/', '--')}"
    commit = "0" * 40
    (folder / "snapshots" / commit).mkdir(parents=True)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(commit)
    torch.manual_seed(3)
    published = timm.create_model("test_resnet.r160_in1k").state_dict()  # 1000 classes
    save_file(
        {k: v.contiguous() for k, v in published.items()}, str(folder / "snapshots" / commit / "model.safetensors")
    )
    torch.save(published, tmp_path / "published.pt")
    code = textwrap.dedent(
        f"""
        import torch
        from ait import models
        net = models.create("timm:test_resnet.r160_in1k", num_classes=10, pretrained=True)
        published = torch.load({str(tmp_path / "published.pt")!r})
        own = net.model.state_dict()
        assert own["fc.weight"].shape == (10, published["fc.weight"].shape[1])
        assert all(torch.equal(own[k], v) for k, v in published.items() if not k.startswith("fc."))
        try:
            models.create("timm:resnet18.a1_in1k", num_classes=10, pretrained=True)
        except models.ModelError as err:
            print(err)
        """
    )
    env = {"HF_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "pretrained weights are not in the local cache" in done.stdout and "Nothing is downloaded" in done.stdout


def test_a_missing_library_says_how_to_install_it():
    code = (
        "import sys; sys.modules['timm'] = None\n"  # what Python does for a package that is not installed
        "from ait import models\n"
        "try:\n    models.create('timm:resnet18', num_classes=10)\n"
        "except models.ModelError as err:\n    print(err)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "models need timm, which is not installed: pip install 'ait-train[timm]'" in done.stdout, done.stderr


def test_pretrained_is_timm_only():
    with pytest.raises(models.ModelError, match="pretrained weights come from timm only"):
        models.create("torchvision:resnet18", num_classes=10, pretrained=True)


FACTORY_MODULE = """
from torch import nn

def small_cnn(num_classes, in_channels=3, width=8):
    return nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(width, num_classes))

def classes_only(num_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, num_classes))
"""


@pytest.fixture
def factory_module(tmp_path, monkeypatch):
    """A module of the user's own, importable from the working directory as `python -m` would."""
    (tmp_path / "user_nets.py").write_text(FACTORY_MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "user_nets"
    sys.modules.pop("user_nets", None)


def test_an_import_path_factory_is_called_with_the_data_and_its_kwargs(factory_module):
    net = models.create("user_nets:small_cnn", num_classes=5, in_channels=1, kwargs={"width": 6})
    assert net.model[0].in_channels == 1 and net.model[0].out_channels == 6
    assert net.forward_all(torch.zeros(2, 1, 8, 8)).logits.shape == (2, 5)
    assert models.source("user_nets:small_cnn") == {"kind": "factory", "module": "user_nets"}
    net = models.create("user_nets:classes_only", num_classes=2)  # takes no in_channels: not passed
    assert net.forward_all(torch.zeros(1, 3, 8, 8)).logits.shape == (1, 2)


def test_an_import_path_factory_errors_name_what_is_wrong(factory_module):
    with pytest.raises(models.ModelError, match="takes no argument 'depth'"):
        models.create("user_nets:small_cnn", num_classes=5, kwargs={"depth": 3})
    with pytest.raises(models.ModelError, match="has no function 'big_cnn'"):
        models.create("user_nets:big_cnn", num_classes=5)
    with pytest.raises(models.ModelError, match="cannot import module 'no_such_nets'"):
        models.create("no_such_nets:small_cnn", num_classes=5)


def test_a_module_named_by_a_run_is_not_imported_unless_asked(factory_module):
    with pytest.raises(models.ModelError, match="does not import from a run directory.*--import user_nets"):
        models.create("user_nets:small_cnn", num_classes=5, allow_import=False)
    assert "user_nets" not in sys.modules
    models.import_plugins(["user_nets"])  # what --import does
    net = models.create("user_nets:small_cnn", num_classes=5, allow_import=False)
    assert net.forward_all(torch.zeros(1, 3, 8, 8)).logits.shape == (1, 5)


def test_import_plugins_takes_a_file_path_and_registers_its_models(tmp_path):
    (tmp_path / "my_zoo.py").write_text(
        "from ait import models\n"
        "from torch import nn\n"
        "@models.register('my_zoo_net')\n"
        "def make(num_classes, in_channels):\n"
        "    return nn.Sequential(nn.Conv2d(in_channels, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(),\n"
        "                         nn.Linear(4, num_classes))\n"
    )
    try:
        models.import_plugins([str(tmp_path / "my_zoo.py")])
        assert "my_zoo_net" in models.available()
        assert models.source("my_zoo_net") == {"kind": "module", "module": "my_zoo"}
        assert models.create("my_zoo_net", num_classes=3).forward_all(torch.zeros(1, 3, 8, 8)).logits.shape == (1, 3)
    finally:
        sys.modules.pop("my_zoo", None)
    with pytest.raises(models.ModelError, match="--import nothing_here.py: no such file"):
        models.import_plugins(["nothing_here.py"])


def test_a_torchvision_model_with_auxiliary_logits_is_refused_before_training_with_the_fix():
    with pytest.raises(models.ModelError, match=r"set models.torchvision:googlenet.kwargs.aux_logits=false"):
        models.create("torchvision:googlenet", num_classes=3)
    net = models.create("torchvision:googlenet", num_classes=3, kwargs={"aux_logits": False, "init_weights": False})
    net.train()
    assert net(torch.rand(2, 3, 64, 64)).shape == (2, 3)  # trains as a plain classifier
