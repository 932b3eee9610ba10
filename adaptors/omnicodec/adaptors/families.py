"""The adaptor-family registry (peft's ``register_peft_method`` pattern).

A family is one file in this folder whose block class is decorated with
``@FAMILIES.register("name")``, plus one import line in ``adaptors/__init__.py``. A block takes
``(channels, config)``, maps ``B x C x H x W`` to the same shape for ANY H, W, and is an exact
identity at init (so untrained adaptors reproduce the frozen codec's bytes). Every registered
family is held to that contract by ``tests/test_adaptor_families.py``; ``adaptor.family`` in a
training config picks one, and checkpoints record it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from omnicodec.errors import ConfigError
from omnicodec.registry import Registry

FAMILIES: Registry[type[nn.Module]] = Registry("adaptor family", error=ConfigError, attr="family")
register_family = FAMILIES.register


def build_adaptor(channels: int, config) -> nn.Module:
    return FAMILIES.get(config.family)(channels, config)


class ResidualBottleneck(nn.Module):
    """The shape every family shares: ``F + s * up(DWConv_k(h) + branch(h))``, ``h = down(F)``,
    with ``up`` zero at init (an exact identity: adding +0.0 is exact in IEEE arithmetic).
    A family sets up its frequency branch in ``build_branch`` and computes it in ``branch``;
    ``config.spectral = False`` drops the branch (ablation)."""

    def __init__(self, channels: int, config):
        super().__init__()
        hidden = config.hidden(channels)
        self.scale = config.residual_scale
        self.down = nn.Conv2d(channels, hidden, 1)
        self.dw = nn.Conv2d(hidden, hidden, config.kernel_size, padding=config.kernel_size // 2, groups=hidden)
        self.has_branch = bool(config.spectral)
        if self.has_branch:  # registered between dw and up: the state-dict order of format v1
            self.build_branch(hidden, config)
        self.up = nn.Conv2d(hidden, channels, 1)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def build_branch(self, hidden: int, config) -> None:
        raise NotImplementedError

    def branch(self, h: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        h = self.down(x)
        delta = self.dw(h)
        if self.has_branch:
            delta = delta + self.branch(h)
        return torch.add(x, self.up(delta), alpha=self.scale)  # one pass over the big tensor
