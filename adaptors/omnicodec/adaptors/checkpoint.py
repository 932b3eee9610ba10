"""Adaptor checkpoints: adaptor-only weights (safetensors) plus a JSON config.

A checkpoint is a folder (local or any fsspec URL) holding

- ``adaptors.safetensors``: ``s.*`` (S-Adaptors), ``t.<task>.*`` (T-Adaptors), ``shared.*``;
- ``adaptors.json``: format and version, the adaptor architecture, the task names, the
  codec it was trained on (spec and full fingerprint), the S-Adaptor fingerprint, and
  free-form metadata (training config, metrics).

Nothing is pickled, so a checkpoint from an untrusted source cannot run code. Loading
onto a codec whose fingerprint differs from the recorded one is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from omnicodec import storage
from omnicodec.adaptors.config import AdaptorConfig
from omnicodec.errors import CheckpointError

FORMAT = "omnicodec.adaptors"
VERSION = 1
WEIGHTS = "adaptors.safetensors"
CONFIG = "adaptors.json"


@dataclass
class AdaptorCheckpoint:
    adaptor: AdaptorConfig
    tasks: list[str]
    codec: dict[str, Any]  # CodecSpec fields + "fingerprint"
    s_fingerprint: str
    state: dict[str, torch.Tensor]
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "adaptor": self.adaptor.to_dict(),
            "tasks": self.tasks,
            "codec": self.codec,
            "s_fingerprint": self.s_fingerprint,
            "metadata": self.metadata,
        }


def save_adaptors(location: str, ckpt: AdaptorCheckpoint) -> str:
    storage.makedirs(location)
    state = {k: v.detach().to("cpu").contiguous() for k, v in ckpt.state.items()}
    storage.write_bytes(storage.join(location, WEIGHTS), st_save(state, metadata={"format": FORMAT}))
    storage.write_text(storage.join(location, CONFIG), json.dumps(ckpt.to_json(), indent=2, sort_keys=False))
    return location


def resolve(location: str) -> str:
    """``zoo:NAME`` names an adaptor checkpoint bundled with omnicodec; anything else is a
    path or URL."""
    if str(location).startswith("zoo:"):
        from omnicodec.zoo import WEIGHTS_DIR

        return str(WEIGHTS_DIR / str(location)[4:])
    return str(location)


def read_config(location: str) -> dict[str, Any]:
    """Only the JSON half of a checkpoint (cheap: routers read it to learn fingerprints)."""
    location = resolve(location)
    try:
        return json.loads(storage.read_text(storage.join(location, CONFIG)))
    except FileNotFoundError:
        raise CheckpointError(f"{location}: not an adaptor checkpoint (no {CONFIG})") from None


def load_adaptors(location: str) -> AdaptorCheckpoint:
    location = resolve(location)
    cfg_path, w_path = storage.join(location, CONFIG), storage.join(location, WEIGHTS)
    try:
        meta = json.loads(storage.read_text(cfg_path))
    except FileNotFoundError:
        raise CheckpointError(f"{location}: not an adaptor checkpoint (no {CONFIG})") from None
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{cfg_path}: invalid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{cfg_path}: format is {meta.get('format') if isinstance(meta, dict) else None!r}, expected {FORMAT!r}")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"{cfg_path}: unsupported checkpoint version {meta.get('version')!r}")
    for key in ("adaptor", "tasks", "codec", "s_fingerprint"):
        if key not in meta:
            raise CheckpointError(f"{cfg_path}: missing field '{key}'")
    if "fingerprint" not in meta["codec"]:
        raise CheckpointError(f"{cfg_path}: missing field 'codec.fingerprint'")
    try:
        state = st_load(storage.read_bytes(w_path))
    except FileNotFoundError:
        raise CheckpointError(f"{location}: missing {WEIGHTS}") from None
    except Exception as e:
        raise CheckpointError(f"{w_path}: unreadable safetensors ({e})") from None
    return AdaptorCheckpoint(
        adaptor=AdaptorConfig.from_dict(meta["adaptor"], source=f"{cfg_path}: adaptor"),
        tasks=list(meta["tasks"]),
        codec=dict(meta["codec"]),
        s_fingerprint=str(meta["s_fingerprint"]),
        state=state,
        metadata=dict(meta.get("metadata") or {}),
    )
