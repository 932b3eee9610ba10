"""``Original``: the uncoded image (0 bytes): the clean ceiling and the label-free
references every evaluation scores first; no ``--baseline`` of its own."""

from __future__ import annotations

from typing import TYPE_CHECKING

from omnicodec.eval.systems.base import SYSTEMS, Decoded, System, SystemKind

if TYPE_CHECKING:
    from omnicodec.data.samples import Sample


class Original(System):
    """The image itself, uncoded: what the task networks' clean scores and references use."""

    name, label, recipe = "original", "clean", {"kind": "original"}

    def run(self, sample: Sample, tasks: list[str]) -> Decoded:
        return Decoded(0, {t: sample.image[None] for t in tasks})


@SYSTEMS.register("original")
class OriginalKind(SystemKind):
    recipes = ("original",)

    @staticmethod
    def from_recipe(recipe: dict) -> System:
        return Original()
