"""Images in and out: PIL <-> float tensors in [0, 1], padding to the codec's grid."""

from __future__ import annotations

import io

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from omnicodec import storage
from omnicodec.bitstream import padding_for
from omnicodec.errors import DataError


def to_tensor(image: Image.Image) -> torch.Tensor:
    """PIL image -> 1 x 3 x H x W float32 in [0, 1] (alpha dropped, grey expanded)."""
    arr = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def to_pil(x: torch.Tensor) -> Image.Image:
    """1 x 3 x H x W (or 3 x H x W) tensor in [0, 1] -> 8-bit RGB PIL image."""
    if x.dim() == 4:
        x = x[0]
    arr = torch.nan_to_num(x.detach().float(), nan=0.0).clamp(0, 1).mul(255).round().byte()
    return Image.fromarray(arr.permute(1, 2, 0).cpu().numpy())


def decode_image_bytes(data: bytes, name: str = "<bytes>") -> Image.Image:
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
        return img
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
        raise DataError(f"{name}: not a readable image ({e})") from None


def load_image(location: str) -> torch.Tensor:
    try:
        data = storage.read_bytes(location)
    except FileNotFoundError:
        raise DataError(f"{location}: no such image file") from None
    return to_tensor(decode_image_bytes(data, location))


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


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = torch.mean((a.float() - b.float()) ** 2).item()
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)
