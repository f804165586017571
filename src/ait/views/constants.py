"""Small constant tensors of the views, made once per device.

A CUDA graph's capture (``train.cuda_graphs``) may not copy from the host, and ``torch.tensor(...,
device="cuda")`` does. The eager warm-up steps before a capture make every constant the run's views
need, so the captured step only looks them up. Callers must not modify the tensors in place.
"""

from __future__ import annotations

import functools

import torch


@functools.cache  # never evicted: a captured CUDA graph keeps reading the tensors it was given
def device_constant(values: tuple, device: torch.device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``torch.tensor(values)`` on ``device``, made on the first call with these arguments."""
    return torch.tensor(values, dtype=dtype, device=device)
