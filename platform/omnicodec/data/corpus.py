"""The real-photo corpus for the human codec: every offline photographic source, art kept out.

Where the pixels come from (all installed by ``scripts/setup.sh``; nothing is downloaded):

| package | files taken | split |
|---|---|---|
| plasma-workspace-wallpapers | the 11 photographic wallpapers (largest size of each) | train |
| lomiri-wallpapers-16.04 / -20.04 | the Ubuntu free-culture-showcase photos listed below | train |
| libjxl-testdata | flower.png, hdr_room.png, the three 500 px sRGB photos | train |
| scikit-image, scikit-learn, matplotlib | their bundled photos | train |
| mate-backgrounds | ``nature/*.jpg`` (12 photos) | held-out |

**Digital art is kept out in two steps.** (1) Only files on the curated lists below are
candidates: they were reviewed by eye on a contact sheet of every image the wallpaper
packages install (gnome-backgrounds, sway-backgrounds, ukui-wallpapers, mypaint-data-extras,
MATE ``abstract/`` and ``desktop/``, and the renders among Plasma's and Lomiri's wallpapers
are art: gradients, vector shapes, 3-D renders, paper textures). (2) Every candidate must
also pass an automatic screen (:func:`art_reason`): renders and vector art have large
perfectly flat areas and few distinct colours, photos have sensor noise and texture
everywhere. A candidate that fails is reported with its reason, never used silently.

**Duplicates** (the same photo at two sizes or in two packages) are dropped by a 64-bit
difference hash (Hamming distance <= 6); the larger file is kept.

**The split is fixed**: the MATE nature photos are held out from every training set
(codec pretraining crops, scene backgrounds for training); the Kodak-like set and the
held-out RD set are cut from them. ``omnicodec data photos`` prints how many distinct
photos each side used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from PIL import Image

from omnicodec.data import sources

BACKGROUNDS = "/usr/share/backgrounds"
LOMIRI_PHOTOS = (
    "Bridge_by_Sander_Klootwijk.jpg", "Dragonfly_by_Bolly.jpg", "Picture_0B_by_freespace.jpg",
    "Picture_1A_by_freespace.jpg", "Wine_by_Jakkub_Mede.jpg", "aitzgorri_by_Aitzol_Berasategi.jpg",
    "friends_by_Aitzol_Berasategi.jpg", "life_by_Aitzol_Berasategi.jpg",
    "picosdeeuropa_by_Aitzol_Berasategi.jpg", "seeding_by_Clements_Engelhardt.jpg",
    "sunset_by_Aitzol_Berasategi.jpg", "Kleiber_by_Lukas_Baubkus.jpg",
)
JXL = "/usr/share/libjxl-testdata"
JXL_PHOTOS = (
    "jxl/flower/flower.png", "jxl/hdr_room.png",
    "external/wesaturate/500px/u76c0g_bliznaca_srgb8.png",
    "external/wesaturate/500px/tmshre_riaphotographs_srgb8.png",
    "external/wesaturate/500px/cvo9xd_keong_macan_srgb8.png",
)
# pip photos that are not camera photos of scenes (microscopy, telescope, greyscale test charts)
PIP_NOT_PHOTOS = ("skimage:hubble_deep_field", "skimage:immunohistochemistry", "skimage:retina",
                  "skimage:moon", "skimage:camera", "skimage:coins")
MIN_SIDE = 256
FLAT_LIMIT = 0.6  # fraction of 8x8 blocks with std < 1 grey level
COLOUR_FLOOR = 400  # distinct 6-bit colours in a 256x256 thumbnail


@dataclass(frozen=True)
class CorpusReport:
    train: list[sources.Photo]
    heldout: list[sources.Photo]
    rejected: dict[str, str]  # photo name -> why it was left out

    def summary(self) -> str:
        return (f"{len(self.train)} distinct training photos, {len(self.heldout)} held-out photos, "
                f"{len(self.rejected)} candidates left out")


def art_reason(img: Image.Image) -> str | None:
    """Why ``img`` looks like digital art rather than a photo, or None for a photo."""
    if min(img.size) < MIN_SIDE:
        return f"too small ({img.size[0]}x{img.size[1]} < {MIN_SIDE} px)"
    small = img.convert("RGB")
    small.thumbnail((768, 768), Image.BILINEAR)
    grey = np.asarray(small.convert("L"), dtype=np.float32)
    h8, w8 = grey.shape[0] // 8 * 8, grey.shape[1] // 8 * 8
    blocks = grey[:h8, :w8].reshape(h8 // 8, 8, w8 // 8, 8).transpose(0, 2, 1, 3).reshape(-1, 64)
    flat = float((blocks.std(1) < 1.0).mean())
    if flat > FLAT_LIMIT:
        return f"{flat:.0%} of its area is perfectly flat (renders and vector art; photos have noise)"
    rgb = np.asarray(small.resize((256, 256)), dtype=np.uint8) // 4
    colours = len(np.unique(rgb.reshape(-1, 3), axis=0))
    if colours < COLOUR_FLOOR:
        return f"only {colours} distinct colours (flat-shaded art or a greyscale image)"
    return None


def dhash(img: Image.Image) -> int:
    """64-bit difference hash: equal for the same photo at other sizes or compressions."""
    a = np.asarray(img.convert("L").resize((9, 8), Image.BILINEAR), dtype=np.int16)
    bits = (a[:, 1:] > a[:, :-1]).flatten()
    return int("".join("1" if b else "0" for b in bits), 2)


def _candidates() -> tuple[list[sources.Photo], list[sources.Photo]]:
    train: list[sources.Photo] = []
    for n in sources.PLASMA_PHOTOS:
        folder = f"{sources.PLASMA}/{n}/contents/images"
        if os.path.isdir(folder):
            train.append(sources.file_photo(sources.largest(folder), f"plasma:{n}"))
    train += [sources.file_photo(f"{BACKGROUNDS}/{n}", f"lomiri:{n}") for n in LOMIRI_PHOTOS
              if os.path.isfile(f"{BACKGROUNDS}/{n}")]
    train += [sources.file_photo(f"{JXL}/{n}", f"libjxl:{os.path.basename(n)}") for n in JXL_PHOTOS
              if os.path.isfile(f"{JXL}/{n}")]
    train += [p for p in sources.pip_photos() if p.name not in PIP_NOT_PHOTOS]
    return train, sources.photos("debian", "test")  # the MATE nature photos


def build_corpus(screen_heldout: bool = False) -> CorpusReport:
    """Screen, deduplicate and split every installed photo. Held-out photos are the fixed
    MATE set (not screened unless asked: the Kodak-like set must stay the same 12 photos)."""
    train, heldout = _candidates()
    rejected: dict[str, str] = {}
    seen: list[tuple[int, str]] = []
    for p in heldout:
        seen.append((dhash(p.load()), p.name))
    kept: list[sources.Photo] = []
    # larger files first, so that of two copies the larger one is kept
    for p in sorted(train, key=lambda p: -_pixels(p)):
        img = p.load()
        why = art_reason(img)
        if why is None:
            h = dhash(img)
            twin = next((name for hh, name in seen if bin(h ^ hh).count("1") <= 6), None)
            why = f"duplicate of {twin}" if twin else None
            if twin is None:
                seen.append((h, p.name))
        if why:
            rejected[p.name] = why
        else:
            kept.append(p)
    if screen_heldout:
        for p in heldout:
            if (why := art_reason(p.load())) is not None:
                rejected[p.name] = why
    kept.sort(key=lambda p: p.name)
    return CorpusReport(train=kept, heldout=heldout, rejected=rejected)


def _pixels(p: sources.Photo) -> int:
    img = p.loader()  # files open lazily: the size comes from the header, nothing is decoded
    return img.size[0] * img.size[1]
