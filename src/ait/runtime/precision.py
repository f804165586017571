"""Device, numeric precision and memory format: resolved once per run from the config.

bf16 autocast with channels_last trains much faster than fp32 on a CPU with native bf16
instructions (docs/performance.md measures it) and is the usual choice on GPUs, so "auto" picks it
where the hardware has it and falls back to fp32 elsewhere.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from functools import lru_cache

import torch

from ait.config import ConfigError


@lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True when the CPU advertises bf16 arithmetic (AVX512-BF16 or AMX); Linux only."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


@dataclass(frozen=True)
class Precision:
    device: torch.device
    dtype: torch.dtype | None  # autocast dtype, None for plain fp32
    channels_last: bool

    @property
    def name(self) -> str:
        return "bf16" if self.dtype is torch.bfloat16 else "fp32"

    def autocast(self):
        """Context for forward passes: bf16 autocast, or nothing for fp32."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def prepare_input(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) float -> the memory format the networks were converted to."""
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x


def resolve_device(spec: str, key: str = "train.device") -> torch.device:
    """The torch device ``spec`` names ("auto": CUDA when there is one); ConfigError naming ``key``
    for a device this machine does not have."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(spec)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{key}: {spec!r} was asked for, but torch sees no CUDA device")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ConfigError(f"{key}: {spec!r} was asked for, but torch sees {torch.cuda.device_count()} GPU(s)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"{key}: {spec!r} was asked for, but torch sees no Apple GPU (MPS)")
    return device


def resolve_precision(device: torch.device, precision: str, channels_last: bool | None) -> Precision:
    """Turn the config's "auto" / "bf16" / "fp32" and channels_last (None = auto) into settings."""
    if precision == "auto":
        if device.type == "cuda":
            use_bf16 = torch.cuda.is_bf16_supported()
        else:
            use_bf16 = device.type == "cpu" and cpu_has_native_bf16()
    else:
        use_bf16 = precision == "bf16"
    cl = channels_last if channels_last is not None else device.type in ("cpu", "cuda")
    return Precision(device, torch.bfloat16 if use_bf16 else None, cl)
