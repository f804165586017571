"""t-SNE of variant features: sample choice, shapes, and a readable PNG."""

import numpy as np
import pytest
import torch
from evaluate_testutils import ColourNet, ConstantNet, colour_images, loaded_run

from ait.evaluate.tsne import TsneResult, choose_samples, make_variants, plot_tsne, tsne_features

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_samples_come_from_different_classes_when_possible():
    labels = torch.arange(60) % 10
    chosen = choose_samples(labels, 10, seed=0)
    assert len(set(labels[chosen].tolist())) == 10 and len(set(chosen.tolist())) == 10
    assert torch.equal(chosen, choose_samples(labels, 10, seed=0))
    assert not torch.equal(chosen, choose_samples(labels, 10, seed=1))
    # Which image of a class is drawn is random too, not always the first one of the class.
    assert len({frozenset(choose_samples(labels, 10, seed=s).tolist()) for s in range(5)}) > 1
    more = choose_samples(labels, 14, seed=0)  # 14 > 10 classes: every class once, then 4 repeats
    assert len(set(more.tolist())) == 14 and len(set(labels[more].tolist())) == 10
    with pytest.raises(ValueError, match="num_samples"):
        choose_samples(labels, 61, seed=0)


def test_variants_are_grouped_by_sample_and_differ():
    images = colour_images(3)
    v = make_variants(images, 5, seed=0)
    assert v.shape == (15, 3, 16, 16) and v.dtype == torch.uint8
    assert len({tuple(x.flatten().tolist()) for x in v[:5]}) > 1  # variants of one image differ


def test_tsne_shapes_labels_and_png(tmp_path):
    labels = torch.arange(30) % 6
    run = loaded_run([ColourNet(num_classes=6)], colour_images(30), labels, num_classes=6)
    res = tsne_features(run, num_samples=5, num_variants=4, seed=0)
    assert res.points.shape == (20, 2) and np.isfinite(res.points).all()
    assert res.sample.shape == res.variant.shape == res.label.shape == (20,)
    assert res.variant.tolist() == [0, 1, 2, 3] * 5
    assert len(set(res.sample.tolist())) == 5
    assert (res.label == labels[torch.as_tensor(res.sample)].numpy()).all()
    data = res.to_json()
    assert list(data) == ["seed", "num_samples", "num_variants", "points", "sample", "variant", "label"]
    assert len(data["points"]) == 20 and all(len(p) == 2 for p in data["points"])

    # Same seed, other network: the same images and variants, so panels share colours.
    other = tsne_features(
        loaded_run([ColourNet(num_classes=6, seed=5)], colour_images(30), labels, num_classes=6),
        num_samples=5,
        num_variants=4,
        seed=0,
    )
    assert (other.sample == res.sample).all()
    path = plot_tsne(
        {"baseline": res, "AIT (from JSON)": TsneResult.from_json(other.to_json())},
        tmp_path / "plots" / "tsne.png",
        class_names=run.data.test.classes,
    )
    blob = path.read_bytes()
    assert blob[:8] == PNG_SIGNATURE and len(blob) > 5000
    width = int.from_bytes(blob[16:20], "big")
    height = int.from_bytes(blob[20:24], "big")
    assert width > height  # two panels side by side


def test_input_independent_network_gives_one_point_instead_of_crashing_sklearn():
    # All features identical: sklearn's t-SNE with PCA init segfaults on this; we return one point.
    run = loaded_run([ConstantNet()], colour_images(12), torch.arange(12) % 10)
    res = tsne_features(run, num_samples=4, num_variants=3, seed=0)
    assert res.points.shape == (12, 2) and (res.points == 0).all()
    with pytest.raises(ValueError, match="network"):
        tsne_features(run, network=1)
