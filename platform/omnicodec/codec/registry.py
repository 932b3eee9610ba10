"""Which CompressAI architectures omnicodec can freeze, and how to load them.

An ``Architecture`` says which CompressAI class it is, its channel sizes per quality
(CompressAI's zoo table), and where adaptors go: the indices in ``g_a`` / ``g_s`` after
which the N-channel stages sit (after each GDN / inverse GDN, or after each residual
block at 1/2, 1/4, 1/8 resolution for Cheng2020). Weights come from, in order: a
checkpoint path or URL the user gives; the weights bundled with omnicodec (the
``*-small`` architectures, trained here by ``omnicodec pretrain codec``); CompressAI's
zoo download (the real code path; it fails offline, with a message saying what to do).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from compressai.models import Cheng2020Anchor, CompressionModel, MeanScaleHyperprior, ScaleHyperprior
from compressai.zoo.image import cfgs as ZOO_SIZES
from compressai.zoo.pretrained import load_pretrained
from pydantic import field_validator

from omnicodec import storage
from omnicodec.codec.fingerprint import codec_fingerprint
from omnicodec.codec.gain import GainedMeanScaleHyperprior
from omnicodec.codec.latent import LatentCodec
from omnicodec.config import Config
from omnicodec.errors import CheckpointError, OmnicodecError
from omnicodec.registry import Registry

# Channel sizes (N, M) of the bundled small codecs: a quarter of CompressAI's low-rate
# mbt2018-mean (128, 192) in compute, so that pretraining and adaptor training fit a
# 2-core CPU budget. Same class, same code paths, fewer channels.
SMALL_SIZES = (64, 96)
# CompressAI's own channel sizes for mbt2018-mean qualities 1-5.
PHOTO_SIZES = (128, 192)


@dataclass(frozen=True)
class Architecture:
    name: str
    model_class: type[CompressionModel]
    sizes: dict[int, tuple[int, ...]]
    analysis_taps: tuple[int, int, int]  # g_a indices followed by an S-Adaptor
    synthesis_taps: tuple[int, int, int]  # g_s indices followed by a T-Adaptor
    bundled: bool = False  # weights ship with omnicodec (omnicodec.zoo)
    zoo_name: str | None = None  # CompressAI zoo name when weights can be downloaded
    variable_rate: bool = False  # one set of weights, the quality picks a gain level (codec/gain.py)
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def build(self, quality: int) -> CompressionModel:
        if quality not in self.sizes:
            raise OmnicodecError(
                f"{self.name}: quality {quality} does not exist (choose from {sorted(self.sizes)})"
            )
        model = self.model_class(*self.sizes[quality])
        if self.variable_rate:
            model.position = float(min(quality - 1, model.levels - 1))
        return model

    def stored_quality(self, quality: int | None) -> int | None:
        """The quality its bundled weights and card are stored under (``zoo.artifact_name``):
        None for a variable-rate codec, whose ONE artifact serves every rate."""
        return None if self.variable_rate else quality

    def stage_channels(self, model: CompressionModel) -> int:
        return int(model.N)


_GDN_TAPS = (1, 3, 5)
# the registry: one ``add`` per architecture (a new one is one more Architecture below)
ARCHITECTURES: Registry[Architecture] = Registry("codec architecture")
for _arch in [
    Architecture(
        "bmshj2018-hyperprior", ScaleHyperprior, ZOO_SIZES["bmshj2018-hyperprior"],
        _GDN_TAPS, _GDN_TAPS, zoo_name="bmshj2018-hyperprior",
        description="Balle et al. 2018 scale hyperprior",
    ),
    Architecture(
        "mbt2018-mean", MeanScaleHyperprior, ZOO_SIZES["mbt2018-mean"],
        _GDN_TAPS, _GDN_TAPS, zoo_name="mbt2018-mean",
        description="Minnen et al. 2018 mean-scale hyperprior (the default)",
    ),
    Architecture(
        "cheng2020-anchor", Cheng2020Anchor, ZOO_SIZES["cheng2020-anchor"],
        (1, 3, 5), (2, 4, 6), zoo_name="cheng2020-anchor",
        description="Cheng et al. 2020 anchor (residual blocks, autoregressive context)",
    ),
    Architecture(
        "mbt2018-mean-small", MeanScaleHyperprior, {q: SMALL_SIZES for q in range(1, 9)},
        _GDN_TAPS, _GDN_TAPS, bundled=True,
        description=f"mbt2018-mean at N,M={SMALL_SIZES}, weights bundled (trained offline here)",
    ),
    Architecture(
        "mbt2018-mean-photo", MeanScaleHyperprior, {q: PHOTO_SIZES for q in range(1, 9)},
        _GDN_TAPS, _GDN_TAPS, bundled=True,
        description=f"mbt2018-mean at CompressAI's N,M={PHOTO_SIZES}, weights bundled (trained here on "
                    "the real-photo corpus, stored as fp16 parameters that load to the same fp32 values)",
    ),
    Architecture(
        "mbt2018-mean-photo-vr", GainedMeanScaleHyperprior, {q: PHOTO_SIZES for q in range(1, 9)},
        _GDN_TAPS, _GDN_TAPS, bundled=True, variable_rate=True,
        description="the photo codec with gain units: ONE set of weights for 8 rate levels (quality 1-8) "
                    "and every rate between them (encode --lmbda); streams record their rate",
    ),
    Architecture(
        "bmshj2018-hyperprior-small", ScaleHyperprior, {q: SMALL_SIZES for q in range(1, 9)},
        _GDN_TAPS, _GDN_TAPS,
        description=f"bmshj2018-hyperprior at N,M={SMALL_SIZES} (for tests and pretraining)",
    ),
    Architecture(
        "cheng2020-anchor-small", Cheng2020Anchor, {q: (SMALL_SIZES[0],) for q in range(1, 9)},
        (1, 3, 5), (2, 4, 6),
        description=f"cheng2020-anchor at N={SMALL_SIZES[0]} (for tests and pretraining)",
    ),
]:
    ARCHITECTURES.add(_arch.name, _arch)


def get_architecture(name: str) -> Architecture:
    return ARCHITECTURES.get(name)


class CodecSpec(Config):
    """Where a frozen codec comes from; recorded in every adaptor checkpoint."""

    arch: str = "mbt2018-mean-small"
    quality: int | None = 3
    checkpoint: str | None = None  # path or fsspec URL; overrides quality

    @field_validator("arch")
    @classmethod
    def _known_arch(cls, v: str) -> str:
        get_architecture(v)
        return v

    @classmethod
    def parse(cls, ref: str, checkpoint: str | None = None) -> CodecSpec:
        """``ARCH[:QUALITY]`` as typed on the command line."""
        arch, _, q = ref.partition(":")
        try:
            quality = int(q) if q else None
        except ValueError:
            raise OmnicodecError(f"--codec '{ref}': quality must be an integer") from None
        if quality is None and checkpoint is None:
            quality = 3 if get_architecture(arch).bundled else 1
        return cls(arch=arch, quality=quality, checkpoint=checkpoint)

    def label(self) -> str:
        return f"{self.arch}:{self.quality}" if self.checkpoint is None else f"{self.arch}@{self.checkpoint}"


@dataclass
class FrozenCodec:
    """A loaded, frozen, ``update()``-d codec with its identity."""

    model: CompressionModel
    arch: Architecture
    spec: CodecSpec
    fingerprint: str

    def __post_init__(self) -> None:
        self.latent = LatentCodec(self.model)

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


def build_codec(arch: str, quality: int) -> CompressionModel:
    """A freshly initialised (trainable) model, for pretraining."""
    return get_architecture(arch).build(quality)


def load_codec_state_dict(location: str) -> dict[str, torch.Tensor]:
    """Read a codec checkpoint: a bare ``state_dict``, CompressAI's ``{"state_dict": ...}``
    training checkpoint, or a safetensors file. Never unpickles arbitrary objects."""
    try:
        if str(location).endswith(".safetensors"):
            from safetensors.torch import load

            return load(storage.read_bytes(location))
        with storage.open_file(location, "rb") as f:
            obj = torch.load(f, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"codec checkpoint {location}: no such file") from None
    except Exception as e:  # unpickling errors have many types
        raise CheckpointError(f"codec checkpoint {location}: unreadable ({type(e).__name__}: {e})") from None
    if isinstance(obj, dict) and "state_dict" in obj:
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"codec checkpoint {location}: not a state dict of tensors")
    return load_pretrained(obj)  # CompressAI's key renames (DataParallel, old names)


def freeze(model: CompressionModel) -> CompressionModel:
    """Freeze every parameter (entropy-model quantiles included) and build the CDF tables
    only where the checkpoint has none. Tables a checkpoint carries (every bundled codec's
    do) are used as stored: recomputing them runs float ``exp``/``erfc`` kernels that round
    differently on other CPUs, and a table that moves by one count desyncs the range coder.
    Streams carry a digest of the tables they were coded with (``LatentCodec.entropy_check``)."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    model.update(force=False)
    return model


def load_codec(spec: CodecSpec | str, checkpoint: str | None = None) -> FrozenCodec:
    """Load, freeze and fingerprint a codec (see module docstring for the sources)."""
    if isinstance(spec, str):
        spec = CodecSpec.parse(spec, checkpoint)
    arch = get_architecture(spec.arch)
    if spec.checkpoint is not None:
        state = load_codec_state_dict(spec.checkpoint)
        try:
            model = arch.model_class.from_state_dict(state)
        except (KeyError, RuntimeError, ValueError) as e:
            raise CheckpointError(
                f"codec checkpoint {spec.checkpoint} does not fit architecture {arch.name}: "
                f"{str(e).splitlines()[0][:300]}"
            ) from None
    elif arch.bundled:
        from omnicodec import zoo

        model = arch.build(spec.quality)
        model.load_state_dict(zoo.load_codec_weights(arch.name, arch.stored_quality(spec.quality)))
    else:
        model = _download_zoo(arch, spec.quality)
    if arch.variable_rate and spec.quality is not None:
        model.position = float(min(max(spec.quality - 1, 0), model.levels - 1))
    freeze(model)
    codec = FrozenCodec(model, arch, spec, codec_fingerprint(model, arch.name))
    if spec.checkpoint is None and arch.bundled:
        _check_card(codec)
    return codec


def _check_card(codec: FrozenCodec) -> None:
    """Bundled weights must be the ones their card measured (weights may come from another
    installed copy of omnicodec: see ``zoo.weights_file``)."""
    from omnicodec import zoo

    name = zoo.artifact_name("codec", codec.arch.name, codec.arch.stored_quality(codec.spec.quality))
    recorded = zoo.card(name).get("fingerprint")
    if recorded and recorded != codec.fingerprint:
        raise CheckpointError(f"bundled codec {name}: its weights have fingerprint {codec.fingerprint[:16]}, "
                              f"its card records {recorded[:16]}; refusing weights from another version")


def _download_zoo(arch: Architecture, quality: int | None) -> CompressionModel:
    from compressai.zoo.image import _load_model

    if arch.zoo_name is None:
        raise OmnicodecError(
            f"{arch.name} has no bundled or downloadable weights; pass --codec-checkpoint"
        )
    try:
        return _load_model(arch.zoo_name, "mse", quality, pretrained=True, progress=False)
    except ValueError as e:
        raise OmnicodecError(f"{arch.name}: {e}") from None
    except Exception as e:
        raise OmnicodecError(
            f"could not download CompressAI zoo weights for {arch.name}:{quality} "
            f"({type(e).__name__}); offline, pass --codec-checkpoint PATH_OR_URL or use a "
            "bundled codec such as mbt2018-mean-small:3"
        ) from None
