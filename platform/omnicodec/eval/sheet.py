"""Picture sheets: what each machine receives, so a reader can look and not only read numbers.

One block per test image, one row per operating point (a system at a rate): the original,
the human view of that bitstream (with its bpp and PSNR), then each task's decoded view
with that task's predictions drawn on it by the task's kind (``TaskKind.draw``: top-k
labels, masks, boxes, maps). Every view comes from real bytes, as in the evaluation.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from PIL import Image

from omnicodec.data.samples import Sample
from omnicodec.eval.systems import System
from omnicodec.images import psnr, to_pil
from omnicodec.model import HUMAN
from omnicodec.tasks.kinds.base import caption
from omnicodec.tasks.registry import get_task, load_task_net

TILE = 192


def _tile(image: Image.Image, lines: list[str]) -> Image.Image:
    scale = TILE / max(image.size)
    size = (max(1, round(image.size[0] * scale)), max(1, round(image.size[1] * scale)))
    return caption(image.convert("RGB").resize(size, Image.BILINEAR), lines)


def sheet_row(system: System, sample: Sample, tasks: Sequence[str]) -> list[Image.Image]:
    """The tiles of one operating point on one image: original, human view, one per task."""
    out = system.run(sample, list(tasks))
    h, w = sample.image.shape[-2:]
    head = f"{system.name} {system.label}".strip()
    rate = f"{8 * out.bytes / (h * w):.3f} bpp"
    tiles = [_tile(to_pil(sample.image), ["original"])]
    if HUMAN in out.views:
        tiles.append(_tile(to_pil(out.views[HUMAN][0]), [head, f"human: {rate}, "
                                                               f"{psnr(out.views[HUMAN], sample.image[None]):.1f} dB"]))
    for t in tasks:
        info = get_task(t)
        pred = load_task_net(t).predict(out.views[t])
        drawn = info.task_kind.draw(to_pil(out.views[t][0]), pred, info.resolved_classes()[1])
        tiles.append(caption(_tile(drawn, []), [f"{t} ({rate})"], bottom=True))
    return tiles


def picture_sheet(systems: Sequence[System], samples: Sequence[Sample], tasks: Sequence[str]) -> bytes:
    """PNG bytes: for each sample, a row per system (see the module docstring)."""
    rows = [sheet_row(system, s, tasks) for s in samples for system in systems]
    cols = max(len(r) for r in rows)
    gap = 6
    sheet = Image.new("RGB", (cols * TILE, len(rows) * TILE + gap * len(samples)), "white")
    for i, row in enumerate(rows):
        y = i * TILE + gap * (i // max(1, len(systems)))
        for j, tile in enumerate(row):
            sheet.paste(tile, (j * TILE, y))
    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    return buf.getvalue()


def sheet_systems(systems: Sequence[System], points: Sequence[dict[str, Any]]) -> list[System]:
    """Two rates: the all-in-one points with the lowest and the highest bpp, each followed by
    the frozen-codec point nearest to it in rate (when the evaluation has one)."""
    by_label = {(s.name, s.label): s for s in systems}
    ours = sorted((p for p in points if p["system"] == "all-in-one"), key=lambda p: p["bpp"])
    frozen = [p for p in points if p["system"] == "frozen codec"]
    chosen: list[System] = []
    for p in ([ours[0], ours[-1]] if len(ours) > 1 else ours):
        chosen.append(by_label[(p["system"], p["label"])])
        if frozen:
            q = min(frozen, key=lambda f: abs(f["bpp"] - p["bpp"]))
            chosen.append(by_label[(q["system"], q["label"])])
    return chosen
