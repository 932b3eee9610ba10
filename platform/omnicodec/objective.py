"""The training objective of the method, readable and testable without Ray:

    L = R + lambda * sum_t w_t * L_t  [+ mu * 255^2 * MSE(x_hat_human, x)]

- ``R``: bits per pixel of the ONE bitstream, -log2 p(y_hat) - log2 p(z_hat) under the
  FROZEN hyperprior (``OmniCodec.forward`` computes it), so the S-Adaptor learns to stay
  compressible;
- ``L_t``: per task, the frozen network's own label loss on task t's reconstruction
  (cross-entropy, FCOS, ...) or label-free feature distillation against the same network
  on the original image (``distill_loss``);
- the optional human term (``human_weight`` = mu > 0) keeps the frozen decoder's view of
  the same bitstream close to the original, for deployments where people also watch.

Ray jobs only orchestrate this object: build it, call it on a batch, step the optimizer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor

from omnicodec.model import HUMAN, OmniCodec
from omnicodec.tasks.networks import TaskNet, distill_loss


@dataclass
class TaskTerm:
    """One task's term: its frozen network, weight w_t and loss kind."""

    name: str
    net: TaskNet
    weight: float = 1.0
    loss: Literal["label", "distill"] = "label"

    def __call__(self, x_hat: Tensor, x: Tensor, batch: dict[str, Any]) -> Tensor:
        if self.loss == "label":
            return self.net.label_loss(x_hat, batch)
        with torch.no_grad():
            target = self.net.features(x)
        return distill_loss(self.net.features(x_hat), target)


@dataclass
class MultiTaskObjective:
    """``L = R + lambda * sum_t w_t L_t [+ mu * 255^2 * MSE_human]`` over one batch."""

    terms: list[TaskTerm]
    lmbda: float = 1.0
    human_weight: float = 0.0
    parts: dict[str, float] = field(default_factory=dict, init=False)

    @property
    def tasks(self) -> list[str]:
        return [t.name for t in self.terms]

    def __call__(self, model: OmniCodec | torch.nn.Module, x: Tensor, batch: dict[str, Any] | None = None) -> Tensor:
        """The loss for images ``x`` (and their labels in ``batch``); ``self.parts`` then holds
        each term as a float, for logging."""
        batch = batch or {}
        out = model(x, self.tasks, human=self.human_weight > 0)
        losses = {t.name: t(out["x_hat"][t.name], x, batch) for t in self.terms}
        loss = out["bpp"] + self.lmbda * sum(t.weight * losses[t.name] for t in self.terms)
        self.parts = {"bpp": float(out["bpp"].detach()), **{f"L_{k}": float(v.detach()) for k, v in losses.items()}}
        if self.human_weight > 0:
            mse = torch.mean((out["x_hat"][HUMAN] - x) ** 2)
            loss = loss + self.human_weight * 255**2 * mse
            self.parts["human_psnr"] = float(-10 * torch.log10(mse.detach().clamp_min(1e-10)))
        self.parts["loss"] = float(loss.detach())
        return loss
