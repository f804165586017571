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

__version__ = "0.1.0"


def train(config, overrides=(), **kwargs):
    """Train a run described by ``config`` (an :class:`ait.config.Config`, a dict or a YAML path)
    with ``overrides`` ("KEY=VALUE" strings); keyword arguments as :func:`ait.engine.run.train`.

    Returns the run summary (the content of ``summary.json``).
    """
    from ait.engine.run import train as _train  # imported lazily: `import ait` stays cheap

    return _train(config, overrides, **kwargs)
