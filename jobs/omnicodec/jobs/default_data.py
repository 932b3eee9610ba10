"""The data sets jobs build when the user names none: made once under $OMNICODEC_HOME/data.

``omnicodec pretrain`` trains on real-photo crops and scene shards and measures on the
Kodak-like and held-out photo sets; without ``--data`` they are built here on first use and
reused afterwards. ``split_shards`` picks the ``train-*`` or ``test-*`` shards of a folder.
"""

from __future__ import annotations

import os

from omnicodec.data.shards import resolve_shards
from omnicodec.errors import DataError
from omnicodec.jobs.specs import DEFAULT_HOME

DATA_HOME = os.path.join(DEFAULT_HOME, "data")


def default_photos() -> str:
    """Photo crops for codec pretraining; built once under $OMNICODEC_HOME/data."""
    from omnicodec.data.photos import build_photo_shards

    out = os.path.join(DATA_HOME, "photos")
    if not has_shards(out):
        build_photo_shards(out, count=4000)
    return out


def default_heldout_photos() -> str:
    from omnicodec.data.photos import build_heldout_photos

    out = os.path.join(DATA_HOME, "heldout-photos")
    if not has_shards(out):
        build_heldout_photos(out)
    return out


def default_kodaklike() -> str:
    from omnicodec.data.photos import build_kodaklike

    out = os.path.join(DATA_HOME, "kodaklike")
    if not has_shards(out):
        build_kodaklike(out)
    return out


def default_scenes(train: int = 2000, test: int = 200, size: int = 192) -> str:
    from omnicodec.data.scenes import build_scenes

    out = os.path.join(DATA_HOME, f"scenes-{size}")
    if not has_shards(out):
        build_scenes(out, train, test, size)
    return out


def has_shards(folder: str) -> bool:
    try:
        return bool(resolve_shards(folder))
    except DataError:
        return False


def split_shards(folder: str, split: str) -> list[str]:
    """The ``<split>-*.tar`` shards of a scene folder."""
    return [u for u in resolve_shards(folder) if os.path.basename(u).startswith(f"{split}-")]
