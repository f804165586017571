"""Training: the branch trainer (any strategy), optimisers, run directories, the run loop."""

from ait.engine.run import train
from ait.engine.trainer import BranchTrainer, NonFiniteLossError

__all__ = ["BranchTrainer", "NonFiniteLossError", "train"]
