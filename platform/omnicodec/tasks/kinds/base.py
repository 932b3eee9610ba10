"""What a task KIND is: everything eval, Serve, training and the CLI need to know about a
family of machine tasks (classification, segmentation, detection, ...), in one object.

A kind is one file in this folder that subclasses :class:`TaskKind` and decorates it with
``@register_kind("name")``, plus one import line in ``kinds/__init__.py`` (the registry).
Nothing else in the code base names kinds: the evaluator, the Serve workers, the pretrain
CLI's choices and the loader's ``require`` all ask the registry.

A kind turns a frozen network's raw OUTPUT (what ``forward`` returns: logits, a mask map,
detections) into a PREDICTION (``predict_output``), scores predictions (``make_metric`` /
``update``), computes a label loss from outputs (``output_loss``, for networks users bring)
and renders predictions as the JSON a Serve response carries (``response`` with its
OpenAPI ``response_schema``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from omnicodec.errors import ConfigError

KINDS: dict[str, TaskKind] = {}


def register_kind(name: str):
    """Class decorator: instantiate the kind once and add it to :data:`KINDS`."""

    def wrap(cls: type[TaskKind]) -> type[TaskKind]:
        if name in KINDS:
            raise ConfigError(f"task kind '{name}' is registered twice ({type(KINDS[name]).__name__}, {cls.__name__})")
        cls.name = name
        KINDS[name] = cls()
        return cls

    return wrap


def get_kind(name: str) -> TaskKind:
    try:
        return KINDS[name]
    except KeyError:
        raise ConfigError(f"unknown task kind '{name}' (known: {', '.join(sorted(KINDS))})") from None


class TaskMetric:
    """Accumulates one kind's scores over images; ``per_image`` rows allow the paired bootstrap."""

    def update(self, pred: Any, sample: Any, reference: Any = None) -> None:
        raise NotImplementedError

    def result(self) -> dict[str, float]:
        raise NotImplementedError

    def bootstrap(self, key: str, idx: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class TaskKind:
    """Base class; subclasses set the class attributes and override what differs."""

    name: ClassVar[str] = ""
    metric: ClassVar[str] = ""  # the primary metric with labels
    label_free_metric: ClassVar[str] = "agreement"  # the primary metric without labels
    higher_is_better: ClassVar[bool] = True  # False for error metrics: BD-rate and Delta_m flip their sign
    needs: ClassVar[tuple[str, ...]] = ()  # shard members the label loss and labelled metric read
    bootstrap_cost: ClassVar[int] = 1  # > 1: resampling is expensive (fewer draws for this kind)
    description: ClassVar[str] = ""
    metric_labels: ClassVar[dict[str, str]] = {}  # how reports name the metrics ("miou" -> "mIoU")

    # ---------------------------------------------------------------- networks
    def build(self, num_classes: int, **kwargs: Any):
        """The kind's own trainable network (``omnicodec pretrain task``); None if it has none."""
        return None

    def predict_output(self, output: Any) -> Any:
        """Raw network output -> prediction (for networks users bring)."""
        return output

    def output_loss(self, output: Any, batch: dict[str, Any]) -> Tensor:
        raise ConfigError(f"task kind '{self.name}' has no label loss for a network you bring; use loss: distill")

    # ----------------------------------------------------------------- metrics
    def make_metric(self, num_classes: int | None, labelled: bool) -> TaskMetric:
        """``labelled=False``: score against the network's own prediction on the original
        image (``reference``), so users without labels still get a curve."""
        raise NotImplementedError

    def primary(self, labelled: bool) -> str:
        return self.metric if labelled else self.label_free_metric

    # ------------------------------------------------------------------- serve
    def response(self, pred: Any, classes: list[str] | None, options: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    response_schema: ClassVar[dict[str, Any]] = {"type": "object"}


class ProbabilityMapKind(TaskKind):
    """Kinds whose network emits ONE logit map (saliency, edges): sigmoid predictions, an
    8-bit map in Serve responses, a BCE label loss against ``target(batch)``."""

    @staticmethod
    def logits(output: Tensor) -> Tensor:
        return output[:, 0] if output.dim() == 4 else output

    def predict_output(self, output: Tensor) -> Tensor:
        return torch.sigmoid(self.logits(output))

    def target(self, batch: dict[str, Any]) -> Tensor:
        raise NotImplementedError

    def output_loss(self, output: Tensor, batch: dict[str, Any]) -> Tensor:
        import torch.nn.functional as F

        logits = self.logits(output)
        return F.binary_cross_entropy_with_logits(logits, self.target(batch).float().to(logits.device))

    def response(self, pred: Tensor, classes: list[str] | None, options: dict[str, Any]) -> dict[str, Any]:
        """The probability map quantised to 0..255 (PNG or RLE)."""
        from omnicodec.tasks.kinds.segmentation import mask_response

        return mask_response((pred[0].clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy(), None, options)


def class_name(classes: list[str] | None, i: int) -> str | None:
    return classes[i] if classes and 0 <= i < len(classes) else None

