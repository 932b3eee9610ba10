"""Frozen task networks ("the machines"), their losses and their metrics.

``load_task_net(name)`` returns a frozen network that takes images in [0, 1] and offers
``predict`` (for metrics), ``features`` (for distillation) and ``label_loss``.
"""

from omnicodec.tasks.networks import TaskNet, build_task_net
from omnicodec.tasks.registry import TASKS, TaskInfo, load_task_net

__all__ = ["TASKS", "TaskInfo", "TaskNet", "build_task_net", "load_task_net"]
