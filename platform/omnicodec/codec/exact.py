"""The hyper-synthesis ``h_s`` in exact integer arithmetic: entropy parameters every machine agrees on.

Why. ``h_s`` turns the decoded hyper-latent into the scale (and mean) of every latent
symbol, and each scale picks the CDF its symbol is coded with (``build_indexes``). In
float32 the convolutions' results depend on the kernel (oneDNN's AVX-512 and AVX2 paths
differ by ~3e-5, ATen's vectorised and default paths, a GPU's), so a scale near a table
boundary lands in the neighbouring CDF on another machine and the range decoder desyncs
for the rest of the stream: a wrong picture, silently.

How. Ballé et al., "Integer networks for data compression with latent-variable models"
(ICLR 2019): make the hyper-synthesis integer so encoder and decoder compute it exactly.
Here every convolution runs on integers: activations on a fixed grid of 2**-ACT_FRAC,
clamped to +-2**ACT_BITS, and weights rounded per output channel to at most
``weight_bits`` significant bits, chosen so that every partial sum stays below 2**52.
The arithmetic is carried by float64 (CPU BLAS, im2col / col2im): with integer operands
and partial sums below 2**53 every addition and fused multiply-add is exact, so the
result is the same integer whatever the summation order, SIMD width, thread count or
library. The rest is elementwise (scaling by powers of two, rounding, ``where``, one
multiplication by the leaky slope), and IEEE-754 rounds each elementwise operation
correctly on every machine. No transcendental function is on this path.

What it costs. The weights keep 14-15 significant bits and activations 2**-14 steps, so
the output differs from the float network by at most ~1e-3 (measured on held-out photos:
0.03 % of the scale indexes land one step away from the float path's), far inside the
64-step scale table's spacing (~11 % per step): the rate moves by hundredths of a percent
(measured in ``benchmarks/bench_portable.py``). The grid sizes were chosen on training
photos by that index agreement (2**-10 steps flipped 0.4 %, 2**-14 0.03 %, 2**-16 with
fewer weight bits 0.04 %), keeping 36x headroom over the activations seen. The integer weights are derived from the
float ones by exact operations at load time (``frexp``, power-of-two scaling, rounding),
so the same checkpoint yields the same integer network on every machine.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

ACT_FRAC = 14  # activation grid 2**-14
ACT_BITS = 24  # |activation integer| <= 2**24, i.e. |activation| <= 1024 (h_s of the photo codecs peaks near 30)
SUM_BITS = 52  # every partial sum stays below 2**52 < 2**53 (float64's exact integers)


class NotPortable(ValueError):
    """``h_s`` holds a layer the exact path cannot compute (the caller falls back to the
    float path, which is CompressAI's and not portable)."""


class _ExactConv(nn.Module):
    """One convolution (or transposed convolution) with integer weights and bias."""

    def __init__(self, conv: nn.Conv2d | nn.ConvTranspose2d):
        super().__init__()
        if conv.groups != 1 or conv.padding_mode != "zeros":
            raise NotPortable(f"{type(conv).__name__} with groups/padding mode other than 1/zeros")
        self.transposed = isinstance(conv, nn.ConvTranspose2d)
        w = conv.weight.detach().to("cpu", torch.float64)
        out_dim = 1 if self.transposed else 0
        fan_in = (w.shape[0] if self.transposed else w.shape[1]) * w.shape[2] * w.shape[3]
        weight_bits = SUM_BITS - ACT_BITS - math.ceil(math.log2(fan_in)) - 1
        peak = w.abs().amax(dim=[d for d in range(4) if d != out_dim]).tolist()
        # per output channel, w * 2**shift has at most weight_bits bits (frexp: exact)
        shift = [weight_bits - math.frexp(p)[1] if p > 0 else 0 for p in peak]
        view = (1, -1, 1, 1) if self.transposed else (-1, 1, 1, 1)
        self.register_buffer("weight", torch.round(w * _powers_of_two(shift).reshape(view)))
        bias = conv.bias.detach().to("cpu", torch.float64) if conv.bias is not None else torch.zeros(len(peak))
        out_scale = _powers_of_two([s + ACT_FRAC for s in shift])  # accumulator units per output value
        self.register_buffer("bias", torch.round(bias.double() * out_scale))
        if self.bias.abs().max() >= 2.0 ** (SUM_BITS - 1):
            raise NotPortable("a bias too large for exact integer accumulation")
        self.register_buffer("unscale", _powers_of_two([-(s + ACT_FRAC) for s in shift]).reshape(1, -1, 1, 1))
        self.stride, self.padding, self.dilation = conv.stride, conv.padding, conv.dilation
        self.output_padding = getattr(conv, "output_padding", (0, 0))

    def forward(self, x_int: Tensor) -> Tensor:
        """Integer activations (float64) -> the layer's exact output value (float64)."""
        if self.transposed:
            acc = torch.conv_transpose2d(x_int, self.weight, self.bias, self.stride, self.padding,
                                         self.output_padding, 1, self.dilation)
        else:
            acc = torch.conv2d(x_int, self.weight, self.bias, self.stride, self.padding, self.dilation)
        return acc * self.unscale  # a power of two per channel: exact


class ExactHyperSynthesis(nn.Module):
    """``h_s`` (a ``Sequential`` of convolutions, transposed convolutions, ReLU and
    LeakyReLU: every CompressAI hyperprior model's) computed exactly; see module docstring.
    Returns float64 values that are bit-identical on every machine."""

    def __init__(self, h_s: nn.Module):
        super().__init__()
        if not isinstance(h_s, nn.Sequential):
            raise NotPortable(f"h_s is a {type(h_s).__name__}, not a Sequential")
        steps: list[nn.Module] = []
        for layer in h_s:
            if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
                steps.append(_ExactConv(layer))
            elif isinstance(layer, (nn.ReLU, nn.LeakyReLU)):
                steps.append(_Activation(float(getattr(layer, "negative_slope", 0.0))))
            else:
                raise NotPortable(f"h_s holds a {type(layer).__name__}")
        if not steps or not isinstance(steps[0], _ExactConv):
            raise NotPortable("h_s does not start with a convolution")
        self.steps = nn.ModuleList(steps)

    @torch.no_grad()
    def forward(self, z_hat: Tensor) -> Tensor:
        value = z_hat.detach().to("cpu", torch.float64)
        for step in self.steps:
            if isinstance(step, _ExactConv):
                value = step(to_grid(value))
            else:
                value = step(value)
        return value


class _Activation(nn.Module):
    """ReLU (slope 0) or LeakyReLU, written out so that it is one correctly rounded
    multiplication per negative element on every machine."""

    def __init__(self, slope: float):
        super().__init__()
        self.slope = slope

    def forward(self, x: Tensor) -> Tensor:
        return torch.where(x >= 0, x, x * self.slope)


def _powers_of_two(exponents: list[int]) -> Tensor:
    """Exact powers of two (Python's ``2.0 ** k`` for integer k; no vectorised ``exp2``)."""
    return torch.tensor([2.0 ** int(e) for e in exponents], dtype=torch.float64)


def to_grid(value: Tensor) -> Tensor:
    """float64 values -> integers on the activation grid, clamped so sums stay exact."""
    limit = 2.0**ACT_BITS
    return torch.round(value * 2.0**ACT_FRAC).clamp_(-limit, limit)
