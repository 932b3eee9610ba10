"""Human-part segmentation (PASCAL-Context's "parts" task): per-pixel part ids scored by mIoU,
like semantic segmentation but against the ``parts.png`` map (0 = background, k + 1 = part
k; e.g. head, torso, upper/lower arms and legs in PASCAL-Person-Part's 6-part scheme). The
PASCAL-Context converter writes ``parts.png`` from ``human_parts/``; scenes carry none, so
there the kind is scored label-free (pixel agreement with the clean mask)."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from omnicodec.errors import DataError
from omnicodec.tasks.kinds.base import KINDS
from omnicodec.tasks.kinds.segmentation import Segmentation


@KINDS.register("parts")
class HumanParts(Segmentation):
    needs = ("parts.png",)
    class_ids = False  # part ids: the shards' class list names objects, not parts
    description = "human-part segmentation (mIoU over parts.png, background included; label-free: pixel agreement)"
    maps = ("parts",)

    def label_mask(self, sample: Any) -> Tensor | None:
        return sample.maps.get("parts")

    def label_batch(self, batch: dict[str, Any]) -> Tensor:
        if "parts" not in batch.get("maps", {}):
            raise DataError("a parts task with labels needs a parts.png member in every sample of the batch")
        return batch["maps"]["parts"]
