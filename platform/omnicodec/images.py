"""Images in and out: PIL <-> float tensors in [0, 1], padding to the codec's grid, and
batching images (or latents) of equal shape into one pass."""

from __future__ import annotations

import io
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from omnicodec import storage
from omnicodec.bitstream import padding_for
from omnicodec.errors import DataError
from omnicodec.sizes import MAX_PIXELS_ENV, check_pixels

K = TypeVar("K", bound=Hashable)
R = TypeVar("R")

# Modes whose samples are wider than 8 bits, with the value that maps to white.
WIDE_MODES = {"I;16": 65535, "I;16L": 65535, "I;16B": 65535, "I;16N": 65535, "I": 65535, "F": 1.0}


def to_rgb8(image: Image.Image, name: str = "<image>") -> Image.Image:
    """Any PIL image -> 8-bit RGB, the one conversion every reader uses (files, shards,
    request bodies). Pillow's own ``convert("RGB")`` clips 16-bit and float samples to 255,
    which turned 16-bit PNGs white; here they are scaled: I;16* and I by 65535 (16-bit
    data), F by 1.0 (floats in [0, 1]). Transparency (RGBA, LA, PA, P with a transparent
    colour) is composited over white, as a viewer shows it. Anything else that cannot be
    mapped is refused in one line naming ``name``."""
    if image.mode == "RGB":
        return image
    if image.mode in WIDE_MODES:
        return _wide_to_rgb8(image, name)
    try:
        if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info:
            rgba = image.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return Image.alpha_composite(white, rgba).convert("RGB")
        return image.convert("RGB")
    except (ValueError, OSError) as e:
        raise DataError(f"{name}: image mode {image.mode} cannot be converted to 8-bit RGB ({e})") from None


def _wide_to_rgb8(image: Image.Image, name: str) -> Image.Image:
    """A single-channel image of more than 8 bits -> 8-bit grey as RGB, scaled, not clipped."""
    white = WIDE_MODES[image.mode]
    arr = np.asarray(image).astype(np.float64)
    if arr.size and not np.isfinite(arr).all():
        raise DataError(f"{name}: {image.mode} image holds NaN or infinite samples")
    lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
    if lo < 0 or hi > white:
        raise DataError(f"{name}: {image.mode} image samples span [{lo:g}, {hi:g}], outside [0, {white:g}] "
                        "(save it as an 8- or 16-bit PNG)")
    grey = np.rint(arr * (255.0 / white)).astype(np.uint8)
    return Image.fromarray(grey).convert("RGB")


def to_tensor(image: Image.Image, name: str = "<image>") -> torch.Tensor:
    """PIL image -> 1 x 3 x H x W float32 in [0, 1] (any mode, through ``to_rgb8``)."""
    arr = np.asarray(to_rgb8(image, name), dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def to_pil(x: torch.Tensor) -> Image.Image:
    """1 x 3 x H x W (or 3 x H x W) tensor in [0, 1] -> 8-bit RGB PIL image."""
    if x.dim() == 4:
        x = x[0]
    arr = torch.nan_to_num(x.detach().float(), nan=0.0).clamp(0, 1).mul(255).round().byte()
    return Image.fromarray(arr.permute(1, 2, 0).cpu().numpy())


def decode_image_bytes(data: bytes, name: str = "<bytes>", limit: int | None = None,
                       raise_with: str = f"--max-pixels or {MAX_PIXELS_ENV}") -> Image.Image:
    """Image file bytes -> 8-bit RGB (``to_rgb8``); an unreadable file is a ``DataError``
    naming ``name``. Every image reader goes through here: CLI, client, server, shards.
    ``limit``: a pixel cap checked on the file's header, before the pixels are decoded."""
    try:
        img = Image.open(io.BytesIO(data))
        if limit is not None:
            check_pixels(*img.size, name, limit, raise_with)
        img.load()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise DataError(f"{name}: not a readable image ({type(e).__name__}: {e})") from None
    return to_rgb8(img, name)


def load_image(location: str, limit: int | None = None) -> torch.Tensor:
    """An image file as a tensor; ``limit``: refuse it over that many pixels (``check_pixels``)."""
    try:
        data = storage.read_bytes(location)
    except FileNotFoundError:
        raise DataError(f"{location}: no such image file") from None
    return to_tensor(decode_image_bytes(data, location, limit), location)


def save_image(x: torch.Tensor, location: str) -> None:
    buf = io.BytesIO()
    to_pil(x).save(buf, format="PNG")
    storage.write_bytes(location, buf.getvalue())


def pad_to_grid(x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad bottom/right by edge replication to a multiple of 64 (cheaper to code than
    zeros: no artificial edge). Returns the padded tensor and (rows, cols) added."""
    pb, pr = padding_for(x.shape[-2], x.shape[-1])
    if pb or pr:
        x = F.pad(x, (0, pr, 0, pb), mode="replicate")
    return x, (pb, pr)


def group_positions(keys: Iterable[K]) -> dict[K, list[int]]:
    """The positions of equal keys (e.g. tensor shapes): keys in order of first appearance,
    each one's positions ascending."""
    groups: dict[K, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    return groups


def per_group(keys: Sequence[K], run: Callable[[K, list[int]], Sequence[R]]) -> list[R]:
    """Group by shape, one pass per group, scatter back: ``run(key, positions)`` is called
    once per group of equal ``keys`` (``group_positions``) and returns one result per
    position, in the order given; the results come back in the order of ``keys``. Every
    batched path (encoding, entropy decoding, synthesis, Serve's task replicas) goes
    through here."""
    out: list = [None] * len(keys)
    for key, idx in group_positions(keys).items():
        results = run(key, idx)
        if len(results) != len(idx):
            raise ValueError(f"per_group: {len(results)} results for a group of {len(idx)}")
        for i, r in zip(idx, results):
            out[i] = r
    return out


PSNR_CAP = 100.0  # dB: a perfect reconstruction (a blank image through JPEG) scores this, not inf


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of images in [0, 1], capped at ``PSNR_CAP``: an infinite value for one
    image made every mean, interval and plot of an evaluation inf or NaN (100 dB is an MSE of
    1e-10, far below 8-bit quantisation, so no real reconstruction is affected)."""
    mse = torch.mean((a.float() - b.float()) ** 2).item()
    return PSNR_CAP if mse <= 10 ** (-PSNR_CAP / 10) else float(10 * np.log10(1.0 / mse))
