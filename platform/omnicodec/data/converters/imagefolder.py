"""``imagefolder``: ``ROOT/<class>/<image>`` -> ``jpg`` + ``cls`` (classes sorted by name)."""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any

from omnicodec.data.converters.base import CONVERTERS, IMAGE_SUFFIXES, Converter, image_member, need, sink, split_card
from omnicodec.errors import DataError


@CONVERTERS.register("imagefolder")
class ImageFolder(Converter):
    usage = "imagefolder: ROOT/<class>/*.jpg."
    flags = {"--root": {"help": "dataset root"}}

    @staticmethod
    def convert(options: dict[str, Any], out: str, prefix: str, maxcount: int, test_fraction: float) -> dict[str, Any]:
        return imagefolder(need(options, "--root"), out, prefix, maxcount, test_fraction)


def imagefolder(root: str, out: str, prefix: str = "data", maxcount: int = 100,
                test_fraction: float = 0.0) -> dict[str, Any]:
    from omnicodec.data.shards import write_card

    if not os.path.isdir(root):
        raise DataError(f"{root}: not a folder")
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    if not classes:
        raise DataError(f"{root}: no class folders")
    items = sorted((c, f) for c in classes for f in os.listdir(os.path.join(root, c)) if f.lower().endswith(IMAGE_SUFFIXES))
    hist: Counter = Counter()
    with sink(out, prefix, maxcount, test_fraction) as shards:
        for i, (c, f) in enumerate(items):
            ext, data, _ = image_member(os.path.join(root, c, f))
            shards.write({"__key__": f"{prefix}-{i:07d}", ext: data, "cls": str(classes.index(c)).encode(),
                          "json": json.dumps({"source": f"{c}/{f}"}).encode()})
            hist[c] += 1
    card = {"kind": "imagefolder", "classes": classes, "count": len(items), "class_histogram": dict(hist),
            "shards": [os.path.basename(s) for s in shards.shards], **split_card(shards), "members": ["jpg|png", "cls", "json"]}
    write_card(out, card)
    return card
