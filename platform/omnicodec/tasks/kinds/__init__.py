"""The task-kind registry. A new kind is one file in this folder plus ONE line below."""

# the registry: one import per kind (each file registers itself with @register_kind)
from omnicodec.tasks.kinds import (
    classification,  # noqa: E402,F401
    detection,  # noqa: E402,F401
    edges,  # noqa: E402,F401
    normals,  # noqa: E402,F401
    parts,  # noqa: E402,F401
    saliency,  # noqa: E402,F401
    segmentation,  # noqa: E402,F401
)
from omnicodec.tasks.kinds.base import (
    KINDS,
    PretrainDefaults,
    TaskKind,
    TaskMetric,
    flipped_map,
    get_kind,
    map_owner,
    register_kind,
)

__all__ = ["KINDS", "PretrainDefaults", "TaskKind", "TaskMetric", "flipped_map", "get_kind", "map_owner", "register_kind"]
