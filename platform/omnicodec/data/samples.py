"""One multi-task sample: its on-disk members and its decoded tensors.

Members (any subset; ``jpg`` or ``png`` is required):

==========  ==============================================================
``jpg``     the image (``png``/``webp`` also accepted)
``cls``     the dominant object's class index, ASCII decimal
``seg.png`` semantic mask, uint8 class ids (0 = background, k+1 = class k)
``inst.png``instance ids, uint8 (0 = none, i = i-th entry of ``json.boxes``)
``json``    ``{"boxes": [[x0,y0,x1,y1], ...], "labels": [...], ...}``, pixels
``*.png``   any other dense per-pixel map a task kind reads, by name: ``parts.png``
            (part ids), ``sal.png`` (saliency, 0/255), ``edge.png`` (boundaries,
            0/255), ``normals.png`` (RGB, (n + 1) / 2 * 255), ... -> ``Sample.maps``
==========  ==============================================================
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image

from omnicodec.data.shards import IMAGE_EXTS
from omnicodec.errors import DataError


def encode_png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def encode_jpeg(image: Image.Image, quality: int = 95) -> bytes:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="JPEG", quality=quality, subsampling=0)
    return buf.getvalue()


def make_sample(key: str, image: Image.Image, *, cls: int | None = None, seg: np.ndarray | None = None,
                inst: np.ndarray | None = None, meta: dict[str, Any] | None = None,
                image_format: str = "jpg") -> dict[str, Any]:
    sample: dict[str, Any] = {"__key__": key}
    sample[image_format] = encode_jpeg(image) if image_format == "jpg" else encode_png(np.asarray(image.convert("RGB")))
    if cls is not None:
        sample["cls"] = str(int(cls)).encode()
    if seg is not None:
        sample["seg.png"] = encode_png(seg.astype(np.uint8))
    if inst is not None:
        sample["inst.png"] = encode_png(inst.astype(np.uint8))
    if meta is not None:
        sample["json"] = json.dumps(meta, sort_keys=True).encode()
    return sample


@dataclass
class Sample:
    """Decoded tensors of one sample; absent members are ``None``.

    ``image`` is float in [0, 1] and masks are int64, except inside the training loader,
    which keeps uint8 until the batch is collated (4-8x less memory traffic)."""

    key: str
    url: str
    image: torch.Tensor  # 3 x H x W
    cls: int | None = None
    seg: torch.Tensor | None = None  # H x W
    inst: torch.Tensor | None = None
    boxes: torch.Tensor = field(default_factory=lambda: torch.zeros(0, 4))  # N x 4 float, xyxy pixels
    labels: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))
    meta: dict[str, Any] = field(default_factory=dict)
    maps: dict[str, torch.Tensor] = field(default_factory=dict)  # "parts" -> H x W, "normals" -> 3 x H x W (uint8)


ALL_MEMBERS = ("cls", "seg.png", "inst.png", "json", "*.png")  # "*.png": every other dense map
FIXED_PNG = ("seg.png", "inst.png")


def decode_sample(raw: dict[str, Any], require: tuple[str, ...] = (), members: tuple[str, ...] = ALL_MEMBERS,
                  uint8: bool = False) -> Sample:
    """Decode the image and ``members``; raises ``DataError`` naming shard, key and member
    on any fault. ``uint8=True`` leaves pixels and masks as uint8 tensors."""
    key, url = raw.get("__key__", "?"), raw.get("__url__", "?")
    where = f"shard {url}, key '{key}'{_source(raw)}"
    for member in require:
        if member not in raw:
            raise DataError(f"{where}: missing member '{member}'")
    ext = next((e for e in IMAGE_EXTS if e in raw), None)
    if ext is None:
        raise DataError(f"{where}: no image member ({'/'.join(IMAGE_EXTS)})")
    image = _image(raw[ext], f"{where}, member '{ext}'", "RGB")
    h, w = image.shape[:2]
    # One copy that also lays the pixels out CHW (as uint8, the cheapest place to transpose):
    # batches then fill with straight copies.
    pixels = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
    out = Sample(key=key, url=url, image=pixels if uint8 else pixels.float().div_(255.0))
    if "cls" in raw and "cls" in members:
        try:
            out.cls = int(raw["cls"].decode().strip())
        except (UnicodeDecodeError, ValueError):
            raise DataError(f"{where}, member 'cls': not an integer ({raw['cls'][:16]!r})") from None
    for name, attr in (("seg.png", "seg"), ("inst.png", "inst")):
        if name in raw and name in members:
            mask = _image(raw[name], f"{where}, member '{name}'", "L")
            if mask.shape != (h, w):
                raise DataError(f"{where}, member '{name}': size {mask.shape} differs from the image's {(h, w)}")
            setattr(out, attr, torch.from_numpy(mask.copy() if uint8 else mask.astype(np.int64)))
    for name in raw:
        if name.endswith(".png") and name not in FIXED_PNG and (name in members or "*.png" in members):
            dense = read_dense_map(raw[name], f"{where}, member '{name}'")
            if dense.shape[:2] != (h, w):
                raise DataError(f"{where}, member '{name}': size {dense.shape[:2]} differs from the image's {(h, w)}")
            t = torch.from_numpy(dense.copy())
            out.maps[name[: -len(".png")]] = t.permute(2, 0, 1).contiguous() if t.dim() == 3 else t
    if "json" in raw and "json" in members:
        try:
            meta = json.loads(raw["json"])
            boxes = torch.tensor(meta.get("boxes", []), dtype=torch.float32).reshape(-1, 4)
            labels = torch.tensor(meta.get("labels", []), dtype=torch.long).reshape(-1)
        except (ValueError, TypeError, RuntimeError) as e:
            raise DataError(f"{where}, member 'json': malformed ({e})") from None
        if len(boxes) != len(labels):
            raise DataError(f"{where}, member 'json': {len(boxes)} boxes but {len(labels)} labels")
        out.boxes, out.labels, out.meta = boxes, labels, meta
    return out


def _source(raw: dict[str, Any]) -> str:
    """`` (file SOURCE)`` when the sample's json names the file it was converted from."""
    try:
        source = json.loads(raw["json"]).get("source") if "json" in raw else None
    except (ValueError, AttributeError, TypeError):
        return ""
    return f" (file {source})" if isinstance(source, str) else ""


def read_dense_map(data: bytes, where: str) -> np.ndarray:
    """A map's values as stored: one channel (L, or a palette PNG's INDICES, which are class
    ids in VOC-style masks), or RGB (normals); never converted through a colour model."""
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except Exception as e:
        raise DataError(f"{where}: undecodable image ({type(e).__name__}: {e})") from None
    if img.mode in ("L", "P"):
        return np.asarray(img)
    if img.mode in ("RGB", "RGBA"):
        return np.asarray(img.convert("RGB"))
    raise DataError(f"{where}: a dense map must be an 8-bit L, P or RGB PNG, not mode {img.mode}")


def _image(data: bytes, where: str, mode: str) -> np.ndarray:
    """The image as ``mode`` ("RGB": through ``images.to_rgb8``, so 16-bit, float, alpha and
    palette images read as the CLI and the server read them; "L": a mask's values)."""
    from omnicodec.images import to_rgb8

    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except Exception as e:  # PIL raises many types for corrupt files
        raise DataError(f"{where}: undecodable image ({type(e).__name__}: {e})") from None
    if mode == "RGB":
        return np.asarray(to_rgb8(img, where))
    try:
        return np.asarray(img if img.mode == mode else img.convert(mode))
    except Exception as e:
        raise DataError(f"{where}: undecodable image ({type(e).__name__}: {e})") from None
