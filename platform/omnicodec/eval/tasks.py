"""Scoring a frozen task network on (possibly decoded) images, one image at a time.

Everything kind-specific (which metric, labels or label-free, how a prediction is scored)
comes from the task's kind (``omnicodec.tasks.kinds``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from omnicodec.data.samples import Sample
from omnicodec.tasks.networks import TaskNet
from omnicodec.tasks.registry import TaskInfo, get_task, load_task_net


class TaskScorer:
    """Accumulates task ``name``'s metric over images; ``reference`` predictions (the same
    network on the original image) give label-free scores."""

    def __init__(self, name: str, net: TaskNet | None = None, num_classes: int | None = None):
        self.info: TaskInfo = get_task(name)
        self.kind = self.info.task_kind
        self._net = net
        self.metric = self.kind.make_metric(num_classes or self.info.resolved_classes()[0], self.info.labelled)

    @property
    def net(self) -> TaskNet:
        """Loaded on first use: scoring predictions made elsewhere needs no network."""
        if self._net is None:
            self._net = load_task_net(self.info.name)
        return self._net

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> Any:
        return self.net.predict(x)

    @torch.no_grad()
    def update(self, x: torch.Tensor, sample: Sample, reference: Any = None, pred: Any = None) -> None:
        self.metric.update(self.net.predict(x) if pred is None else pred, sample, reference)

    def result(self) -> dict[str, float]:
        return self.metric.result()

    def bootstrap(self, key: str, idx: np.ndarray) -> np.ndarray:
        """The metric ``key`` recomputed on each resample of the images seen (rows of ``idx``)."""
        return self.metric.bootstrap(key, idx)

    @property
    def primary(self) -> str:
        return self.info.metric


def score_clean(name: str, samples: list[Sample], net: TaskNet | None = None,
                num_classes: int | None = None) -> dict[str, float]:
    scorer = TaskScorer(name, net, num_classes)
    for s in samples:
        scorer.update(s.image[None], s)
    return scorer.result()
