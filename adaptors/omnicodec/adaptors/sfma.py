"""Input-conditioned frequency modulation ("sfma"), after Adapt-ICMH's spatial-frequency
modulation adapter: the frequency branch does not apply a FIXED learned mask (the
``spectral`` family) but one computed FROM THE INPUT'S amplitude spectrum, so an adaptor
can suppress the detail a given image does not need and keep what it does.

    h     = down(F)                                        1x1, C -> C/r
    S     = rfft2(h)                                       amplitude |S|, phase arg S
    g     = tanh(conv1x1(GELU(conv1x1(log1p|S|))))         per-frequency gain, zero at init
    delta = DWConv_k(h) + irfft2(S * g)                    amplitude modulated, phase kept
    out   = F + s * up(delta)                              1x1, C/r -> C, zero at init

``up`` starts at zero: an untrained block is an exact identity. The gain network works on
the spectrum's own grid, so one set of weights serves every image size.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from omnicodec.adaptors.config import AdaptorConfig
from omnicodec.adaptors.families import FAMILIES, ResidualBottleneck


@FAMILIES.register("sfma")
class FrequencyModulationAdaptor(ResidualBottleneck):
    def __init__(self, channels: int, config: AdaptorConfig | None = None):
        super().__init__(channels, config or AdaptorConfig())

    def build_branch(self, hidden: int, config: AdaptorConfig) -> None:
        self.gain = nn.Sequential(nn.Conv2d(hidden, hidden, 1), nn.GELU(), nn.Conv2d(hidden, hidden, 1))

    def branch(self, h: Tensor) -> Tensor:
        return self._modulate(h)

    def _modulate(self, h: Tensor) -> Tensor:
        height, width = h.shape[-2:]
        spectrum = torch.fft.rfft2(h.float(), norm="ortho")
        gain = torch.tanh(self.gain(torch.log1p(spectrum.abs()).to(h.dtype))).float()
        return torch.fft.irfft2(spectrum * gain, s=(height, width), norm="ortho").to(h.dtype)

