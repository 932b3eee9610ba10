"""Real-photo data for the human side: pretraining crops and the Kodak-like test set.

- ``build_photo_shards``: random crops of the *training* photos of the real-photo corpus
  (``omnicodec.data.corpus``) at scales from the whole photo downscaled to the crop up to
  full size (log-uniform), with flips, for codec pretraining (rate + lambda * 255^2 * MSE).
- ``build_heldout_photos``: each held-out photo whole, downscaled to 768 px on its long
  side: the held-out set of the human rate-distortion report.
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

from omnicodec.data import corpus, sources
from omnicodec.data.samples import make_sample
from omnicodec.data.shards import ShardSink, write_card

MAX_SIDE = 1600  # photos are downscaled to this first: crops then look like camera frames


def _prepared(photo: sources.Photo) -> Image.Image:
    img = photo.load()
    if max(img.size) > MAX_SIDE:
        img.thumbnail((MAX_SIDE, MAX_SIDE), Image.LANCZOS)
    return img


def _training_pool(source: str) -> tuple[list[sources.Photo], dict[str, str]]:
    """The training photos (screened and deduplicated for ``debian``) and those left out."""
    if source == "portable":
        return sources.photos("portable", "train"), {}
    report = corpus.build_corpus()
    return report.train, report.rejected


def build_photo_shards(out: str, count: int = 2000, crop: int = 256, source: str | None = None,
                       seed: int = 0, maxcount: int = 250, progress: bool = True) -> dict[str, Any]:
    source = sources.pick_source(source)
    photos, rejected = _training_pool(source)
    pool = [(p, _prepared(p)) for p in photos]
    weights = np.array([im.size[0] * im.size[1] for _, im in pool], dtype=float) ** 0.5
    weights /= weights.sum()
    rng = sources.stable_rng("photos", seed)
    with ShardSink(out, "photos", maxcount) as sink:
        for i in tqdm(range(count), desc="photo crops", disable=not progress):
            p, img = pool[rng.choice(len(pool), p=weights)]
            piece, scale = _random_crop(img, crop, rng)
            sink.write(make_sample(f"photo-{i:07d}", piece, meta={"source": p.name, "scale": round(scale, 4)}))
    card = {"kind": "photos", "source": source, "count": count, "crop": crop, "seed": seed,
            "distinct_photos": len(pool), "photos": [p.name for p, _ in pool], "left_out": rejected,
            "heldout": [p.name for p in sources.photos(source, "test")],
            "shards": [s.rsplit("/", 1)[-1] for s in sink.shards]}
    write_card(out, card)
    return card


def _random_crop(img: Image.Image, crop: int, rng: np.random.Generator) -> tuple[Image.Image, float]:
    """A crop at a log-uniform scale between 'whole photo downscaled to the crop' and 1."""
    short = min(img.size)
    low = min(1.0, crop / short)
    scale = float(np.exp(rng.uniform(np.log(low), 0.0))) if low < 1 else crop / short
    w, h = max(crop, round(img.size[0] * scale)), max(crop, round(img.size[1] * scale))
    scaled = img.resize((w, h), Image.LANCZOS) if (w, h) != img.size else img
    left, top = int(rng.integers(0, w - crop + 1)), int(rng.integers(0, h - crop + 1))
    piece = scaled.crop((left, top, left + crop, top + crop))
    if rng.random() < 0.5:
        piece = piece.transpose(Image.FLIP_LEFT_RIGHT)
    return piece, scale


def build_heldout_photos(out: str, long_side: int = 768, source: str | None = None) -> dict[str, Any]:
    """Every held-out photo whole, downscaled (multiple of 16 px) and stored losslessly."""
    source = sources.pick_source(source)
    pool = sources.photos(source, "test")
    with ShardSink(out, "heldout", 64) as sink:
        for i, p in enumerate(pool):
            img = p.load()
            f = long_side / max(img.size)
            size = (max(16, round(img.size[0] * f / 16) * 16), max(16, round(img.size[1] * f / 16) * 16))
            sink.write(make_sample(f"heldout-{i:02d}", img.resize(size, Image.LANCZOS),
                                   meta={"source": p.name, "size": list(size)}, image_format="png"))
    card = {"kind": "heldout-photos", "source": source, "count": len(pool), "long_side": long_side,
            "photos": [p.name for p in pool], "note": "held-out photos, never in any training set"}
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
            for left in xs:
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
