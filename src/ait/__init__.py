"""ait: augmentation-invariant training of image classifiers.

Quick start::

    import ait
    summary = ait.train(ait.config.load_config("configs/cpu/cifar10_ait_resnet20.yaml"))
"""

__version__ = "0.1.0"


def train(config, **kwargs):
    """Train a run described by ``config`` (an :class:`ait.config.Config`, a dict or a YAML path).

    Returns the run summary (the content of ``summary.json``). See :func:`ait.engine.train`.
    """
    from ait.engine.run import train as _train  # imported lazily: `import ait` stays cheap

    return _train(config, **kwargs)
