"""Transfer matrix and intra-augmentation variation on hand-built networks with known invariances."""

import pytest
import torch
from evaluate_testutils import ColourNet, ConstantNet, LumaNet, colour_images, loaded_run
from torch.nn import functional as F

from ait.evaluate import (
    PAIRS,
    accuracy_table,
    predict_on_test_sets,
    transfer_matrix,
    variation_metrics,
)

PAIR_KEYS = ["original,crop", "original,gray", "original,color", "crop,gray", "crop,color", "gray,color"]


@pytest.fixture
def images():
    return colour_images(40)


@pytest.fixture
def labels():
    return torch.arange(40) % 10


def reference_symmetric_kl(a: torch.Tensor, b: torch.Tensor) -> float:
    """mean_i sum_k p log(p / q) + q log(q / p), in float64, written out by hand."""
    p, q = a.double().softmax(1), b.double().softmax(1)
    return ((p * (p.log() - q.log())).sum(1) + (q * (q.log() - p.log())).sum(1)).mean().item()


def test_colour_blind_network_does_not_vary_on_gray_but_colour_network_does(images, labels, tmp_path):
    run = loaded_run([LumaNet(), ColourNet()], images, labels)
    var = variation_metrics(run, seed=0, cache_dir=tmp_path)
    assert list(var) == ["net0", "net1"] and list(var["net0"]) == PAIR_KEYS
    luma, colour = var["net0"], var["net1"]
    # Gray differs from the original only by rounding luma to uint8 for the luma-only network.
    assert luma["original,gray"]["kl"] < 1e-6 and luma["original,gray"]["feature_l2"] < 1e-3
    assert colour["original,gray"]["kl"] > 1e-3 and colour["original,gray"]["feature_l2"] > 1e-2
    # Neither network is invariant to shifts.
    assert luma["original,crop"]["kl"] > 1e-3 and colour["original,crop"]["feature_l2"] > 1e-2


def test_variation_values_are_the_symmetric_kl_and_mean_feature_distance(images, labels, tmp_path):
    run = loaded_run([ColourNet(seed=2)], images, labels)
    outputs = predict_on_test_sets(run, seed=0, cache_dir=tmp_path)
    var = variation_metrics(run, outputs=outputs)["net0"]
    for a, b in PAIRS:
        pa, pb = outputs[a][0], outputs[b][0]
        assert var[f"{a},{b}"]["kl"] == pytest.approx(reference_symmetric_kl(pa.logits, pb.logits), rel=1e-4)
        dist = (pa.feature.double() - pb.feature.double()).pow(2).sum(1).sqrt().mean().item()
        assert var[f"{a},{b}"]["feature_l2"] == pytest.approx(dist, rel=1e-4)
    # Symmetric: swapping the sets of a pair changes nothing.
    swapped = variation_metrics(run, pairs=[("crop", "original")], outputs=outputs)["net0"]["crop,original"]
    assert swapped["kl"] == pytest.approx(var["original,crop"]["kl"], rel=1e-5)


def test_constant_network_has_zero_variation_and_equal_transfer(images, tmp_path):
    labels = torch.tensor([3] * 12 + [1] * 28)  # the constant network always says 3: top-1 = 30 %
    run = loaded_run([ConstantNet(favourite=3)], images, labels)
    var = variation_metrics(run, cache_dir=tmp_path)["net0"]
    assert all(v == {"kl": 0.0, "feature_l2": 0.0} for v in var.values()), var
    table = transfer_matrix(run, cache_dir=tmp_path)
    assert list(table) == ["net0"] and list(table["net0"]) == ["original", "crop", "gray", "color"]
    for name, acc in table["net0"].items():
        assert acc == table["net0"]["original"], name
        assert acc["top1"] == pytest.approx(30.0)


def test_transfer_matrix_has_ensemble_and_matches_accuracy_table_per_set(images, labels, tmp_path):
    run = loaded_run([ColourNet(seed=0), ColourNet(seed=1)], images, labels)
    outputs = predict_on_test_sets(run, ["original", "gray"], seed=0, cache_dir=tmp_path)
    table = transfer_matrix(run, outputs=outputs)
    assert list(table) == ["net0", "net1", "ensemble"]
    for name in ("original", "gray"):
        expected = accuracy_table([p.logits for p in outputs[name]], labels)
        assert {k: table[k][name] for k in table} == expected
    # Top-1 on the original set is not the same as on the gray set for a colour-sensitive network.
    logits = [p.logits.argmax(1) for p in outputs["original"]]
    gray_logits = [p.logits.argmax(1) for p in outputs["gray"]]
    assert any(not torch.equal(a, b) for a, b in zip(logits, gray_logits))


def test_one_channel_runs_leave_gray_out(tmp_path):
    images = colour_images(20, channels=1)
    run = loaded_run([ColourNet(in_channels=1)], images, torch.arange(20) % 10)
    outputs = predict_on_test_sets(run, cache_dir=tmp_path)
    assert list(outputs) == ["original", "crop", "color"]
    var = variation_metrics(run, outputs=outputs)["net0"]
    assert list(var) == ["original,crop", "original,color", "crop,color"]
    assert F.mse_loss(outputs["original"][0].logits, outputs["color"][0].logits) > 0
