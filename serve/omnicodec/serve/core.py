"""Request logic of the Serve application, as plain classes.

``RouterCore`` parses and entropy-decodes each bitstream ONCE and hands the decoded
latent to the task workers; ``TaskWorker`` runs g_s with one task's T-Adaptors and the
task's frozen network on a batch of latents. Serve deployments (``app.py``) wrap these;
tests and benchmarks can drive them directly.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import re
import threading
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import torch

from omnicodec.adaptors.checkpoint import read_config
from omnicodec.bitstream import Bitstream
from omnicodec.codec.fingerprint import short_fingerprint
from omnicodec.errors import BitstreamError, DataError, EntropyDesync, StreamMismatch
from omnicodec.images import decode_image_bytes, per_group, to_tensor
from omnicodec.model import OmniCodec
from omnicodec.serve.cancel import Cancelled, make_cancellable, stopping_when
from omnicodec.serve.config import ServeConfig
from omnicodec.sizes import check_min_side, check_pixels
from omnicodec.tasks.registry import get_task, load_task_net, register_from_metadata
from omnicodec.tasks.rle import rle_decode, rle_encode  # noqa: F401 - re-exported for clients


class ApiError(Exception):
    """An error with an HTTP status; the body is ``{"error": {"code", "message"}}``."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_IDS = re.compile(r"\b[0-9a-f]{16,}\b")  # Ray's actor, task and node ids


def one_line(e: BaseException) -> str:
    """A 500's message: the failing code's exception in one line. A task replica's error
    reaches the router as Ray's ``RayTaskError``, whose text is the replica's traceback with
    ANSI colour codes and the actor's id; its ``cause`` is the exception that was raised."""
    cause = getattr(e, "cause", None)
    if isinstance(cause, BaseException):
        e = cause
    lines = [line.strip() for line in _ANSI.sub("", str(e)).splitlines() if line.strip()]
    text = _IDS.sub("<id>", lines[0] if lines else "")
    return f"{type(e).__name__}: {text}"[:500] if text else type(e).__name__


def check_token(expected: str | None, header: str | None) -> None:
    """Bearer auth: no header 401, wrong token 403 (constant-time comparison)."""
    if expected is None:
        return
    if not header or not header.lower().startswith("bearer "):
        raise ApiError(401, "unauthorized", "missing bearer token (Authorization: Bearer <token>)")
    if not hmac.compare_digest(header[7:].strip().encode(), expected.encode()):
        raise ApiError(403, "forbidden", "invalid bearer token")


# --------------------------------------------------------------------- tasks
class TaskWorker:
    """One (task, version): the version's T-Adaptors in g_s, then the frozen task network."""

    def __init__(self, task: str, checkpoint: str, top_k: int = 5, device: str = "cpu"):
        # g_s, the T-Adaptors and the task network on ``device``; latents arrive entropy-decoded
        self.model = OmniCodec.from_checkpoint(checkpoint).place(device)  # registers the user tasks it records
        self.task, self.info = task, get_task(task)
        if task not in self.model.tasks:
            raise ValueError(f"{checkpoint} has no T-Adaptors for task '{task}' (has {self.model.tasks})")
        self.net = make_cancellable(load_task_net(task).to(device))
        make_cancellable(self.model)  # a timed-out request's g_s and network stop within a layer
        self.top_k = top_k
        self.classes = self.info.resolved_classes()[1]

    @torch.no_grad()
    def run_batch(self, items: list[tuple[torch.Tensor, dict[str, Any]]], seg_format: str = "png",
                  called_off: list[threading.Event] | None = None) -> list[dict[str, Any] | None]:
        """Latents of equal shape are decoded together (Serve batches concurrent requests), by
        the library's own batched synthesis (``OmniCodec.reconstruct_batch``). ``called_off[i]``
        set: request i's caller is gone; a group whose callers are all gone stops at its next
        layer and answers None (``cancel.py``)."""

        def run_group(_: tuple[int, ...], idx: list[int]) -> list[dict[str, Any] | None]:
            answers: list[dict[str, Any] | None] = [None] * len(idx)
            gone = [called_off[i] for i in idx] if called_off else []
            try:
                with stopping_when(lambda: bool(gone) and all(e.is_set() for e in gone)):
                    views = self.model.reconstruct_batch(  # one shape here: one g_s pass
                        [items[i][0] for i in idx], [(items[i][1]["height"], items[i][1]["width"]) for i in idx],
                        [self.task], positions=[items[i][1].get("rate_position") for i in idx])
                    for j, view in enumerate(views):
                        answers[j] = self.predict(view[self.task], seg_format)
            except Cancelled:
                pass
            return answers

        return per_group([tuple(y_hat.shape) for y_hat, _ in items], run_group)

    def predict(self, x: torch.Tensor, seg_format: str = "png") -> dict[str, Any]:
        """The task kind renders the prediction (``TaskKind.response``)."""
        return self.info.task_kind.response(self.net.predict(x), self.classes,
                                            {"top_k": self.top_k, "seg_format": seg_format})


# -------------------------------------------------------------------- router
TaskCall = Callable[[str, str, torch.Tensor, dict[str, Any], str], Awaitable[dict[str, Any]]]


class RouterCore:
    """Parse, check, entropy-decode ONCE, fan out, and answer errors with a status."""

    def __init__(self, config: ServeConfig):
        self.config = config
        self.token = config.auth.resolved()
        self.versions: dict[str, dict[str, str]] = {}  # task -> version -> S fingerprint (short hex)
        codec_fps = set()
        for task, spec in config.tasks.items():
            self.versions[task] = {}
            for version, ckpt in spec.versions.items():
                meta = read_config(ckpt)
                register_from_metadata(meta.get("metadata") or {})
                get_task(task)
                if task not in meta["tasks"]:
                    raise ValueError(f"{task}@{version}: {ckpt} has no T-Adaptors for '{task}'")
                codec_fps.add(meta["codec"]["fingerprint"])
                self.versions[task][version] = short_fingerprint(meta["s_fingerprint"]).hex()
        if len(codec_fps) != 1:
            raise ValueError(f"all served adaptors must share one codec; found {len(codec_fps)} fingerprints")
        self.encoder = make_cancellable(OmniCodec.from_checkpoint(config.encoder_checkpoint()))
        if self.encoder.codec.fingerprint not in codec_fps:
            raise ValueError("the encoder's codec differs from the tasks' codec")
        self.stats: Counter = Counter()

    # requests ----------------------------------------------------------------------
    def parse_tasks(self, spec: str | None) -> list[tuple[str, str]]:
        """``cls,seg@v2`` -> [(cls, default), (seg, v2)]; unknown task or version: 404."""
        if not spec or not spec.strip():
            raise ApiError(422, "bad_request", "tasks: give at least one task, e.g. ?tasks=cls,seg")
        out = []
        for item in spec.split(","):
            task, _, version = item.strip().partition("@")
            if task not in self.versions:
                raise ApiError(404, "unknown_task", f"task '{task}' is not served (served: {', '.join(self.versions)})")
            version = version or self.config.tasks[task].default
            if version not in self.versions[task]:
                raise ApiError(404, "unknown_version", f"task '{task}' has no version '{version}' "
                                                       f"(have: {', '.join(self.versions[task])})")
            out.append((task, version))
        if len({t for t, _ in out}) != len(out):
            raise ApiError(422, "bad_request", "tasks: each task at most once per request")
        return out

    def check(self, body: bytes, tasks: list[tuple[str, str]]) -> Bitstream:
        """Parse ``body`` and check it against the codec and each task's S-Adaptor (400/409),
        before any entropy decoding."""
        try:
            stream = Bitstream.from_bytes(body)
        except BitstreamError as e:
            raise ApiError(400, "malformed_bitstream", str(e)) from None
        self.check_size(stream.width, stream.height, "stream", for_tasks=True)
        for task, version in tasks:
            if stream.adaptor_fp.hex() != self.versions[task][version]:
                raise ApiError(409, "adaptor_mismatch",
                               f"the stream was encoded with S-Adaptor {stream.adaptor_fp.hex() if stream.has_adaptor else 'none'}; "
                               f"{task}@{version} reads streams of S-Adaptor {self.versions[task][version]}")
        try:
            return self.encoder.check_stream_codec(stream)
        except StreamMismatch as e:
            raise ApiError(409, "codec_mismatch", f"{e}; this server serves codec {self.encoder.codec.fingerprint[:16]}") from None
        except BitstreamError as e:
            raise ApiError(400, "malformed_bitstream", str(e)) from None

    def decode_streams(self, streams: list[Bitstream]) -> list[torch.Tensor | ApiError]:
        """Entropy-decode checked streams, those of equal shape in one call (the Serve router
        batches concurrent requests into this). A stream whose entropy parameters differ
        here gets its 422 in its own place; the other requests of the batch are answered."""
        decoded = self.encoder.decode_latents(streams, errors="return")
        self.stats["latent_decodes"] += len(streams)
        self.stats["decode_calls"] += 1
        return [ApiError(422, "entropy_desync", str(d)) if isinstance(d, EntropyDesync) else d[1] for d in decoded]

    async def analyze(self, body: bytes, tasks_spec: str | None, call: TaskCall, seg_format: str = "png",
                      decode: Callable[[Bitstream], Awaitable[torch.Tensor]] | None = None) -> dict[str, Any]:
        """``decode`` (default: in line) entropy-decodes the checked stream; the Serve router
        passes its cross-request batcher."""
        import asyncio

        if seg_format not in ("png", "rle"):
            raise ApiError(422, "bad_request", "seg_format must be png or rle")
        tasks = self.parse_tasks(tasks_spec)
        stream = self.check(body, tasks)
        y_hat = await decode(stream) if decode is not None else self.decode_streams([stream])[0]  # ONCE
        if isinstance(y_hat, ApiError):
            raise y_hat
        header = {"height": stream.height, "width": stream.width, "rate_position": stream.rate_position}
        answers = await asyncio.gather(*(call(t, v, y_hat, header, seg_format) for t, v in tasks))
        self.stats["analyze"] += 1
        return {
            "bitstream": {"bytes": len(body), "bpp": round(8 * len(body) / stream.num_pixels, 5),
                          "height": stream.height, "width": stream.width, "codec": stream.codec_fp.hex(),
                          "s_adaptor": stream.adaptor_fp.hex()},
            "tasks": {t: {"version": v, **a} for (t, v), a in zip(tasks, answers)},
            "latent_decodes": 1,
        }

    def check_size(self, width: int, height: int, what: str, for_tasks: bool) -> None:
        """Over ``max_image_pixels``: 413 (the work grows with the area); under 32 px a side
        where task networks will run: 422 (the evaluator's rule, ``sizes.MIN_SIDE``)."""
        try:
            check_pixels(width, height, what, self.config.max_image_pixels, "max_image_pixels in the serve config")
        except DataError as e:
            raise ApiError(413, "too_large", str(e)) from None
        if for_tasks:
            try:
                check_min_side(width, height, what, "to analyze")
            except DataError as e:
                raise ApiError(422, "too_small", str(e)) from None

    def encode_image(self, body: bytes, for_tasks: bool = False) -> bytes:
        """An image request's bytes -> a bitstream; its size is checked from the file's header,
        before the pixels are decoded."""
        from PIL import Image

        try:
            with Image.open(io.BytesIO(body)) as probe:
                self.check_size(*probe.size, "image", for_tasks)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            pass  # unreadable: decode_image_bytes says so below
        try:
            img = decode_image_bytes(body, "request body")
        except DataError as e:
            raise ApiError(400, "bad_image", str(e)) from None
        self.stats["encodes"] += 1
        return self.encoder.encode(to_tensor(img)).to_bytes()

    def describe(self) -> dict[str, Any]:
        codec = self.encoder.codec
        return {"codec": {"fingerprint": codec.fingerprint, "arch": codec.spec.arch, "quality": codec.spec.quality},
                "encoder": {"s_adaptor": self.encoder.s_fingerprint()},
                "tasks": {t: {"default": self.config.tasks[t].default, "description": get_task(t).description,
                              "versions": {v: {"s_adaptor": fp} for v, fp in vs.items()}}
                          for t, vs in self.versions.items()}}

    def encoder_package(self) -> dict[str, Any]:
        """What an edge device needs to encode: the codec's identity and the S-Adaptor
        weights (safetensors, base64). No pickles cross the wire."""
        from safetensors.torch import save

        adaptors = self.encoder.adaptors
        state = {k: v.contiguous() for k, v in adaptors.s_state_dict().items()}
        data = save(state)
        return {"codec": {**self.encoder.codec.spec.to_dict(), "fingerprint": self.encoder.codec.fingerprint},
                "adaptor": adaptors.config.to_dict(), "s_fingerprint": self.encoder.s_fingerprint(),
                "s_weights_safetensors_b64": base64.b64encode(data).decode(),
                "sha256": hashlib.sha256(data).hexdigest()}
