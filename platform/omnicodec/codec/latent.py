"""Entropy coding of a latent ``y`` with the frozen codec, and its training-time estimate.

omnicodec runs ``g_a`` and ``g_s`` itself (with adaptors between their stages), so it
needs the codec's entropy part on its own: ``y -> strings`` and ``strings -> y_hat``.
Rather than re-implementing CompressAI's coding (and risking a byte that differs),
``LatentCodec`` calls CompressAI's own ``compress``/``decompress`` on a shallow view of
the model whose ``g_a`` is the identity and whose ``g_s`` records its input. The strings
are therefore CompressAI's, byte for byte, for every architecture in the registry
(hyperprior, mean-scale and autoregressive context models alike), and the base model
object is never mutated, so one codec can serve concurrent requests.

Both views run the hyper-synthesis ``h_s`` one image at a time (``_PerImage``), even inside
a batch: the scales it predicts pick each symbol's CDF, so encoder and decoder must compute
them bit-identically, and a convolution's floating-point result may depend on the batch it
runs in (the algorithm the library picks per shape). Per image, the batch a stream was
encoded or decoded in can never change a CDF index. ``h_s`` is a few small convolutions on
the 1/64-size hyper-latent, so this costs little.

``estimate`` is the differentiable counterpart used in training (see ``Quantisation``).
"""

from __future__ import annotations

import copy
import threading
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
        self._encoder_view = self._view(g_a=nn.Identity(), g_s=model.g_s)
        self._tap = _Tap()
        self._decoder_view = self._view(g_a=model.g_a, g_s=self._tap)
        self._lock = threading.Lock()  # _Tap holds the last y_hat between two lines

    def _view(self, g_a: nn.Module, g_s: nn.Module) -> CompressionModel:
        view = copy.copy(self.model)  # shares every parameter and buffer with the model
        view._modules = dict(self.model._modules, g_a=g_a, g_s=g_s, h_s=_PerImage(self.model.h_s))
        return view

    @torch.no_grad()
    def compress(self, y: Tensor) -> tuple[list[bytes], tuple[int, int]]:
        """``y`` (1 x M x h x w) -> ``[y_string, z_string]`` and the z shape."""
        (strings,), z_shape = self.compress_batch(y)
        return strings, z_shape

    @torch.no_grad()
    def compress_batch(self, y: Tensor) -> tuple[list[list[bytes]], tuple[int, int]]:
        """``y`` (B x M x h x w, equal sizes) -> per image ``[y_string, z_string]``, and the z shape.
        Always on the CPU in fp32: the hyperprior's scales and means are then computed by the
        same code on every machine, so any encoder's stream decodes identically everywhere."""
        out = self._encoder_view.compress(y.detach().float().cpu())
        per_image = [list(s) for s in zip(*out["strings"])]
        return per_image, tuple(int(v) for v in out["shape"])

    @torch.no_grad()
    def decompress(self, strings: list[bytes], z_shape: tuple[int, int]) -> Tensor:
        """Inverse of ``compress``: the quantised latent ``y_hat`` (1 x M x h x w)."""
        return self.decompress_batch([strings], z_shape)

    @torch.no_grad()
    def decompress_batch(self, strings: list[list[bytes]], z_shape: tuple[int, int]) -> Tensor:
        """Many streams of one z shape (per image ``[y_string, z_string]``) in one call ->
        B x M x h x w: one pass of CompressAI's decoder for the group (the hyper-synthesis
        still runs per image, see the module docstring). The inverse of ``compress_batch``."""
        with self._lock:
            self._decoder_view.decompress([list(col) for col in zip(*strings)], torch.Size(z_shape))
            y_hat, self._tap.last = self._tap.last, None
        return y_hat

    def estimate(self, y: Tensor, noise: bool = True) -> LatentEstimate:
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
        """
        m = self.model
        eb, gc = m.entropy_bottleneck, m.gaussian_conditional
        z = m.h_a(y if isinstance(m, MeanScaleHyperprior) else torch.abs(y))
        _, z_likelihoods = eb(z, training=noise)
        medians = eb._get_medians().reshape(1, -1, 1, 1)
        z_hat = quantize_ste(z - medians) + medians
        params = m.h_s(z_hat)
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
