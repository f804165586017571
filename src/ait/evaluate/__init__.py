"""Evaluation: accuracy of one or several networks, and (later) transfer and invariance metrics."""

from ait.evaluate.accuracy import evaluate_accuracy, predict_logits

__all__ = ["evaluate_accuracy", "predict_logits"]
