"""The streaming multi-task loader: WebDataset pipeline over any local path or fsspec URL.

    shard list --(resampled | split by node, then by worker)--> read tar (iter_shard)
      --> shuffle buffer --> decode --> random crop (or fit) --> batch (multi-task collate)

- **Splitting.** Without resampling each Ray Train rank (``RANK``/``WORLD_SIZE``, which
  Ray sets) and each loader worker reads a disjoint subset of shards. With
  ``resampled=True`` every (rank, worker) draws shards with replacement from its own
  seeded stream, so DDP ranks can take exactly equal step counts.
- **Determinism.** Every random choice derives from ``(seed, segment, rank, worker)``.
  The trainer starts a new segment at each checkpoint, so a resumed run reads exactly the
  batches an uninterrupted run would have read.
- **Sizes.** A batch stacks images of one size: ``crop`` cuts squares; with ``crop: null``,
  ``fit`` (default 192, the bundled task networks' scene size) scales and cuts any image
  of another size to fit x fit, so a folder of mixed-size photos trains as it is.
- **Bad data.** A corrupt shard or sample is skipped, counted, logged (a warning naming
  shard, key and source file, as evaluation's error does) and reported in the next batch's
  ``"skipped"`` list; ``strict=True`` raises instead, as evaluation does.
- **URLs.** Any fsspec scheme works (``s3://``, ``gs://``, ``memory://``...).
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Iterable, Iterator
from functools import partial
from typing import Any

import torch
import webdataset as wds
from pydantic import Field

from omnicodec import storage
from omnicodec.config import Config
from omnicodec.data.samples import Sample, decode_sample
from omnicodec.data.shards import iter_shard, resolve_shards
from omnicodec.errors import DataError

log = logging.getLogger("omnicodec.data")


class LoaderConfig(Config):
    shards: str | list[str] = Field(..., description="paths, brace patterns, folders or fsspec URLs")
    batch_size: int = Field(8, ge=1)
    crop: int | None = Field(128, ge=16, description="random square crop; None keeps full images")
    fit: int | None = Field(192, ge=16, description="with crop None: an image that is not fit x fit is scaled (shorter "
                            "side to fit, aspect kept; masks nearest, boxes scaled) and cut to fit x fit at a random "
                            "position, so batches of mixed-size photos stack; None keeps every image as it is (they "
                            "must then share one size)")
    hflip: bool = Field(False, description="random horizontal flips (boxes and masks follow)")
    shuffle_buffer: int = Field(256, ge=0)
    resampled: bool = True
    shardshuffle: bool = True
    num_workers: int = Field(0, ge=0)
    strict: bool = False
    seed: int = 0
    require: list[str] = Field(default_factory=list, description="members every sample must have")
    decode: list[str] = Field(default_factory=lambda: ["cls", "seg.png", "json", "*.png"],
                              description="members decoded besides the image (inst.png is off: no task reads it; "
                                          "'*.png': every other dense map, e.g. parts.png, sal.png, normals.png)")


def _seed(*parts: Any) -> int:
    """A stable 31-bit seed from any parts (``hash()`` is salted per process)."""
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:4], "big") >> 1


def _worker() -> tuple[int, int]:
    info = torch.utils.data.get_worker_info()
    return (info.id, info.num_workers) if info is not None else (0, 1)


def _read(src: Iterator[dict], strict: bool, skipped: list) -> Iterator[dict]:
    for shard in src:
        url = shard["url"]
        try:
            yield from iter_shard(url)
        except DataError as e:
            if strict:
                raise
            skipped.append({"shard": url, "key": None, "reason": str(e)})


MAX_CONSECUTIVE_ERRORS = 256


def _decode(src: Iterator[dict], require: tuple[str, ...], members: tuple[str, ...], strict: bool,
            skipped: list) -> Iterator[Sample]:
    failures = total = 0
    for raw in src:
        try:
            sample = decode_sample(raw, require, members, uint8=True)
        except DataError as e:
            if strict:
                raise
            skipped.append({"shard": raw.get("__url__"), "key": raw.get("__key__"), "reason": str(e)})
            failures += 1
            total += 1
            log.warning("skipped corrupt sample %d of this loader (data.strict: false): %s", total, e)
            if failures >= MAX_CONSECUTIVE_ERRORS:  # an endless resampled stream of bad data
                raise DataError(f"{failures} consecutive samples failed to decode; last: {e}") from None
            continue
        failures = 0
        yield sample


def _shuffle(src: Iterator, bufsize: int, seed: int, segment: int, rank: int) -> Iterator:
    rng = random.Random(_seed("shuffle", seed, segment, rank, _worker()[0]))
    buf: list = []
    for item in src:
        if len(buf) < bufsize:
            buf.append(item)
            continue
        i = rng.randrange(len(buf))
        buf[i], item = item, buf[i]
        yield item
    rng.shuffle(buf)
    yield from buf


def _augment(src: Iterator[Sample], size: int | None, hflip: bool, seed: int, segment: int, rank: int,
             fit: int | None = None) -> Iterator[Sample]:
    rng = random.Random(_seed("augment", seed, segment, rank, _worker()[0]))
    for s in src:
        if size is not None:
            s = random_crop(s, size, rng)
        elif fit is not None and tuple(s.image.shape[-2:]) != (fit, fit):
            s = random_crop(rescale(s, fit), fit, rng)
        if hflip and rng.random() < 0.5:
            s = flip(s)
        yield s


def flip(s: Sample) -> Sample:
    """Mirror a sample left-right: image, masks and boxes; each dense map as the task kind that
    reads it flips it (``TaskKind.flip_map``: e.g. normals also negate their x component)."""
    w = s.image.shape[-1]
    s.image = s.image.flip(-1)
    s.seg = s.seg.flip(-1) if s.seg is not None else None
    s.inst = s.inst.flip(-1) if s.inst is not None else None
    if s.maps:
        from omnicodec.tasks.kinds import flipped_map

        s.maps = {k: flipped_map(k, v) for k, v in s.maps.items()}
    if len(s.boxes):
        s.boxes = torch.stack([w - s.boxes[:, 2], s.boxes[:, 1], w - s.boxes[:, 0], s.boxes[:, 3]], 1)
    return s


def rescale(s: Sample, side: int) -> Sample:
    """Scale a sample so its shorter side is ``side`` (aspect kept): the image bilinearly
    (antialiased), masks and maps by nearest neighbour (ids stay ids), boxes by the same factors."""
    F = torch.nn.functional
    _, h, w = s.image.shape
    scale = side / min(h, w)
    size = (max(side, round(h * scale)), max(side, round(w * scale)))
    image = F.interpolate(s.image[None].float(), size, mode="bilinear", antialias=True, align_corners=False)[0]
    s.image = image.round().clamp(0, 255).to(torch.uint8) if s.image.dtype == torch.uint8 else image.clamp(0, 1)

    def nearest(m: torch.Tensor) -> torch.Tensor:
        flat = m.reshape(-1, *m.shape[-2:])[None].float()
        return F.interpolate(flat, size, mode="nearest")[0].reshape(*m.shape[:-2], *size).to(m.dtype)

    s.seg = nearest(s.seg) if s.seg is not None else None
    s.inst = nearest(s.inst) if s.inst is not None else None
    s.maps = {k: nearest(v) for k, v in s.maps.items()}
    if len(s.boxes):
        s.boxes = s.boxes * torch.tensor([size[1] / w, size[0] / h] * 2, dtype=torch.float32)
    return s


def random_crop(s: Sample, size: int, rng: random.Random) -> Sample:
    """Square crop of ``size`` (edge-padded first if the image is smaller); boxes follow."""
    _, h, w = s.image.shape
    if h < size or w < size:
        ph, pw = max(0, size - h), max(0, size - w)
        s.image = torch.nn.functional.pad(s.image[None].float(), (0, pw, 0, ph), mode="replicate")[0].to(s.image.dtype)
        if s.seg is not None:
            s.seg = torch.nn.functional.pad(s.seg, (0, pw, 0, ph))
        if s.inst is not None:
            s.inst = torch.nn.functional.pad(s.inst, (0, pw, 0, ph))
        s.maps = {k: torch.nn.functional.pad(v, (0, pw, 0, ph)) for k, v in s.maps.items()}
        h, w = h + ph, w + pw
    top, left = rng.randint(0, h - size), rng.randint(0, w - size)
    s.image = s.image[:, top : top + size, left : left + size]
    if s.seg is not None:
        s.seg = s.seg[top : top + size, left : left + size]
    if s.inst is not None:
        s.inst = s.inst[top : top + size, left : left + size]
    s.maps = {k: v[..., top : top + size, left : left + size] for k, v in s.maps.items()}
    if len(s.boxes):
        b = s.boxes - torch.tensor([left, top, left, top], dtype=torch.float32)
        b = b.clamp(0, size)
        keep = ((b[:, 2] - b[:, 0]) >= 4) & ((b[:, 3] - b[:, 1]) >= 4)
        s.boxes, s.labels = b[keep], s.labels[keep]
    return s


def collate(samples: list[Sample], skipped: list | None = None, as_float: bool = True) -> dict[str, Any]:
    """Stack images (float in [0, 1]) and dense masks (int64); keep boxes as per-image
    lists (counts vary). uint8 inputs are converted once per batch, not per sample.
    ``as_float=False`` keeps the stacked uint8 image and masks: what a loader worker process
    sends across the process boundary (4x fewer image bytes, 8x fewer mask bytes), and
    ``to_training_dtypes`` converts it in the consumer."""
    sizes = {tuple(s.image.shape[-2:]) for s in samples}
    if len(sizes) > 1:
        a, b = samples[0], next(s for s in samples if s.image.shape != samples[0].image.shape)
        raise DataError(f"a batch mixes image sizes: shard {a.url}, key '{a.key}' is {tuple(a.image.shape[-2:])}, "
                        f"shard {b.url}, key '{b.key}' is {tuple(b.image.shape[-2:])}; set data.crop or data.fit")
    uint8_in = samples[0].image.dtype == torch.uint8
    image = _stack_as([s.image for s in samples], torch.float32 if as_float else samples[0].image.dtype)
    if as_float and uint8_in:
        image.div_(255.0)
    has_seg = all(s.seg is not None for s in samples)
    batch: dict[str, Any] = {
        "image": image,
        "keys": [s.key for s in samples],
        "boxes": [s.boxes for s in samples],
        "labels": [s.labels for s in samples],
        "cls": torch.tensor([s.cls for s in samples]) if all(s.cls is not None for s in samples) else None,
        "seg": _stack_as([s.seg for s in samples], torch.int64 if as_float else samples[0].seg.dtype) if has_seg else None,
        # dense maps every sample of the batch has, as stored (uint8): the kinds interpret them
        "maps": {k: torch.stack([s.maps[k] for s in samples]) for k in samples[0].maps
                 if all(k in s.maps for s in samples)},
    }
    if skipped is not None:
        batch["skipped"], skipped[:] = list(skipped), []
    if not as_float:  # one tensor each instead of 2 per sample: each tensor crossing processes costs a shm segment
        batch["box_counts"] = torch.tensor([len(b) for b in batch["boxes"]])
        batch["boxes"], batch["labels"] = torch.cat(batch["boxes"]), torch.cat(batch["labels"])
    return batch


def to_training_dtypes(batch: dict[str, Any]) -> dict[str, Any]:
    """uint8 image -> float in [0, 1], seg -> int64, packed boxes -> per-image lists (in place
    on the dict; idempotent)."""
    if batch["image"].dtype == torch.uint8:
        batch["image"] = batch["image"].float().div_(255.0)
    if batch["seg"] is not None and batch["seg"].dtype != torch.int64:
        batch["seg"] = batch["seg"].long()
    counts = batch.pop("box_counts", None)
    if counts is not None:
        sizes = counts.tolist()
        batch["boxes"], batch["labels"] = list(batch["boxes"].split(sizes)), list(batch["labels"].split(sizes))
    return batch


def _stack_as(tensors: list[torch.Tensor], dtype: torch.dtype) -> torch.Tensor:
    """``torch.stack(tensors).to(dtype)`` in one pass: each sample is converted while it is
    copied into the batch, so no intermediate batch is materialised."""
    out = torch.empty((len(tensors), *tensors[0].shape), dtype=dtype)
    for i, t in enumerate(tensors):
        out[i].copy_(t)
    return out


def _batch(src: Iterator[Sample], batch_size: int, skipped: list, as_float: bool = True) -> Iterator[dict[str, Any]]:
    buf: list[Sample] = []
    for s in src:
        buf.append(s)
        if len(buf) == batch_size:
            yield collate(buf, skipped, as_float)
            buf = []
    if buf:
        yield collate(buf, skipped, as_float)


def _register_fsspec_schemes(urls: list[str]) -> None:
    for url in urls:
        if storage.is_url(url):
            scheme = url.split("://", 1)[0]
            if scheme not in ("file",):
                wds.gopen_schemes.setdefault(scheme, _fsspec_gopen)


def _fsspec_gopen(url: str, mode: str = "rb", bufsize: int = 8192, **kw: Any):
    return storage.open_file(url, mode)


def make_pipeline(cfg: LoaderConfig, rank: int | None = None, world_size: int | None = None,
                  segment: int = 0) -> wds.DataPipeline:
    """The pipeline for one rank; iterate it directly or hand it to ``make_loader``."""
    urls = resolve_shards(cfg.shards)
    _register_fsspec_schemes(urls)
    if rank is None or world_size is None:
        rank, world_size, _, _ = wds.utils.pytorch_worker_info()
    skipped: list = []
    if cfg.resampled:
        shards = [wds.ResampledShards(urls, seed=_seed("shards", cfg.seed, segment, rank), deterministic=True)]
    else:
        shards = [wds.SimpleShardList(urls), partial(_split_by_node, rank=rank, world_size=world_size), wds.split_by_worker]
        if cfg.shardshuffle:
            shards.insert(1, wds.detshuffle(bufsize=len(urls), seed=cfg.seed, epoch=segment))
    stages = [
        *shards,
        partial(_read, strict=cfg.strict, skipped=skipped),
        *([partial(_shuffle, bufsize=cfg.shuffle_buffer, seed=cfg.seed, segment=segment, rank=rank)] if cfg.shuffle_buffer else []),
        partial(_decode, require=tuple(cfg.require), members=tuple(cfg.decode), strict=cfg.strict, skipped=skipped),
        partial(_augment, size=cfg.crop, hflip=cfg.hflip, seed=cfg.seed, segment=segment, rank=rank, fit=cfg.fit),
        # in a worker process the batch stays uint8 until the consumer (make_loader) converts it
        partial(_batch, batch_size=cfg.batch_size, skipped=skipped, as_float=cfg.num_workers == 0),
    ]
    return wds.DataPipeline(*stages)


def _split_by_node(src: Iterator[dict], rank: int, world_size: int) -> Iterator[dict]:
    for i, item in enumerate(src):
        if i % world_size == rank:
            yield item


def make_loader(cfg: LoaderConfig, rank: int | None = None, world_size: int | None = None,
                segment: int = 0) -> Iterable[dict[str, Any]]:
    """Batches for one rank; ``num_workers > 0`` decodes in forkserver worker processes,
    which send uint8 batches (the float conversion runs here, in the consumer)."""
    pipeline = make_pipeline(cfg, rank, world_size, segment)
    if cfg.num_workers == 0:
        return pipeline
    return _ConvertedInConsumer(torch.utils.data.DataLoader(
        pipeline, batch_size=None, num_workers=cfg.num_workers, multiprocessing_context="forkserver",
        persistent_workers=False, prefetch_factor=4))


class _ConvertedInConsumer:
    """A DataLoader whose uint8 batches become training dtypes as they are consumed."""

    def __init__(self, loader: torch.utils.data.DataLoader):
        self.loader = loader

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return map(to_training_dtypes, self.loader)


def iter_samples(shards: str | list[str], require: tuple[str, ...] = (), strict: bool = True) -> Iterator[Sample]:
    """Every sample once, in shard order, full size: for evaluation and inspection."""
    for url in resolve_shards(shards):
        for raw in iter_shard(url):
            try:
                yield decode_sample(raw, require)
            except DataError:
                if strict:
                    raise
