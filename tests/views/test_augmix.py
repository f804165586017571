"""AugMix's operations against PIL's (which AugMix's own code uses), and the batched mix."""

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from ait.views import Recipe, augment
from ait.views import augmix as am


def images(n=4, seed=0, low=0, high=256) -> torch.Tensor:
    """uint8-valued float (N, 3, 16, 16): what the chains work on."""
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.integers(low, high, (n, 3, 16, 16)).astype(np.float32))


def pil(x: torch.Tensor) -> list[Image.Image]:
    return [Image.fromarray(img.permute(1, 2, 0).numpy().astype(np.uint8)) for img in x]


def back(imgs: list[Image.Image]) -> torch.Tensor:
    return torch.stack([torch.from_numpy(np.array(i)).permute(2, 0, 1).float() for i in imgs])


@pytest.mark.parametrize("low,high", [(0, 256), (40, 200), (100, 101)])  # a flat channel too
def test_autocontrast_and_equalize_are_pils(low, high):
    x = images(low=low, high=high)
    assert torch.equal(am.autocontrast(x), back([ImageOps.autocontrast(i) for i in pil(x)]))
    assert torch.equal(am.equalize(x), back([ImageOps.equalize(i) for i in pil(x)]))


def test_posterize_and_solarize_are_pils_at_each_samples_parameter():
    x = images()
    bits, thresholds = torch.tensor([4, 3, 2, 1]), torch.tensor([256, 200, 128, 7])
    expected = back([ImageOps.posterize(i, int(b)) for i, b in zip(pil(x), bits)])
    assert torch.equal(am.posterize(x, bits), expected)
    expected = back([ImageOps.solarize(i, int(t)) for i, t in zip(pil(x), thresholds)])
    assert torch.equal(am.solarize(x, thresholds.float()), expected)


def test_geometric_operations_resample_as_pil_does():
    x = images(n=3)
    degrees = torch.tensor([30.0, -12.0, 90.0])
    ours = am.rotate(x, degrees)
    theirs = back([i.rotate(float(d), resample=Image.BILINEAR) for i, d in zip(pil(x), degrees)])
    assert (ours - theirs).abs()[:, :, 5:-5, 5:-5].max() <= 1  # bilinear rounding; the filled corners left out
    shear = am._matrices(3, "cpu", b=torch.tensor([0.2, -0.1, 0.3]))
    ours = am.affine(x, shear)
    theirs = back(
        [
            i.transform((16, 16), Image.AFFINE, (1, s, 0, 0, 1, 0), resample=Image.BILINEAR)
            for i, s in zip(pil(x), [0.2, -0.1, 0.3])
        ]
    )
    assert (ours - theirs).abs()[:, :, 5:-5, 5:-5].max() <= 1
    move = am._matrices(3, "cpu", c=torch.tensor([2.0, -3.0, 0.0]))
    theirs = back([i.transform((16, 16), Image.AFFINE, (1, 0, t, 0, 1, 0)) for i, t in zip(pil(x), [2, -3, 0])])
    assert torch.equal(am.affine(x, move), theirs)  # whole-pixel shifts are exact


def test_augmix_is_seeded_per_sample_and_mixes_with_the_image():
    x = torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    a = am.augmix(x, 3.0, torch.Generator().manual_seed(5))
    assert a.shape == x.shape and 0 <= a.min() and a.max() <= 1
    assert torch.equal(a, am.augmix(x, 3.0, torch.Generator().manual_seed(5)))
    assert not torch.equal(a, am.augmix(x, 3.0, torch.Generator().manual_seed(6)))
    same = am.augmix(x[:1].expand(8, -1, -1, -1).contiguous(), 3.0, torch.Generator().manual_seed(5))
    assert len({round(float((s - x[0]).abs().mean()), 6) for s in same}) > 1  # each sample its own draws
    u8 = augment((x * 255).to(torch.uint8), "rp+augmix", torch.Generator().manual_seed(0))
    assert u8.dtype == torch.uint8 and u8.shape == x.shape
    with pytest.raises(ValueError, match="Recipe.augmix must be 0 or a severity"):
        Recipe(augmix=50)
