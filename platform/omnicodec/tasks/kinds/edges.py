"""Boundary detection (PASCAL-Context's "edge" task): an edge probability map scored by
ODS F-measure (one threshold for the whole set) with a 1-pixel match tolerance, a documented
proxy for the BSDS benchmark's bipartite matching (which allows ~0.75 % of the diagonal).
The target is ``edge.png`` (> 127) where a sample has one; otherwise (scene shards, and
PASCAL-Context, whose edges are defined this way) the boundary of the label mask
(``seg.png``: pixels whose right or lower neighbour has another label)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from omnicodec.errors import DataError
from omnicodec.tasks.kinds.base import KINDS, ProbabilityMapKind, TaskMetric
from omnicodec.tasks.kinds.segmentation import MASK_SCHEMA

THRESHOLDS = np.linspace(0.05, 0.95, 19)


def boundaries(seg: Tensor) -> Tensor:
    """H x W label mask -> boolean boundary map."""
    edge = torch.zeros_like(seg, dtype=torch.bool)
    edge[:, :-1] |= seg[:, 1:] != seg[:, :-1]
    edge[:-1, :] |= seg[1:, :] != seg[:-1, :]
    return edge


def edge_target(sample: Any) -> Tensor | None:
    """The sample's edge target: ``edge.png`` > 127, else the boundaries of its label mask."""
    return edge_map(sample.maps.get("edge"), sample.seg)


def edge_map(edge: Tensor | None, seg: Tensor | None) -> Tensor | None:
    """The ONE definition of the target (H x W, or batched): training (``Edges.target``) and
    evaluation (``edge_target``) both read it."""
    if edge is not None:
        return edge > 127
    if seg is None:
        return None
    return boundaries(seg) if seg.dim() == 2 else torch.stack([boundaries(s) for s in seg])


def _dilate(mask: Tensor) -> Tensor:
    return F.max_pool2d(mask[None, None].float(), 3, stride=1, padding=1)[0, 0] > 0


def match_counts(prob: Tensor, target: Tensor) -> np.ndarray:
    """Per threshold: (matched predicted, predicted, matched target, target) pixel counts."""
    near_target = _dilate(target)
    out = np.zeros((len(THRESHOLDS), 4))
    for i, th in enumerate(THRESHOLDS):
        pred = prob >= th
        out[i] = [(pred & near_target).sum(), pred.sum(), (_dilate(pred) & target).sum(), target.sum()]
    return out


def ods_f(counts: np.ndarray) -> float:
    """counts: summed over images (thresholds x 4) -> best F over thresholds. No edge
    predicted where none exists counts as a perfect match (F = 1), not as 0/0."""
    precision = counts[:, 0] / np.maximum(counts[:, 1], 1)
    recall = counts[:, 2] / np.maximum(counts[:, 3], 1)
    f = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    f[(counts[:, 1] == 0) & (counts[:, 3] == 0)] = 1.0
    return float(f.max())


class _ODS(TaskMetric):
    def __init__(self, labelled: bool):
        self.labelled, self.counts = labelled, []

    def update(self, pred: Tensor, sample: Any, reference: Any = None) -> None:
        prob = pred[0].float().cpu()
        if self.labelled:
            target = edge_target(sample)
            target = target if target is not None else torch.zeros_like(prob, dtype=torch.bool)
        else:
            target = reference[0].float().cpu() >= 0.5
        self.counts.append(match_counts(prob, target))

    def result(self) -> dict[str, float]:
        return {"odsf": ods_f(np.sum(self.counts, 0)) if self.counts else 0.0}

    def bootstrap(self, key: str, idx: np.ndarray) -> np.ndarray:
        counts = np.stack(self.counts)
        return np.array([ods_f(counts[row].sum(0)) for row in idx])


@KINDS.register("edge")
class Edges(ProbabilityMapKind):
    metric = "odsf"
    label_free_metric = "odsf"  # against the clean map thresholded at 0.5
    needs = ("seg.png",)
    description = "boundary detection (ODS F, 1-pixel tolerance; target: label-mask boundaries)"
    metric_labels = {"odsf": "ODS F"}
    maps = ("edge",)

    def has_labels(self, sample: Any) -> bool:
        return edge_target(sample) is not None

    def target(self, batch: dict[str, Any]) -> Tensor:
        target = edge_map((batch.get("maps") or {}).get("edge"), batch.get("seg"))
        if target is None:
            raise DataError("an edge task with labels needs edge.png or seg.png in every sample of the batch")
        return target

    def output_loss(self, output: Tensor, batch: dict[str, Any]) -> Tensor:
        """Class-balanced BCE (HED): edges are a few % of pixels."""
        logits = self.logits(output)
        target = self.target(batch).float().to(logits.device)
        pos = target.mean().clamp(1e-3, 1 - 1e-3)
        weight = torch.where(target > 0, 1 - pos, pos)
        return F.binary_cross_entropy_with_logits(logits, target, weight=weight) / (2 * pos * (1 - pos))

    def make_metric(self, num_classes: int | None, labelled: bool) -> TaskMetric:
        return _ODS(labelled)

    response_schema = MASK_SCHEMA
