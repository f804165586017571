"""A small, seeded, learnable image dataset for tests and smoke runs (no files needed)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ait.data.arrays import ImageArrays

__all__ = ["make_synthetic_split"]


def make_synthetic_split(
    n_train: int,
    n_test: int,
    seed: int = 0,
    num_classes: int = 10,
    image_size: int = 32,
    channels: int = 3,
) -> tuple[ImageArrays, ImageArrays]:
    """Train and test sets of uint8 (N, channels, image_size, image_size), balanced classes.

    Each class is a smooth random colour pattern (a 4x4 grid upsampled), so it survives the
    crops and flips of the augmentation recipes; each image adds Gaussian pixel noise and a
    random brightness offset. Same arguments, same data; train and test share the class patterns.
    """
    if n_train < 1 or n_test < 1:
        raise ValueError(f"n_train and n_test must be >= 1, got {n_train}, {n_test}")
    if num_classes < 2 or channels < 1 or image_size < 4:
        raise ValueError(
            f"need num_classes >= 2, channels >= 1, image_size >= 4; got {num_classes}, {channels}, {image_size}"
        )
    g = torch.Generator().manual_seed(int(seed))
    grid = torch.rand(num_classes, channels, 4, 4, generator=g)  # values in [0, 1]
    templates = F.interpolate(grid, size=(image_size, image_size), mode="bilinear", align_corners=False)  # (K, C, S, S)

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = (torch.arange(n) % num_classes)[torch.randperm(n, generator=g)]
        noise = 0.08 * torch.randn(n, channels, image_size, image_size, generator=g)
        shift = 0.1 * (torch.rand(n, 1, 1, 1, generator=g) - 0.5)
        x = (templates[labels] + noise + shift).clamp(0, 1)
        return (x * 255).round().to(torch.uint8).contiguous(), labels

    classes = [f"class{i}" for i in range(num_classes)]
    source = f"<synthetic seed={seed}>"
    train_images, train_labels = draw(n_train)
    test_images, test_labels = draw(n_test)
    return (
        ImageArrays(train_images, train_labels, classes, name="synthetic-train", source=source),
        ImageArrays(test_images, test_labels, list(classes), name="synthetic-test", source=source),
    )
