"""The training objective of the method, readable and testable without Ray:

    L = R + lambda * sum_t w_t * L_t  [+ mu * 255^2 * MSE(x_hat_human, x)]

- ``R``: bits per pixel of the ONE bitstream, -log2 p(y_hat) - log2 p(z_hat) under the
  FROZEN hyperprior (``OmniCodec.forward`` computes it), so the S-Adaptor learns to stay
  compressible;
- ``L_t``: per task, the frozen network's own label loss on task t's reconstruction
  (cross-entropy, FCOS, ...), label-free feature distillation against the same network
  on the original image (``distill_loss``), or both (``mixed``);
- the optional human term (``human_weight`` = mu > 0) keeps the frozen decoder's view of
  the same bitstream close to the original, for deployments where people also watch.

The codec's own rate-distortion loss (``RateDistortionLoss``: L = R + lambda * 255^2 * MSE,
or R + lambda * L_task for a codec fine-tuned to one task) lives here too. Every loss returns
its parts (tensors, ``"loss"`` among them; ``floats`` makes them loggable), and the rate of
every one of them, and of ``OmniCodec.forward``, is ``bpp_from_likelihoods``.

Ray jobs only orchestrate these objects: build one, call it on a batch, step the optimizer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor

from omnicodec.tasks.networks import TaskNet, distill_loss

if TYPE_CHECKING:
    from omnicodec.model import OmniCodec


def bpp_from_likelihoods(likelihoods: Mapping[str, Tensor], num_pixels: int, per_image: bool = False) -> Tensor:
    """Bits per pixel of the bitstreams whose symbols have these likelihoods (y's and z's):
    ``-sum log2 p / num_pixels`` over the batch (``num_pixels``: the batch's), or with
    ``per_image`` one value per image (``num_pixels``: one image's)."""
    if per_image:
        bits = sum(torch.log2(lk).flatten(1).sum(1) for lk in likelihoods.values())
    else:
        bits = sum(torch.log2(lk).sum() for lk in likelihoods.values())
    return -bits / num_pixels


def mse(x_hat: Tensor, x: Tensor) -> Tensor:
    return torch.mean((x_hat - x) ** 2)


def psnr_from_mse(mse: Tensor) -> Tensor:
    """PSNR in dB of images in [0, 1] (the MSE floored at 1e-10: at most 100 dB)."""
    return -10 * torch.log10(mse.clamp_min(1e-10))


def floats(parts: Mapping[str, Tensor | float]) -> dict[str, float]:
    """A loss's parts as plain floats, for logging."""
    return {k: float(v.detach()) if isinstance(v, Tensor) else float(v) for k, v in parts.items()}


@dataclass
class TaskTerm:
    """One task's term: its frozen network, weight w_t and loss kind: the network's ``label``
    loss, label-free ``distill``ation, or ``mixed`` (label loss + ``distill_weight`` x
    distillation: the labels say what to find, the teacher how the clean image looked, so
    the term cannot overfit the training labels alone)."""

    name: str
    net: TaskNet
    weight: float = 1.0
    loss: Literal["label", "distill", "mixed"] = "label"
    distill_weight: float = 1.0

    def __call__(self, x_hat: Tensor, x: Tensor, batch: dict[str, Any]) -> Tensor:
        if self.loss == "label":
            return self.net.label_loss(x_hat, batch)
        with torch.no_grad():
            target = self.net.features(x)
        distilled = distill_loss(self.net.features(x_hat), target)
        if self.loss == "distill":
            return distilled
        return self.net.label_loss(x_hat, batch) + self.distill_weight * distilled


@dataclass
class MultiTaskObjective:
    """``L = R + lambda * sum_t w_t L_t [+ mu * 255^2 * MSE_human]`` over one batch."""

    terms: list[TaskTerm]
    lmbda: float = 1.0
    human_weight: float = 0.0

    @property
    def tasks(self) -> list[str]:
        return [t.name for t in self.terms]

    def __call__(self, model: OmniCodec | torch.nn.Module, x: Tensor, batch: dict[str, Any] | None = None,
                 position: float | None = None, lmbda_scale: float = 1.0) -> dict[str, Tensor]:
        """The loss for images ``x`` (and their labels in ``batch``) and its parts: ``bpp``,
        ``L_<task>`` per task, ``human_psnr`` with the human term, and ``loss``. A variable-rate
        codec codes at ``position``, where the task terms weigh ``lmbda * lmbda_scale`` (one
        rate-conditioned set is trained over the whole curve: see ``rate_scale``)."""
        from omnicodec.model import HUMAN

        batch = batch or {}
        out = model(x, self.tasks, human=self.human_weight > 0, position=position)
        losses = {t.name: t(out["x_hat"][t.name], x, batch) for t in self.terms}
        loss = out["bpp"] + self.lmbda * lmbda_scale * sum(t.weight * losses[t.name] for t in self.terms)
        parts = {"bpp": out["bpp"], **{f"L_{k}": v for k, v in losses.items()}}
        if self.human_weight > 0:
            human_mse = mse(out["x_hat"][HUMAN], x)
            loss = loss + self.human_weight * 255**2 * human_mse
            parts["human_psnr"] = psnr_from_mse(human_mse.detach())
        parts["loss"] = loss
        return parts


@dataclass
class RateDistortionLoss:
    """A whole codec's training loss (CompressAI's ``RateDistortionLoss``), on the output of
    a CompressAI model's ``forward`` (``x_hat``, ``likelihoods``):

        L = bpp + lmbda * 255^2 * MSE(x_hat, x)                    (a codec for people)
        L = bpp + lmbda * L_task(clamp(x_hat, 0, 1), x, batch)     (``task``: full fine-tuning)
        L = mean_b(bpp_b + lambda_b * 255^2 * MSE_b)               (``lambdas``: one per image)

    ``lambdas`` (a variable-rate codec trains each image at its own level) replaces ``lmbda``.
    Returns its parts: ``loss``, ``bpp``, ``mse`` and ``psnr`` (of the unclamped ``x_hat``; bpp
    and MSE averaged over the batch), and with ``task`` the task's term as ``L_<task>``."""

    lmbda: float
    task: TaskTerm | None = None

    def __call__(self, out: Mapping[str, Any], x: Tensor, batch: dict[str, Any] | None = None,
                 lambdas: Tensor | None = None) -> dict[str, Tensor]:
        if lambdas is not None:
            return self._per_image(out, x, lambdas)
        bpp = bpp_from_likelihoods(out["likelihoods"], x.shape[0] * x.shape[-2] * x.shape[-1])
        distortion_mse = mse(out["x_hat"], x)
        parts: dict[str, Tensor] = {}
        if self.task is None:
            distortion = 255**2 * distortion_mse
        else:
            distortion = self.task(out["x_hat"].clamp(0, 1), x, batch or {})
            parts[f"L_{self.task.name}"] = distortion
        return {"loss": bpp + self.lmbda * distortion, "bpp": bpp, "mse": distortion_mse,
                "psnr": psnr_from_mse(distortion_mse.detach()), **parts}

    def _per_image(self, out: Mapping[str, Any], x: Tensor, lambdas: Tensor) -> dict[str, Tensor]:
        if self.task is not None:
            raise ValueError("per-image lambdas weigh 255^2 * MSE; a task's term takes one lmbda")
        bpp = bpp_from_likelihoods(out["likelihoods"], x.shape[-2] * x.shape[-1], per_image=True)
        image_mse = ((out["x_hat"] - x) ** 2).flatten(1).mean(1)
        loss = (bpp + lambdas.to(image_mse.dtype) * 255**2 * image_mse).mean()
        batch_mse = image_mse.mean()
        return {"loss": loss, "bpp": bpp.mean(), "mse": batch_mse, "psnr": psnr_from_mse(batch_mse.detach())}


def rate_scale(codec_model: torch.nn.Module, position: float) -> float:
    """How much a rate-conditioned adaptor set weighs its task terms at ``position``: as the
    variable-rate codec weighs distortion there, relative to its own default position
    (``lambda(p) / lambda(p0)``), so one set trained over every position traces the same
    trade-off the codec's ladder does, and ``lmbda`` keeps its meaning at ``p0``."""
    return float(codec_model.lambda_at(position) / codec_model.lambda_at(codec_model.position))
