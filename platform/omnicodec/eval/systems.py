"""The systems an evaluation compares, each scored image by image from real bytes.

- ``AllInOne``: one S-Adaptor bitstream per image, decoded ONCE, one g_s pass per task.
- ``FrozenCodec``: the base codec alone; every task reads the human reconstruction.
- ``PerTaskAdaptors``: one adaptor model per task (TransTIC / Adapt-ICMH style), so T
  bitstreams per image; the rate counted is the sum of all T of them.
- ``PerTaskCodecs``: full fine-tuning, one whole codec per task (every weight trained for
  that task: ``codec_job`` with ``task``); T bitstreams per image, all counted.
- ``Jpeg`` / ``WebP``: PIL's encoders at a quality; every task reads the decoded image.
- ``Original``: the uncoded image (0 bytes): the clean ceiling and the label-free references.

Each ``run`` yields, per image, the bytes sent and the image each task sees. Each system
also has a ``recipe`` (plain JSON: where its weights are, which quality) from which
``system_from_recipe`` rebuilds it in another process, so evaluation workers never
receive a pickled model.
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
    recipe: dict | None = None  # None: this system cannot be rebuilt elsewhere (built from an object)

    def run(self, sample: Sample, tasks: list[str]) -> Decoded:
        raise NotImplementedError


class AllInOne(System):
    def __init__(self, model: OmniCodec, label: str, name: str = "all-in-one", source: str | None = None):
        self.model, self.label, self.name = model, label, name
        self.recipe = {"kind": "all-in-one", "checkpoint": source} if source else None

    @torch.no_grad()
    def run(self, sample: Sample, tasks: list[str]) -> Decoded:
        x = sample.image[None]
        data = self.model.encode(x).to_bytes()
        stream, y_hat = self.model.decode_latent(data)  # entropy-decode ONCE for all tasks
        self.model.check_stream_adaptor(stream)
        views = self.model.reconstruct(stream, y_hat, tasks, human=True)
        return Decoded(len(data), views, self.model.estimate_bpp(x), extra={"latent_decodes": 1})


class FrozenCodec(System):
    def __init__(self, model: OmniCodec, label: str, name: str = "frozen codec"):
        self.model, self.label, self.name = model, label, name
        spec = model.codec.spec
        self.recipe = {"kind": "frozen", "arch": spec.arch, "quality": spec.quality, "checkpoint": spec.checkpoint}

    @torch.no_grad()
    def run(self, sample: Sample, tasks: list[str]) -> Decoded:
        x = sample.image[None]
        data = self.model.encode(x).to_bytes()
        human = self.model.decode(data, human=True)[HUMAN]
        return Decoded(len(data), {HUMAN: human, **{t: human for t in tasks}}, self.model.estimate_bpp(x))


class PerTaskAdaptors(System):
    def __init__(self, models: dict[str, OmniCodec], label: str, name: str = "per-task adaptors",
                 sources: dict[str, str] | None = None):
        self.models, self.label, self.name = models, label, name
        self.recipe = {"kind": "per-task", "checkpoints": sources, "label": label} if sources else None

    @torch.no_grad()
    def run(self, sample: Sample, tasks: list[str]) -> Decoded:
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
        view = model.decode(data, human=True)[HUMAN]  # the codec's own reconstruction, tuned for the task
        return {task: view, **({HUMAN: view} if human else {})}


def finetuned_codecs(arch: str, quality: int, checkpoints: dict[str, str],
                     fingerprints: dict[str, str] | None = None) -> dict[str, OmniCodec]:
    """Each task's fine-tuned codec (``arch`` at ``quality``, weights from its checkpoint);
    with ``fingerprints``, a file whose weights changed since is refused by name."""
    from omnicodec.codec import CodecSpec, load_codec
    from omnicodec.errors import CheckpointError

    models = {}
    for task, path in checkpoints.items():
        codec = load_codec(CodecSpec(arch=arch, quality=quality, checkpoint=path))
        want = (fingerprints or {}).get(task)
        if want and codec.fingerprint != want:
            raise CheckpointError(f"{path} (task {task}): codec fingerprint {codec.fingerprint[:12]}, "
                                  f"expected {want[:12]}: the file changed after this evaluation was planned")
        models[task] = OmniCodec(codec, with_adaptors=False)
    return models


class PilCodec(System):
    """An image format PIL writes (JPEG, WebP) at one quality setting."""

    format = ""

    def __init__(self, quality: int, name: str | None = None):
        self.quality, self.label, self.name = quality, f"Q{quality}", name or self.format
        self.recipe = {"kind": self.format.lower(), "quality": quality}

    def run(self, sample: Sample, tasks: list[str]) -> Decoded:
        buf = io.BytesIO()
        to_pil(sample.image).save(buf, format=self.format, quality=self.quality)
        decoded = to_tensor(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
        return Decoded(buf.tell(), {HUMAN: decoded, **{t: decoded for t in tasks}})


class Jpeg(PilCodec):
    format = "JPEG"


class WebP(PilCodec):
    format = "WebP"


class Original(System):
    """The image itself, uncoded: what the task networks' clean scores and references use."""

    name, label, recipe = "original", "clean", {"kind": "original"}

    def run(self, sample: Sample, tasks: list[str]) -> Decoded:
        return Decoded(0, {t: sample.image[None] for t in tasks})


def system_from_recipe(recipe: dict) -> System:
    """Rebuild a system in a worker process from its recipe."""
    from omnicodec.codec import CodecSpec, load_codec

    kind = recipe.get("kind")
    if kind == "all-in-one":
        return AllInOne(OmniCodec.from_checkpoint(recipe["checkpoint"]), "", source=recipe["checkpoint"])
    if kind == "frozen":
        codec = load_codec(CodecSpec(arch=recipe["arch"], quality=recipe["quality"],
                                     checkpoint=recipe.get("checkpoint")))
        return FrozenCodec(OmniCodec(codec, with_adaptors=False), f"q{recipe['quality']}")
    if kind == "per-task":
        models = {t: OmniCodec.from_checkpoint(c) for t, c in recipe["checkpoints"].items()}
        return PerTaskAdaptors(models, recipe["label"], sources=recipe["checkpoints"])
    if kind == "finetuned":
        models = finetuned_codecs(recipe["arch"], recipe["quality"], recipe["checkpoints"], recipe["fingerprints"])
        return PerTaskCodecs(models, recipe["label"], sources=recipe["checkpoints"])
    if kind in ("jpeg", "webp"):
        return (Jpeg if kind == "jpeg" else WebP)(int(recipe["quality"]))
    if kind == "original":
        return Original()
    raise ValueError(f"unknown system recipe {recipe}")
