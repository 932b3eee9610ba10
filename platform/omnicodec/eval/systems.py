"""The systems an evaluation compares, each scored image by image from real bytes.

- ``AllInOne``: one S-Adaptor bitstream per image, decoded ONCE, one g_s pass per task.
- ``FrozenCodec``: the base codec alone; every task reads the human reconstruction.
- ``PerTaskAdaptors``: one adaptor model per task (TransTIC / Adapt-ICMH style), so T
  bitstreams per image; the rate counted is the sum of all T of them.
- ``Jpeg``: PIL's JPEG at a quality; every task reads the decoded image.

Each ``run`` yields, per image, the bytes sent and the image each task sees.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import torch
from PIL import Image

from omnicodec.data.samples import Sample
from omnicodec.images import to_pil, to_tensor
from omnicodec.model import HUMAN, OmniCodec


@dataclass
class Decoded:
    bytes: int
    views: dict[str, torch.Tensor]  # task name (or HUMAN) -> image the task sees
    bpp_estimate: float | None = None
    extra: dict = field(default_factory=dict)


class System:
    name: str = ""
    label: str = ""

    def run(self, sample: Sample, tasks: list[str]) -> Decoded:
        raise NotImplementedError


class AllInOne(System):
    def __init__(self, model: OmniCodec, label: str, name: str = "all-in-one"):
        self.model, self.label, self.name = model, label, name
        self.latent_decodes = 0

    @torch.no_grad()
    def run(self, sample: Sample, tasks: list[str]) -> Decoded:
        x = sample.image[None]
        data = self.model.encode(x).to_bytes()
        stream, y_hat = self.model.decode_latent(data)  # entropy-decode ONCE for all tasks
        self.latent_decodes += 1
        self.model.check_stream_adaptor(stream)
        views = self.model.reconstruct(stream, y_hat, tasks, human=True)
        return Decoded(len(data), views, self.model.estimate_bpp(x))


class FrozenCodec(System):
    def __init__(self, model: OmniCodec, label: str, name: str = "frozen codec"):
        self.model, self.label, self.name = model, label, name

    @torch.no_grad()
    def run(self, sample: Sample, tasks: list[str]) -> Decoded:
        x = sample.image[None]
        data = self.model.encode(x).to_bytes()
        human = self.model.decode(data, human=True)[HUMAN]
        return Decoded(len(data), {HUMAN: human, **{t: human for t in tasks}}, self.model.estimate_bpp(x))


class PerTaskAdaptors(System):
    def __init__(self, models: dict[str, OmniCodec], label: str, name: str = "per-task adaptors"):
        self.models, self.label, self.name = models, label, name

    @torch.no_grad()
    def run(self, sample: Sample, tasks: list[str]) -> Decoded:
        x = sample.image[None]
        total, views = 0, {}
        for t in tasks:
            model = self.models[t]
            data = model.encode(x).to_bytes()
            total += len(data)  # T bitstreams: every one of them is sent
            out = model.decode(data, tasks=[t], human=(not views))
            views.update(out)
        return Decoded(total, views)


class Jpeg(System):
    def __init__(self, quality: int, name: str = "JPEG"):
        self.quality, self.label, self.name = quality, f"Q{quality}", name

    def run(self, sample: Sample, tasks: list[str]) -> Decoded:
        buf = io.BytesIO()
        to_pil(sample.image).save(buf, format="JPEG", quality=self.quality)
        decoded = to_tensor(Image.open(io.BytesIO(buf.getvalue())))
        return Decoded(buf.tell(), {HUMAN: decoded, **{t: decoded for t in tasks}})


