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


def runs_root() -> str:
    """Where ``omnicodec train`` writes runs by default ($OMNICODEC_HOME/runs)."""
    from omnicodec import home

    return storage.join(home(), "runs")


def resolve(location: str, runs: str | None = None) -> str:
    """Every way a user names adaptors, resolved to the folder holding ``adaptors.json``.

    Accepted, in this order: ``zoo:NAME`` (bundled); the adaptors folder itself; a checkpoint
    folder (``.../checkpoint_<ts>``, whose ``adaptors/`` is used); a run folder (its newest
    checkpoint); a run NAME under ``runs`` (default :func:`runs_root`). One helper, so that
    ``eval``, ``encode``, ``decode``, ``serve`` and ``--export`` agree."""
    location = str(location)
    if location.startswith("zoo:"):
        from omnicodec.zoo import WEIGHTS_DIR

        return str(WEIGHTS_DIR / location[4:])
    if storage.exists(storage.join(location, CONFIG)):
        return location
    if storage.exists(storage.join(location, "adaptors", CONFIG)):
        return storage.join(location, "adaptors")
    run_dir = location
    if not storage.exists(run_dir) and not storage.is_url(location) and "/" not in location:
        run_dir = storage.join(runs or runs_root(), location)
    if storage.exists(run_dir):
        return storage.join(newest_checkpoint(run_dir), "adaptors")
    raise CheckpointError(
        f"{location}: not an adaptor checkpoint (no {CONFIG}) and not a run. Give a run name (under "
        f"{runs or runs_root()}), a run folder, a checkpoint folder (checkpoint_<ts>), an adaptors folder "
        f"(with {CONFIG}) or zoo:NAME")


def newest_checkpoint(run_dir: str) -> str:
    """The newest ``checkpoint_<ts>`` folder of a run that holds adaptors (Ray's
    ``checkpoint_manager_snapshot.json`` and half-written folders are skipped)."""
    names = sorted(n for n in storage.listdir(run_dir) if n.startswith("checkpoint_") and not n.endswith(".json"))
    for name in reversed(names):
        if storage.exists(storage.join(run_dir, name, "adaptors", CONFIG)):
            return storage.join(run_dir, name)
    raise CheckpointError(f"run folder {run_dir} has no checkpoint with adaptors yet "
                          f"(found: {', '.join(names) or 'no checkpoint_* folders'})")


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
