"""The adaptor block: a spatial and a spectral branch in a bottleneck, added residually.

    h     = down(F)                                  1x1, C -> C/r
    delta = DWConv_k(h) + irfft2(M * rfft2(h))       spatial + frequency branch
    out   = F + s * up(delta)                        1x1, C/r -> C, zero at init

``up`` starts at zero, so an untrained block returns ``F`` exactly (adding +0.0 is exact
in IEEE arithmetic) and an untrained omnicodec model reproduces the frozen codec bit for
bit. The other branches start "open" (default conv init, all-pass mask M = 1) so that
the first gradient step already reaches every parameter, as in LoRA's B=0 init.

The complex mask ``M`` is stored on a small ``mask_grid`` over the rfft2 half-spectrum
and resampled bilinearly (real and imaginary parts) to the grid of the current feature
map, so one set of weights serves every image size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from omnicodec.adaptors.config import AdaptorConfig
from omnicodec.adaptors.families import FAMILIES, ResidualBottleneck


@FAMILIES.register("spectral")
class SpectralAdaptor(ResidualBottleneck):
    def __init__(self, channels: int, config: AdaptorConfig | None = None):
        super().__init__(channels, config or AdaptorConfig())
        self._mask_cache: dict[tuple, Tensor] = {}  # inference only; see _mask_at

    def build_branch(self, hidden: int, config: AdaptorConfig) -> None:
        self.mask = nn.Parameter(_all_pass(hidden, *config.mask_grid))

    def branch(self, h: Tensor) -> Tensor:
        return self._filter(h)

    def _filter(self, h: Tensor) -> Tensor:
        height, width = h.shape[-2:]
        spectrum = torch.fft.rfft2(h.float(), norm="ortho")
        return torch.fft.irfft2(spectrum * self._mask_at(spectrum.shape[-2:]), s=(height, width),
                                norm="ortho").to(h.dtype)

    def _mask_at(self, size: tuple[int, int]) -> Tensor:
        """The complex mask resampled to the spectrum's size. Without autograd (coding,
        serving) it is cached per size and invalidated whenever the weights change."""
        key = (tuple(size), self.mask._version, self.mask.data_ptr(), self.mask.device)
        cache = self._mask_cache
        if not torch.is_grad_enabled() and key in cache:
            return cache[key]
        mask = F.interpolate(self.mask.permute(0, 3, 1, 2), size=size,
                             mode="bilinear", align_corners=True)  # (C, 2, H, W//2+1)
        mask = torch.complex(mask[:, 0], mask[:, 1])
        if not torch.is_grad_enabled():
            if len(cache) >= 4:
                cache.clear()
            cache[key] = mask
        return mask


def _all_pass(channels: int, rows: int, cols: int) -> Tensor:
    m = torch.zeros(channels, rows, cols, 2)
    m[..., 0] = 1.0
    return m
