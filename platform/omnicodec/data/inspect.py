"""``data inspect`` (counts, keys, class histogram, contact sheet) and ``data verify``."""

from __future__ import annotations

import io
from collections import Counter
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from omnicodec import storage
from omnicodec.data.samples import Sample, decode_sample
from omnicodec.data.shards import iter_shard, read_card, resolve_shards
from omnicodec.errors import DataError
from omnicodec.tasks.kinds.base import PALETTE


def inspect_shards(spec: str, sheet: str | None = "contact_sheet.png", count: int = 16) -> dict[str, Any]:
    from rich.console import Console
    from rich.table import Table

    urls = resolve_shards(spec)
    card = read_card(spec) or {}
    classes = card.get("classes")
    members: Counter = Counter()
    hist: Counter = Counter()
    per_shard, shown, boxes = {}, [], 0
    for url in urls:
        n = 0
        for raw in iter_shard(url):
            n += 1
            members.update(k for k in raw if not k.startswith("__"))
            s = decode_sample(raw)
            if s.cls is not None:
                hist[classes[s.cls] if classes and s.cls < len(classes) else s.cls] += 1
            boxes += len(s.boxes)
            if len(shown) < count:
                shown.append(s)
        per_shard[url] = n
    total = sum(per_shard.values())
    console = Console()
    print(f"{spec}: {total} samples in {len(urls)} shards")
    t = Table(title="members")
    t.add_column("member")
    t.add_column("samples", justify="right")
    for k, v in sorted(members.items()):
        t.add_row(k, str(v))
    console.print(t)
    h = Table(title="class histogram (cls)")
    h.add_column("class")
    h.add_column("samples", justify="right")
    for k, v in sorted(hist.items(), key=lambda kv: -kv[1]):
        h.add_row(str(k), str(v))
    console.print(h)
    console.print(f"boxes: {boxes}  ({boxes / max(1, total):.2f} per sample)")
    if sheet and shown:
        storage.write_bytes(sheet, contact_sheet(shown, classes))
        console.print(f"contact sheet: {sheet}")
    return {"samples": total, "shards": per_shard, "members": dict(members), "classes": dict(hist), "boxes": boxes}


def contact_sheet(samples: list[Sample], classes: list[str] | None = None, tile: int = 192) -> bytes:
    """Each sample with its boxes and labels drawn; beside it, its semantic mask blended in
    when the samples have masks (without masks, each image appears once)."""
    cols = 4
    rows = -(-len(samples) // cols)
    pair = any(s.seg is not None for s in samples)
    width = 2 if pair else 1
    sheet = Image.new("RGB", (cols * width * tile, rows * tile), "white")
    for i, s in enumerate(samples):
        img = Image.fromarray((s.image.permute(1, 2, 0).numpy() * 255).astype(np.uint8))
        scale = tile / max(img.size)
        size = (max(1, round(img.size[0] * scale)), max(1, round(img.size[1] * scale)))
        left = img.resize(size)
        d = ImageDraw.Draw(left)
        for b, l in zip(s.boxes.tolist(), s.labels.tolist()):
            color = tuple(int(c) for c in PALETTE[(l + 1) % len(PALETTE)])
            d.rectangle([v * scale for v in b], outline=color, width=2)
            d.text((b[0] * scale + 2, b[1] * scale + 1), classes[l] if classes and l < len(classes) else str(l), fill=color)
        if s.cls is not None:
            d.text((3, 3), f"cls: {classes[s.cls] if classes and s.cls < len(classes) else s.cls}", fill=(255, 255, 255))
        right = img.resize(size)
        if s.seg is not None:
            mask = Image.fromarray(PALETTE[s.seg.numpy() % len(PALETTE)]).resize(size, Image.NEAREST)
            right = Image.blend(right, mask, 0.55)
        x, y = (i % cols) * width * tile, (i // cols) * tile
        sheet.paste(left, (x, y))
        if pair:
            sheet.paste(right, (x + tile, y))
    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    return buf.getvalue()


def verify_shards(spec: str, echo: bool = True) -> bool:
    """Decode every member of every shard; print each fault; True when all are sound."""
    faults: list[str] = []
    samples = 0
    for url in resolve_shards(spec):
        try:
            for raw in iter_shard(url):
                samples += 1
                try:
                    decode_sample(raw)
                except DataError as e:
                    faults.append(f"{e} (sample starts at byte {raw.get('__offset__')})")
        except DataError as e:
            faults.append(str(e))
    if echo:
        for f in faults:
            print(f"CORRUPT {f}")
        print(f"verified {samples} samples: {'OK' if not faults else f'{len(faults)} fault(s)'}")
    return not faults
