"""Semantic segmentation: mIoU against label masks, or pixel agreement with the clean mask."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from omnicodec.errors import ConfigError
from omnicodec.tasks.kinds.base import KINDS, PALETTE, PretrainDefaults, TaskKind, TaskMetric, overlay
from omnicodec.tasks.metrics import MeanIoU
from omnicodec.tasks.rle import rle_encode


class _MIoU(TaskMetric):
    def __init__(self, num_classes: int, labelled: bool, kind: Segmentation):
        self.labelled, self.m, self.kind = labelled, MeanIoU(num_classes), kind

    def update(self, pred: Tensor, sample: Any, reference: Any = None) -> None:
        self.m.update(pred[0], self.kind.label_mask(sample) if self.labelled else None,
                      None if reference is None else reference[0])

    def result(self) -> dict[str, float]:
        return self.m.result()

    def bootstrap(self, key: str, idx: np.ndarray) -> np.ndarray:
        return self.m.bootstrap(key, idx)


def mask_response(mask: np.ndarray, classes: list[str] | None, options: dict[str, Any]) -> dict[str, Any]:
    """An H x W uint8 mask as PNG (base64) or run-length counts (``seg_format=rle``)."""
    body: dict[str, Any] = {"height": int(mask.shape[0]), "width": int(mask.shape[1]), "classes": classes}
    if options.get("seg_format") == "rle":
        body.update(format="rle", counts=rle_encode(mask))
    else:
        buf = io.BytesIO()
        Image.fromarray(mask).save(buf, format="PNG")
        body.update(format="png", png_base64=base64.b64encode(buf.getvalue()).decode())
    return body


MASK_SCHEMA = {"type": "object", "required": ["height", "width", "format"], "properties": {
    "height": {"type": "integer"}, "width": {"type": "integer"},
    "classes": {"type": ["array", "null"], "items": {"type": "string"}},
    "format": {"enum": ["png", "rle"]}, "png_base64": {"type": "string"},
    "counts": {"type": "array", "items": {"type": "integer"}, "description": "[value, run, value, run, ...] row-major"}}}


@KINDS.register("seg")
class Segmentation(TaskKind):
    metric = "miou"
    needs = ("seg.png",)
    class_ids = True
    description = "semantic segmentation (mIoU, background included; label-free: pixel agreement)"
    metric_labels = {"miou": "mIoU", "agreement": "pixel agreement"}
    pretrain_defaults = PretrainDefaults(batch_size=16, crop=160, steps=2000)

    def build(self, num_classes: int, **kwargs: Any):
        from omnicodec.tasks.networks import SceneSegmenter

        return SceneSegmenter(num_classes, **kwargs)

    def predict_output(self, output: Tensor) -> Tensor:
        return output.argmax(1)

    def label_mask(self, sample: Any) -> Tensor | None:
        """The sample's label mask for this kind (``seg.png`` here; subclasses read a map)."""
        return sample.seg

    def label_batch(self, batch: dict[str, Any]) -> Tensor:
        return batch["seg"]

    def output_loss(self, output: Tensor, batch: dict[str, Any]) -> Tensor:
        return F.cross_entropy(output, self.label_batch(batch).long().to(output.device))

    def make_metric(self, num_classes: int | None, labelled: bool) -> TaskMetric:
        if num_classes is None:
            raise ConfigError(f"a {self.name} task needs num_classes (background excluded)")
        return _MIoU(num_classes + 1, labelled, self)

    def draw(self, image, pred: Tensor, classes: list[str] | None):
        mask = pred[0].cpu().numpy()
        return overlay(image, PALETTE[mask % len(PALETTE)], np.where(mask > 0, 0.55, 0.0).astype(np.float32))

    def response(self, pred: Tensor, classes: list[str] | None, options: dict[str, Any]) -> dict[str, Any]:
        return mask_response(pred[0].cpu().numpy().astype(np.uint8), ["background", *(classes or [])], options)

    response_schema = MASK_SCHEMA
