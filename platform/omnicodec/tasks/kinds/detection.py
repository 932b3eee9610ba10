"""Object detection: COCO mAP@[.5:.95] against label boxes, or against the network's own
confident detections on the original image (label-free)."""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import torch
from torch import Tensor

from omnicodec.errors import ConfigError
from omnicodec.tasks.kinds.base import KINDS, PALETTE, PretrainDefaults, TaskKind, TaskMetric, class_name
from omnicodec.tasks.metrics import MeanAP

PSEUDO_LABEL_SCORE = 0.5
DRAW_SCORE = 0.3  # picture sheets draw detections at least this confident  # label-free mAP: clean detections at least this confident are the ground truth


class _MAP(TaskMetric):
    def __init__(self, num_classes: int, labelled: bool):
        self.labelled, self.m = labelled, MeanAP(num_classes)

    def update(self, pred: list[dict[str, Tensor]], sample: Any, reference: Any = None) -> None:
        size = tuple(sample.image.shape[-2:])
        if self.labelled:
            self.m.update(pred, [sample.boxes], [sample.labels], size)
        elif reference is not None:
            keep = reference[0]["scores"] >= PSEUDO_LABEL_SCORE
            self.m.update(pred, [reference[0]["boxes"][keep]], [reference[0]["labels"][keep]], size)

    def result(self) -> dict[str, float]:
        return self.m.result()

    def bootstrap(self, key: str, idx: np.ndarray) -> np.ndarray:
        return self.m.bootstrap(key, idx)


@KINDS.register("det")
class Detection(TaskKind):
    metric = "map"
    label_free_metric = "map"  # against the clean detections
    needs = ("json",)
    class_ids = True
    bootstrap_cost = 5  # pycocotools re-accumulates per resample
    description = "object detection (COCO mAP; label-free: mAP against the clean image's confident detections)"
    metric_labels = {"map": "mAP@[.5:.95]"}
    # full 192 px scenes (crop None): the bundled FCOS is sized for them
    pretrain_defaults = PretrainDefaults(batch_size=8, crop=None, steps=2500)

    def build(self, num_classes: int, **kwargs: Any):
        from omnicodec.tasks.networks import SceneDetector

        return SceneDetector(num_classes, **kwargs)

    # A detector's raw output is its detections (torchvision's convention, which networks
    # users bring follow too): ``predict_output`` keeps them as they are.

    def label_loss(self, net: Any, x: Tensor, batch: dict[str, Any]) -> Tensor:
        """The detector's own training losses, summed: torchvision's detection convention,
        where a detector given ``targets`` ({boxes, labels} per image) returns its losses by
        name. A network whose ``forward`` takes no targets has no label loss here."""
        if "targets" not in inspect.signature(net.forward).parameters:
            return super().label_loss(net, x, batch)  # no loss from detections alone: one ConfigError line
        targets = [{"boxes": b.to(x.device), "labels": lab.to(x.device)} for b, lab in zip(batch["boxes"], batch["labels"])]
        return sum(net(x, targets).values())

    def make_metric(self, num_classes: int | None, labelled: bool) -> TaskMetric:
        if num_classes is None:
            raise ConfigError("a detection task needs num_classes")
        return _MAP(num_classes, labelled)

    def response(self, pred: list[dict[str, Tensor]], classes: list[str] | None, options: dict[str, Any]) -> dict[str, Any]:
        d = pred[0]
        labels = [int(v) for v in d["labels"]]
        return {"boxes": [[round(float(v), 2) for v in b] for b in d["boxes"]], "labels": labels,
                "classes": [class_name(classes, v) for v in labels],
                "scores": [round(float(v), 4) for v in torch.as_tensor(d["scores"])]}

    def draw(self, image, pred: list[dict[str, Tensor]], classes: list[str] | None):
        from PIL import ImageDraw

        out = image.copy()
        d = ImageDraw.Draw(out)
        keep = torch.as_tensor(pred[0]["scores"]) >= DRAW_SCORE
        for b, lab, s in zip(pred[0]["boxes"][keep].tolist(), pred[0]["labels"][keep].tolist(),
                             torch.as_tensor(pred[0]["scores"])[keep].tolist()):
            color = tuple(int(c) for c in PALETTE[(lab + 1) % len(PALETTE)])
            d.rectangle(b, outline=color, width=2)
            d.text((b[0] + 2, b[1] + 1), f"{class_name(classes, lab) or lab} {s:.2f}", fill=color)
        return out

    response_schema = {"type": "object", "required": ["boxes", "labels", "scores"], "properties": {
        "boxes": {"type": "array", "items": {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4},
                  "description": "x0, y0, x1, y1 in pixels of the decoded image"},
        "labels": {"type": "array", "items": {"type": "integer"}},
        "classes": {"type": "array", "items": {"type": ["string", "null"]}},
        "scores": {"type": "array", "items": {"type": "number"}}}}
