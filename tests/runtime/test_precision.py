"""Device, autocast dtype and memory format, resolved once per run."""

import pytest
import torch

from ait.runtime.precision import resolve_device, resolve_precision


def test_explicit_settings_are_kept_and_auto_chooses_by_device():
    cpu = torch.device("cpu")
    assert resolve_precision(cpu, "fp32", False).dtype is None and resolve_precision(cpu, "fp32", False).name == "fp32"
    bf16 = resolve_precision(cpu, "bf16", None)
    assert bf16.dtype is torch.bfloat16 and bf16.channels_last and bf16.name == "bf16"
    x = torch.zeros(2, 3, 4, 4)
    assert bf16.prepare_input(x).is_contiguous(memory_format=torch.channels_last)
    with bf16.autocast():
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16


def test_cuda_without_a_gpu_is_a_clear_error():
    assert resolve_device("cpu") == torch.device("cpu")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ValueError, match="torch sees no CUDA device"):
        resolve_device("cuda")
