"""Converters from common on-disk datasets to omnicodec's multi-task shards.

- ``imagefolder``: ``ROOT/<class>/<image>`` -> ``jpg`` + ``cls`` (classes sorted by name).
- ``coco``: COCO ``instances_*.json`` + its image folder -> ``jpg`` + ``json`` boxes and
  labels + ``seg.png`` (category masks) + ``inst.png`` + ``cls`` (largest instance).
- ``pascal-context``: ``ROOT/JPEGImages/*.jpg`` + ``ROOT/<labels>/*.png`` class-id masks
  -> ``jpg`` + ``seg.png`` + ``cls`` (most frequent non-background class); with the
  multi-task layout (PASCAL-Context as used by ASTMT / MTI-Net / Adapt-ICMH) also the dense
  maps the paper's other tasks read, for each image that has one (``MULTITASK_FOLDERS``):
  ``human_parts/`` -> ``parts.png``, ``sal_distill/`` -> ``sal.png``, ``normals_distill/``
  -> ``normals.png``, ``edges/`` -> ``edge.png`` (without it the ``edge`` kind uses the
  boundaries of ``seg.png``, which is how PASCAL-Context defines its edges).

Image bytes are copied as they are (no re-encoding) when they are JPEG or PNG.
"""

from __future__ import annotations

import io
import json
import os
from collections import Counter
from typing import Any

import numpy as np
from PIL import Image

from omnicodec import storage
from omnicodec.data.samples import encode_png
from omnicodec.data.shards import ShardSink, SplitSink, write_card
from omnicodec.errors import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def _image_member(path: str) -> tuple[str, bytes, tuple[int, int]]:
    """(member extension, bytes, size). Decoded in full here (``images.decode_image_bytes``),
    so an unreadable file, or a mode no reader can map to 8-bit RGB, is refused now with its
    path, not at training time. JPEG and PNG bytes are kept as they are (readers convert
    16-bit PNGs the same way); other formats are stored as 8-bit RGB PNG."""
    from omnicodec.images import decode_image_bytes

    data = open(path, "rb").read()
    rgb = decode_image_bytes(data, path)
    if Image.open(io.BytesIO(data)).format in ("PNG", "JPEG"):
        return ("png" if data[:4] == b"\x89PNG" else "jpg"), data, rgb.size
    buf = io.BytesIO()
    rgb.save(buf, format="PNG")
    return "png", buf.getvalue(), rgb.size


def convert(fmt: str, out: str, root: str | None = None, images: str | None = None, annotations: str | None = None,
            labels: str = "SegmentationClassContext", prefix: str = "data", maxcount: int = 100,
            test_fraction: float = 0.0, overwrite: bool = False) -> dict[str, Any]:
    """Convert into ``out``. ``test_fraction`` > 0 writes ``train-*.tar`` and ``test-*.tar``
    (stable split by source file name) instead of ``<prefix>-*.tar``. A folder that already
    holds a converted dataset is refused unless ``overwrite``: nothing is silently replaced."""
    if storage.exists(storage.join(out, "dataset.json")) and not overwrite:
        raise DataError(f"{out} already holds a dataset (dataset.json); choose another --out, or pass --overwrite")
    if fmt == "imagefolder":
        return imagefolder(_need(root, "--root"), out, prefix, maxcount, test_fraction)
    if fmt == "coco":
        return coco(_need(images, "--images"), _need(annotations, "--annotations"), out, prefix, maxcount, test_fraction)
    if fmt == "pascal-context":
        return pascal_context(_need(root, "--root"), out, labels, prefix, maxcount, test_fraction)
    raise DataError(f"unknown format '{fmt}'")


def _sink(out: str, prefix: str, maxcount: int, test_fraction: float) -> ShardSink | SplitSink:
    return SplitSink(out, test_fraction, maxcount) if test_fraction > 0 else ShardSink(out, prefix, maxcount)


def _split_card(sink: ShardSink | SplitSink) -> dict[str, Any]:
    return {"splits": dict(sink.counts), "test_fraction": sink.fraction} if isinstance(sink, SplitSink) else {}


def _need(v: str | None, flag: str) -> str:
    if not v:
        raise DataError(f"this format needs {flag}")
    return v


def imagefolder(root: str, out: str, prefix: str = "data", maxcount: int = 100,
                test_fraction: float = 0.0) -> dict[str, Any]:
    if not os.path.isdir(root):
        raise DataError(f"{root}: not a folder")
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    if not classes:
        raise DataError(f"{root}: no class folders")
    items = sorted((c, f) for c in classes for f in os.listdir(os.path.join(root, c)) if f.lower().endswith(IMAGE_SUFFIXES))
    hist: Counter = Counter()
    with _sink(out, prefix, maxcount, test_fraction) as sink:
        for i, (c, f) in enumerate(items):
            ext, data, _ = _image_member(os.path.join(root, c, f))
            sink.write({"__key__": f"{prefix}-{i:07d}", ext: data, "cls": str(classes.index(c)).encode(),
                        "json": json.dumps({"source": f"{c}/{f}"}).encode()})
            hist[c] += 1
    card = {"kind": "imagefolder", "classes": classes, "count": len(items), "class_histogram": dict(hist),
            "shards": [os.path.basename(s) for s in sink.shards], **_split_card(sink), "members": ["jpg|png", "cls", "json"]}
    write_card(out, card)
    return card


def coco(images: str, annotations: str, out: str, prefix: str = "data", maxcount: int = 100,
         test_fraction: float = 0.0) -> dict[str, Any]:
    from pycocotools.coco import COCO

    try:
        with open(annotations) as f:
            dataset = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"{annotations}: unreadable COCO annotations ({e})") from None
    for key in ("images", "annotations", "categories"):
        if key not in dataset:
            raise DataError(f"{annotations}: missing '{key}'")
    api = COCO()
    api.dataset = dataset
    api.createIndex()
    cats = sorted(api.getCatIds())
    index = {c: i for i, c in enumerate(cats)}
    classes = [api.cats[c]["name"] for c in cats]
    hist: Counter = Counter()
    with _sink(out, prefix, maxcount, test_fraction) as sink:
        for n, image_id in enumerate(sorted(api.getImgIds())):
            info = api.imgs[image_id]
            ext, data, (w, h) = _image_member(os.path.join(images, info["file_name"]))
            seg = np.zeros((h, w), np.uint8)
            inst = np.zeros((h, w), np.uint8)
            boxes, labels, areas = [], [], []
            anns = [a for a in api.loadAnns(api.getAnnIds(imgIds=image_id, iscrowd=False))]
            for a in sorted(anns, key=lambda a: -a.get("area", 0)):  # small objects painted last, on top
                x, y, bw, bh = a["bbox"]
                if bw <= 0 or bh <= 0:
                    continue
                m = api.annToMask(a).astype(bool)
                label = index[a["category_id"]]
                seg[m] = label + 1
                inst[m] = min(len(boxes) + 1, 255)
                boxes.append([x, y, x + bw, y + bh])
                labels.append(label)
                areas.append(a.get("area", bw * bh))
            sample = {"__key__": f"{prefix}-{n:07d}", ext: data, "seg.png": encode_png(seg), "inst.png": encode_png(inst),
                      "json": json.dumps({"boxes": boxes, "labels": labels, "classes": [classes[l] for l in labels],
                                          "source": info["file_name"], "coco_id": image_id}).encode()}
            if labels:
                sample["cls"] = str(labels[int(np.argmax(areas))]).encode()
                hist[classes[labels[int(np.argmax(areas))]]] += 1
            sink.write(sample)
    card = {"kind": "coco", "classes": classes, "count": len(api.getImgIds()), "class_histogram": dict(hist),
            "shards": [os.path.basename(s) for s in sink.shards], **_split_card(sink), "members": ["jpg", "json", "seg.png", "inst.png", "cls"]}
    write_card(out, card)
    return card


MULTITASK_FOLDERS = {"parts": "human_parts", "sal": "sal_distill", "normals": "normals_distill", "edge": "edges"}


def _dense_members(root: str, name: str, size: tuple[int, int], counts: Counter) -> dict[str, bytes]:
    """The multi-task maps that exist for image ``name``, checked (8-bit L/P/RGB PNG of the
    image's size) and stored as PNG members named by map."""
    from omnicodec.data.samples import read_dense_map

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
    img_dir, lab_dir = os.path.join(root, "JPEGImages"), os.path.join(root, labels)
    if not os.path.isdir(img_dir) or not os.path.isdir(lab_dir):
        raise DataError(f"{root}: expected JPEGImages/ and {labels}/")
    names = sorted(os.path.splitext(f)[0] for f in os.listdir(lab_dir) if f.endswith(".png"))
    class_file = os.path.join(root, "labels.txt")
    classes = [line.strip() for line in open(class_file)] if os.path.exists(class_file) else None
    hist: Counter = Counter()
    maps: Counter = Counter()
    with _sink(out, prefix, maxcount, test_fraction) as sink:
        for n, name in enumerate(names):
            ext, data, (w, h) = _image_member(os.path.join(img_dir, name + ".jpg"))
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
            sink.write(sample)
    card = {"kind": "pascal-context", "classes": classes, "count": len(names), "class_histogram": dict(hist),
            "shards": [os.path.basename(s) for s in sink.shards], **_split_card(sink),
            "members": ["jpg", "seg.png", "cls", "json", *(f"{m}.png" for m in maps)],
            "maps": {m: {"images": c, "from": MULTITASK_FOLDERS[m]} for m, c in maps.items()},
            "note": "seg.png holds the dataset's class ids (0 = background)"}
    write_card(out, card)
    return card
