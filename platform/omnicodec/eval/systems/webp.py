"""``WebP``: PIL's WebP encoder at a quality (``--baseline webp:Q1,Q2,...``)."""

from __future__ import annotations

from omnicodec.eval.systems.base import SYSTEMS
from omnicodec.eval.systems.jpeg import JpegKind, PilCodec


class WebP(PilCodec):
    format = "WebP"


@SYSTEMS.register("webp")
class WebPKind(JpegKind):
    usage = "webp:Q1,Q2,..."
    short = "webp:Q,..."
    recipes = ("webp",)
    codec = WebP
