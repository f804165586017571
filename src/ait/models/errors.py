"""The error of a model that cannot be named, built or initialised as asked."""


class ModelError(ValueError):
    """A model name, keyword argument, weights file or layer that does not fit; names what and why."""

    exit_status = 2  # `ait` ends with this status and a one-line message (ait.cli.run_handler)
