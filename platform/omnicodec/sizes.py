"""Which images the code takes: the pixel cap and the 32 px floor, one rule each for every
reader (``omnicodec encode``, eval's test sets, the Serve app). Light on purpose (no torch):
``omnicodec encode`` refuses an oversized photo before it imports the codec."""

from __future__ import annotations

import os

from omnicodec.errors import DataError

MIN_SIDE = 32  # the task networks (EfficientNet-Lite0 bodies) fail on smaller images with a raw torch error
MAX_PIXELS = 4096 * 4096  # default cap: coding a 6000x4000 photo whole took 76 s and 7.5 GB on a 2-core machine
MAX_PIXELS_ENV = "OMNICODEC_MAX_PIXELS"


def max_pixels() -> int:
    """The pixel cap in force: ``$OMNICODEC_MAX_PIXELS`` where set, else ``MAX_PIXELS``."""
    value = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not value:
        return MAX_PIXELS
    if not value.isdigit() or int(value) < 1:
        raise DataError(f"{MAX_PIXELS_ENV}={value!r}: expected a positive number of pixels")
    return int(value)


def check_pixels(width: int, height: int, name: str, limit: int | None = None,
                 raise_with: str = f"--max-pixels or {MAX_PIXELS_ENV}") -> None:
    """Refuse an image over the pixel cap in one line naming it and its size, before any work
    is spent on it: the codec runs whole images (no tiling), so memory and time grow with
    the area (encoding a 6000x4000 photo: 76 s and 7.5 GB, some 3 us and 300 bytes a pixel)."""
    limit = max_pixels() if limit is None else limit
    if width * height > limit:
        area = width * height
        said = f"{area / 1e6:.1f} megapixels" if area >= 100_000 else f"{area} pixels"
        raise DataError(f"{name}: {width}x{height} = {said} exceeds the cap of {limit} pixels; downscale or crop "
                        f"it, or raise the cap with {raise_with}")


def check_min_side(width: int, height: int, name: str, doing: str = "to evaluate") -> None:
    """Refuse an image the task networks cannot run on (under ``MIN_SIDE`` px a side)."""
    if min(width, height) < MIN_SIDE:
        raise DataError(f"{name}: {width}x{height} pixels is too small {doing} (the task networks need at least "
                        f"{MIN_SIDE} px a side); drop or enlarge it")
