"""Where adaptors sit, and the named collection a model carries.

``run_stages`` executes a CompressAI ``nn.Sequential`` (``g_a`` or ``g_s``) layer by
layer and applies the i-th adaptor right after the i-th tap index. CompressAI's classes
and its state dict keys stay untouched, so the frozen codec's fingerprint is the same
with or without adaptors.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from torch import Tensor, nn

from omnicodec.adaptors.config import AdaptorConfig
from omnicodec.adaptors.families import build_adaptor
from omnicodec.adaptors.rate import RateConditioned
from omnicodec.errors import ConfigError, OmnicodecError

TASK_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


class StageAdaptors(nn.ModuleList):
    """One adaptor per tap of a transform (3 for the hyperprior families); with
    ``config.rate_levels`` each is rate-conditioned (``adaptors/rate.py``)."""

    def __init__(self, channels: int, taps: Sequence[int], config: AdaptorConfig):
        levels = config.rate_levels
        super().__init__(RateConditioned(build_adaptor(channels, config), channels, levels) if levels
                         else build_adaptor(channels, config) for _ in taps)
        self.rate_conditioned = bool(levels)


def run_stages(seq: nn.Sequential, x: Tensor, taps: Sequence[int], adaptors: StageAdaptors | None,
               position: float | Tensor | None = None) -> Tensor:
    """``seq(x)`` with ``adaptors[k]`` applied after layer ``taps[k]`` (rate-conditioned
    adaptors also take the rate ``position``: one float, or one per image)."""
    slot = {index: k for k, index in enumerate(taps)} if adaptors is not None else {}
    conditioned = adaptors is not None and adaptors.rate_conditioned
    for i, layer in enumerate(seq):
        x = layer(x)
        if i in slot:
            x = adaptors[slot[i]](x, position) if conditioned else adaptors[slot[i]](x)
    return x


def check_task_names(tasks: Iterable[str]) -> list[str]:
    tasks = list(tasks)
    for t in tasks:
        if not TASK_NAME.match(t):
            raise ConfigError(f"task name '{t}' must match {TASK_NAME.pattern}")
    if len(set(tasks)) != len(tasks):
        raise ConfigError(f"duplicate task names in {tasks}")
    return tasks


class AdaptorSet(nn.Module):
    """The trainable part of an omnicodec model.

    ``s``: the S-Adaptors in ``g_a``, shared by every task (they shape the ONE bitstream).
    ``t[task]``: the T-Adaptors in ``g_s`` for each task.
    ``shared``: optional adaptor on ``y_hat`` before the task branches (ablation knob).
    """

    def __init__(self, channels: int, latent_channels: int, analysis_taps: Sequence[int],
                 synthesis_taps: Sequence[int], tasks: Iterable[str], config: AdaptorConfig):
        super().__init__()
        self.config = config
        self.channels, self.latent_channels = channels, latent_channels
        self.analysis_taps, self.synthesis_taps = tuple(analysis_taps), tuple(synthesis_taps)
        self.s = StageAdaptors(channels, self.analysis_taps, config)
        self.t = nn.ModuleDict({
            task: StageAdaptors(channels, self.synthesis_taps, config) for task in check_task_names(tasks)
        })
        self.shared = build_adaptor(latent_channels, config) if config.shared_decoder else None

    @property
    def tasks(self) -> list[str]:
        return list(self.t.keys())

    def s_state_dict(self) -> dict[str, Tensor]:
        return {k: v for k, v in self.state_dict().items() if k.startswith("s.")}

    def num_parameters(self, part: str | None = None) -> int:
        """Trainable parameters in total, or in ``"s"``, ``"shared"`` or one task's stack."""
        if part is None:
            module: nn.Module = self
        elif part in ("s", "shared"):
            module = getattr(self, part) or nn.Module()
        elif part in self.t:
            module = self.t[part]
        else:
            raise OmnicodecError(f"no adaptor part named '{part}' (have s, shared, {', '.join(self.tasks)})")
        return sum(p.numel() for p in module.parameters())
