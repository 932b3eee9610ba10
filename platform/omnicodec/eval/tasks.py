"""Scoring a frozen task network on (possibly decoded) images, one image at a time."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from omnicodec.data.samples import Sample
from omnicodec.tasks.metrics import MeanAP, MeanIoU, TopK
from omnicodec.tasks.networks import TaskNet
from omnicodec.tasks.registry import TaskInfo, get_task, load_task_net

PRIMARY = {"top1": "top1", "miou": "miou", "map": "map", "agreement": "agreement"}


class TaskScorer:
    """Accumulates task ``name``'s metric over images; ``reference`` predictions (the same
    network on the original image) give label-free agreement scores."""

    def __init__(self, name: str, net: TaskNet | None = None, num_classes: int | None = None):
        self.info: TaskInfo = get_task(name)
        self.net = net if net is not None else load_task_net(name)
        if self.info.kind == "seg":
            self.metric: Any = MeanIoU((num_classes or self._classes()) + 1)
        elif self.info.kind == "det":
            self.metric = MeanAP(num_classes or self._classes())
        else:
            self.metric = TopK()

    def _classes(self) -> int:
        from omnicodec import zoo

        return int(zoo.card(self.info.bundled)["num_classes"])

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> Any:
        return self.net.predict(x)

    @torch.no_grad()
    def update(self, x: torch.Tensor, sample: Sample, reference: Any = None) -> None:
        pred = self.net.predict(x)
        if self.info.kind == "seg":
            self.metric.update(pred[0], sample.seg, None if reference is None else reference[0])
        elif self.info.kind == "det":
            self.metric.update(pred, [sample.boxes], [sample.labels], tuple(x.shape[-2:]))
        else:
            label = torch.tensor([sample.cls]) if sample.cls is not None and self.info.metric == "top1" else None
            self.metric.update(pred, label, reference)

    def result(self) -> dict[str, float]:
        return self.metric.result()

    def bootstrap(self, key: str, idx: np.ndarray) -> np.ndarray:
        """The metric ``key`` recomputed on each resample of the images seen (rows of ``idx``)."""
        return self.metric.bootstrap(key, idx)

    @property
    def primary(self) -> str:
        return PRIMARY[self.info.metric]


def score_clean(name: str, samples: list[Sample], net: TaskNet | None = None,
                num_classes: int | None = None) -> dict[str, float]:
    scorer = TaskScorer(name, net, num_classes)
    for s in samples:
        scorer.update(s.image[None], s)
    return scorer.result()
