"""What every converter shares: the registry, the converter shape, image members and sinks."""

from __future__ import annotations

import io
from typing import Any, ClassVar

from omnicodec.errors import DataError
from omnicodec.registry import Registry

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


class Converter:
    """A dataset format: what ``--help`` says it reads, its own flags, and the conversion."""

    usage: ClassVar[str] = ""  # one sentence for `data convert --help`, e.g. "coco: --images DIR ..."
    flags: ClassVar[dict[str, dict[str, Any]]] = {}  # "--flag" -> argparse keywords (help names this converter)

    @staticmethod
    def convert(options: dict[str, Any], out: str, prefix: str, maxcount: int, test_fraction: float) -> dict[str, Any]:
        raise NotImplementedError


CONVERTERS: Registry[type[Converter]] = Registry("converter", error=DataError)


def need(options: dict[str, Any], flag: str) -> str:
    """The value of ``flag`` (a path this format cannot do without)."""
    value = options.get(flag.lstrip("-").replace("-", "_"))
    if not value:
        raise DataError(f"this format needs {flag}")
    return value


def image_member(path: str) -> tuple[str, bytes, tuple[int, int]]:
    """(member extension, bytes, size). Decoded in full here (``images.decode_image_bytes``),
    so an unreadable file, or a mode no reader can map to 8-bit RGB, is refused now with its
    path, not at training time. JPEG and PNG bytes are kept as they are (readers convert
    16-bit PNGs the same way); other formats are stored as 8-bit RGB PNG."""
    from PIL import Image

    from omnicodec.images import decode_image_bytes

    data = open(path, "rb").read()
    rgb = decode_image_bytes(data, path)
    if Image.open(io.BytesIO(data)).format in ("PNG", "JPEG"):
        return ("png" if data[:4] == b"\x89PNG" else "jpg"), data, rgb.size
    buf = io.BytesIO()
    rgb.save(buf, format="PNG")
    return "png", buf.getvalue(), rgb.size


def sink(out: str, prefix: str, maxcount: int, test_fraction: float):
    from omnicodec.data.shards import ShardSink, SplitSink

    return SplitSink(out, test_fraction, maxcount) if test_fraction > 0 else ShardSink(out, prefix, maxcount)


def split_card(sink) -> dict[str, Any]:
    from omnicodec.data.shards import SplitSink

    return {"splits": dict(sink.counts), "test_fraction": sink.fraction} if isinstance(sink, SplitSink) else {}
