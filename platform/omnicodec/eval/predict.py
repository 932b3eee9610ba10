"""The expensive half of an evaluation, kept separable so it can run anywhere.

Scoring a system on an image means: code it (real bytes), decode what each task receives,
and run each task's frozen network on it. That half is independent per image, so it splits
by shard across processes or machines (``omnicodec.jobs.evaluation`` runs it as Ray work
over shards); the cheap half (accumulating metrics, the paired bootstrap, BD-rate) needs
every image and runs where the report is written (``omnicodec.eval.evaluate``).

A *record* is plain data: floats and the task networks' predictions. It crosses process
boundaries without pickling a model, and a system crosses them as its *recipe*
(``System.recipe``), from which a worker rebuilds it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from tqdm import tqdm

from omnicodec.data.loader import iter_samples
from omnicodec.data.samples import Sample
from omnicodec.data.shards import resolve_shards
from omnicodec.errors import OmnicodecError
from omnicodec.eval.human import msssim
from omnicodec.eval.systems import System
from omnicodec.images import psnr
from omnicodec.model import HUMAN
from omnicodec.sizes import check_min_side, check_pixels, max_pixels
from omnicodec.tasks.registry import load_task_net


@dataclass(frozen=True)
class Chunk:
    """The first ``count`` samples of ``shard``: the unit of work a worker gets."""

    shard: str
    count: int


def load_test_set(data: str | list[str], limit: int | None = None) -> tuple[list[Sample], list[Chunk]]:
    """Every test sample (in shard order, at most ``limit``) and the chunks that cover them."""
    samples: list[Sample] = []
    chunks: list[Chunk] = []
    for shard in resolve_shards(data):
        if limit is not None and len(samples) >= limit:
            break
        got = list(iter_samples(shard))
        if limit is not None:
            got = got[: limit - len(samples)]
        if got:
            samples.extend(got)
            chunks.append(Chunk(shard, len(got)))
    if not samples:
        raise OmnicodecError(f"{data}: no test samples")
    limit = max_pixels()
    for s in samples:  # one line naming the image, not a raw torch error (small) or hours and GBs (huge)
        h, w = s.image.shape[-2:]
        check_min_side(w, h, f"shard {s.url}, key '{s.key}'")
        check_pixels(w, h, f"shard {s.url}, key '{s.key}'", limit)
    return samples, chunks


# images per task-network call (coding is per image). Measured on 2 cores, 1 thread per worker,
# 192 px scenes, cls+seg+det: batch 4 = 79 ms/img, 1 = 89, 16 = 126-140 (cache-bound on CPU).
BATCH = 4


def predict_images(system: System, samples: Sequence[Sample], tasks: Sequence[str],
                   bar: tqdm | None = None, batch: int = BATCH) -> list[dict[str, Any]]:
    """One record per image: the bits sent, the human view's quality, each task's prediction
    (task networks load once per process: ``load_task_net`` caches them). Each image is coded
    on its own (its bytes are its own); each task's network then sees a batch of views."""
    nets = {t: load_task_net(t) for t in tasks}
    records: list[dict[str, Any]] = []
    for start in range(0, len(samples), batch):
        group, views = samples[start:start + batch], []
        for s in group:
            t0 = time.perf_counter()
            out = system.run(s, list(tasks))
            h, w = s.image.shape[-2:]
            rec: dict[str, Any] = {"bpp": 8 * out.bytes / (h * w), "bpp_estimate": out.bpp_estimate,
                                   "latent_decodes": out.extra.get("latent_decodes", 0)}
            if HUMAN in out.views and out.bytes:
                rec["psnr"] = psnr(out.views[HUMAN], s.image[None])
                rec["ms_ssim"] = msssim(out.views[HUMAN], s.image[None])
            rec["seconds"] = time.perf_counter() - t0
            records.append(rec)
            views.append(out.views)
        t0 = time.perf_counter()
        preds = {t: _predict_batch(nets[t], [v[t] for v in views]) for t in tasks}
        share = (time.perf_counter() - t0) / len(group)
        for i, rec in enumerate(records[start:]):
            rec["preds"] = {t: compact(preds[t][i]) for t in tasks}
            rec["seconds"] += share
        if bar is not None:
            bar.update(len(group))
    return records


def compact(pred: Any) -> Any:
    """Integer maps that fit in a byte are kept as uint8: a 192 px int64 label map is 295 KB,
    and a 20-system evaluation of 1000 images held 6.5 GB of them (Ray's OOM killer ended
    one). ``widen`` restores int64 for the metrics."""
    if isinstance(pred, torch.Tensor) and not pred.is_floating_point() and pred.dtype != torch.bool and pred.numel() \
            and pred.dtype != torch.uint8 and int(pred.min()) >= 0 and int(pred.max()) <= 255:
        return pred.to(torch.uint8)
    return pred


def widen(pred: Any) -> Any:
    if isinstance(pred, torch.Tensor) and pred.dtype == torch.uint8:
        return pred.long()
    return pred


def _predict_batch(net, views: list) -> list[Any]:
    """Per-image predictions from one batched call when the views share a shape and the
    network answers batch-first (a tensor, or a list with one entry per image); otherwise
    one call per image."""
    if len({tuple(v.shape) for v in views}) == 1:
        out = net.predict(torch.cat(views))
        if isinstance(out, torch.Tensor) and out.shape[:1] == (len(views),):
            return [out[i:i + 1] for i in range(len(views))]
        if isinstance(out, list) and len(out) == len(views):
            return [[o] for o in out]
    return [net.predict(v) for v in views]


# predictor(systems, chunks, samples, tasks, bar[, on_done=]) -> records per system, in sample order.
# ``on_done(i, records)``, when given, is called as soon as system i's records are complete
# (the records cache stores them then: an interrupted evaluation keeps what it finished).
Predictor = Callable[..., list[list[dict[str, Any]]]]
OnDone = Callable[[int, list[dict[str, Any]]], None]


def predict_in_process(systems: list[System], chunks: list[Chunk], samples: list[Sample], tasks: list[str],
                       bar: tqdm, on_done: OnDone | None = None) -> list[list[dict[str, Any]]]:
    """The default predictor: every system over every sample, here, one after another."""
    out = []
    for i, system in enumerate(systems):
        bar.set_description(f"{system.name} {system.label}".strip())
        out.append(predict_images(system, samples, tasks, bar))
        if on_done is not None:
            on_done(i, out[-1])
    return out
