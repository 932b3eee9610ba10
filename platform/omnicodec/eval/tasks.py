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
    network on the original image) give label-free scores. ``labelled=False`` scores a
    labelled task label-free (``scoring_plan`` decides, from what the test shards carry)."""

    def __init__(self, name: str, net: TaskNet | None = None, num_classes: int | None = None,
                 labelled: bool | None = None):
        self.info: TaskInfo = get_task(name)
        self.kind = self.info.task_kind
        self._net = net
        self.labelled = self.info.labelled if labelled is None else labelled and self.info.labelled
        self.metric = self.kind.make_metric(num_classes or self.info.resolved_classes()[0], self.labelled)

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
        return self.kind.primary(self.labelled)


def scoring_plan(tasks: list[str], samples: list[Sample], card: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Per task: the metric an evaluation can honestly report on these samples. The labelled
    metric only when every sample carries the task's labels and, for class-id labels, the
    shards' classes (``dataset.json``) are the network's classes, in order; otherwise the
    label-free metric (the network's agreement with itself on the original), with the reason.
    Scoring a user's image folder (classes cat/dog) against an 8-class network's indices, or
    masks the shards lack, gave numbers (0.250, mIoU 0.000) that looked like results."""
    plan = {}
    for t in tasks:
        info = get_task(t)
        why = None if info.labelled else "the task is defined label-free"
        if why is None:
            why = _missing_labels(info, samples) or _foreign_classes(info, samples, card)
        labelled = why is None
        plan[t] = {"metric": info.task_kind.primary(labelled), "labelled": labelled, "why": why}
    return plan


def note_uninformative(plan: dict[str, dict[str, Any]], clean: dict[str, dict[str, float]]) -> None:
    """A label-free score of 0 on the ORIGINALS (a detector with no confident detection on any
    image) says nothing about the systems: say so in the plan rather than report 0.000 silently."""
    for t, p in plan.items():
        if not p["labelled"] and p["metric"] == "map" and not clean[t].get(p["metric"]):
            note = "the network finds no confident object on the original images, so every system scores 0 (no information)"
            p["why"] = f"{p['why']}; {note}" if p["why"] else note


def _missing_labels(info: TaskInfo, samples: list[Sample]) -> str | None:
    lacking = [s for s in samples if not info.task_kind.has_labels(s)]
    if not lacking:
        return None
    need = "/".join(info.task_kind.needs) or "its label maps"
    return f"{len(lacking)} of {len(samples)} test images carry no {info.kind} labels ({need}), e.g. '{lacking[0].key}'"


def _foreign_classes(info: TaskInfo, samples: list[Sample], card: dict[str, Any] | None) -> str | None:
    """Why the samples' class ids are not the network's classes (None: they are, or unknowable)."""
    if not info.task_kind.class_ids:
        return None
    count, names = info.resolved_classes()
    theirs = (card or {}).get("classes")
    if theirs and names and list(theirs) != list(names):
        return (f"the shards' classes ({_names(theirs)}) are not the network's {len(names)} classes ({_names(names)})")
    if theirs and count is not None and len(theirs) != count:
        return f"the shards have {len(theirs)} classes, the network {count}"
    top = max((s.cls for s in samples if s.cls is not None), default=None)
    if count is not None and top is not None and top >= count:
        return f"a test label is class {top}, the network has {count} classes"
    return None


def _names(names: list[str], most: int = 4) -> str:
    return ", ".join(names[:most]) + (", ..." if len(names) > most else "")


def score_clean(name: str, samples: list[Sample], net: TaskNet | None = None,
                num_classes: int | None = None) -> dict[str, float]:
    scorer = TaskScorer(name, net, num_classes)
    for s in samples:
        scorer.update(s.image[None], s)
    return scorer.result()
