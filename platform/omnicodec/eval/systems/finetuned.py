"""``PerTaskCodecs``: full fine-tuning, one whole codec per task (every weight trained for
that task: ``codec_job`` with ``task``); T bitstreams per image, all counted
(``--baseline finetuned:TASK=CODEC_WEIGHTS,...[@LABEL]``, of the adaptors' architecture
and quality; repeat it for a curve)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from omnicodec.eval.systems.base import SYSTEMS, Context, System, SystemKind, per_task_sources
from omnicodec.eval.systems.single import PerTaskAdaptors

if TYPE_CHECKING:
    import torch

    from omnicodec.model import OmniCodec


class PerTaskCodecs(PerTaskAdaptors):
    """One fully fine-tuned codec per task: task t reads codec t's own reconstruction."""

    def __init__(self, models: dict[str, OmniCodec], label: str, name: str = "per-task fine-tuned",
                 sources: dict[str, str] | None = None):
        super().__init__(models, label, name)
        self.recipe = None
        if sources:  # the fingerprints pin the weights: a rebuilt worker refuses a changed file
            spec = next(iter(models.values())).codec.spec
            self.recipe = {"kind": "finetuned", "arch": spec.arch, "quality": spec.quality, "checkpoints": sources,
                           "fingerprints": {t: m.codec.fingerprint for t, m in models.items()}, "label": label}

    @staticmethod
    def _task_views(model: OmniCodec, data: bytes, task: str, human: bool) -> dict[str, torch.Tensor]:
        from omnicodec.model import HUMAN

        view = model.decode(data, human=True)[HUMAN]  # the codec's own reconstruction, tuned for the task
        return {task: view, **({HUMAN: view} if human else {})}


def finetuned_codecs(arch: str, quality: int, checkpoints: dict[str, str],
                     fingerprints: dict[str, str] | None = None) -> dict[str, OmniCodec]:
    """Each task's fine-tuned codec (``arch`` at ``quality``, weights from its checkpoint);
    with ``fingerprints``, a file whose weights changed since is refused by name."""
    from omnicodec.codec import CodecSpec, load_codec
    from omnicodec.errors import CheckpointError
    from omnicodec.model import OmniCodec

    models = {}
    for task, path in checkpoints.items():
        codec = load_codec(CodecSpec(arch=arch, quality=quality, checkpoint=path))
        want = (fingerprints or {}).get(task)
        if want and codec.fingerprint != want:
            raise CheckpointError(f"{path} (task {task}): codec fingerprint {codec.fingerprint[:12]}, "
                                  f"expected {want[:12]}: the file changed after this evaluation was planned")
        models[task] = OmniCodec(codec, with_adaptors=False)
    return models


@SYSTEMS.register("finetuned")
class Finetuned(SystemKind):
    usage = ("finetuned:TASK=CODEC_WEIGHTS,...[@LABEL] (full fine-tuning: one whole codec per task, e.g. from "
             "benchmarks/train_finetune.py; repeat for a curve)")
    short = "finetuned:TASK=WEIGHTS,..."
    recipes = ("finetuned",)

    @staticmethod
    def parse(spec: str, rest: str, ctx: Context) -> list[System]:
        sources, label = per_task_sources(spec, rest, ctx.tasks, os.path.abspath)
        return [PerTaskCodecs(finetuned_codecs(ctx.arch, ctx.quality, sources), label, sources=sources)]

    @staticmethod
    def from_recipe(recipe: dict) -> System:
        models = finetuned_codecs(recipe["arch"], recipe["quality"], recipe["checkpoints"], recipe["fingerprints"])
        return PerTaskCodecs(models, recipe["label"], sources=recipe["checkpoints"])
