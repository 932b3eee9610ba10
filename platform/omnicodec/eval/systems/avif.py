"""``AVIF``: PIL's AVIF encoder (libavif, AV1 intra) at a quality (``--baseline avif:Q1,Q2,...``):
today's strongest widely deployed image codec for people, the context a learned codec is read in."""

from __future__ import annotations

from omnicodec.eval.systems.base import SYSTEMS
from omnicodec.eval.systems.jpeg import JpegKind, PilCodec


class Avif(PilCodec):
    format = "AVIF"


@SYSTEMS.register("avif")
class AvifKind(JpegKind):
    usage = "avif:Q1,Q2,..."
    short = "avif:Q,..."
    recipes = ("avif",)
    codec = Avif
