"""``AllInOne``: one S-Adaptor bitstream per image, decoded ONCE, one g_s pass per task: the
tested adaptors, and ``--baseline adaptors:NAME=RUN_OR_CKPT,...`` (other adaptor sets as a
baseline curve called NAME, e.g. the same method trained shorter). A rate-conditioned set
(``adaptor.rate_levels``) is a whole curve on its own: one system per rate position."""

from __future__ import annotations

from typing import TYPE_CHECKING

from omnicodec.errors import OmnicodecError
from omnicodec.eval.systems.base import SYSTEMS, Context, Decoded, System, SystemKind

if TYPE_CHECKING:
    from omnicodec.data.samples import Sample
    from omnicodec.model import OmniCodec


class AllInOne(System):
    def __init__(self, model: OmniCodec, label: str, name: str = "all-in-one", source: str | None = None,
                 position: float | None = None):
        self.model, self.label, self.name, self.position = model, label, name, position
        self.recipe = {"kind": "all-in-one", "checkpoint": source} if source else None
        if self.recipe is not None and position is not None:
            self.recipe["position"] = position

    def run(self, sample: Sample, tasks: list[str]) -> Decoded:
        import torch

        with torch.no_grad():
            x = sample.image[None]
            data = self.model.encode(x, self.position).to_bytes()
            stream, y_hat = self.model.decode_latent(data)  # entropy-decode ONCE for all tasks
            self.model.check_stream_adaptor(stream)
            views = self.model.reconstruct(stream, y_hat, tasks, human=True)
            return Decoded(len(data), views, self.model.estimate_bpp(x, self.position), extra={"latent_decodes": 1})


def adaptor_systems(model: OmniCodec, label: str, name: str = "all-in-one", source: str | None = None,
                    rate_levels: list[float] | None = None) -> list[AllInOne]:
    """The systems one adaptor set evaluates as: itself, or for a rate-conditioned set one per
    rate level of its variable-rate codec (the curve of ONE set): every trained level, or
    ``rate_levels`` (1-based like the codec's qualities; between two levels is a rate too)."""
    levels = model.adaptors.config.rate_levels if model.adaptors is not None else 0
    if not levels:
        return [AllInOne(model, label, name=name, source=source)]
    wanted = rate_levels or list(range(1, levels + 1))
    outside = [lv for lv in wanted if not 1 <= lv <= levels]
    if outside:
        raise OmnicodecError(f"rate level(s) {', '.join(f'{lv:g}' for lv in outside)} outside the set's "
                             f"trained levels 1-{levels}")
    return [AllInOne(model, label, name=name, source=source, position=float(lv) - 1) for lv in wanted]


def frozen_levels(rate_levels: list[float]) -> list[int]:
    """The frozen ladder beside a set evaluated at ``rate_levels``: the nearest whole level of
    each (a frozen variable-rate codec is loaded by quality = level)."""
    return sorted({round(lv) for lv in rate_levels})


def short_label(location: str) -> str:
    """A readable name for an adaptor location: ``zoo:NAME`` -> NAME; a path -> its run
    folder's name (skipping ``adaptors`` and ``checkpoint_*``), never a 70-character path."""
    if location.startswith("zoo:"):
        return location[4:]
    parts = [q for q in location.rstrip("/").replace("\\", "/").split("/") if q]
    for q in reversed(parts):
        if q != "adaptors" and not q.startswith("checkpoint_"):
            return q
    return location


@SYSTEMS.register("adaptors")
class AdaptorSets(SystemKind):
    usage = "adaptors:NAME=RUN_OR_CKPT,... (a baseline curve of other adaptor sets, e.g. trained shorter)"
    short = "adaptors:NAME=RUN,..."
    recipes = ("all-in-one",)

    @staticmethod
    def parse(spec: str, rest: str, ctx: Context) -> list[System]:
        from omnicodec.model import OmniCodec

        name, _, body = rest.partition("=")
        if not name or not body:
            raise OmnicodecError(f"--baseline {spec}: expected adaptors:NAME=RUN_OR_CKPT,...")
        systems: list[System] = []
        for where in body.split(","):
            source = ctx.locate(where)
            model = OmniCodec.from_checkpoint(source)
            if model.tasks != ctx.tasks:
                raise OmnicodecError(f"--baseline {spec}: {where} has tasks {model.tasks}, the adaptors {ctx.tasks}")
            systems += adaptor_systems(model, short_label(where), name=name, source=source, rate_levels=ctx.rate_levels)
        return systems

    @staticmethod
    def from_recipe(recipe: dict) -> System:
        from omnicodec.model import OmniCodec

        return AllInOne(OmniCodec.from_checkpoint(recipe["checkpoint"]), "", source=recipe["checkpoint"],
                        position=recipe.get("position"))
