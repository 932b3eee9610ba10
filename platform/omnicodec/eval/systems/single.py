"""``PerTaskAdaptors``: one adaptor model per task (TransTIC / Adapt-ICMH style), so T
bitstreams per image; the rate counted is the sum of all T of them
(``--baseline single:TASK=RUN_OR_CKPT,...[@LABEL]``, one point; repeat it for a curve)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from omnicodec.eval.systems.base import SYSTEMS, Context, Decoded, System, SystemKind, per_task_sources

if TYPE_CHECKING:
    import torch

    from omnicodec.data.samples import Sample
    from omnicodec.model import OmniCodec


class PerTaskAdaptors(System):
    def __init__(self, models: dict[str, OmniCodec], label: str, name: str = "per-task adaptors",
                 sources: dict[str, str] | None = None):
        self.models, self.label, self.name = models, label, name
        self.recipe = {"kind": "per-task", "checkpoints": sources, "label": label} if sources else None

    def run(self, sample: Sample, tasks: list[str]) -> Decoded:
        import torch

        with torch.no_grad():
            x = sample.image[None]
            total, views = 0, {}
            for t in tasks:
                model = self.models[t]
                data = model.encode(x).to_bytes()
                total += len(data)  # T bitstreams: every one of them is sent
                views.update(self._task_views(model, data, t, human=(not views)))
            return Decoded(total, views)

    @staticmethod
    def _task_views(model: OmniCodec, data: bytes, task: str, human: bool) -> dict[str, torch.Tensor]:
        """What ``task`` reads from its own stream (and, for the first stream, what people see)."""
        return model.decode(data, tasks=[task], human=human)


def _adaptor_models(sources: dict[str, str]) -> dict[str, OmniCodec]:
    from omnicodec.model import OmniCodec

    return {t: OmniCodec.from_checkpoint(c) for t, c in sources.items()}


@SYSTEMS.register("single")
class Single(SystemKind):
    usage = "single:TASK=RUN_OR_CKPT,...[@LABEL] (one per-task point; repeat for a curve)"
    short = "single:TASK=RUN,..."
    recipes = ("per-task",)

    @staticmethod
    def parse(spec: str, rest: str, ctx: Context) -> list[System]:
        sources, label = per_task_sources(spec, rest, ctx.tasks, ctx.locate)
        return [PerTaskAdaptors(_adaptor_models(sources), label, sources=sources)]

    @staticmethod
    def from_recipe(recipe: dict) -> System:
        return PerTaskAdaptors(_adaptor_models(recipe["checkpoints"]), recipe["label"], sources=recipe["checkpoints"])
