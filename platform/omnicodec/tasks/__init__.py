"""Frozen task networks ("the machines"), their losses and their metrics.

``load_task_net(name)`` returns a frozen network that takes images in [0, 1] and offers
``predict`` (for metrics), ``features`` (for distillation) and ``label_loss``.

The names below are imported on first use: the loader (``tasks.kinds``, for map flips) and
the CLI (``tasks.registry``, for ``--help``) import this package without torchvision.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TASKS", "TaskInfo", "TaskNet", "build_task_net", "load_task_net"]

_WHERE = {"TASKS": "registry", "TaskInfo": "registry", "load_task_net": "registry",
          "TaskNet": "networks", "build_task_net": "networks"}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'omnicodec.tasks' has no attribute '{name}'")
    import importlib

    return getattr(importlib.import_module(f"omnicodec.tasks.{_WHERE[name]}"), name)
