"""Per-image records kept on disk, so a new system is evaluated against a dozen old ones
without coding and scoring the old ones again.

The expensive half of an evaluation (``omnicodec.eval.predict``) turns (system, shard) into
per-image records. Those records depend only on what the system is (its recipe and the
weights it holds), the shard's bytes, the tasks' networks and this package's version, so
they are stored under a key hashed from exactly those. Anything that changes a record
changes the key: retrain an adaptor at the same path and its weights hash differs; rebuild
the test set and the shard hash differs. A system built from objects (no recipe) is never
cached.

Records are stored as safetensors (tensors) plus their JSON skeleton in the file's
metadata: reading a cache entry never unpickles anything.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import posixpath
import tempfile
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from omnicodec import __version__
from omnicodec.eval.predict import Chunk, Predictor
from omnicodec.eval.systems import System

FORMAT = 2  # 2: portable coding and container v2 (streams 2 bytes shorter, exact entropy parameters)


def system_digest(system: System) -> str | None:
    """sha256 of a system's recipe and of every weight it holds (None: no recipe)."""
    if system.recipe is None:
        return None
    h = hashlib.sha256(json.dumps(system.recipe, sort_keys=True, default=str).encode())
    for name, module in sorted(_modules(system).items()):
        h.update(name.encode())
        for key, t in sorted(module.state_dict().items()):
            h.update(key.encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _modules(system: System) -> dict[str, torch.nn.Module]:
    out = {}
    for attr, value in vars(system).items():
        if isinstance(value, torch.nn.Module):
            out[attr] = value
        elif isinstance(value, dict):
            out.update({f"{attr}.{k}": v for k, v in value.items() if isinstance(v, torch.nn.Module)})
    return out


def tasks_digest(tasks: list[str]) -> str:
    """The tasks' definitions and, for bundled networks, their zoo cards (weights and version)."""
    from omnicodec import zoo
    from omnicodec.tasks.registry import get_task

    parts = []
    for t in tasks:
        info = get_task(t)
        parts.append({"task": info.to_dict(), "bundled": zoo.card(info.bundled) if info.bundled else None})
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _versions() -> dict[str, str]:
    """Libraries whose upgrade may change a record (entropy coder, image formats, networks)."""
    import compressai
    import PIL

    return {"omnicodec": __version__, "torch": torch.__version__, "compressai": compressai.__version__,
            "pillow": PIL.__version__}


# ------------------------------------------------------------------ record <-> safetensors
def _pack(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, torch.Tensor | np.ndarray):
        name = f"t{len(tensors)}"
        t = torch.from_numpy(np.ascontiguousarray(obj)) if isinstance(obj, np.ndarray) else obj.detach().cpu()
        tensors[name] = t.contiguous().clone()
        return {"__tensor__": name, "numpy": isinstance(obj, np.ndarray)}
    if isinstance(obj, dict):
        if not all(isinstance(k, str) for k in obj):
            raise TypeError("record dict keys must be strings")
        return {k: _pack(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return {"__seq__": [_pack(v, tensors) for v in obj], "tuple": isinstance(obj, tuple)}
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    raise TypeError(f"cannot store a {type(obj).__name__} in a record")


def _unpack(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            t = tensors[obj["__tensor__"]]
            return t.numpy() if obj["numpy"] else t
        if "__seq__" in obj:
            items = [_unpack(v, tensors) for v in obj["__seq__"]]
            return tuple(items) if obj["tuple"] else items
        return {k: _unpack(v, tensors) for k, v in obj.items()}
    return obj


class RecordCache:
    """A folder of per-(system, shard) record files."""

    def __init__(self, root: str, tasks: list[str], shard_sha256: dict[str, str]):
        self.root = os.path.expanduser(root)
        self.tasks_key = tasks_digest(tasks)
        self.shard_sha256 = shard_sha256
        self.reused: list[str] = []
        self.computed: list[str] = []

    def key(self, digest: str, chunk: Chunk) -> str:
        shard = self.shard_sha256[posixpath.basename(chunk.shard)]
        body = json.dumps([FORMAT, _versions(), digest, shard, chunk.count, self.tasks_key])
        return hashlib.sha256(body.encode()).hexdigest()

    def _path(self, key: str) -> str:
        return os.path.join(self.root, key[:2], f"{key}.safetensors")

    def get(self, key: str) -> list[dict[str, Any]] | None:
        path = self._path(key)
        if not os.path.exists(path):
            return None
        from safetensors import safe_open

        with safe_open(path, "pt") as f:
            meta = f.metadata() or {}
        if "records" not in meta:
            return None
        return _unpack(json.loads(meta["records"]), load_file(path))

    def put(self, key: str, records: list[dict[str, Any]]) -> None:
        tensors: dict[str, torch.Tensor] = {}
        skeleton = json.dumps(_pack(records, tensors))
        path = self._path(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".part")
        os.close(fd)
        try:
            save_file(tensors, tmp, metadata={"records": skeleton})
            os.replace(tmp, path)  # readers never see half a file
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def _all_chunks(self, keys: list[str]) -> list[dict[str, Any]] | None:
        """A system's records from every chunk, or None at the first chunk not cached (the
        system is then computed whole; no further chunk is read for nothing)."""
        records: list[dict[str, Any]] = []
        for k in keys:
            got = self.get(k)
            if got is None:
                return None
            records.extend(got)
        return records

    def wrap(self, inner: Predictor) -> Predictor:
        """A predictor that serves whole systems from the cache and asks ``inner`` for the rest."""

        def predict(systems, chunks: list[Chunk], samples, tasks, bar):
            keys = []
            for s in systems:
                digest = system_digest(s)
                keys.append([self.key(digest, c) for c in chunks] if digest else None)
            out: list[list[dict[str, Any]] | None] = [None] * len(systems)
            for i, ks in enumerate(keys):
                got = self._all_chunks(ks) if ks else None
                if got is not None:
                    out[i] = got
                    self.reused.append(f"{systems[i].name} {systems[i].label}".strip())
                    bar.update(len(got))
            todo = [i for i, o in enumerate(out) if o is None]
            stored: set[int] = set()

            def store(k: int, records: list[dict[str, Any]]) -> None:
                i = todo[k]
                if keys[i] and i not in stored:
                    start = 0
                    for key, c in zip(keys[i], chunks):
                        self.put(key, records[start:start + c.count])
                        start += c.count
                    stored.add(i)

            if todo:
                subset = [systems[i] for i in todo]
                takes_hook = "on_done" in inspect.signature(inner).parameters
                fresh = inner(subset, chunks, samples, tasks, bar, **({"on_done": store} if takes_hook else {}))
                for k, (i, records) in enumerate(zip(todo, fresh)):
                    out[i] = records
                    self.computed.append(f"{systems[i].name} {systems[i].label}".strip())
                    store(k, records)
            return out

        return predict
