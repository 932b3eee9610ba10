"""Image classification: top-1 against labels, or top-1 agreement with the clean prediction."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from omnicodec.tasks.kinds.base import KINDS, PretrainDefaults, TaskKind, TaskMetric, caption, class_name
from omnicodec.tasks.metrics import TopK


class _Top1(TaskMetric):
    def __init__(self, labelled: bool):
        self.labelled, self.m = labelled, TopK()

    def update(self, pred: Tensor, sample: Any, reference: Any = None) -> None:
        label = torch.tensor([sample.cls]) if self.labelled and sample.cls is not None else None
        self.m.update(pred, label, reference)

    def result(self) -> dict[str, float]:
        return self.m.result()

    def bootstrap(self, key: str, idx: np.ndarray) -> np.ndarray:
        return self.m.bootstrap(key, idx)


@KINDS.register("cls")
class Classification(TaskKind):
    metric = "top1"
    needs = ("cls",)
    class_ids = True
    description = "image classification (top-1; label-free: top-1 agreement)"
    metric_labels = {"top1": "top-1", "agreement": "agreement"}
    pretrain_defaults = PretrainDefaults(batch_size=32, crop=160, steps=800)  # a linear head: fewer, larger steps

    def build(self, num_classes: int, **kwargs: Any):
        from omnicodec.tasks.networks import SceneClassifier

        return SceneClassifier(num_classes, **kwargs)

    def predict_output(self, output: Tensor) -> Tensor:
        return output.softmax(-1)

    def output_loss(self, output: Tensor, batch: dict[str, Any]) -> Tensor:
        return F.cross_entropy(output, batch["cls"].to(output.device))

    def make_metric(self, num_classes: int | None, labelled: bool) -> TaskMetric:
        return _Top1(labelled)

    def response(self, pred: Tensor, classes: list[str] | None, options: dict[str, Any]) -> dict[str, Any]:
        probs = pred[0]
        top = torch.topk(probs, min(int(options.get("top_k", 5)), probs.numel()))
        return {"top_k": [{"index": int(i), "class": class_name(classes, int(i)), "score": float(s)}
                          for s, i in zip(top.values, top.indices)]}

    def draw(self, image, pred: Tensor, classes: list[str] | None):
        top = torch.topk(pred[0], min(3, pred[0].numel()))
        return caption(image.copy(), [f"{class_name(classes, int(i)) or int(i)} {float(s):.2f}"
                                      for s, i in zip(top.values, top.indices)])

    response_schema = {"type": "object", "required": ["top_k"], "properties": {"top_k": {
        "type": "array", "items": {"type": "object", "properties": {
            "index": {"type": "integer"}, "class": {"type": ["string", "null"]}, "score": {"type": "number"}}}}}}
