"""Copy-paste scenes: real object cut-outs pasted onto crops of real photos.

Each scene is one background crop with 1-3 objects at random scale, position and flip.
Labels are exact by construction: the semantic mask is the class of the top-most object
at each pixel (alpha > 128), instances are numbered in paste order, boxes are the
extents of each instance's *visible* pixels, and ``cls`` is the class of the largest
visible object. Instances less than 25% visible (or under 48 pixels) are dropped from
the labels, their pixels kept. Train and test use disjoint photos and disjoint objects.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from omnicodec.data import sources
from omnicodec.data.samples import make_sample
from omnicodec.data.shards import ShardSink, write_card

MIN_VISIBLE, MIN_PIXELS = 0.25, 48


class SceneComposer:
    def __init__(self, source: str, split: str):
        self.source, self.split = source, split
        self.backgrounds = []
        for p in sources.photos(source, split):
            img = p.load()
            img.thumbnail((1280, 1280), Image.LANCZOS)
            self.backgrounds.append((p.name, img))
        self.objects = []
        for c in sources.cutouts(source, split):
            img = c.load()
            bbox = img.getchannel("A").point(lambda a: 255 if a > 128 else 0).getbbox()
            if bbox is not None:
                self.objects.append((c, img.crop(bbox)))
        if not self.backgrounds or not self.objects:
            raise RuntimeError(f"no {split} photos or objects for source {source}")
        self.classes = sources.classes(source)

    def compose(self, rng: np.random.Generator, size: int) -> dict[str, Any]:
        for _ in range(20):
            scene = self._try(rng, size)
            if scene is not None:
                return scene
        raise RuntimeError("could not place a visible object in 20 attempts")

    def _try(self, rng: np.random.Generator, size: int) -> dict[str, Any] | None:
        bg_name, bg = self.backgrounds[rng.integers(len(self.backgrounds))]
        scale = rng.uniform(size / min(bg.size), min(3 * size / min(bg.size), 1.0) if min(bg.size) > size else size / min(bg.size))
        w, h = max(size, round(bg.size[0] * scale)), max(size, round(bg.size[1] * scale))
        canvas = bg.resize((w, h), Image.BILINEAR)
        left, top = int(rng.integers(0, w - size + 1)), int(rng.integers(0, h - size + 1))
        canvas = canvas.crop((left, top, left + size, top + size)).convert("RGBA")
        seg = np.zeros((size, size), np.uint8)
        inst = np.zeros((size, size), np.uint8)
        placed = []
        for k in range(int(rng.integers(1, 4))):
            cut, obj = self.objects[rng.integers(len(self.objects))]
            longest = rng.uniform(0.3, 0.75) * size
            f = longest / max(obj.size)
            ow, oh = max(8, round(obj.size[0] * f)), max(8, round(obj.size[1] * f))
            piece = obj.resize((ow, oh), Image.BILINEAR)
            if rng.random() < 0.5:
                piece = piece.transpose(Image.FLIP_LEFT_RIGHT)
            x = int(rng.integers(-ow // 4, size - 3 * ow // 4 + 1))
            y = int(rng.integers(-oh // 4, size - 3 * oh // 4 + 1))
            canvas.alpha_composite(piece, (max(x, 0), max(y, 0)), (max(-x, 0), max(-y, 0)))
            full = np.zeros((size, size), bool)
            alpha = np.asarray(piece.getchannel("A")) > 128
            ys, xs = slice(max(y, 0), min(y + oh, size)), slice(max(x, 0), min(x + ow, size))
            full[ys, xs] = alpha[ys.start - y : ys.stop - y, xs.start - x : xs.stop - x]
            seg[full], inst[full] = cut.label + 1, k + 1
            placed.append((cut, int(alpha.sum())))
        boxes, labels, objects, relabel = [], [], [], np.zeros(256, np.uint8)
        for k, (cut, area) in enumerate(placed):
            vis = inst == k + 1
            n = int(vis.sum())
            if n < MIN_PIXELS or n < MIN_VISIBLE * area:
                continue
            yy, xx = np.nonzero(vis)
            boxes.append([int(xx.min()), int(yy.min()), int(xx.max()) + 1, int(yy.max()) + 1])
            labels.append(cut.label)
            objects.append(cut.name)
            relabel[k + 1] = len(boxes)
        if not boxes:
            return None
        inst = relabel[inst]
        seg[inst == 0] = 0  # dropped instances are background for every task
        areas = [(inst == i + 1).sum() for i in range(len(boxes))]
        return {
            "image": canvas.convert("RGB"), "seg": seg, "inst": inst, "cls": labels[int(np.argmax(areas))],
            "meta": {"boxes": boxes, "labels": labels, "classes": [self.classes[c] for c in labels],
                     "source": {"background": bg_name, "objects": objects}, "size": [size, size]},
        }


def build_scenes(out: str, train: int, test: int, size: int = 192, source: str | None = None, seed: int = 0,
                 maxcount: int = 50, progress: bool = True) -> dict[str, Any]:
    source = sources.pick_source(source)
    counts = {"train": train, "test": test}
    hist: dict[str, list[int]] = {}
    shards: dict[str, list[str]] = {}
    for split, n in counts.items():
        if n == 0:
            continue
        composer = SceneComposer(source, split)
        hist[split] = [0] * len(composer.classes)
        with ShardSink(out, split, maxcount) as sink:
            for i in tqdm(range(n), desc=f"{split} scenes", disable=not progress):
                s = composer.compose(sources.stable_rng("scene", seed, split, i), size)
                hist[split][s["cls"]] += 1
                sink.write(make_sample(f"{split}-{i:07d}", s["image"], cls=s["cls"], seg=s["seg"],
                                       inst=s["inst"], meta=s["meta"]))
        shards[split] = [u.rsplit("/", 1)[-1] for u in sink.shards]
        hist[f"{split}_objects"] = len(composer.objects)  # type: ignore[assignment]
        hist[f"{split}_backgrounds"] = len(composer.backgrounds)  # type: ignore[assignment]
    card = {"kind": "scenes", "source": source, "classes": sources.classes(source), "size": size, "seed": seed,
            "counts": counts, "class_histogram": hist, "shards": shards,
            "members": ["jpg", "cls", "seg.png", "inst.png", "json"]}
    write_card(out, card)
    return card
