"""Real-photo data for the human side: pretraining crops and the Kodak-like test set.

- ``build_photo_shards``: random crops (random scale, flip) of the *train* photos, for
  codec pretraining with rate + lambda * 255^2 * MSE.
- ``build_kodaklike``: a fixed set of 24 crops of 768x512 cut from the *test* photos
  (MATE nature wallpapers), stored losslessly. It is "Kodak-like" in size and count
  only -- never call it Kodak. With ``--source portable`` the set is 24 crops of 384x256
  from the pip-bundled test photos (they are too small for 768x512).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from omnicodec.data import sources
from omnicodec.data.samples import make_sample
from omnicodec.data.shards import ShardSink, write_card

MAX_SIDE = 1600  # photos are downscaled to this first: crops then look like camera frames


def _prepared(photo: sources.Photo) -> Image.Image:
    img = photo.load()
    if max(img.size) > MAX_SIDE:
        img.thumbnail((MAX_SIDE, MAX_SIDE), Image.LANCZOS)
    return img


def build_photo_shards(out: str, count: int = 2000, crop: int = 256, source: str | None = None,
                       seed: int = 0, maxcount: int = 250, progress: bool = True) -> dict[str, Any]:
    source = sources.pick_source(source)
    pool = [(p, _prepared(p)) for p in sources.photos(source, "train")]
    weights = np.array([im.size[0] * im.size[1] for _, im in pool], dtype=float) ** 0.5
    weights /= weights.sum()
    rng = sources.stable_rng("photos", seed)
    with ShardSink(out, "photos", maxcount) as sink:
        for i in tqdm(range(count), desc="photo crops", disable=not progress):
            p, img = pool[rng.choice(len(pool), p=weights)]
            short = min(img.size)
            scale = rng.uniform(max(crop / short, 0.25), 1.0) if short > crop else crop / short
            w, h = max(crop, round(img.size[0] * scale)), max(crop, round(img.size[1] * scale))
            scaled = img.resize((w, h), Image.LANCZOS) if (w, h) != img.size else img
            left, top = int(rng.integers(0, w - crop + 1)), int(rng.integers(0, h - crop + 1))
            piece = scaled.crop((left, top, left + crop, top + crop))
            if rng.random() < 0.5:
                piece = piece.transpose(Image.FLIP_LEFT_RIGHT)
            sink.write(make_sample(f"photo-{i:07d}", piece, meta={"source": p.name, "scale": round(scale, 4)}))
    card = {"kind": "photos", "source": source, "count": count, "crop": crop, "seed": seed,
            "photos": [p.name for p, _ in pool], "shards": [s.rsplit("/", 1)[-1] for s in sink.shards]}
    write_card(out, card)
    return card


def build_kodaklike(out: str, source: str | None = None) -> dict[str, Any]:
    source = sources.pick_source(source)
    size = (768, 512) if source == "debian" else (384, 256)
    pool = sources.photos(source, "test")
    per_photo = -(-24 // len(pool))
    names = []
    with ShardSink(out, "kodaklike", 24) as sink:
        for p in pool:
            img = p.load()
            scale = max(size[0] * 2 / img.size[0], size[1] / img.size[1])
            img = img.resize((max(size[0], round(img.size[0] * scale)), max(size[1], round(img.size[1] * scale))), Image.LANCZOS)
            w, h = img.size
            xs = np.linspace(0, w - size[0], per_photo).round().astype(int) if per_photo > 1 else [(w - size[0]) // 2]
            for j, left in enumerate(xs):
                if len(names) == 24:
                    break
                top = (h - size[1]) // 2
                key = f"kodaklike-{len(names):02d}"
                sink.write(make_sample(key, img.crop((left, top, left + size[0], top + size[1])),
                                       meta={"source": p.name, "crop": [int(left), int(top), *size]}, image_format="png"))
                names.append(key)
    card = {"kind": "kodaklike", "source": source, "count": len(names), "size": list(size),
            "note": "24 crops cut from held-out photos; Kodak-like in size and count only"}
    write_card(out, card)
    return card
