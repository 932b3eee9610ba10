"""The systems an evaluation compares, each scored image by image from real bytes; one file
per system kind, each registered in ``SYSTEMS`` (``base.py`` says what a kind is):

- ``adaptors``: ``AllInOne``, one S-Adaptor bitstream per image, decoded ONCE, one g_s pass
  per task (the tested adaptors, and other adaptor sets as a baseline curve).
- ``frozen``: ``FrozenCodec``, the base codec alone; every task reads the human reconstruction.
- ``single``: ``PerTaskAdaptors``, one adaptor model per task, T bitstreams per image, all counted.
- ``finetuned``: ``PerTaskCodecs``, one whole fine-tuned codec per task.
- ``jpeg`` / ``webp`` / ``avif``: PIL's encoders at a quality; every task reads the decoded image.
- ``original``: the uncoded image (0 bytes): the clean ceiling and the label-free references.

Each ``run`` yields, per image, the bytes sent and the image each task sees; each system's
``recipe`` (plain JSON) rebuilds it in another process (``system_from_recipe``).
"""

from __future__ import annotations

from omnicodec.eval.systems.base import (
    SYSTEMS,
    Context,
    Decoded,
    System,
    SystemKind,
    baseline_help,
    build_baselines,
    system_from_recipe,
)

# the registry: one import per system kind (each file registers itself), in --help's order
# isort: off
from omnicodec.eval.systems import frozen, jpeg, webp, avif, single, adaptors, finetuned, original  # noqa: F401
# isort: on
from omnicodec.eval.systems.adaptors import AllInOne
from omnicodec.eval.systems.avif import Avif
from omnicodec.eval.systems.finetuned import PerTaskCodecs, finetuned_codecs
from omnicodec.eval.systems.frozen import FrozenCodec
from omnicodec.eval.systems.jpeg import Jpeg, PilCodec
from omnicodec.eval.systems.original import Original
from omnicodec.eval.systems.single import PerTaskAdaptors
from omnicodec.eval.systems.webp import WebP

__all__ = ["SYSTEMS", "AllInOne", "Avif", "Context", "Decoded", "FrozenCodec", "Jpeg", "Original", "PerTaskAdaptors",
           "PerTaskCodecs", "PilCodec", "System", "SystemKind", "WebP", "baseline_help", "build_baselines",
           "finetuned_codecs", "system_from_recipe"]
