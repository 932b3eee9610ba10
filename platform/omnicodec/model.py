"""OmniCodec: a frozen CompressAI codec with a shared S-Adaptor and per-task T-Adaptors.

The method is that of "All-in-One Transferring Image Compression from Human Perception to
Multi-Machine Perception" (Zhao et al., 2025, arXiv:2504.12997): one frozen human codec, one
bitstream, many machine tasks.

    x --g_a + S-Adaptors--> y --entropy code (frozen)--> ONE bitstream
    bitstream --entropy decode ONCE--> y_hat --g_s + T-Adaptors[task]--> x_hat[task]

Only ``self.adaptors`` is an ``nn.Module`` child: the frozen codec is held as a plain
attribute, so ``parameters()``, ``state_dict()``, optimisers and DDP see adaptor weights
only. ``encode`` / ``decode`` produce and read real entropy-coded bytes; ``forward`` is
the differentiable training path (likelihood-based rate, straight-through rounding).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from omnicodec.adaptors import (
    AdaptorCheckpoint,
    AdaptorConfig,
    AdaptorSet,
    load_adaptors,
    run_stages,
    save_adaptors,
)
from omnicodec.bitstream import NO_ADAPTOR, Bitstream
from omnicodec.codec import CodecSpec, FrozenCodec, load_codec, short_fingerprint
from omnicodec.codec.fingerprint import state_dict_digest
from omnicodec.codec.gain import is_variable_rate, position_for_lambda, quantize_position
from omnicodec.errors import (
    BitstreamError,
    CheckpointError,
    EntropyDesync,
    FingerprintMismatch,
    OmnicodecError,
    StreamMismatch,
)
from omnicodec.images import pad_to_grid, per_group
from omnicodec.objective import bpp_from_likelihoods

HUMAN = "human"


class OmniCodec(nn.Module):
    def __init__(self, codec: FrozenCodec, tasks: Iterable[str] = (), config: AdaptorConfig | None = None,
                 *, adaptors: AdaptorSet | None = None, with_adaptors: bool = True):
        super().__init__()
        self.codec = codec  # a dataclass, not a Module: never trained, never wrapped
        if adaptors is None and with_adaptors:
            m = codec.model
            adaptors = AdaptorSet(codec.arch.stage_channels(m), int(m.M), codec.arch.analysis_taps,
                                  codec.arch.synthesis_taps, tasks, config or AdaptorConfig())
        self.adaptors = adaptors
        levels = adaptors.config.rate_levels if adaptors is not None else 0
        if levels and levels != getattr(codec.model, "levels", None):
            raise OmnicodecError(f"rate-conditioned adaptors (adaptor.rate_levels={levels}) need a variable-rate "
                                 f"codec with {levels} levels; {codec.spec.label()} has "
                                 f"{getattr(codec.model, 'levels', 'one fixed rate, not levels')}")

    def _apply(self, fn, recurse: bool = True):  # .to(), .cpu(), .cuda() move the frozen codec too
        self.codec.model._apply(fn)
        return super()._apply(fn, recurse)

    @property
    def device(self) -> torch.device:
        """Where the transforms (g_a, g_s, adaptors) run."""
        return next(self.codec.model.g_a.parameters()).device

    def place(self, device: str | torch.device) -> OmniCodec:
        """Coding placement: g_a, g_s and the adaptors on ``device`` (a GPU), the entropy models
        (hyperprior, entropy bottleneck, Gaussian conditional) on the CPU in fp32, so the
        entropy parameters are computed identically on every machine. Training uses ``.to()``."""
        self.to("cpu")
        device = torch.device(device)
        self.codec.model.g_a.to(device)
        self.codec.model.g_s.to(device)
        if self.adaptors is not None:
            self.adaptors.to(device)
        return self

    def _require_cpu(self) -> None:
        entropy = [p for n, p in self.codec.model.named_parameters() if not n.startswith(("g_a.", "g_s."))]
        if any(p.device.type != "cpu" for p in entropy):
            raise OmnicodecError("entropy coding runs on the CPU (encoder and decoder must compute identical "
                                 "entropy parameters); use model.place(device) to run only the transforms on "
                                 "a GPU, or model.cpu()")

    # ----------------------------------------------------------------- identity
    @property
    def tasks(self) -> list[str]:
        return self.adaptors.tasks if self.adaptors is not None else []

    def s_fingerprint(self) -> str | None:
        """Identity of the S-Adaptor weights: what a bitstream records and T-Adaptors need.

        Cached on the weights' version counters (every in-place update, optimiser steps and
        ``load_state_dict`` included, bumps them), so encoding does not re-hash per image."""
        if self.adaptors is None:
            return None
        state = self.adaptors.s_state_dict()
        key = tuple((id(t), t._version) for t in state.values())
        if getattr(self, "_s_fp_cache", (None,))[0] != key:
            salt = f"s-adaptor:{self.codec.fingerprint}:{self.adaptors.config.identity_json()}|"
            self._s_fp_cache = (key, state_dict_digest(state, salt=salt))
        return self._s_fp_cache[1]

    def _s_fp_short(self) -> bytes:
        fp = self.s_fingerprint()
        return NO_ADAPTOR if fp is None else short_fingerprint(fp)

    # ------------------------------------------------------------------- rate
    @property
    def variable_rate(self) -> bool:
        """A gained codec (``codec/gain.py``): one set of weights, the rate chosen per stream."""
        return is_variable_rate(self.codec.model)

    def rate_position(self, position: float | None = None, lmbda: float | None = None) -> float | None:
        """The position a stream will be coded at: ``position``, else the one for ``lmbda``,
        else the codec's own (its quality); rounded to what the container records. ``None``
        for a fixed-rate codec, which refuses a rate."""
        if not self.variable_rate:
            if position is not None or lmbda is not None:
                raise OmnicodecError(f"{self.codec.spec.label()} codes at one rate; choosing a rate needs a "
                                     "variable-rate codec (e.g. mbt2018-mean-photo-vr)")
            return None
        model = self.codec.model
        if position is None and lmbda is not None:
            try:
                position = position_for_lambda(model.lambdas.tolist(), lmbda)
            except ValueError as e:
                raise OmnicodecError(str(e)) from None
        position = model.position if position is None else position
        if not 0 <= position <= model.levels - 1:
            raise OmnicodecError(f"rate position {position} is outside 0..{model.levels - 1}")
        return quantize_position(position)

    def _training_position(self, position: float | Tensor | None) -> float | Tensor | None:
        if isinstance(position, Tensor):
            return position
        return self.rate_position(position)

    def _gain(self, y: Tensor, position: float | Tensor | None) -> Tensor:
        return y if position is None else self.codec.model.gain(y, position)

    def _ungain(self, y_hat: Tensor, position: float | Tensor | None) -> Tensor:
        return y_hat if position is None else self.codec.model.inverse_gain(y_hat, position)

    # ------------------------------------------------------------- transforms
    def analysis(self, x: Tensor, position: float | Tensor | None = None) -> Tensor:
        """g_a with the shared S-Adaptors: image -> latent y (before a variable-rate codec's
        gain; rate-conditioned adaptors take the rate ``position``)."""
        s = self.adaptors.s if self.adaptors is not None else None
        return run_stages(self.codec.model.g_a, x, self.codec.arch.analysis_taps, s, position)

    def synthesis(self, y_hat: Tensor, task: str | None, position: float | Tensor | None = None) -> Tensor:
        """g_s with ``task``'s T-Adaptors (``None``: the frozen codec's own decoder); ``y_hat``
        after a variable-rate codec's inverse gain."""
        t = None
        if task is not None:
            if self.adaptors is None or task not in self.adaptors.t:
                raise OmnicodecError(f"no T-Adaptor for task '{task}' (have: {', '.join(self.tasks) or 'none'})")
            t = self.adaptors.t[task]
            if self.adaptors.shared is not None:
                y_hat = self.adaptors.shared(y_hat)
        return run_stages(self.codec.model.g_s, y_hat, self.codec.arch.synthesis_taps, t, position)

    # --------------------------------------------------------------- training
    def forward(self, x: Tensor, tasks: Sequence[str] | None = None, human: bool = False,
                noise: bool = True, position: float | Tensor | None = None) -> dict[str, Any]:
        """Training path: per-task ``x_hat``, likelihoods and estimated bpp (a variable-rate
        codec at ``position``: one float, or one per image; default its own)."""
        tasks = self.tasks if tasks is None else list(tasks)
        p = self._training_position(position)
        y = self._gain(self.analysis(x, p), p)
        est = self.codec.latent.estimate(y, noise=noise)
        y_hat = self._ungain(est.y_hat, p)
        x_hat = {t: self.synthesis(y_hat, t, p).clamp(0, 1) for t in tasks}
        if human:
            x_hat[HUMAN] = self.synthesis(y_hat, None, p).clamp(0, 1)
        num_pixels = x.shape[0] * x.shape[-2] * x.shape[-1]
        bpp = bpp_from_likelihoods(est.likelihoods, num_pixels)
        return {"x_hat": x_hat, "likelihoods": est.likelihoods, "bpp": bpp, "y_hat": y_hat}

    @torch.no_grad()
    def estimate_bpp(self, x: Tensor, position: float | None = None) -> float:
        """Rate the entropy model predicts for ``x`` (rounded latents, padding included,
        per original pixel): the estimate reported beside the real bytes."""
        padded, _ = pad_to_grid(x if x.dim() == 4 else x[None])
        bpp_padded = float(self.forward(padded, tasks=[], noise=False, position=position)["bpp"])
        return bpp_padded * padded.shape[-2] * padded.shape[-1] / (x.shape[-2] * x.shape[-1])

    # ------------------------------------------------------------- real coding
    coding: str | None = None  # None: portable where the codec can (see codec/latent.py)

    @torch.no_grad()
    def encode(self, x: Tensor, position: float | None = None) -> Bitstream:
        """One image (1x3xHxW or 3xHxW, values in [0, 1]) -> one bitstream."""
        if x.dim() == 3:
            x = x.unsqueeze(0)
        if x.dim() != 4 or x.shape[0] != 1 or x.shape[1] != 3:
            raise OmnicodecError(f"encode takes one RGB image (1x3xHxW), got shape {tuple(x.shape)}")
        return self.encode_batch([x[0]], position)[0]

    @torch.no_grad()
    def encode_batch(self, images: Sequence[Tensor], position: float | None = None) -> list[Bitstream]:
        """Many images (3xHxW each, [0, 1]) -> one bitstream each. Images of equal size share
        one g_a pass on the model's device; entropy coding runs on the CPU, portable unless
        ``self.coding`` asks for CompressAI's own coding. A variable-rate codec codes at
        ``position`` (see ``rate_position``) and each stream records it."""
        self._require_cpu()
        p = self.rate_position(position)
        latent = self.codec.latent
        coding = self.coding or latent.default_coding
        for i, x in enumerate(images):
            if x.dim() != 3 or x.shape[0] != 3:
                raise OmnicodecError(f"encode takes RGB images (3xHxW), image {i} has shape {tuple(x.shape)}")

        def encode_group(size: tuple[int, int], idx: list[int]) -> list[Bitstream]:
            h, w = size
            padded, (pb, pr) = pad_to_grid(torch.stack([images[i] for i in idx]).float())
            y = self._gain(self.analysis(padded.to(self.device), p), p)
            strings, z_shape, checks = latent.compress_batch(y, coding)
            return [Bitstream(short_fingerprint(self.codec.fingerprint), self._s_fp_short(), h, w, pb, pr,
                              z_shape, s, coding=coding, entropy_check=check, rate_position=p)
                    for s, check in zip(strings, checks)]

        return per_group([tuple(x.shape[-2:]) for x in images], encode_group)

    def check_stream_codec(self, stream: Bitstream | bytes) -> Bitstream:
        """Parse and check that ``stream`` was coded by this model's codec (no decoding)."""
        if not isinstance(stream, Bitstream):
            stream = Bitstream.from_bytes(stream)
        mine = short_fingerprint(self.codec.fingerprint)
        if stream.codec_fp != mine:
            raise StreamMismatch(
                f"codec fingerprint mismatch: the stream was encoded with codec {stream.codec_fp.hex()}, "
                f"this model's codec is {mine.hex()} ({self.codec.spec.label()})"
            )
        if len(stream.strings) != 2:
            raise BitstreamError(f"{self.codec.arch.name} streams carry 2 strings (y, z), this one has {len(stream.strings)}")
        if (stream.rate_position is None) == self.variable_rate:
            raise BitstreamError(f"{self.codec.arch.name} streams " + ("record their rate position, this one has none"
                                 if self.variable_rate else "have no rate position, this one records one (flag bit 2)"))
        if self.variable_rate and stream.rate_position > self.codec.model.levels - 1:
            raise BitstreamError(f"rate position {stream.rate_position} outside 0..{self.codec.model.levels - 1}")
        return stream

    @torch.no_grad()
    def decode_latent(self, stream: Bitstream | bytes) -> tuple[Bitstream, Tensor]:
        """Parse, check the codec fingerprint, and entropy-decode ONCE -> (header, y_hat)."""
        return self.decode_latents([stream])[0]

    @torch.no_grad()
    def decode_latents(self, streams: Sequence[Bitstream | bytes], errors: str = "raise"
                       ) -> list[tuple[Bitstream, Tensor] | EntropyDesync]:
        """``decode_latent`` for many streams: each parsed and checked first (a bad one raises
        before anything is decoded), then streams of equal z shape and coding entropy-decoded
        in one call (one hyper-synthesis pass for the group). The latents equal one-by-one
        decoding. A stream whose entropy check fails here raises ``EntropyDesync``, or with
        ``errors="return"`` takes that error's place in the list (the others still decode:
        a server answers each request on its own)."""
        self._require_cpu()
        checked = [self.check_stream_codec(s) for s in streams]

        def decode_group(key: tuple, group: list[int]) -> list:
            z_shape, coding = key
            out: dict[int, Any] = {}
            idx = group
            while idx:
                try:
                    y_hat = self.codec.latent.decompress_batch(
                        [_guard(checked[i], self.codec) for i in idx], z_shape, coding,
                        [checked[i].entropy_check for i in idx])
                except EntropyDesync as e:
                    bad = [idx[p] for p in e.positions]
                    if errors == "raise":
                        raise EntropyDesync(bad, _desync_message(checked[bad[0]], bad[0], len(checked))) from None
                    for i in bad:
                        out[i] = EntropyDesync([i], _desync_message(checked[i], i, len(checked)))
                    idx = [i for i in idx if i not in bad]
                    continue
                for j, i in enumerate(idx):  # own storage: a pickled view would carry the whole batch
                    one = y_hat[j : j + 1].clone() if len(idx) > 1 else y_hat
                    out[i] = (checked[i], self._ungain(one, checked[i].rate_position))
                break
            return [out[i] for i in group]

        return per_group([(tuple(s.z_shape), s.coding) for s in checked], decode_group)

    @torch.no_grad()
    def decode(self, stream: Bitstream | bytes, tasks: Sequence[str] = (), human: bool = False) -> dict[str, Tensor]:
        """Entropy-decode once, then one g_s pass per task (and/or the human view)."""
        return self.decode_batch([stream], tasks, human)[0]

    @torch.no_grad()
    def decode_batch(self, streams: Sequence[Bitstream | bytes], tasks: Sequence[str] = (),
                     human: bool = False) -> list[dict[str, Tensor]]:
        """Many bitstreams: each entropy-decoded once on the CPU (``decode_latents``), then
        latents of equal shape share one g_s pass per task on the model's device
        (``reconstruct_batch``). The one decode path: ``decode`` is this for one stream."""
        decoded = self.decode_latents(streams)
        if tasks:
            for stream, _ in decoded:
                self.check_stream_adaptor(stream)
        return self.reconstruct_batch([y_hat for _, y_hat in decoded],
                                      [(stream.height, stream.width) for stream, _ in decoded], tasks, human,
                                      [stream.rate_position for stream, _ in decoded])

    def check_stream_adaptor(self, stream: Bitstream) -> None:
        if stream.adaptor_fp != self._s_fp_short():
            got = stream.adaptor_fp.hex() if stream.has_adaptor else "none"
            raise StreamMismatch(
                f"S-Adaptor fingerprint mismatch: the stream was encoded with S-Adaptor {got}, "
                f"these T-Adaptors belong to {self._s_fp_short().hex()}"
            )

    @torch.no_grad()
    def reconstruct(self, stream: Bitstream, y_hat: Tensor, tasks: Sequence[str] = (), human: bool = False) -> dict[str, Tensor]:
        """``x_hat`` per task from an already decoded latent, cropped to the original size."""
        return self.reconstruct_batch([y_hat], [(stream.height, stream.width)], tasks, human, [stream.rate_position])[0]

    @torch.no_grad()
    def reconstruct_batch(self, latents: Sequence[Tensor], sizes: Sequence[tuple[int, int]],
                          tasks: Sequence[str] = (), human: bool = False,
                          positions: Sequence[float | None] | None = None) -> list[dict[str, Tensor]]:
        """``x_hat`` per task (and/or the human view) from entropy-decoded latents (1xMxhxw
        each, of any shapes), each cropped to its image's ``(height, width)`` in ``sizes``.
        Latents of equal shape share one g_s pass per task on the model's device; each view
        is clamped to [0, 1], cropped, then NaNs zeroed. Serve's task replicas call this with
        the latents their router decoded; ``decode_batch`` calls it after ``decode_latents``.
        ``positions``: each stream's rate position (variable-rate codecs; rate-conditioned
        T-Adaptors read it), ``None`` for fixed-rate streams."""
        if len(latents) != len(sizes):
            raise ValueError(f"reconstruct_batch: {len(latents)} latents, {len(sizes)} sizes")
        names = [*tasks, *([HUMAN] if human else [])]

        def synthesize_group(_: tuple[int, ...], idx: list[int]) -> list[dict[str, Tensor]]:
            y = torch.cat([latents[i] for i in idx]).to(self.device)
            p = None
            if positions is not None and positions[idx[0]] is not None:
                p = torch.tensor([positions[i] for i in idx], device=self.device)
            out: list[dict[str, Tensor]] = [{} for _ in idx]
            for name in names:
                x_hat = self.synthesis(y, None if name == HUMAN else name, p).clamp_(0, 1)
                for j, i in enumerate(idx):
                    h, w = sizes[i]
                    out[j][name] = torch.nan_to_num(x_hat[j : j + 1, :, :h, :w])
            return out

        return per_group([tuple(y_hat.shape) for y_hat in latents], synthesize_group)

    # ------------------------------------------------------------ checkpoints
    def checkpoint(self, metadata: dict[str, Any] | None = None) -> AdaptorCheckpoint:
        if self.adaptors is None:
            raise CheckpointError("this model has no adaptors to save")
        return AdaptorCheckpoint(
            adaptor=self.adaptors.config, tasks=self.tasks,
            codec={**self.codec.spec.to_dict(), "fingerprint": self.codec.fingerprint},
            s_fingerprint=self.s_fingerprint(), state=self.adaptors.state_dict(), metadata=metadata or {},
        )

    def save(self, location: str, metadata: dict[str, Any] | None = None) -> str:
        return save_adaptors(location, self.checkpoint(metadata))

    @classmethod
    def from_checkpoint(cls, location: str | AdaptorCheckpoint, codec: FrozenCodec | None = None) -> OmniCodec:
        """Adaptors from ``location`` on ``codec`` (default: the codec they record).

        Refuses a codec whose fingerprint differs from the one the adaptors were trained on.
        """
        ckpt = location if isinstance(location, AdaptorCheckpoint) else load_adaptors(location)
        from omnicodec.tasks.registry import register_from_metadata

        register_from_metadata(ckpt.metadata)  # user tasks (kind + network) the adaptors were trained for
        recorded = ckpt.codec["fingerprint"]
        if codec is None:
            spec = CodecSpec.from_dict({k: v for k, v in ckpt.codec.items() if k != "fingerprint"},
                                       source=f"{location}: codec")
            codec = load_codec(spec)
        if codec.fingerprint != recorded:
            raise FingerprintMismatch(
                f"adaptors at {location} were trained on codec {recorded[:16]} ({ckpt.codec.get('arch')}), "
                f"not on {codec.fingerprint[:16]} ({codec.spec.label()}); refusing to load"
            )
        model = cls(codec, ckpt.tasks, ckpt.adaptor)
        missing, unexpected = model.adaptors.load_state_dict(ckpt.state, strict=False)
        if missing or unexpected:
            raise CheckpointError(f"{location}: adaptor weights do not fit the recorded config "
                                  f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
        if model.s_fingerprint() != ckpt.s_fingerprint:
            raise CheckpointError(f"{location}: S-Adaptor weights do not match the recorded fingerprint")
        model.metadata = ckpt.metadata
        return model

    # ---------------------------------------------------------------- reports
    def parameter_report(self) -> dict[str, Any]:
        codec_params = self.codec.num_parameters
        rep: dict[str, Any] = {"codec": codec_params}
        if self.adaptors is not None:
            total = self.adaptors.num_parameters()
            rep.update({
                "s_adaptor": self.adaptors.num_parameters("s"),
                "t_adaptors": {t: self.adaptors.num_parameters(t) for t in self.tasks},
                "trainable": sum(p.numel() for p in self.parameters() if p.requires_grad),
                "adaptors": total,
                "fraction_of_codec": total / codec_params,
            })
        return rep


def _desync_message(stream: Bitstream, position: int, count: int) -> str:
    where = f" (stream {position} of {count})" if count > 1 else ""
    why = ("it was coded with CompressAI's float hyper-synthesis (--coding compressai), which is not portable; "
           "re-encode it in the default portable coding" if not stream.portable else
           "its CDF tables or exact hyper-synthesis differ from the encoder's")
    return (f"the entropy parameters of this stream differ on this machine{where}: {why}; "
            "it cannot be decoded here")


def _guard(stream: Bitstream, codec: FrozenCodec) -> list[bytes]:
    """Zero-pad the strings before they reach CompressAI's rANS decoder.

    That decoder reads 32-bit words without bounds checks; a CRC-valid but crafted
    string could make it read past its buffer. Trailing zeros are never consumed by a
    valid stream, and bound what an invalid one can read: at most about one word per
    coded symbol, plus slack.
    """
    zh, zw = stream.z_shape
    m = codec.model
    symbols = int(m.M) * zh * zw * 16 + int(m.N) * zh * zw
    pad = bytes(4 * symbols + 64)
    return [s + pad for s in stream.strings]
