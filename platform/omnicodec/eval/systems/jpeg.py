"""``Jpeg``: PIL's JPEG encoder at a quality; every task reads the decoded image
(``--baseline jpeg:Q1,Q2,...``). ``PilCodec`` is any format PIL writes (``webp.py``)."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from omnicodec.eval.systems.base import SYSTEMS, Context, Decoded, System, SystemKind

if TYPE_CHECKING:
    from omnicodec.data.samples import Sample


class PilCodec(System):
    """An image format PIL writes (JPEG, WebP) at one quality setting."""

    format = ""

    def __init__(self, quality: int, name: str | None = None):
        self.quality, self.label, self.name = quality, f"Q{quality}", name or self.format
        self.recipe = {"kind": self.format.lower(), "quality": quality}

    def run(self, sample: Sample, tasks: list[str]) -> Decoded:
        from PIL import Image

        from omnicodec.images import to_pil, to_tensor
        from omnicodec.model import HUMAN

        buf = io.BytesIO()
        to_pil(sample.image).save(buf, format=self.format, quality=self.quality)
        decoded = to_tensor(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
        return Decoded(buf.tell(), {HUMAN: decoded, **{t: decoded for t in tasks}})


class Jpeg(PilCodec):
    format = "JPEG"


@SYSTEMS.register("jpeg")
class JpegKind(SystemKind):
    usage = "jpeg:Q1,Q2,..."
    short = "jpeg:Q,..."
    recipes = ("jpeg",)
    codec: type[PilCodec] = Jpeg

    @classmethod
    def parse(cls, spec: str, rest: str, ctx: Context) -> list[System]:
        try:
            return [cls.codec(int(q)) for q in rest.split(",")]
        except ValueError:
            from omnicodec.errors import OmnicodecError

            raise OmnicodecError(f"--baseline {spec}: expected {cls.usage} (integer qualities)") from None

    @classmethod
    def from_recipe(cls, recipe: dict) -> System:
        return cls.codec(int(recipe["quality"]))
