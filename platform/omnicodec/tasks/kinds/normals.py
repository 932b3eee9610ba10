"""Surface normals (PASCAL-Context's "normals" task): a unit 3-vector per pixel, scored by
mean angular error in degrees: LOWER is better, so BD-rate and Delta_m flip their sign for
it. Scene shards carry no normals: the kind is scored label-free, against the network's own
normals on the original image. Labelled data carries ``normals.png`` (RGB, (n + 1) / 2 * 255;
the PASCAL-Context converter writes it from ``normals_distill/``), decoded by ``from_png``."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from omnicodec.tasks.kinds.base import KINDS, TaskKind, TaskMetric, overlay


def angular_error(pred: Tensor, target: Tensor) -> Tensor:
    """Per-pixel angle in degrees between unit normal maps (3 x H x W)."""
    # atan2(|a x b|, a . b): acos of a float32 dot product is off by ~0.03 deg near 0 deg
    sin = torch.linalg.cross(pred, target, dim=0).norm(dim=0)
    return torch.rad2deg(torch.atan2(sin, (pred * target).sum(0)))


def from_png(rgb: Tensor) -> Tensor:
    """3 x H x W uint8 (n + 1) / 2 * 255 -> unit normals."""
    return F.normalize(rgb.float() / 127.5 - 1, dim=-3)


class _MeanAngle(TaskMetric):
    def __init__(self, labelled: bool):
        self.labelled, self.errors = labelled, []

    def update(self, pred: Tensor, sample: Any, reference: Any = None) -> None:
        if self.labelled:
            target = from_png(sample.maps["normals"]) if "normals" in sample.maps else None
        else:
            target = None if reference is None else reference[0]
        if target is None:
            return
        self.errors.append(float(angular_error(pred[0].float(), target.float()).mean()))

    def result(self) -> dict[str, float]:
        return {"mean_angle": float(np.mean(self.errors)) if self.errors else 0.0}

    def bootstrap(self, key: str, idx: np.ndarray) -> np.ndarray:
        return np.asarray(self.errors)[idx].mean(1) if self.errors else np.full(len(idx), np.nan)


@KINDS.register("normals")
class SurfaceNormals(TaskKind):
    metric = "mean_angle"
    label_free_metric = "mean_angle"
    higher_is_better = False
    description = "surface normals (mean angular error in degrees, lower is better)"
    metric_labels = {"mean_angle": "mean angle (deg, lower is better)"}
    maps = ("normals",)

    def flip_map(self, name: str, m: Tensor) -> Tensor:
        """Mirrored surfaces face the other way: n_x -> -n_x, stored as (n + 1) / 2 * 255."""
        m = m.flip(-1)
        m[0] = 255 - m[0]
        return m

    def has_labels(self, sample: Any) -> bool:
        return "normals" in sample.maps

    def predict_output(self, output: Tensor) -> Tensor:
        return F.normalize(output[:, :3].float(), dim=1)

    def output_loss(self, output: Tensor, batch: dict[str, Any]) -> Tensor:
        maps = batch.get("maps") or {}
        if "normals" not in maps:
            return super().output_loss(output, batch)
        target = from_png(maps["normals"]).to(output.device)
        return (1 - (F.normalize(output[:, :3], dim=1) * target).sum(1)).mean()

    def make_metric(self, num_classes: int | None, labelled: bool) -> TaskMetric:
        return _MeanAngle(labelled)

    def draw(self, image, pred: Tensor, classes: list[str] | None):
        """The usual normals picture, (n + 1) / 2 as RGB, in place of the image."""
        rgb = ((pred[0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
        return overlay(image, rgb, 1.0)

    def response(self, pred: Tensor, classes: list[str] | None, options: dict[str, Any]) -> dict[str, Any]:
        """Normals as an RGB PNG, (n + 1) / 2 * 255 per channel (the usual visualisation)."""
        rgb = ((pred[0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format="PNG")
        return {"height": int(rgb.shape[0]), "width": int(rgb.shape[1]), "format": "png",
                "encoding": "(n + 1) / 2 * 255 per channel", "png_base64": base64.b64encode(buf.getvalue()).decode()}

    response_schema = {"type": "object", "required": ["height", "width", "format", "png_base64"], "properties": {
        "height": {"type": "integer"}, "width": {"type": "integer"}, "format": {"const": "png"},
        "encoding": {"type": "string"}, "png_base64": {"type": "string"}}}
