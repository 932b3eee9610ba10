"""``coco``: COCO ``instances_*.json`` + its image folder -> ``jpg`` + ``json`` boxes and
labels + ``seg.png`` (category masks) + ``inst.png`` + ``cls`` (largest instance)."""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any

from omnicodec.data.converters.base import CONVERTERS, Converter, image_member, need, sink, split_card
from omnicodec.errors import DataError


@CONVERTERS.register("coco")
class Coco(Converter):
    usage = "coco: --images DIR --annotations instances.json."
    flags = {"--images": {"help": "image folder"}, "--annotations": {"help": "instances JSON"}}

    @staticmethod
    def convert(options: dict[str, Any], out: str, prefix: str, maxcount: int, test_fraction: float) -> dict[str, Any]:
        return coco(need(options, "--images"), need(options, "--annotations"), out, prefix, maxcount, test_fraction)


def _load(annotations: str):
    """pycocotools' index of the annotations file, refused with the file's name if broken."""
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
    return api


def coco(images: str, annotations: str, out: str, prefix: str = "data", maxcount: int = 100,
         test_fraction: float = 0.0) -> dict[str, Any]:
    import numpy as np

    from omnicodec.data.samples import encode_png
    from omnicodec.data.shards import write_card

    api = _load(annotations)
    cats = sorted(api.getCatIds())
    index = {c: i for i, c in enumerate(cats)}
    classes = [api.cats[c]["name"] for c in cats]
    hist: Counter = Counter()
    with sink(out, prefix, maxcount, test_fraction) as shards:
        for n, image_id in enumerate(sorted(api.getImgIds())):
            info = api.imgs[image_id]
            ext, data, (w, h) = image_member(os.path.join(images, info["file_name"]))
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
            shards.write(sample)
    card = {"kind": "coco", "classes": classes, "count": len(api.getImgIds()), "class_histogram": dict(hist),
            "shards": [os.path.basename(s) for s in shards.shards], **split_card(shards), "members": ["jpg", "json", "seg.png", "inst.png", "cls"]}
    write_card(out, card)
    return card
