"""``FrozenCodec``: the base codec alone; every task reads the human reconstruction
(``--baseline frozen:ARCH:Q1,Q2,...``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from omnicodec.eval.systems.base import SYSTEMS, Context, Decoded, System, SystemKind

if TYPE_CHECKING:
    from omnicodec.data.samples import Sample
    from omnicodec.model import OmniCodec


class FrozenCodec(System):
    def __init__(self, model: OmniCodec, label: str, name: str = "frozen codec"):
        self.model, self.label, self.name = model, label, name
        spec = model.codec.spec
        self.recipe = {"kind": "frozen", "arch": spec.arch, "quality": spec.quality, "checkpoint": spec.checkpoint}

    def run(self, sample: Sample, tasks: list[str]) -> Decoded:
        import torch

        from omnicodec.model import HUMAN

        with torch.no_grad():
            x = sample.image[None]
            data = self.model.encode(x).to_bytes()
            human = self.model.decode(data, human=True)[HUMAN]
            return Decoded(len(data), {HUMAN: human, **{t: human for t in tasks}}, self.model.estimate_bpp(x))


def frozen_codec(arch: str, quality: int, checkpoint: str | None = None, label: str | None = None) -> FrozenCodec:
    from omnicodec.codec import CodecSpec, load_codec
    from omnicodec.model import OmniCodec

    codec = load_codec(CodecSpec(arch=arch, quality=quality, checkpoint=checkpoint))
    return FrozenCodec(OmniCodec(codec, with_adaptors=False), label or f"q{quality}")


@SYSTEMS.register("frozen")
class Frozen(SystemKind):
    usage = "frozen:ARCH:Q1,Q2,..."
    short = "frozen:ARCH:Q,..."
    recipes = ("frozen",)

    @staticmethod
    def parse(spec: str, rest: str, ctx: Context) -> list[System]:
        arch, _, qs = rest.rpartition(":")
        return [frozen_codec(arch, int(q), label=f"q{q}") for q in qs.split(",")]

    @staticmethod
    def from_recipe(recipe: dict) -> System:
        return frozen_codec(recipe["arch"], recipe["quality"], recipe.get("checkpoint"))
