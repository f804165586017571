"""Image-processing kernels of the common corruptions, in numpy on whole batches.

Arrays are float32 (N, H, W, C) in [0, 1] unless said otherwise. The filters and samplers
re-implement the exact border rules and interpolation of the libraries the official CIFAR-10-C
generator called (OpenCV, SciPy, scikit-image, ImageMagick), so that :mod:`ait.evaluate.corruptions`
needs none of them: border index maps (:func:`reflect101`, :func:`symmetric`, :func:`nearest`),
separable Gaussian and 2-D filters, bilinear sampling, the official ``clipped_zoom``, ImageMagick's
motion blur and the diamond-square plasma fractal.
"""

from __future__ import annotations

import math

import numpy as np

Array = np.ndarray  # float32 (N, H, W, C) in [0, 1] unless said otherwise
LUMA = (0.299, 0.587, 0.114)  # ITU-R 601, as OpenCV's RGB2GRAY in the official snow


def to_float(u8: Array) -> Array:
    return u8.astype(np.float32) / np.float32(255.0)


def luma(x: Array) -> Array:
    """(N, H, W, C) -> (N, H, W, 1); the image itself for one channel."""
    if x.shape[-1] == 1:
        return x
    return (x[..., 0:1] * LUMA[0] + x[..., 1:2] * LUMA[1] + x[..., 2:3] * LUMA[2]).astype(np.float32)


def reflect101(i: Array, n: int) -> Array:
    """Border index map 'dcb|abcd|cba' (OpenCV BORDER_REFLECT_101)."""
    if n == 1:
        return np.zeros_like(i)
    period = 2 * (n - 1)
    i = np.abs(i) % period
    return np.where(i >= n, period - i, i)


def symmetric(i: Array, n: int) -> Array:
    """Border index map 'dcba|abcd|dcba' (SciPy / scikit-image mode 'reflect')."""
    i = i % (2 * n)
    return np.where(i >= n, 2 * n - 1 - i, i)


def nearest(i: Array, n: int) -> Array:
    """Border index map 'aaa|abcd|ddd' (mode 'nearest', ImageMagick's edge pixels)."""
    return np.clip(i, 0, n - 1)


def gaussian_kernel(sigma: float, truncate: float) -> Array:
    """SciPy's 1-D Gaussian: radius int(truncate * sigma + 0.5), weights normalised to sum 1."""
    radius = int(truncate * sigma + 0.5)
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (t / sigma) ** 2) if sigma > 0 else (t == 0).astype(np.float64)
    return (k / k.sum()).astype(np.float32)


def correlate1d(x: Array, kernel: Array, axis: int, border) -> Array:
    """1-D correlation of ``x`` with an odd-length ``kernel`` along ``axis``, ``border`` index map."""
    n, r = x.shape[axis], len(kernel) // 2
    padded = np.take(x, border(np.arange(-r, n + r), n), axis=axis)
    out = np.zeros_like(x)
    for j, w in enumerate(kernel):
        out += w * np.take(padded, np.arange(j, j + n), axis=axis)
    return out


def gaussian_filter(x: Array, sigma: float, truncate: float = 4.0, border=nearest) -> Array:
    """Spatial Gaussian blur of (N, H, W[, C]) over axes 1 and 2 (scikit-image ``gaussian``)."""
    if sigma <= 0:
        return x
    k = gaussian_kernel(sigma, truncate)
    return correlate1d(correlate1d(x, k, 1, border), k, 2, border)


def filter2d(x: Array, kernel: Array, border=reflect101) -> Array:
    """2-D correlation of (N, H, W, C) with an odd (kh, kw) kernel (OpenCV ``filter2D``)."""
    _, h, w, _ = x.shape
    rh, rw = kernel.shape[0] // 2, kernel.shape[1] // 2
    padded = x[:, border(np.arange(-rh, h + rh), h)][:, :, border(np.arange(-rw, w + rw), w)]
    out = np.zeros_like(x)
    for i in range(kernel.shape[0]):
        for j in range(kernel.shape[1]):
            if kernel[i, j] != 0:
                out += kernel[i, j] * padded[:, i : i + h, j : j + w]
    return out


def gather(x: Array, rows: Array, cols: Array) -> Array:
    """x (N, H, W, C), integer rows / cols broadcastable to (N, h, w) -> (N, h, w, C)."""
    n = np.arange(x.shape[0]).reshape(-1, 1, 1)
    return x[n, rows, cols]


def bilinear(x: Array, ys: Array, xs: Array, border) -> Array:
    """Bilinear samples of x (N, H, W, C) at float pixel coordinates ys, xs (N, h, w)."""
    h, w = x.shape[1:3]
    y0, x0 = np.floor(ys), np.floor(xs)
    wy, wx = (ys - y0)[..., None].astype(np.float32), (xs - x0)[..., None].astype(np.float32)
    y0, x0 = y0.astype(np.int64), x0.astype(np.int64)
    r0, r1 = border(y0, h), border(y0 + 1, h)
    c0, c1 = border(x0, w), border(x0 + 1, w)
    top = gather(x, r0, c0) * (1 - wx) + gather(x, r0, c1) * wx
    bottom = gather(x, r1, c0) * (1 - wx) + gather(x, r1, c1) * wx
    return top * (1 - wy) + bottom * wy


def resample_axis(x: Array, coords: Array, axis: int) -> Array:
    """Linear interpolation of x along ``axis`` at 1-D float ``coords`` (all inside the axis)."""
    n = x.shape[axis]
    i0 = np.clip(np.floor(coords).astype(np.int64), 0, n - 1)
    i1 = np.minimum(i0 + 1, n - 1)
    shape = [1] * x.ndim
    shape[axis] = len(coords)
    w = (coords - i0).astype(np.float32).reshape(shape)
    return np.take(x, i0, axis=axis) * (1 - w) + np.take(x, i1, axis=axis) * w


def zoom_coords(n: int, zoom: float) -> Array:
    """Source coordinates of the official ``clipped_zoom`` along one axis of length n.

    Crop the centre ceil(n / zoom) pixels, enlarge them to round(crop * zoom) with SciPy's
    order-1 zoom (corners aligned), keep the centre n pixels.
    """
    crop = int(np.ceil(n / zoom))
    top = (n - crop) // 2
    size = int(round(crop * zoom))
    trim = (size - n) // 2
    j = np.arange(n, dtype=np.float64) + trim
    scale = (crop - 1) / (size - 1) if size > 1 else 0.0
    return top + j * scale


def clipped_zoom(x: Array, zoom: float) -> Array:
    """Zoom (N, H, W, C) into its centre by ``zoom`` (>= 1), keeping the size."""
    x = resample_axis(x, zoom_coords(x.shape[1], zoom), 1)
    return resample_axis(x, zoom_coords(x.shape[2], zoom), 2)


def motion_blur(x: Array, radius: float, sigma: float, angles: Array) -> Array:
    """ImageMagick-style motion blur of (N, H, W, C), one angle (degrees) per image.

    A one-sided line of 2 * ceil(radius) + 1 taps with weights exp(-i^2 / (2 sigma^2)) (normalised),
    tap i at the whole-pixel offset (round(i cos a), round(i sin a)) (x right, y down); pixels past
    the border repeat the edge.
    """
    _, h, w, _ = x.shape
    width = int(2 * math.ceil(radius) + 1)
    taps = np.arange(width, dtype=np.float64)
    weights = np.exp(-(taps**2) / (2.0 * sigma * sigma))
    weights /= weights.sum()
    theta = np.deg2rad(angles)
    rows0, cols0 = np.arange(h).reshape(1, h, 1), np.arange(w).reshape(1, 1, w)
    out = np.zeros_like(x)
    for i, weight in enumerate(weights):
        dx = np.ceil(i * np.cos(theta) - 0.5).astype(np.int64).reshape(-1, 1, 1)
        dy = np.ceil(i * np.sin(theta) - 0.5).astype(np.int64).reshape(-1, 1, 1)
        out += np.float32(weight) * gather(x, np.clip(rows0 + dy, 0, h - 1), np.clip(cols0 + dx, 0, w - 1))
    return out


def plasma_fractal(n: int, mapsize: int, decay: float, rng: np.random.Generator) -> Array:
    """(n, mapsize, mapsize) diamond-square height maps in [0, 1], as the official ``plasma_fractal``.

    mapsize must be a power of two. The noise added at each level is wibble * U(-wibble, wibble)
    with wibble starting at 100 and divided by ``decay`` per level (the official scaling).
    """
    maps = np.zeros((n, mapsize, mapsize), dtype=np.float64)
    step, wibble = mapsize, 100.0

    def wibbled_mean(total: Array) -> Array:
        return total / 4 + wibble * rng.uniform(-wibble, wibble, total.shape)

    while step >= 2:
        half = step // 2
        corners = maps[:, 0::step, 0::step]
        squares = corners + np.roll(corners, -1, axis=1)
        squares = squares + np.roll(squares, -1, axis=2)
        maps[:, half::step, half::step] = wibbled_mean(squares)
        centres = maps[:, half::step, half::step]
        corners = maps[:, 0::step, 0::step]
        left = centres + np.roll(centres, 1, axis=1) + corners + np.roll(corners, -1, axis=2)
        maps[:, 0::step, half::step] = wibbled_mean(left)
        top = centres + np.roll(centres, 1, axis=2) + corners + np.roll(corners, -1, axis=1)
        maps[:, half::step, 0::step] = wibbled_mean(top)
        step //= 2
        wibble /= decay
    maps -= maps.min(axis=(1, 2), keepdims=True)
    maps /= np.maximum(maps.max(axis=(1, 2), keepdims=True), 1e-12)
    return maps.astype(np.float32)


def power_of_two(n: int) -> int:
    return max(4, 1 << (int(n) - 1).bit_length())
