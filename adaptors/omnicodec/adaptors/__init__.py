"""Adaptors injected into a frozen codec (peft-style): small, named, adapter-only weights.

- ``SpectralAdaptor``: the block, ``F + s * up(DWConv(h) + IFFT(M * FFT(h)))``, identity at init.
- ``AdaptorSet``: one shared S-Adaptor stack for ``g_a`` and one T-Adaptor stack per task
  for ``g_s``, keyed by task name.
- ``run_stages``: runs a CompressAI ``nn.Sequential`` with adaptors after its tap indices,
  leaving CompressAI's classes and state dicts untouched.
- ``save_adaptors`` / ``load_adaptors``: adaptor-only safetensors plus a JSON config that
  names the codec they belong to.
"""

# the family registry: one import per adaptor family (each file registers itself)
from omnicodec.adaptors import sfma, spectral  # noqa: F401
from omnicodec.adaptors.checkpoint import AdaptorCheckpoint, load_adaptors, save_adaptors
from omnicodec.adaptors.config import AdaptorConfig
from omnicodec.adaptors.families import FAMILIES, build_adaptor, register_family
from omnicodec.adaptors.sets import AdaptorSet, StageAdaptors, run_stages
from omnicodec.adaptors.spectral import SpectralAdaptor

__all__ = [
    "AdaptorCheckpoint",
    "AdaptorConfig",
    "AdaptorSet",
    "FAMILIES",
    "build_adaptor",
    "register_family",
    "SpectralAdaptor",
    "StageAdaptors",
    "load_adaptors",
    "run_stages",
    "save_adaptors",
]
