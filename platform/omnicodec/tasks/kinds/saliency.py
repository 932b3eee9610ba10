"""Salient-object segmentation (PASCAL-Context's "saliency" task): a foreground probability
map, scored by max F-measure (beta^2 = 0.3, the saliency literature's convention) over 255
thresholds, and MAE. The target is ``sal.png`` (> 127) where a sample has one (the
PASCAL-Context converter writes it from ``sal_distill/``); scene shards carry none, so there
it is the union of the object masks (``seg.png`` > 0) and every scene set serves the kind.
Training and evaluation read the one definition (``salient_map``), for every network."""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import Tensor

from omnicodec.errors import DataError
from omnicodec.tasks.kinds.base import KINDS, ProbabilityMapKind, TaskMetric
from omnicodec.tasks.kinds.segmentation import MASK_SCHEMA

BETA2 = 0.3
THRESHOLDS = np.linspace(0, 1, 257)[1:-1]  # 255 cuts strictly inside (0, 1)


def f_curve(prob: np.ndarray, target: np.ndarray) -> np.ndarray:
    """F_beta at every threshold for one image (prob in [0, 1], target boolean)."""
    hist_fg = np.histogram(prob[target], bins=np.r_[0, THRESHOLDS, 1.0 + 1e-6])[0]
    hist_all = np.histogram(prob, bins=np.r_[0, THRESHOLDS, 1.0 + 1e-6])[0]
    tp = np.cumsum(hist_fg[::-1])[::-1][1:]  # pixels >= each threshold
    predicted = np.cumsum(hist_all[::-1])[::-1][1:]
    precision = tp / np.maximum(predicted, 1)
    recall = tp / max(int(target.sum()), 1)
    f = (1 + BETA2) * precision * recall / np.maximum(BETA2 * precision + recall, 1e-12)
    f[(predicted == 0) & (target.sum() == 0)] = 1.0  # nothing salient, nothing predicted: a match
    return f


def salient(sample: Any) -> Tensor | None:
    """The sample's saliency target: ``sal.png`` > 127, else the union of its object masks."""
    return salient_map(sample.maps.get("sal"), sample.seg)


def salient_map(sal: Tensor | None, seg: Tensor | None) -> Tensor | None:
    """The ONE definition of the target (H x W, or batched): training (``Saliency.target``,
    the loss of every saliency network) and evaluation (``salient``) both read it."""
    if sal is not None:
        return sal > 127
    return seg > 0 if seg is not None else None


class _MaxF(TaskMetric):
    def __init__(self, labelled: bool):
        self.labelled = labelled
        self.curves: list[np.ndarray] = []
        self.mae: list[float] = []

    def update(self, pred: Tensor, sample: Any, reference: Any = None) -> None:
        prob = pred[0].float().cpu().numpy()
        if self.labelled:
            target = salient(sample)
            target = target.cpu().numpy() if target is not None else np.zeros_like(prob, bool)
        else:
            target = reference[0].float().cpu().numpy() >= 0.5
        self.curves.append(f_curve(prob, target))
        self.mae.append(float(np.abs(prob - target).mean()))

    def result(self) -> dict[str, float]:
        if not self.curves:
            return {"maxf": 0.0, "mae": 0.0}
        return {"maxf": float(np.mean(self.curves, 0).max()), "mae": float(np.mean(self.mae))}

    def bootstrap(self, key: str, idx: np.ndarray) -> np.ndarray:
        if key == "mae":
            return np.asarray(self.mae)[idx].mean(1)
        curves = np.stack(self.curves)
        return np.array([curves[row].mean(0).max() for row in idx])


@KINDS.register("sal")
class Saliency(ProbabilityMapKind):
    metric = "maxf"
    label_free_metric = "maxf"  # against the clean map thresholded at 0.5
    needs = ("seg.png",)
    description = "salient-object segmentation (max F-measure, beta^2=0.3; target: sal.png, else the union of the object masks)"
    metric_labels = {"maxf": "max F"}
    maps = ("sal",)

    def build(self, num_classes: int = 0, **kwargs: Any):
        from omnicodec.tasks.networks import SaliencyNet

        return SaliencyNet(**kwargs)

    def has_labels(self, sample: Any) -> bool:
        return salient(sample) is not None

    def target(self, batch: dict[str, Any]) -> Tensor:
        target = salient_map((batch.get("maps") or {}).get("sal"), batch.get("seg"))
        if target is None:
            raise DataError("a sal task with labels needs sal.png or seg.png in every sample of the batch")
        return target

    def make_metric(self, num_classes: int | None, labelled: bool) -> TaskMetric:
        return _MaxF(labelled)

    response_schema = MASK_SCHEMA
