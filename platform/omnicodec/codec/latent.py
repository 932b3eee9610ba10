"""Entropy coding of a latent ``y`` with the frozen codec, and its training-time estimate.

omnicodec runs ``g_a`` and ``g_s`` itself (with adaptors between their stages), so it
needs the codec's entropy part on its own: ``y -> strings`` and ``strings -> y_hat``.
It uses CompressAI's own entropy models (``EntropyBottleneck``, ``GaussianConditional``)
and range coder, in one of two codings (``CODINGS``):

- ``portable`` (the default): the hyper-synthesis ``h_s`` runs in exact integer
  arithmetic (``codec/exact.py``), so the scale index of every symbol -- which CDF codes
  it -- and the means are bit-identical on every CPU, thread count and device. A stream
  written anywhere decodes identically everywhere; ``y_hat`` is bit-exact, only ``g_s``'s
  float noise differs between machines.
- ``compressai``: the float ``h_s``, run one image at a time; the strings are CompressAI's
  own ``compress()`` output byte for byte, for checkpoints that must interoperate with
  CompressAI. Not portable: another float path can move a scale across a table boundary.
  Autoregressive models (context models) code only this way, through CompressAI's own
  ``compress``/``decompress`` on a shallow view of the model.

Either way the stream carries an *entropy check* (``entropy_check``): a CRC32 over a
digest of the CDF tables and the stream's map of scale indexes. The decoder recomputes
it before decoding ``y``, so parameters that differ on the decoding machine raise
``EntropyDesync`` in one line instead of decoding garbage.

Per image: the float ``h_s`` of the compatible coding still runs one image at a time even
inside a batch, because a convolution's float result may depend on the batch it runs in.

``estimate`` is the differentiable counterpart used in training (see ``Quantisation``);
in the portable coding its scales and means take the exact values (straight-through), so
training sees the rate that will be coded.
"""

from __future__ import annotations

import copy
import hashlib
import threading
import zlib
from dataclasses import dataclass

import torch
from compressai.models import (
    CompressionModel,
    JointAutoregressiveHierarchicalPriors,
    MeanScaleHyperprior,
    ScaleHyperprior,
)
from compressai.ops import quantize_ste
from torch import Tensor, nn

from omnicodec.codec.exact import ExactHyperSynthesis, NotPortable
from omnicodec.errors import EntropyDesync

PORTABLE = "portable"
COMPRESSAI = "compressai"
CODINGS = (PORTABLE, COMPRESSAI)
TABLES = ("_quantized_cdf", "_offset", "_cdf_length", "scale_table")


def tables_digest(model: nn.Module) -> bytes:
    """8-byte sha256 of every table the range coder reads (CDFs, offsets, lengths, scales)."""
    h = hashlib.sha256()
    for name, t in sorted(model.named_buffers()):
        if name.rsplit(".", 1)[-1] in TABLES:
            h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.digest()[:8]


class _PerImage(nn.Module):
    """``module`` applied to each batch element alone (see the module docstring)."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[0] == 1:
            return self.module(x)
        return torch.cat([self.module(x[i : i + 1]) for i in range(x.shape[0])])


class _Tap(nn.Module):
    """Stands in for ``g_s``: remembers ``y_hat`` and returns a dummy for ``clamp_``."""

    def forward(self, y_hat: Tensor) -> Tensor:
        self.last = y_hat
        return y_hat.new_zeros(())


@dataclass
class LatentEstimate:
    """What training needs from the entropy model for one batch."""

    y_hat: Tensor  # decoder input: rounded values with straight-through gradients
    likelihoods: dict[str, Tensor]  # "y" and "z", from additive-noise relaxations


class LatentCodec:
    """CompressAI's entropy coding of ``y`` for one frozen model (see module docstring)."""

    def __init__(self, model: CompressionModel):
        if not isinstance(model, ScaleHyperprior):
            raise TypeError(
                f"{type(model).__name__} is not a hyperprior model; omnicodec supports "
                "ScaleHyperprior, MeanScaleHyperprior and autoregressive subclasses"
            )
        self.model = model
        self.autoregressive = isinstance(model, JointAutoregressiveHierarchicalPriors)
        self.mean_scale = isinstance(model, MeanScaleHyperprior)
        self._float_hs = _PerImage(model.h_s)
        self._tap = _Tap()
        self._decoder_view = self._view(g_a=model.g_a, g_s=self._tap)
        self._encoder_view = self._view(g_a=nn.Identity(), g_s=model.g_s)
        self._lock = threading.Lock()  # _Tap holds the last y_hat between two lines
        self._cache: dict[str, tuple[tuple, object]] = {}

    def _view(self, g_a: nn.Module, g_s: nn.Module) -> CompressionModel:
        view = copy.copy(self.model)  # shares every parameter and buffer with the model
        view._modules = dict(self.model._modules, g_a=g_a, g_s=g_s, h_s=self._float_hs)
        return view

    # ----------------------------------------------------------- identity of coding
    def _cached(self, name: str, tensors: list[Tensor], build):
        """``build()``, recomputed only when one of ``tensors`` changed (version counters)."""
        key = tuple((id(t), t._version) for t in tensors)
        hit = self._cache.get(name)
        if hit is None or hit[0] != key:
            hit = self._cache[name] = (key, build())
        return hit[1]

    @property
    def exact_hyper_synthesis(self) -> ExactHyperSynthesis | None:
        """The integer ``h_s`` (None where the model cannot code portably)."""
        if self.autoregressive:
            return None

        def build():
            try:
                return ExactHyperSynthesis(self.model.h_s)
            except NotPortable:
                return None

        return self._cached("exact", list(self.model.h_s.parameters()), build)

    @property
    def default_coding(self) -> str:
        return PORTABLE if self.exact_hyper_synthesis is not None else COMPRESSAI

    def tables_digest(self) -> bytes:
        """sha256 (8 bytes) of the CDF tables and scale table the range coder uses."""
        tables = [t for name, t in self.model.named_buffers() if name.rsplit(".", 1)[-1] in TABLES]
        return self._cached("tables", tables, lambda: tables_digest(self.model))

    def entropy_check(self, indexes: Tensor | None) -> int:
        """CRC32 of the tables digest and one image's scale indexes (C x h x w)."""
        crc = zlib.crc32(self.tables_digest())
        if indexes is not None:
            crc = zlib.crc32(indexes.to(torch.uint8).contiguous().numpy().tobytes(), crc)
        return crc

    def _coding(self, coding: str | None) -> str:
        coding = coding or self.default_coding
        if coding not in CODINGS:
            raise ValueError(f"unknown coding '{coding}' (known: {', '.join(CODINGS)})")
        if coding == PORTABLE and self.exact_hyper_synthesis is None:
            raise NotPortable(f"{type(self.model).__name__} cannot code portably (its h_s or context model "
                              "has no exact form); use coding='compressai'")
        return coding

    # -------------------------------------------------------------------- coding
    def _scales_means(self, z_hat: Tensor, coding: str) -> tuple[Tensor, Tensor | None]:
        params = self.exact_hyper_synthesis(z_hat) if coding == PORTABLE else self._float_hs(z_hat)
        return params.chunk(2, 1) if self.mean_scale else (params, None)

    @torch.no_grad()
    def compress(self, y: Tensor, coding: str | None = None) -> tuple[list[bytes], tuple[int, int], int]:
        """``y`` (1 x M x h x w) -> ``[y_string, z_string]``, the z shape and the entropy check."""
        (strings,), z_shape, (check,) = self.compress_batch(y, coding)
        return strings, z_shape, check

    @torch.no_grad()
    def compress_batch(self, y: Tensor, coding: str | None = None
                       ) -> tuple[list[list[bytes]], tuple[int, int], list[int]]:
        """``y`` (B x M x h x w, equal sizes) -> per image ``[y_string, z_string]``, the z shape
        and per image the entropy check. Always on the CPU in fp32."""
        coding = self._coding(coding)
        y = y.detach().float().cpu()
        if self.autoregressive:
            out = self._encoder_view.compress(y)
            per_image = [list(s) for s in zip(*out["strings"])]
            return per_image, tuple(int(v) for v in out["shape"]), [self.entropy_check(None)] * len(per_image)
        z = self.model.h_a(y if self.mean_scale else torch.abs(y))
        z_strings = self.model.entropy_bottleneck.compress(z)
        z_shape = tuple(int(v) for v in z.shape[-2:])
        # the decoder's own path from the z strings: the encoder codes with what every decoder computes
        indexes, means = self._decode_parameters(z_strings, z_shape, coding)
        y_strings = self.model.gaussian_conditional.compress(y, indexes, means=means)
        checks = [self.entropy_check(indexes[i]) for i in range(len(y_strings))]
        return [[ys, zs] for ys, zs in zip(y_strings, z_strings)], z_shape, checks

    @torch.no_grad()
    def decompress(self, strings: list[bytes], z_shape: tuple[int, int], coding: str | None = None,
                   check: int | None = None) -> Tensor:
        """Inverse of ``compress``: the quantised latent ``y_hat`` (1 x M x h x w)."""
        return self.decompress_batch([strings], z_shape, coding, None if check is None else [check])

    @torch.no_grad()
    def decompress_batch(self, strings: list[list[bytes]], z_shape: tuple[int, int], coding: str | None = None,
                         checks: list[int | None] | None = None) -> Tensor:
        """Many streams of one z shape (per image ``[y_string, z_string]``) in one call ->
        B x M x h x w float32. Each image's scale indexes are checked against its entropy
        check (None: unchecked) before its ``y`` is decoded: ``EntropyDesync`` names the
        images whose parameters differ here. The inverse of ``compress_batch``."""
        coding = self._coding(coding)
        if self.autoregressive:
            self._verify(checks, [None] * len(strings))
            with self._lock:
                self._decoder_view.decompress([list(col) for col in zip(*strings)], torch.Size(z_shape))
                y_hat, self._tap.last = self._tap.last, None
            return y_hat
        indexes, means = self._decode_parameters([s[1] for s in strings], z_shape, coding)
        self._verify(checks, list(indexes))
        return self.model.gaussian_conditional.decompress([s[0] for s in strings], indexes, means=means).float()

    def _decode_parameters(self, z_strings: list[bytes], z_shape: tuple[int, int], coding: str
                           ) -> tuple[Tensor, Tensor | None]:
        eb, gc = self.model.entropy_bottleneck, self.model.gaussian_conditional
        scales, means = self._scales_means(eb.decompress(z_strings, z_shape), coding)
        return gc.build_indexes(scales), means

    @torch.no_grad()
    def scale_indexes(self, z_strings: list[bytes], z_shape: tuple[int, int], coding: str | None = None) -> Tensor:
        """The CDF index of every symbol of ``y`` as this machine computes it from the
        streams' hyper-latents (B x M x h x w, int32): what portability is about."""
        if self.autoregressive:
            raise NotPortable("autoregressive models compute their indexes while decoding y")
        return self._decode_parameters(z_strings, z_shape, self._coding(coding))[0]

    def _verify(self, checks: list[int | None] | None, indexes: list[Tensor | None]) -> None:
        if checks is None:
            return
        bad = [i for i, (c, ix) in enumerate(zip(checks, indexes)) if c is not None and c != self.entropy_check(ix)]
        if bad:
            raise EntropyDesync(bad)

    def estimate(self, y: Tensor, noise: bool = True, coding: str | None = None) -> LatentEstimate:
        """Differentiable rate terms and decoder input for training.

        Quantisation scheme (one, used everywhere): likelihoods of ``y`` and ``z`` are
        evaluated on additive-uniform-noise relaxations, so the rate term has gradients;
        the decoder and the hyper-decoder receive *rounded* values (around the medians /
        predicted means, exactly as the real coder rounds) with straight-through
        gradients, so training sees the same ``y_hat`` that ``decompress`` produces.
        (Autoregressive models need ``y_hat`` for their context before the means exist,
        so there ``y`` is rounded to integers, as CompressAI's own ``forward`` does.)
        ``noise=False`` evaluates the likelihoods on the rounded values instead: the
        estimate of the real rate that evaluation reports beside the real bytes.
        In the portable coding the hyper-synthesis' values are the exact ones the coder
        uses, with the float network's gradients (straight-through).
        """
        m = self.model
        eb, gc = m.entropy_bottleneck, m.gaussian_conditional
        z = m.h_a(y if isinstance(m, MeanScaleHyperprior) else torch.abs(y))
        _, z_likelihoods = eb(z, training=noise)
        medians = eb._get_medians().reshape(1, -1, 1, 1)
        z_hat = quantize_ste(z - medians) + medians
        params = m.h_s(z_hat)
        if self._coding(coding) == PORTABLE:
            exact = self.exact_hyper_synthesis(z_hat).to(params.device, params.dtype)
            params = params + (exact - params).detach()
        if isinstance(m, JointAutoregressiveHierarchicalPriors):
            y_hat = quantize_ste(y)
            ctx = m.context_prediction(y_hat)
            scales, means = m.entropy_parameters(torch.cat((params, ctx), dim=1)).chunk(2, 1)
        elif isinstance(m, MeanScaleHyperprior):
            scales, means = params.chunk(2, 1)
            y_hat = quantize_ste(y - means) + means
        else:
            scales, means = params, None
            y_hat = quantize_ste(y)
        _, y_likelihoods = gc(y, scales, means=means, training=noise)
        return LatentEstimate(y_hat=y_hat, likelihoods={"y": y_likelihoods, "z": z_likelihoods})
