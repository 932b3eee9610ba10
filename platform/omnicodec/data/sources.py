"""Real pixels available offline: photos and object cut-outs, split train / test.

Two sources, chosen by ``--source``:

- ``debian``: Debian packages installed by ``scripts/setup.sh`` -- Plasma wallpaper photos
  (train), MATE nature photos (test and the Kodak-like set), and Tux Paint photo stamps
  (RGBA cut-outs: alpha is an exact mask, the folder is the class).
- ``portable``: pip-only -- the photos bundled with scikit-image, scikit-learn and
  matplotlib; objects are cut from those photos with procedural shape masks (the shape
  is the class). Small, but it works anywhere pip does.

Train and test never share a photo or an object, so test scenes hold unseen pixels.
"""

from __future__ import annotations

import glob
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from omnicodec.errors import DataError

STAMPS = "/usr/share/tuxpaint/stamps"
MATE = "/usr/share/backgrounds/mate/nature"
PLASMA = "/usr/share/wallpapers"
PLASMA_PHOTOS = ("BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf",
                 "Grey", "Kite", "OneStandsOut", "Path", "summer_1am")
# Scene classes: folder globs under STAMPS. Chosen for >= 11 cut-outs each.
STAMP_CLASSES: dict[str, tuple[str, ...]] = {
    "mammal": ("animals/mammals",), "bird": ("animals/birds",), "fish": ("animals/fish",),
    "insect": ("animals/insects",), "flower": ("plants/flowers",), "fruit": ("food/fruit",),
    "vegetable": ("food/vegetables",), "vehicle": ("vehicles", "military/vehicles"),
}
SHAPE_CLASSES = ("disc", "square", "triangle", "star", "ring", "cross")
SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry",
                  "retina", "camera", "moon", "brick", "grass", "gravel", "coins")
PORTABLE_TEST = ("skimage:coffee", "skimage:rocket", "sklearn:flower.jpg")
SOURCES = ("debian", "portable")


@dataclass(frozen=True)
class Photo:
    name: str
    loader: Callable[[], Image.Image]

    def load(self) -> Image.Image:
        return self.loader().convert("RGB")


@dataclass(frozen=True)
class CutOut:
    """An object: RGBA pixels whose alpha > 128 is its mask."""

    name: str
    label: int
    loader: Callable[[], Image.Image]

    def load(self) -> Image.Image:
        return self.loader().convert("RGBA")


def stable_rng(*parts: object) -> np.random.Generator:
    """A generator seeded by ``parts``, identical on every machine and Python process."""
    return np.random.default_rng(int(hashlib.sha256(repr(parts).encode()).hexdigest()[:12], 16))


def stable_fraction(name: str) -> float:
    """A number in [0, 1] fixed by ``name``: the same on every machine and run."""
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def _in_test(name: str, fraction: float = 0.25) -> bool:
    """Stable split by name: the same file lands on the same side on every machine."""
    return stable_fraction(name) < fraction


def debian_available() -> bool:
    return os.path.isdir(STAMPS) and os.path.isdir(MATE) and any(os.path.isdir(f"{PLASMA}/{p}") for p in PLASMA_PHOTOS)


def pick_source(source: str | None) -> str:
    if source is None or source == "auto":
        return "debian" if debian_available() else "portable"
    if source not in SOURCES:
        raise DataError(f"unknown source '{source}' (choose from {', '.join(SOURCES)} or auto)")
    if source == "debian" and not debian_available():
        raise DataError("source 'debian' needs tuxpaint-stamps-default, mate-backgrounds and "
                        "plasma-workspace-wallpapers (scripts/setup.sh installs them); or use --source portable")
    return source


# ------------------------------------------------------------------- photos
def _skimage(name: str) -> Photo:
    def load() -> Image.Image:
        import skimage.data

        return Image.fromarray(getattr(skimage.data, name)())
    return Photo(f"skimage:{name}", load)


def _extra_photos() -> list[Photo]:
    def sk(name: str) -> Callable[[], Image.Image]:
        def load() -> Image.Image:
            from sklearn.datasets import load_sample_image

            return Image.fromarray(load_sample_image(name))
        return load

    def hopper() -> Image.Image:
        from matplotlib import cbook

        with cbook.get_sample_data("grace_hopper.jpg") as f:
            return Image.open(f).copy()
    return [Photo("sklearn:china.jpg", sk("china.jpg")), Photo("sklearn:flower.jpg", sk("flower.jpg")),
            Photo("matplotlib:grace_hopper.jpg", hopper)]


def pip_photos() -> list[Photo]:
    """The photos that ship inside scikit-image, scikit-learn and matplotlib (work anywhere)."""
    return [_skimage(n) for n in SKIMAGE_PHOTOS] + _extra_photos()


def largest(folder: str) -> str:
    files = glob.glob(os.path.join(folder, "*.jpg")) + glob.glob(os.path.join(folder, "*.png"))
    return max(files, key=lambda f: [int(v) for v in os.path.basename(f).split(".")[0].split("x")])


def file_photo(path: str, name: str) -> Photo:
    return Photo(name, lambda: Image.open(path))


def photos(source: str, split: str) -> list[Photo]:
    """Photos for ``split`` in ``train`` (codec pretraining, train backgrounds) or ``test``."""
    pip = pip_photos()
    if source == "portable":
        test = [p for p in pip if p.name in PORTABLE_TEST]
        train = [p for p in pip if p not in test]
        return train if split == "train" else test
    if split == "train":
        plasma = [file_photo(largest(f"{PLASMA}/{n}/contents/images"), f"plasma:{n}")
                  for n in PLASMA_PHOTOS if os.path.isdir(f"{PLASMA}/{n}")]
        return plasma + pip
    return [file_photo(p, f"mate:{os.path.basename(p)}") for p in sorted(glob.glob(f"{MATE}/*.jpg"))]


# ------------------------------------------------------------------ objects
def classes(source: str) -> list[str]:
    return list(STAMP_CLASSES) if source == "debian" else list(SHAPE_CLASSES)


def cutouts(source: str, split: str) -> list[CutOut]:
    if source == "debian":
        out = []
        for label, folders in enumerate(STAMP_CLASSES.values()):
            files = sorted({f for d in folders for f in glob.glob(f"{STAMPS}/{d}/**/*.png", recursive=True)})
            for f in files:
                rel = os.path.relpath(f, STAMPS)
                if _in_test(rel) == (split == "test"):
                    out.append(CutOut(f"tuxpaint:{rel}", label, lambda f=f: Image.open(f)))
        return out
    # portable: textures from this split's photos, one cut-out per (shape, texture, variant)
    out = []
    for p in photos("portable", split):
        for label, shape in enumerate(SHAPE_CLASSES):
            for variant in range(3):
                out.append(CutOut(f"{p.name}#{shape}{variant}", label,
                                  lambda p=p, shape=shape, v=variant: _shape_cutout(p, shape, v)))
    return out


@lru_cache(maxsize=32)
def _photo_array(photo: Photo) -> np.ndarray:
    return np.asarray(photo.load())


def _shape_cutout(photo: Photo, shape: str, variant: int, size: int = 160) -> Image.Image:
    arr = _photo_array(photo)
    rng = np.random.default_rng(int(hashlib.sha256(f"{photo.name}{shape}{variant}".encode()).hexdigest()[:8], 16))
    h, w = arr.shape[:2]
    top, left = rng.integers(0, max(1, h - size)), rng.integers(0, max(1, w - size))
    rgb = Image.fromarray(arr[top : top + size, left : left + size]).resize((size, size))
    mask = Image.new("L", (size, size), 0)
    d = ImageDraw.Draw(mask)
    m, c = 8, size / 2
    if shape == "disc":
        d.ellipse([m, m, size - m, size - m], fill=255)
    elif shape == "square":
        d.rectangle([m * 2, m * 2, size - m * 2, size - m * 2], fill=255)
    elif shape == "triangle":
        d.polygon([(c, m), (size - m, size - m), (m, size - m)], fill=255)
    elif shape == "star":
        pts = [(c + (c - m) * (1 if k % 2 == 0 else 0.45) * np.cos(np.pi * k / 5 - np.pi / 2),
                c + (c - m) * (1 if k % 2 == 0 else 0.45) * np.sin(np.pi * k / 5 - np.pi / 2)) for k in range(10)]
        d.polygon(pts, fill=255)
    elif shape == "ring":
        d.ellipse([m, m, size - m, size - m], fill=255)
        d.ellipse([size * 0.32, size * 0.32, size * 0.68, size * 0.68], fill=0)
    else:  # cross
        d.rectangle([c - size * 0.14, m, c + size * 0.14, size - m], fill=255)
        d.rectangle([m, c - size * 0.14, size - m, c + size * 0.14], fill=255)
    out = rgb.convert("RGBA")
    out.putalpha(mask)
    return out
