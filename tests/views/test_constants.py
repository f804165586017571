"""ait.views.constants: a view's constants are made once, so a captured CUDA graph only reads them."""

import torch

from ait.views.constants import device_constant


def test_a_constant_is_made_once_per_value_device_and_dtype():
    first = device_constant((5.0, 3.0, 1.0), torch.device("cpu"))
    assert device_constant((5.0, 3.0, 1.0), torch.device("cpu")) is first
    assert first.tolist() == [5.0, 3.0, 1.0] and first.dtype == torch.float32
    as_long = device_constant((5.0, 3.0, 1.0), torch.device("cpu"), torch.long)
    assert as_long is not first and as_long.dtype == torch.long
    assert device_constant((5.0, 3.0, 2.0), torch.device("cpu")) is not first
