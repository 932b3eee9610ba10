"""Weights that ship with omnicodec: small codecs and frozen task networks.

Nothing here is downloaded. Each artifact is ``weights/<name>.safetensors`` plus
``weights/<name>.json``, the JSON recording the exact command, data and metrics that
produced it (``omnicodec pretrain`` reproduces every one of them). Names:

- ``codec-<arch>-q<quality>``: a codec state dict (e.g. ``codec-mbt2018-mean-small-q3``);
- ``task-<name>``: a task network trained on the scene shards (``task-seg``, ...).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from omnicodec.errors import CheckpointError

WEIGHTS_DIR = Path(__file__).parent / "weights"


def artifact_name(kind: str, name: str, quality: int | None = None) -> str:
    return f"codec-{name}-q{quality}" if kind == "codec" else f"task-{name}"


def available() -> list[dict[str, Any]]:
    """Every bundled artifact with its recorded card (command, data, metrics)."""
    return [dict(json.loads(p.read_text()), name=p.stem) for p in sorted(WEIGHTS_DIR.glob("*.json"))]


def card(name: str) -> dict[str, Any]:
    path = WEIGHTS_DIR / f"{name}.json"
    if not path.exists():
        raise CheckpointError(_missing(name))
    return json.loads(path.read_text())


def load_weights(name: str) -> dict[str, torch.Tensor]:
    path = WEIGHTS_DIR / f"{name}.safetensors"
    if not path.exists():
        raise CheckpointError(_missing(name))
    return load_file(str(path))


def load_codec_weights(arch: str, quality: int | None) -> dict[str, torch.Tensor]:
    return load_weights(artifact_name("codec", arch, quality))


def save_artifact(name: str, state: dict[str, torch.Tensor], card: dict[str, Any], directory: Path | None = None) -> Path:
    """Write ``<name>.safetensors`` and ``<name>.json`` (used by ``omnicodec pretrain``)."""
    directory = Path(directory or WEIGHTS_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    save_file(state, str(directory / f"{name}.safetensors"))
    (directory / f"{name}.json").write_text(json.dumps(card, indent=2) + "\n")
    return directory / f"{name}.safetensors"


def _missing(name: str) -> str:
    have = ", ".join(p.stem for p in sorted(WEIGHTS_DIR.glob("*.safetensors"))) or "none"
    return (f"bundled artifact '{name}' is not in {WEIGHTS_DIR} (have: {have}); "
            "`omnicodec pretrain` makes it")
