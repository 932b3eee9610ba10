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
from omnicodec.adaptors.families import register_family


@register_family("sfma")
class FrequencyModulationAdaptor(nn.Module):
    def __init__(self, channels: int, config: AdaptorConfig | None = None):
        super().__init__()
        cfg = config or AdaptorConfig()
        hidden = cfg.hidden(channels)
        self.scale = cfg.residual_scale
        self.down = nn.Conv2d(channels, hidden, 1)
        self.dw = nn.Conv2d(hidden, hidden, cfg.kernel_size, padding=cfg.kernel_size // 2, groups=hidden)
        self.gain = nn.Sequential(nn.Conv2d(hidden, hidden, 1), nn.GELU(), nn.Conv2d(hidden, hidden, 1)) \
            if cfg.spectral else None
        self.up = nn.Conv2d(hidden, channels, 1)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: Tensor) -> Tensor:
        h = self.down(x)
        delta = self.dw(h)
        if self.gain is not None:
            delta = delta + self._modulate(h)
        return torch.add(x, self.up(delta), alpha=self.scale)

    def _modulate(self, h: Tensor) -> Tensor:
        height, width = h.shape[-2:]
        spectrum = torch.fft.rfft2(h.float(), norm="ortho")
        gain = torch.tanh(self.gain(torch.log1p(spectrum.abs()).to(h.dtype))).float()
        return torch.fft.irfft2(spectrum * gain, s=(height, width), norm="ortho").to(h.dtype)

