"""Every Python snippet of the README and of the package's docstrings runs, so none can rot.

Docstring snippets are doctests (their outputs are checked); the README's ```python blocks are
executed. Each runs in a fresh workspace holding what the snippets read: the repository's
configs, the two smoke runs at their default run directories (``ait train configs/smoke/...``), a
tiny ImageNet-layout folder and a folder in the layout of the official CIFAR-10-C files.
"""

from __future__ import annotations

import doctest
import importlib
import os
import pkgutil
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import ait
from ait import views
from ait_testutils import REPO, make_image_folder, one_torch_thread


def doctest_modules() -> list[str]:
    """The modules of ait whose docstrings hold examples (``ait.__main__`` runs the CLI on import)."""
    names = ["ait"] + [m.name for m in pkgutil.walk_packages(ait.__path__, "ait.") if m.name != "ait.__main__"]
    finder = doctest.DocTestFinder(exclude_empty=True)
    return [n for n in sorted(names) if any(t.examples for t in finder.find(importlib.import_module(n), n))]


def readme_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), re.S)


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    root = tmp_path_factory.mktemp("snippets")
    (root / "configs").symlink_to(REPO / "configs")
    cwd = Path.cwd()
    os.chdir(root)
    try:
        with one_torch_thread():
            for name in ("baseline", "ait"):
                ait.train(f"configs/smoke/synthetic_resnet20_{name}.yaml", ["train.epochs=1", "train.progress=none"])
    finally:
        os.chdir(cwd)
    make_image_folder(root / "imagenet", train_per_class=4, val_per_class=2, classes="abc")
    official = root / "data" / "CIFAR-10-C"
    official.mkdir(parents=True)
    rng = np.random.default_rng(0)
    np.save(official / "fog.npy", rng.integers(0, 256, (500, 32, 32, 3), dtype=np.uint8))  # 5 severities x 100
    np.save(official / "labels.npy", np.arange(500) % 10)
    return root


@pytest.fixture(autouse=True)
def recipes_restored():
    """Snippets register recipes of their own (ait.views.register_recipe), whose functions die
    with the snippet's namespace: the table of recipes is restored after each test."""
    saved = dict(views.RECIPES)
    yield
    views.RECIPES.clear()
    views.RECIPES.update(saved)


@pytest.fixture
def workspace(template, tmp_path, monkeypatch):
    ws = tmp_path / "workspace"
    shutil.copytree(template, ws, symlinks=True)
    monkeypatch.chdir(ws)
    monkeypatch.setenv("AIT_CACHE_DIR", str(tmp_path / "cache"))
    with one_torch_thread():
        yield ws


def test_the_modules_that_document_by_example_are_found():
    found = set(doctest_modules())
    assert {"ait", "ait.config", "ait.strategies", "ait.engine.run", "ait.evaluate.pipeline", "ait.sweep"} <= found


@pytest.mark.parametrize("name", doctest_modules())
def test_docstring_examples_run(name, workspace):
    module = importlib.import_module(name)
    report: list[str] = []
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in doctest.DocTestFinder(exclude_empty=True).find(module, name):
        runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)
    assert runner.tries > 0


@pytest.mark.parametrize("index", range(len(readme_blocks())))
def test_readme_python_blocks_run(index, tmp_path, monkeypatch):
    (tmp_path / "configs").symlink_to(REPO / "configs")  # a clean checkout's view: configs, no runs
    monkeypatch.chdir(tmp_path)
    with one_torch_thread():
        exec(compile(readme_blocks()[index], f"README.md python block {index + 1}", "exec"), {})
