"""Prediction over batches and accuracy tables, shared by the training loop and the evaluations."""

import pytest
import torch

from ait import models
from ait.runtime.precision import Precision
from ait.runtime.predict import accuracy_table, predict_batches, predict_logits, predict_outputs, topk_accuracy

CPU = Precision(torch.device("cpu"), None, False)


def prepare(images: torch.Tensor) -> torch.Tensor:
    return images.float().div(255.0).sub(0.5).div(0.25)


@pytest.fixture
def networks():
    torch.manual_seed(0)
    return [models.create("test_tiny", 10).eval(), models.create("test_tiny", 10).eval()]


@pytest.fixture
def images():
    return torch.randint(0, 256, (40, 3, 16, 16), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)


def test_predict_outputs_matches_forward_all_and_predict_logits(networks, images):
    preds = predict_outputs(networks, images, prepare, CPU, batch_size=7)
    logits = predict_logits(networks, images, prepare, CPU, batch_size=7)
    with torch.no_grad():
        direct = networks[0].forward_all(prepare(images))
    assert preds[0].logits.shape == (40, 10) and preds[0].feature.shape == (40, 16)
    torch.testing.assert_close(preds[0].feature, direct.feature)
    for p, lg in zip(preds, logits):
        torch.testing.assert_close(p.logits, lg)


def test_predict_batches_restores_training_mode_and_refuses_no_images(networks, images):
    networks[0].train()
    predict_batches(networks, [images[:5], images[5:9]], prepare, CPU, features=False)
    assert networks[0].training and not networks[1].training
    with pytest.raises(ValueError, match="no images"):
        predict_batches(networks, [], prepare, CPU)


def test_accuracy_table_counts_top1_top5_and_the_ensemble_of_probabilities():
    labels = torch.tensor([0, 1, 2, 3])
    right = torch.eye(10)[labels] * 5  # (4, 10): every prediction right
    wrong = torch.eye(10)[(labels + 1) % 10] * 5  # every top-1 wrong, the label second
    wrong[:, :][torch.arange(4), labels] = 4
    table = accuracy_table([right, wrong], labels)
    assert table["net0"] == {"top1": 100.0, "top5": 100.0}
    assert table["net1"] == {"top1": 0.0, "top5": 100.0}
    assert table["ensemble"]["top1"] == 100.0  # 5 + 4 beats 0 + 5 once softmaxed and averaged
    assert topk_accuracy(wrong, labels, 1) == 0.0 and topk_accuracy(wrong, labels, 2) == 100.0
    assert set(accuracy_table([right], labels)) == {"net0"}  # one network: no ensemble


def test_accuracy_is_the_exact_percentage_of_hits():
    labels = torch.zeros(10, dtype=torch.long)
    logits = torch.zeros(10, 3)
    logits[0, 0] = 1.0  # one hit in ten
    logits[1:, 1] = 1.0
    assert topk_accuracy(logits, labels, 1) == 10.0  # a float32 mean gave 10.000000149011612
