"""Evaluation of trained runs: accuracy, augmentation transfer (paper Table 5), intra-augmentation
variation (Figure 5) and t-SNE of features (Figure 6), on fixed augmented test sets (sec. 4.4);
beyond the paper, accuracy and mCE under the 15 common corruptions of CIFAR-10-C / CIFAR-100-C."""

from ait.evaluate.corruption_eval import corruption_accuracy, mean_corruption_error
from ait.evaluate.corruptions import CORRUPTIONS, apply_corruption, corrupted_test_set, load_cifar_c
from ait.evaluate.loading import LoadedRun, RunLoadError, load_run
from ait.evaluate.testsets import TEST_SETS, applicable_test_sets, fixed_test_set, fixed_test_sets
from ait.evaluate.transfer import predict_on_test_sets, transfer_matrix
from ait.evaluate.tsne import TsneResult, plot_tsne, tsne_features
from ait.evaluate.variation import PAIRS, variation_metrics
from ait.runtime.predict import Predictions, accuracy_table, evaluate_accuracy, predict_logits, predict_outputs

__all__ = [
    "CORRUPTIONS",
    "PAIRS",
    "TEST_SETS",
    "apply_corruption",
    "corrupted_test_set",
    "corruption_accuracy",
    "load_cifar_c",
    "mean_corruption_error",
    "LoadedRun",
    "Predictions",
    "RunLoadError",
    "TsneResult",
    "accuracy_table",
    "applicable_test_sets",
    "evaluate_accuracy",
    "fixed_test_set",
    "fixed_test_sets",
    "load_run",
    "plot_tsne",
    "predict_logits",
    "predict_on_test_sets",
    "predict_outputs",
    "transfer_matrix",
    "tsne_features",
    "variation_metrics",
]
