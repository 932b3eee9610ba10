"""One codec for every rate: channel gain units on a mean-scale hyperprior.

A fixed-rate codec is trained for one lambda; a ladder of them costs one model per rate
(15 MB each for the photo codec). Gain units (Cui et al., "Asymmetric Gained Deep Image
Compression With Continuous Rate Adaptation", CVPR 2021) keep ONE set of transforms and
learn, per rate level ``i``, a gain vector ``g_i`` (M channels) that scales the latent
before quantisation and an inverse gain ``g'_i`` applied after it::

    y = g_a(x) * g(p)          quantised and entropy-coded as usual (h_a, h_s see it)
    x_hat = g_s(y_hat * g'(p))

A larger gain quantises finer (more bits, less distortion). Between two trained levels the
gains interpolate geometrically, ``g(p) = g_i^(1-f) * g_(i+1)^f`` with ``p = i + f``, so the
rate is continuous: ``position_for_lambda`` maps any lambda inside the trained range to a
position. The hyperprior is unchanged, so the portable entropy coding (exact ``h_s``)
applies as is; the gains touch only the float transforms' side of the latent.

Training samples one level per image and weighs its distortion by that level's lambda
(``codec_job`` with ``objective.RateDistortionLoss``), so every level is trained in every batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from compressai.models import MeanScaleHyperprior
from torch import Tensor, nn

# lambdas of the trained levels (255^2 * MSE weights), log-spaced; the span is chosen so the
# photo codec reaches from about 0.05 bpp to past 1 bpp on 192 px scenes.
DEFAULT_LAMBDAS = (0.0002, 0.00047, 0.0011, 0.0026, 0.0061, 0.0143, 0.034, 0.08)
REFERENCE_LAMBDA = 0.0067  # the fixed-rate codec the gains start from (photo q3)
POSITION_SCALE = 256  # a stream records its position in 1/256 steps (uint16)


class GainedMeanScaleHyperprior(MeanScaleHyperprior):
    """``MeanScaleHyperprior`` with per-level gain and inverse-gain vectors (see module doc).

    ``forward(x, position)`` takes one position per image (a float tensor of shape (B,));
    ``position=None`` uses ``self.position`` for every image. The coding path (omnicodec's
    ``OmniCodec``) applies ``gain``/``inverse_gain`` itself around ``g_a``/``g_s``."""

    def __init__(self, N: int, M: int, lambdas: Sequence[float] = DEFAULT_LAMBDAS, **kwargs):
        super().__init__(N, M, **kwargs)
        lambdas = tuple(float(v) for v in lambdas)
        if len(lambdas) < 2 or any(b <= a for a, b in zip(lambdas, lambdas[1:])):
            raise ValueError(f"gain levels need >= 2 increasing lambdas, got {lambdas}")
        self.register_buffer("lambdas", torch.tensor(lambdas, dtype=torch.float64))
        start = torch.tensor([math.sqrt(v / REFERENCE_LAMBDA) for v in lambdas])
        # log-gains: positive gains by construction, geometric interpolation is linear here
        self.log_gain = nn.Parameter(start.log()[:, None].repeat(1, M))
        self.log_inverse_gain = nn.Parameter(-start.log()[:, None].repeat(1, M))
        self.position = float(len(lambdas) // 2)

    @property
    def levels(self) -> int:
        return int(self.lambdas.numel())

    @classmethod
    def from_state_dict(cls, state):
        N, M = state["g_a.0.weight"].size(0), state["g_a.6.weight"].size(0)
        net = cls(N, M, lambdas=state["lambdas"].tolist())
        net.load_state_dict(state)
        return net

    def _vector(self, table: Tensor, position: float | Tensor, batch: int) -> Tensor:
        return interpolate_levels(table, position, batch).exp()  # log-linear = geometric

    def gain(self, y: Tensor, position: float | Tensor | None = None) -> Tensor:
        p = self.position if position is None else position
        return y * self._vector(self.log_gain, p, y.shape[0]).to(device=y.device, dtype=y.dtype)

    def inverse_gain(self, y_hat: Tensor, position: float | Tensor | None = None) -> Tensor:
        p = self.position if position is None else position
        return y_hat * self._vector(self.log_inverse_gain, p, y_hat.shape[0]).to(device=y_hat.device, dtype=y_hat.dtype)

    def lambda_at(self, position: float | Tensor) -> Tensor:
        """The lambda a position stands for (geometric interpolation between levels)."""
        shape = torch.as_tensor(position).shape
        return interpolate_levels(self.lambdas.log().cpu()[:, None], position, 1).exp().reshape(shape)

    def forward(self, x: Tensor, position: float | Tensor | None = None) -> dict:
        y = self.gain(self.g_a(x), position)
        z = self.h_a(y)
        z_hat, z_likelihoods = self.entropy_bottleneck(z)
        scales_hat, means_hat = self.h_s(z_hat).chunk(2, 1)
        y_hat, y_likelihoods = self.gaussian_conditional(y, scales_hat, means=means_hat)
        x_hat = self.g_s(self.inverse_gain(y_hat, position))
        return {"x_hat": x_hat, "likelihoods": {"y": y_likelihoods, "z": z_likelihoods}}

    def compress(self, x: Tensor) -> dict:
        """CompressAI's ``compress`` at ``self.position`` (its code, with the gain on ``y``)."""
        y = self.gain(self.g_a(x))
        z = self.h_a(y)
        z_strings = self.entropy_bottleneck.compress(z)
        z_hat = self.entropy_bottleneck.decompress(z_strings, z.size()[-2:])
        scales_hat, means_hat = self.h_s(z_hat).chunk(2, 1)
        indexes = self.gaussian_conditional.build_indexes(scales_hat)
        y_strings = self.gaussian_conditional.compress(y, indexes, means=means_hat)
        return {"strings": [y_strings, z_strings], "shape": z.size()[-2:]}

    def decompress(self, strings: list, shape) -> dict:
        """CompressAI's ``decompress`` at ``self.position`` (the inverse gain before ``g_s``)."""
        z_hat = self.entropy_bottleneck.decompress(strings[1], shape)
        scales_hat, means_hat = self.h_s(z_hat).chunk(2, 1)
        indexes = self.gaussian_conditional.build_indexes(scales_hat)
        y_hat = self.gaussian_conditional.decompress(strings[0], indexes, means=means_hat)
        return {"x_hat": self.g_s(self.inverse_gain(y_hat)).clamp_(0, 1)}


def interpolate_levels(table: Tensor, position: float | Tensor, batch: int) -> Tensor:
    """Rows of ``table`` (levels x C) linearly interpolated at ``position`` (a float, or one per
    image; clamped to the levels), shaped B x C x 1 x 1, computed in the table's dtype. The one
    rule for "between two trained levels": the codec's gains (in the log domain) and lambdas,
    and the rate-conditioned adaptors' modulation tables (``adaptors/rate.py``)."""
    levels = table.shape[0]
    p = torch.as_tensor(position, dtype=table.dtype, device=table.device).reshape(-1)
    if p.numel() == 1:
        p = p.expand(batch)
    p = p.clamp(0, levels - 1)
    low = p.floor().long().clamp(max=max(levels - 2, 0))
    high = (low + 1).clamp(max=levels - 1)
    frac = (p - low)[:, None]
    return (table[low] * (1 - frac) + table[high] * frac)[:, :, None, None]


def position_for_lambda(lambdas: Sequence[float], lmbda: float) -> float:
    """The continuous position whose interpolated lambda is ``lmbda`` (log-linear)."""
    lambdas = [float(v) for v in lambdas]
    if not lambdas[0] <= lmbda <= lambdas[-1]:
        raise ValueError(f"lambda {lmbda:g} is outside this codec's trained range "
                         f"{lambdas[0]:g}..{lambdas[-1]:g}")
    for i in range(len(lambdas) - 1):
        if lmbda <= lambdas[i + 1]:
            lo, hi = math.log(lambdas[i]), math.log(lambdas[i + 1])
            return quantize_position(i + (math.log(lmbda) - lo) / (hi - lo))
    return float(len(lambdas) - 1)


def quantize_position(position: float) -> float:
    """Positions travel in a stream as uint16 in 1/256 steps; encode what will be decoded."""
    return round(float(position) * POSITION_SCALE) / POSITION_SCALE


def is_variable_rate(model: nn.Module) -> bool:
    return isinstance(model, GainedMeanScaleHyperprior)


def sample_positions(model: GainedMeanScaleHyperprior, batch: int, device: torch.device) -> Tensor:
    """One trained level per image, uniformly: every level sees every batch's statistics."""
    return torch.randint(0, model.levels, (batch,), device=device).float()




def load_into(model: GainedMeanScaleHyperprior, state: dict[str, Tensor]) -> None:
    """Start from a fixed-rate mean-scale checkpoint (its transforms and entropy models) or
    a gained one; gains a fixed-rate checkpoint lacks keep their initial values."""
    gains = {"log_gain", "log_inverse_gain", "lambdas"}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or set(missing) - gains:
        raise ValueError(f"checkpoint does not fit {type(model).__name__}: missing {sorted(set(missing) - gains)}, "
                         f"unexpected {sorted(unexpected)}")
