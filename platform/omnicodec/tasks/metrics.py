"""Task metrics accumulated over a dataset: top-1, agreement, mIoU, COCO mAP."""

from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np
import torch


class TopK:
    """Top-1 against labels, and agreement with reference predictions (label-free)."""

    def __init__(self) -> None:
        self.correct = self.agree = self.n = self.referenced = 0

    def update(self, probs: torch.Tensor, labels: torch.Tensor | None, reference: torch.Tensor | None = None) -> None:
        pred = probs.argmax(-1)
        self.n += len(pred)
        if labels is not None:
            self.correct += int((pred == labels).sum())
        if reference is not None:
            self.agree += int((pred == reference.argmax(-1)).sum())
            self.referenced += len(pred)

    def result(self) -> dict[str, float]:
        out = {"top1": self.correct / max(1, self.n)}
        if self.referenced:  # no references given: agreement is undefined, not 0
            out["agreement"] = self.agree / self.referenced
        return out


class MeanIoU:
    """mIoU from a confusion matrix over the whole set (background included), plus
    pixel accuracy and agreement with reference masks."""

    def __init__(self, num_classes: int):
        self.k = num_classes
        self.conf = np.zeros((num_classes, num_classes), np.int64)
        self.agree = self.pixels = self.referenced = 0

    def update(self, pred: torch.Tensor, target: torch.Tensor | None, reference: torch.Tensor | None = None) -> None:
        p = pred.reshape(-1).cpu().numpy()
        if target is not None:
            t = target.reshape(-1).cpu().numpy()
            ok = (t >= 0) & (t < self.k)
            self.conf += np.bincount(self.k * t[ok] + p[ok], minlength=self.k**2).reshape(self.k, self.k)
        if reference is not None:
            self.agree += int((pred == reference).sum())
            self.referenced += p.size
        self.pixels += p.size

    def result(self) -> dict[str, float]:
        inter = np.diag(self.conf)
        union = self.conf.sum(0) + self.conf.sum(1) - inter
        present = union > 0
        iou = inter[present] / union[present]
        out = {"miou": float(iou.mean()) if present.any() else 0.0,
               "pixel_acc": float(inter.sum() / max(1, self.conf.sum()))}
        if self.referenced:
            out["agreement"] = self.agree / self.referenced
        return out


class MeanAP:
    """COCO-style mAP@[.5:.95] and mAP@.5 with pycocotools (the reference implementation)."""

    def __init__(self, num_classes: int):
        self.k = num_classes
        self.images: list[dict[str, Any]] = []
        self.gts: list[dict[str, Any]] = []
        self.dets: list[dict[str, Any]] = []

    def update(self, detections: list[dict[str, torch.Tensor]], boxes: list[torch.Tensor], labels: list[torch.Tensor],
               size: tuple[int, int]) -> None:
        for det, gb, gl in zip(detections, boxes, labels):
            image_id = len(self.images) + 1
            self.images.append({"id": image_id, "height": size[0], "width": size[1]})
            for b, l in zip(gb.tolist(), gl.tolist()):
                self.gts.append({"id": len(self.gts) + 1, "image_id": image_id, "category_id": int(l) + 1, "iscrowd": 0,
                                 "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]], "area": (b[2] - b[0]) * (b[3] - b[1])})
            for b, s, l in zip(det["boxes"].tolist(), det["scores"].tolist(), det["labels"].tolist()):
                self.dets.append({"image_id": image_id, "category_id": int(l) + 1, "score": float(s),
                                  "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]]})

    def result(self) -> dict[str, float]:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        if not self.dets or not self.gts:
            return {"map": 0.0, "map50": 0.0}
        with contextlib.redirect_stdout(io.StringIO()):
            gt = COCO()
            gt.dataset = {"images": self.images, "annotations": self.gts,
                          "categories": [{"id": i + 1} for i in range(self.k)]}
            gt.createIndex()
            dt = gt.loadRes(self.dets)
            ev = COCOeval(gt, dt, "bbox")
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        return {"map": float(max(ev.stats[0], 0.0)), "map50": float(max(ev.stats[1], 0.0))}
