"""The numpy kernels behind the common corruptions: border rules, filters, samplers, fractals."""

import numpy as np
import pytest

from ait.evaluate import kernels


def test_border_maps_follow_opencv_scipy_and_edge_rules():
    i = np.arange(-2, 6)
    assert kernels.reflect101(i, 4).tolist() == [2, 1, 0, 1, 2, 3, 2, 1]  # dcb|abcd|cba
    assert kernels.symmetric(i, 4).tolist() == [1, 0, 0, 1, 2, 3, 3, 2]  # ba|abcd|dc
    assert kernels.nearest(i, 4).tolist() == [0, 0, 0, 1, 2, 3, 3, 3]  # aa|abcd|dd


def test_gaussian_kernel_has_scipys_radius_and_sums_to_one():
    k = kernels.gaussian_kernel(1.0, truncate=4.0)
    assert len(k) == 9 and k.sum() == pytest.approx(1.0) and np.allclose(k, k[::-1]) and k.argmax() == 4
    assert kernels.gaussian_kernel(0.0, 4.0).tolist() == [1.0]


def test_filters_keep_constants_and_move_mass_as_expected():
    rng = np.random.default_rng(0)
    flat = np.full((2, 8, 8, 3), 0.25, dtype=np.float32)
    assert np.allclose(kernels.gaussian_filter(flat, 1.5), 0.25)
    assert np.allclose(kernels.filter2d(flat, np.full((3, 3), 1 / 9, dtype=np.float32)), 0.25)
    spike = np.zeros((1, 9, 9, 1), dtype=np.float32)
    spike[0, 4, 4] = 1.0
    blurred = kernels.gaussian_filter(spike, 1.0)
    assert blurred.sum() == pytest.approx(1.0, abs=1e-5) and blurred[0, 4, 4, 0] == blurred.max() < 1.0
    x = rng.random((2, 8, 8, 3), dtype=np.float32)
    assert np.allclose(kernels.gaussian_filter(x, 0.0), x)


def test_samplers_are_exact_at_whole_pixels_and_zoom_one_is_identity():
    rng = np.random.default_rng(1)
    x = rng.random((2, 6, 7, 3), dtype=np.float32)
    ys, xs = np.meshgrid(np.arange(6, dtype=np.float64), np.arange(7, dtype=np.float64), indexing="ij")
    ys, xs = np.broadcast_to(ys, (2, 6, 7)), np.broadcast_to(xs, (2, 6, 7))
    assert np.allclose(kernels.bilinear(x, ys, xs, kernels.nearest), x)
    halfway = kernels.bilinear(x, ys, xs + 0.5, kernels.nearest)
    assert np.allclose(halfway[:, :, :-1], (x[:, :, :-1] + x[:, :, 1:]) / 2)
    assert np.allclose(kernels.clipped_zoom(x, 1.0), x)


def test_motion_blur_with_a_narrow_kernel_is_the_image_and_wide_one_smears():
    rng = np.random.default_rng(2)
    x = rng.random((3, 10, 10, 1), dtype=np.float32)
    sharp = kernels.motion_blur(x, radius=3, sigma=0.05, angles=np.zeros(3))
    assert np.allclose(sharp, x, atol=1e-6)
    smeared = kernels.motion_blur(x, radius=3, sigma=3.0, angles=np.zeros(3))
    assert smeared.std() < x.std()


def test_plasma_fractal_is_normalised_and_seeded():
    a = kernels.plasma_fractal(2, 16, 2.0, np.random.default_rng(0))
    b = kernels.plasma_fractal(2, 16, 2.0, np.random.default_rng(0))
    assert a.shape == (2, 16, 16) and np.array_equal(a, b)
    assert a.min() == pytest.approx(0.0) and a.max() == pytest.approx(1.0)
    assert kernels.power_of_two(20) == 32 and kernels.power_of_two(3) == 4
