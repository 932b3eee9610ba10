"""What a task KIND is: everything eval, Serve, training, the loader and the CLI need to
know about a family of machine tasks (classification, segmentation, detection, ...), in one
object.

A kind is one file in this folder that subclasses :class:`TaskKind` and decorates it with
``@KINDS.register("name")``, plus one import line in ``kinds/__init__.py`` (the registry);
a kind with its own trainable network defines that network in the same file (``build``).
Nothing else in the code base names kinds: task definitions (``tasks/registry.py``), the
bundled and brought networks, the loader's augmentation, the evaluator, the Serve workers
and the OpenAPI schema, and ``omnicodec pretrain task`` all ask the registry (``get_kind``,
``KINDS``).

A kind declares its metrics as class attributes (``metric`` with labels, ``label_free_metric``
without, ``higher_is_better``), the shard members its labels live in (``needs``, checked per
sample by ``has_labels``, so evaluation scores label-free rather than against nothing), the
dense maps it reads (``maps``: ``<name>.png`` members, e.g. ``sal``; how each one mirrors is
its ``flip_map``, which the loader's horizontal flip asks), ``class_ids``, ``bootstrap_cost``
and ``pretrain_defaults`` (batch size, crop and steps of ``omnicodec pretrain task``).

Its methods build the kind's own trainable network (``build``, None where it has none), turn
a network's raw OUTPUT (what ``forward`` returns: logits, a mask map, detections) into a
PREDICTION (``predict_output``) and compute a label loss from outputs (``output_loss``).
These serve EVERY network of the kind, the bundled ones and those users bring alike
(``TaskNet.predict`` and ``TaskNet.label_loss`` call ``predict`` and ``label_loss`` here), so
a kind's semantics are written once. Finally it scores predictions (``make_metric``,
``primary``), and renders them as the JSON a Serve response carries (``response`` with its
OpenAPI ``response_schema``) and as a picture for reports (``draw``).
"""

from __future__ import annotations

from functools import cache, lru_cache
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from omnicodec.errors import ConfigError
from omnicodec.registry import Registry

KINDS: Registry[type[TaskKind]] = Registry("task kind", error=ConfigError, attr="name")
register_kind = KINDS.register


def get_kind(name: str) -> TaskKind:
    """The kind's one instance in this process (kinds hold no state: one serves every task)."""
    return _instance(KINDS.get(name))


@cache
def _instance(cls: type[TaskKind]) -> TaskKind:
    return cls()


def map_owner(name: str) -> TaskKind | None:
    """The kind that reads dense map ``name`` (``maps``): the first registered that declares it."""
    for kind in KINDS:
        if name in KINDS.get(kind).maps:
            return get_kind(kind)
    return None


def flipped_map(name: str, m: Tensor) -> Tensor:
    """Dense map ``name`` of a horizontally flipped sample, as the kind that reads it flips it
    (``TaskKind.flip_map``); a map no kind reads is mirrored as it is."""
    owner = map_owner(name)
    return owner.flip_map(name, m) if owner is not None else m.flip(-1)


class PretrainDefaults(NamedTuple):
    """What ``omnicodec pretrain task`` trains a kind's own network with, unless told otherwise."""

    batch_size: int
    crop: int | None  # None: full images (``data.fit``), e.g. for detectors sized for whole scenes
    steps: int


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
    class_ids: ClassVar[bool] = False  # labels index the network's classes (the shards' class list must be its list)
    bootstrap_cost: ClassVar[int] = 1  # > 1: resampling is expensive (fewer draws for this kind)
    description: ClassVar[str] = ""
    metric_labels: ClassVar[dict[str, str]] = {}  # how reports name the metrics ("miou" -> "mIoU")
    maps: ClassVar[tuple[str, ...]] = ()  # dense maps (``<name>.png`` members) this kind reads; see flip_map
    pretrain_defaults: ClassVar[PretrainDefaults] = PretrainDefaults(batch_size=16, crop=160, steps=2000)

    # ---------------------------------------------------------------- networks
    def build(self, num_classes: int, **kwargs: Any):
        """The kind's own trainable network (``omnicodec pretrain task``); None if it has none."""
        return None

    def predict_output(self, output: Any) -> Any:
        """Raw network output -> prediction (what metrics, Serve and reports consume)."""
        return output

    def output_loss(self, output: Any, batch: dict[str, Any]) -> Tensor:
        """Raw network output and the batch's labels -> the supervised loss."""
        raise ConfigError(f"task kind '{self.name}' has no label loss for a network you bring; use loss: distill")

    def predict(self, net: Any, x: Tensor) -> Any:
        """Network ``net``'s prediction for images ``x`` (``TaskNet.predict`` of every network)."""
        return self.predict_output(net(x))

    def label_loss(self, net: Any, x: Tensor, batch: dict[str, Any]) -> Tensor:
        """Network ``net``'s supervised loss on images ``x`` (``TaskNet.label_loss`` of every
        network): ``output_loss`` of its output, unless a kind's loss needs more than outputs."""
        return self.output_loss(net(x), batch)

    # ------------------------------------------------------------ augmentation
    def flip_map(self, name: str, m: Tensor) -> Tensor:
        """Dense map ``name`` (one of ``maps``, C x H x W or H x W as stored) of a sample the
        loader flips horizontally: mirrored, and its values changed where the flip changes
        what they mean (surface normals face the other way)."""
        return m.flip(-1)

    # ----------------------------------------------------------------- metrics
    def make_metric(self, num_classes: int | None, labelled: bool) -> TaskMetric:
        """``labelled=False``: score against the network's own prediction on the original
        image (``reference``), so users without labels still get a curve."""
        raise NotImplementedError

    def primary(self, labelled: bool) -> str:
        return self.metric if labelled else self.label_free_metric

    def has_labels(self, sample: Any) -> bool:
        """Whether a decoded sample carries what the labelled metric reads (``needs``):
        evaluation scores label-free when any test sample lacks it, never against nothing."""
        return all(_has_member(sample, m) for m in self.needs)

    # ------------------------------------------------------------------- serve
    def response(self, pred: Any, classes: list[str] | None, options: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    response_schema: ClassVar[dict[str, Any]] = {"type": "object"}

    # ---------------------------------------------------------------- pictures
    def draw(self, image: Image.Image, pred: Any, classes: list[str] | None) -> Image.Image:
        """The prediction drawn on the image the task received (report picture sheets).
        The default only captions the view; kinds override it to show what they predict."""
        return caption(image.copy(), [self.name])


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

    def draw(self, image: Image.Image, pred: Tensor, classes: list[str] | None) -> Image.Image:
        """The map in red over the image, opaque where the probability is high."""
        p = pred[0].clamp(0, 1).float().cpu().numpy()
        red = np.zeros((*p.shape, 3), np.uint8)
        red[..., 0] = 255
        return overlay(image, red, p * 0.7)

    def response(self, pred: Tensor, classes: list[str] | None, options: dict[str, Any]) -> dict[str, Any]:
        """The probability map quantised to 0..255 (PNG or RLE)."""
        from omnicodec.tasks.kinds.segmentation import mask_response

        return mask_response((pred[0].clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy(), None, options)


def _has_member(sample: Any, member: str) -> bool:
    """A shard member, as decoded into a ``Sample`` (``json`` counts when it holds boxes)."""
    if member == "cls":
        return sample.cls is not None
    if member in ("seg.png", "inst.png"):
        return getattr(sample, member[:-4]) is not None
    if member == "json":
        return "boxes" in sample.meta
    return member.removesuffix(".png") in sample.maps


def class_name(classes: list[str] | None, i: int) -> str | None:
    return classes[i] if classes and 0 <= i < len(classes) else None


PALETTE = np.array([[0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
                    [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212],
                    [0, 128, 128], [220, 190, 255], [170, 110, 40], [128, 0, 0], [170, 255, 195]], np.uint8)


CAPTION_PX = 13  # caption font size: PIL's default bitmap font was ~6 px tall and drew λ as a box


@lru_cache(maxsize=4)
def caption_font(size: int = CAPTION_PX) -> tuple[Any, bool]:
    """(font, has Greek): DejaVu Sans from matplotlib's data (a dependency; it has λ and μ),
    else Pillow's scalable default font, whose labels then spell Greek letters out."""
    import os

    from PIL import ImageFont

    try:
        import matplotlib

        return ImageFont.truetype(os.path.join(matplotlib.get_data_path(), "fonts", "ttf", "DejaVuSans.ttf"), size), True
    except (ImportError, OSError):
        return ImageFont.load_default(size), False


def caption(image: Image.Image, lines: list[str], bottom: bool = False) -> Image.Image:
    """``lines`` in white on a dark band at the top (or bottom) left of ``image`` (in place)."""
    from PIL import ImageDraw

    font, greek = caption_font()
    if not greek:
        lines = [line.replace("λ", "lambda").replace("μ", "mu") for line in lines]
    step = CAPTION_PX + 4
    d = ImageDraw.Draw(image)
    top = image.size[1] - 2 - step * len(lines) if bottom else 2
    for i, line in enumerate(lines):
        box = d.textbbox((3, top + step * i), line, font=font)
        d.rectangle([box[0] - 2, box[1] - 1, box[2] + 2, box[3] + 1], fill=(0, 0, 0))
        d.text((3, top + step * i), line, fill=(255, 255, 255), font=font)
    return image


def overlay(image: Image.Image, rgb: np.ndarray, alpha: np.ndarray | float) -> Image.Image:
    """``rgb`` (HxWx3, resized to the image) blended over ``image`` with per-pixel ``alpha``."""
    size = image.size
    top = np.asarray(Image.fromarray(rgb).resize(size, Image.NEAREST), np.float32)
    a = np.asarray(alpha, np.float32)
    if a.ndim == 2:
        a = np.asarray(Image.fromarray(a).resize(size, Image.BILINEAR), np.float32)[..., None]
    base = np.asarray(image.convert("RGB"), np.float32)
    return Image.fromarray((base * (1 - a) + top * a).clip(0, 255).astype(np.uint8))

