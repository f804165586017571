"""ait: augmentation-invariant training of image classifiers.

Quick start (seconds on any machine: generated images, ResNet-20, 2 epochs)::

    >>> import ait
    >>> summary = ait.train("configs/smoke/synthetic_resnet20_ait.yaml", overrides=["out_dir=quickstart"])
    >>> summary["strategy"], summary["epochs"], summary["run_dir"]
    ('ait', 2, 'quickstart/smoke_synthetic_resnet20_ait/seed0')
    >>> 0 <= summary["networks"][0]["final_top1"] <= 100
    True

A config is a YAML file, a dict or an :class:`ait.config.Config`; overrides are ``KEY=VALUE``
strings, as ``--set`` on the command line. The summary is also written to ``RUN_DIR/summary.json``;
docs/design.md describes how the package is built.
"""

from ait._version import __version__

__all__ = ["__version__", "load_model", "train"]


def train(config, overrides=(), **kwargs):
    """Train a run described by ``config`` (an :class:`ait.config.Config`, a dict or a YAML path)
    with ``overrides`` ("KEY=VALUE" strings); keyword arguments as :func:`ait.engine.run.train`.

    Returns the run summary (the content of ``summary.json``).
    """
    from ait.engine.run import train as _train  # imported lazily: `import ait` stays cheap

    return _train(config, overrides, **kwargs)


def load_model(source, network=0, device="cpu"):
    """Network ``network`` of a run directory or an exported ``.safetensors`` file, in eval mode,
    with its preprocessing (input shape, normalisation, class names): see
    :func:`ait.evaluate.inference.load_model`."""
    from ait.evaluate.inference import load_model as _load_model

    return _load_model(source, network, device)
