"""Rate conditioning: one adaptor set for every rate of a variable-rate codec.

A variable-rate codec (``codec/gain.py``) codes at a continuous *position* ``p`` between
its trained lambda levels; the stream records ``p``. A rate-conditioned adaptor wraps any
family's block with per-level channel modulations of its input and of its correction,
interpolated at ``p`` exactly as the codec's gains are::

    out = F + gamma(p) * (block(alpha(p) * F) - alpha(p) * F) + beta(p)

``alpha = gamma = 1``, ``beta = 0`` at init, and a block is an exact identity at init, so an
untrained conditioned adaptor still reproduces the frozen codec's bytes (the family contract).
The same block weights serve every rate; only ``3 * levels * channels`` numbers per tap know
the rate, so one set costs about what one fixed-rate set does (the S-Adaptor sees the image
before the gain, the T-Adaptors see ``y_hat`` after the inverse gain: both learn what the
rate changes in what they see).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from omnicodec.codec.gain import interpolate_levels  # the same rule as the codec's gains


class RateConditioned(nn.Module):
    """Any family's block, modulated per rate level (see module docstring)."""

    def __init__(self, block: nn.Module, channels: int, levels: int):
        super().__init__()
        self.block = block
        self.input_scale = nn.Parameter(torch.ones(levels, channels))
        self.output_scale = nn.Parameter(torch.ones(levels, channels))
        self.output_shift = nn.Parameter(torch.zeros(levels, channels))

    def forward(self, x: Tensor, position: float | Tensor | None = None) -> Tensor:
        if position is None:
            raise ValueError("a rate-conditioned adaptor needs the stream's rate position")
        b = x.shape[0]
        alpha, gamma, beta = (interpolate_levels(t, position, b).to(x.dtype)
                              for t in (self.input_scale, self.output_scale, self.output_shift))
        scaled = x * alpha
        return x + gamma * (self.block(scaled) - scaled) + beta
