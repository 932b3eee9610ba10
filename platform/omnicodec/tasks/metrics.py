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
        self.per_image: dict[str, list[float]] = {"top1": [], "agreement": []}

    def update(self, probs: torch.Tensor, labels: torch.Tensor | None, reference: torch.Tensor | None = None) -> None:
        pred = probs.argmax(-1)
        self.n += len(pred)
        if labels is not None:
            hits = (pred == labels).tolist()
            self.correct += int(sum(hits))
            self.per_image["top1"] += [float(h) for h in hits]
        else:
            self.per_image["top1"] += [0.0] * len(pred)
        if reference is not None:
            same = (pred == reference.argmax(-1)).tolist()
            self.agree += int(sum(same))
            self.referenced += len(pred)
            self.per_image["agreement"] += [float(v) for v in same]

    def bootstrap(self, key: str, idx: np.ndarray) -> np.ndarray:
        """``key`` on each resample of images (rows of ``idx``): per-image means."""
        v = np.asarray(self.per_image[key], dtype=float)
        return v[idx].mean(axis=1) if v.size else np.full(len(idx), np.nan)

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
        self.confs: list[np.ndarray] = []  # per image: mIoU is a set-level ratio, resampled by summing these
        self.agreements: list[tuple[int, int]] = []

    def update(self, pred: torch.Tensor, target: torch.Tensor | None, reference: torch.Tensor | None = None) -> None:
        p = pred.reshape(-1).cpu().numpy()
        conf = np.zeros((self.k, self.k), np.int64)
        if target is not None:
            t = target.reshape(-1).cpu().numpy()
            ok = (t >= 0) & (t < self.k)
            conf = np.bincount(self.k * t[ok] + p[ok], minlength=self.k**2).reshape(self.k, self.k)
            self.conf += conf
        self.confs.append(conf)
        if reference is not None:
            same = int((pred == reference).sum())
            self.agree += same
            self.referenced += p.size
            self.agreements.append((same, p.size))
        self.pixels += p.size

    @staticmethod
    def _miou(conf: np.ndarray) -> float:
        inter = np.diag(conf)
        union = conf.sum(0) + conf.sum(1) - inter
        present = union > 0
        return float((inter[present] / union[present]).mean()) if present.any() else 0.0

    def bootstrap(self, key: str, idx: np.ndarray) -> np.ndarray:
        if key == "agreement":
            a = np.asarray(self.agreements, dtype=float).reshape(-1, 2)
            return a[idx, 0].sum(1) / np.maximum(1, a[idx, 1].sum(1)) if len(a) else np.full(len(idx), np.nan)
        confs = np.stack(self.confs) if self.confs else np.zeros((0, self.k, self.k), np.int64)
        if key == "pixel_acc":
            return np.array([np.trace(c) / max(1, c.sum()) for c in (confs[row].sum(0) for row in idx)])
        return np.array([self._miou(confs[row].sum(0)) for row in idx])

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

    def _evaluated(self):
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        with contextlib.redirect_stdout(io.StringIO()):
            gt = COCO()
            gt.dataset = {"images": self.images, "annotations": self.gts,
                          "categories": [{"id": i + 1} for i in range(self.k)]}
            gt.createIndex()
            dt = gt.loadRes(self.dets)
            ev = COCOeval(gt, dt, "bbox")
            ev.evaluate()
        return ev

    def result(self) -> dict[str, float]:
        if not self.dets or not self.gts:
            return {"map": 0.0, "map50": 0.0}
        ev = self._evaluated()
        with contextlib.redirect_stdout(io.StringIO()):
            ev.accumulate()
            ev.summarize()
        return {"map": float(max(ev.stats[0], 0.0)), "map50": float(max(ev.stats[1], 0.0))}

    def bootstrap(self, key: str, idx: np.ndarray) -> np.ndarray:
        """mAP on resampled image sets: pycocotools' per-image matching is done once; each
        resample re-accumulates the drawn images (duplicates included) for the one area range
        and detection cap mAP reads (``accumulate_all_area``: pycocotools' ``accumulate``
        computes 12 of them, 12x the work the figure never uses)."""
        if not self.dets or not self.gts:
            return np.zeros(len(idx))
        ev = self._evaluated()
        n_img, n_area = len(ev._paramsEval.imgIds), len(ev._paramsEval.areaRng)
        n_cat = len(ev._paramsEval.catIds)
        per_cat = [ev.evalImgs[k * n_area * n_img:k * n_area * n_img + n_img] for k in range(n_cat)]  # area "all"
        rec_thrs, max_det = ev.params.recThrs, ev.params.maxDets[-1]
        out = np.zeros(len(idx))
        for r, row in enumerate(idx):
            prec = accumulate_all_area([[per[i] for i in row] for per in per_cat], rec_thrs, max_det)
            if key == "map50":
                prec = prec[0]
            valid = prec[prec > -1]
            out[r] = float(valid.mean()) if valid.size else 0.0
        return out


def accumulate_all_area(per_cat: list[list[dict | None]], rec_thrs: np.ndarray, max_det: int) -> np.ndarray:
    """pycocotools' ``COCOeval.accumulate`` for one area range and one detection cap:
    precision [iou thresholds, recall thresholds, categories], -1 where a category has no
    ground truth. Same arithmetic (merge-sorted scores, interpolated precision), vectorized."""
    n_t = None
    out = []
    for entries in per_cat:
        e = [x for x in entries if x is not None]
        if not e:
            out.append(None)
            continue
        n_t = e[0]["dtMatches"].shape[0]
        gt_ig = np.concatenate([x["gtIgnore"] for x in e])
        npig = int(np.count_nonzero(gt_ig == 0))
        if npig == 0:
            out.append(None)
            continue
        scores = np.concatenate([x["dtScores"][:max_det] for x in e])
        order = np.argsort(-scores, kind="mergesort")
        dtm = np.concatenate([x["dtMatches"][:, :max_det] for x in e], axis=1)[:, order]
        dt_ig = np.concatenate([x["dtIgnore"][:, :max_det] for x in e], axis=1)[:, order]
        tp = np.cumsum(np.logical_and(dtm, ~dt_ig.astype(bool)), axis=1, dtype=float)
        fp = np.cumsum(np.logical_and(~dtm.astype(bool), ~dt_ig.astype(bool)), axis=1, dtype=float)
        q = np.zeros((tp.shape[0], len(rec_thrs)))
        if tp.shape[1]:
            rc = tp / npig
            pr = np.maximum.accumulate((tp / (fp + tp + np.spacing(1)))[:, ::-1], axis=1)[:, ::-1]
            for t in range(tp.shape[0]):
                hit = np.searchsorted(rc[t], rec_thrs, side="left")
                ok = hit < pr.shape[1]
                q[t, : int(ok.sum())] = pr[t, hit[ok]]  # pycocotools stops at the first threshold out of range
        out.append(q)
    n_t = n_t or 10
    return np.stack([np.full((n_t, len(rec_thrs)), -1.0) if q is None else q for q in out], axis=-1)
