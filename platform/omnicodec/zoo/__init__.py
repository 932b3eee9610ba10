"""Weights that ship with omnicodec: small codecs and frozen task networks.

Nothing here is downloaded. Each artifact is ``weights/<name>.safetensors`` plus
``weights/<name>.json``, the JSON recording the exact command, data and metrics that
produced it (``omnicodec pretrain`` reproduces every one of them). Names:

- ``codec-<arch>-q<quality>``: a codec state dict (e.g. ``codec-mbt2018-mean-small-q3``);
- ``task-<name>``: a task network trained on the scene shards (``task-seg``, ...).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omnicodec.errors import CheckpointError

if TYPE_CHECKING:  # torch is imported where weights are read or written: `omnicodec info` stays fast
    import torch

WEIGHTS_DIR = Path(__file__).parent / "weights"


def artifact_name(kind: str, name: str, quality: int | None = None) -> str:
    """``quality=None``: a variable-rate codec, one artifact for every rate."""
    if kind != "codec":
        return f"task-{name}"
    return f"codec-{name}" if quality is None else f"codec-{name}-q{quality}"


def available() -> list[dict[str, Any]]:
    """Every bundled artifact with its recorded card (command, data, metrics)."""
    return [dict(json.loads(p.read_text()), name=p.stem) for p in sorted(WEIGHTS_DIR.glob("*.json"))]


def imagenet_classes() -> list[str]:
    """The 1000 ImageNet-1k class names in the standard index order (EfficientNet-Lite0's
    output order), shipped as ``imagenet_classes.txt`` (taken from torchvision's metadata)."""
    return (Path(__file__).parent / "imagenet_classes.txt").read_text().splitlines()


def codec_for_fingerprint(fingerprint_hex: str) -> dict[str, Any] | None:
    """The bundled codec card whose fingerprint starts with ``fingerprint_hex`` (from JSON
    cards only: no weights are read)."""
    for c in available():
        if c.get("kind") == "codec" and str(c.get("fingerprint", "")).startswith(fingerprint_hex):
            return c
    return None


def card(name: str) -> dict[str, Any]:
    """A bundled artifact's card: ``NAME.json`` beside a weights file (codecs, task networks),
    or ``NAME/card.json`` inside an adaptor set's folder."""
    for path in (WEIGHTS_DIR / f"{name}.json", WEIGHTS_DIR / name / "card.json"):
        if path.exists():
            return json.loads(path.read_text())
    raise CheckpointError(_missing(name))


def load_weights(name: str) -> dict[str, torch.Tensor]:
    """An artifact's state dict in fp32. Parameters stored as fp16 load to exactly the fp32
    values the artifact was evaluated (and its fingerprint computed) with."""
    import torch
    from safetensors.torch import load_file

    path = weights_file(name)
    return {k: (v.float() if v.dtype == torch.float16 else v) for k, v in load_file(str(path)).items()}


def weights_file(name: str) -> Path:
    """Where ``name``'s weights are: this package's folder, else ``$OMNICODEC_ZOO_DIR``, else an
    installed copy of omnicodec on ``sys.path``. ``omnicodec submit`` ships code and JSON cards
    but not the large weights (Ray caps a job's upload at 100 MiB): on a cluster they come from
    the image's installed package. Callers check the card's fingerprint, so a copy from another
    version is refused, not used."""
    import sys

    dirs = [WEIGHTS_DIR]
    if os.environ.get("OMNICODEC_ZOO_DIR"):
        dirs.append(Path(os.environ["OMNICODEC_ZOO_DIR"]))
    dirs += [Path(p) / "omnicodec" / "zoo" / "weights" for p in sys.path if p]
    for d in dirs:
        if (d / f"{name}.safetensors").is_file():
            return d / f"{name}.safetensors"
    raise CheckpointError(_missing(name))


def round_parameters_to_fp16(model: torch.nn.Module) -> torch.nn.Module:
    """Round every fp32 parameter to the nearest fp16 value (kept as fp32), in place.

    Done before a codec is frozen, evaluated and fingerprinted, so that storing its
    parameters as fp16 halves the file and loses nothing: what ships is what was measured.
    Buffers (CDF tables, scale tables) stay as they are."""
    import torch

    with torch.no_grad():
        for p in model.parameters():
            if p.dtype == torch.float32:
                p.copy_(p.half().float())
    return model


def load_codec_weights(arch: str, quality: int | None) -> dict[str, torch.Tensor]:
    return load_weights(artifact_name("codec", arch, quality))


def save_artifact(name: str, state: dict[str, torch.Tensor], card: dict[str, Any], directory: Path | None = None,
                  fp16_keys: set[str] | None = None) -> Path:
    """Write ``<name>.safetensors`` and ``<name>.json`` (used by ``omnicodec pretrain``).

    ``fp16_keys``: tensors to store as fp16; they must already hold fp16-exact values
    (:func:`round_parameters_to_fp16`), which is checked."""
    import torch
    from safetensors.torch import save_file

    directory = Path(directory or WEIGHTS_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    for k in fp16_keys or ():
        half = state[k].half()
        if not torch.equal(half.float(), state[k]):
            raise CheckpointError(f"{name}: tensor {k} is not fp16-exact; round it before saving")
        state[k] = half
    save_file(state, str(directory / f"{name}.safetensors"))
    (directory / f"{name}.json").write_text(json.dumps(card, indent=2) + "\n")
    return directory / f"{name}.safetensors"


def _missing(name: str) -> str:
    have = ", ".join(p.stem for p in sorted(WEIGHTS_DIR.glob("*.safetensors"))) or "none"
    if (WEIGHTS_DIR / f"{name}.json").is_file():  # its card is here, its weights did not travel (a Ray job)
        return (f"the weights of bundled artifact '{name}' are not on this machine (its card is in {WEIGHTS_DIR}; "
                "a Ray job's upload leaves the weights out): set OMNICODEC_ZOO_DIR to a folder holding "
                f"{name}.safetensors (in the environment of `ray start`, or of `omnicodec submit` for a cluster on "
                "the submitting machine, which passes its own), or install omnicodec in the cluster's image")
    return (f"bundled artifact '{name}' is not in {WEIGHTS_DIR} (have: {have}); "
            "`omnicodec zoo` lists the bundled names, `omnicodec pretrain` trains new ones")
