"""``pascal-context``: ``ROOT/JPEGImages/*.jpg`` + ``ROOT/<labels>/*.png`` class-id masks
-> ``jpg`` + ``seg.png`` + ``cls`` (most frequent non-background class); with the
multi-task layout (PASCAL-Context as used by ASTMT / MTI-Net / Adapt-ICMH) also the dense
maps the paper's other tasks read, for each image that has one (``MULTITASK_FOLDERS``):
``human_parts/`` -> ``parts.png``, ``sal_distill/`` -> ``sal.png``, ``normals_distill/``
-> ``normals.png``, ``edges/`` -> ``edge.png`` (without it the ``edge`` kind uses the
boundaries of ``seg.png``, which is how PASCAL-Context defines its edges)."""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any

from omnicodec.data.converters.base import CONVERTERS, Converter, image_member, need, sink, split_card
from omnicodec.errors import DataError

# map name -> the dataset's folder of it. The folders are PASCAL-Context's multi-task layout
# (another dataset keeps the same maps elsewhere: its converter says where); the map names are
# the task kinds' (``TaskKind.maps``: each is read by a registered kind, tests/test_task_kinds.py).
# What a map's values mean, and how they flip, is the kind's; this converter only copies them.
MULTITASK_FOLDERS = {"parts": "human_parts", "sal": "sal_distill", "normals": "normals_distill", "edge": "edges"}


@CONVERTERS.register("pascal-context")
class PascalContext(Converter):
    usage = "pascal-context: ROOT/JPEGImages + ROOT/<labels dir>/*.png (class-id masks)."
    flags = {"--root": {"help": "dataset root"},
             "--labels": {"default": "SegmentationClassContext", "help": "mask folder under ROOT"}}

    @staticmethod
    def convert(options: dict[str, Any], out: str, prefix: str, maxcount: int, test_fraction: float) -> dict[str, Any]:
        return pascal_context(need(options, "--root"), out, options.get("labels") or "SegmentationClassContext",
                              prefix, maxcount, test_fraction)


def _dense_members(root: str, name: str, size: tuple[int, int], counts: Counter) -> dict[str, bytes]:
    """The multi-task maps that exist for image ``name``, checked (8-bit L/P/RGB PNG of the
    image's size) and stored as PNG members named by map."""
    from omnicodec.data.samples import encode_png, read_dense_map

    out = {}
    for member, folder in MULTITASK_FOLDERS.items():
        path = os.path.join(root, folder, name + ".png")
        if not os.path.exists(path):
            if os.path.exists(os.path.join(root, folder, name + ".mat")):
                raise DataError(f"{path[:-4]}.mat: MATLAB annotations are not read; export them as PNG "
                                f"class-id masks ({folder}/{name}.png) first")
            continue
        arr = read_dense_map(open(path, "rb").read(), path)
        if arr.shape[:2] != (size[1], size[0]):
            raise DataError(f"{path}: size {arr.shape[:2]} differs from the image's {(size[1], size[0])}")
        out[f"{member}.png"] = encode_png(arr)
        counts[member] += 1
    return out


def pascal_context(root: str, out: str, labels: str = "SegmentationClassContext", prefix: str = "data",
                   maxcount: int = 100, test_fraction: float = 0.0) -> dict[str, Any]:
    import numpy as np
    from PIL import Image

    from omnicodec.data.samples import encode_png
    from omnicodec.data.shards import write_card

    img_dir, lab_dir = os.path.join(root, "JPEGImages"), os.path.join(root, labels)
    if not os.path.isdir(img_dir) or not os.path.isdir(lab_dir):
        raise DataError(f"{root}: expected JPEGImages/ and {labels}/")
    names = sorted(os.path.splitext(f)[0] for f in os.listdir(lab_dir) if f.endswith(".png"))
    class_file = os.path.join(root, "labels.txt")
    classes = [line.strip() for line in open(class_file)] if os.path.exists(class_file) else None
    hist: Counter = Counter()
    maps: Counter = Counter()
    with sink(out, prefix, maxcount, test_fraction) as shards:
        for n, name in enumerate(names):
            ext, data, (w, h) = image_member(os.path.join(img_dir, name + ".jpg"))
            mask = np.asarray(Image.open(os.path.join(lab_dir, name + ".png")))
            if mask.shape != (h, w):
                raise DataError(f"{lab_dir}/{name}.png: mask size {mask.shape} differs from image {(h, w)}")
            sample = {"__key__": f"{prefix}-{n:07d}", ext: data, "seg.png": encode_png(mask.astype(np.uint8)),
                      "json": json.dumps({"source": name}).encode(), **_dense_members(root, name, (w, h), maps)}
            values, counts = np.unique(mask[(mask > 0) & (mask < 255)], return_counts=True)
            if len(values):
                cls = int(values[np.argmax(counts)]) - 1
                sample["cls"] = str(cls).encode()
                hist[cls] += 1
            shards.write(sample)
    card = {"kind": "pascal-context", "classes": classes, "count": len(names), "class_histogram": dict(hist),
            "shards": [os.path.basename(s) for s in shards.shards], **split_card(shards),
            "members": ["jpg", "seg.png", "cls", "json", *(f"{m}.png" for m in maps)],
            "maps": {m: {"images": c, "from": MULTITASK_FOLDERS[m]} for m, c in maps.items()},
            "note": "seg.png holds the dataset's class ids (0 = background)"}
    write_card(out, card)
    return card
