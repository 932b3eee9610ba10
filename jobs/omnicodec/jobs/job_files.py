"""The user's own files for a Ray Job: staged on the submitting machine, run from on the cluster.

``omnicodec submit -- train my.yaml`` must carry ``my.yaml`` and the files it names (a brought
network's weights, a sweep's training YAML): the checkout alone is the job's ``working_dir``.
They are copied into one folder, ``omnicodec_job_files``, that travels as a ``py_modules``
entry, their references rewritten to names in that folder (inside staged YAMLs too), and the
job runs its command from that folder (``python -m omnicodec.cli._job ARGS``), so the
job's driver resolves them (and every other relative path) there, once, as a local run does.

Other local paths (shard folders and patterns, run storage, outputs) do not travel: on a
cluster that runs on this machine they are made absolute; elsewhere they must name shared
storage (``s3://``, NFS).
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from omnicodec import storage

PACKAGE = "omnicodec_job_files"
MAX_FILE_BYTES = 50 * 2**20  # larger inputs (shards, codecs) belong on shared storage
OUTPUT_FLAGS = ("-o", "--out", "--export", "--storage", "--records-cache")
YAML_SUFFIXES = (".yaml", ".yml")


class Stager:
    """Copies files into ``folder`` and rewrites references; ``local``: the cluster shares this disk."""

    def __init__(self, folder: str, local: bool):
        self.folder, self.local = folder, local
        self.staged: dict[str, str] = {}  # absolute source -> name in the folder
        os.makedirs(folder, exist_ok=True)
        open(os.path.join(folder, "__init__.py"), "w").close()

    def path(self, value: str, base: str | None = None, yaml_keys: tuple[str, ...] = ()) -> str:
        """One path as typed: a small local file travels (its new name returned), any other local
        path is made absolute on a cluster of this machine, URLs and names stay as they are."""
        if storage.is_url(value) or not value:
            return value
        resolved = storage.absolute(value, base)
        if os.path.isfile(resolved) and os.path.getsize(resolved) <= MAX_FILE_BYTES:
            return self.file(resolved, yaml_keys)
        if self.local and _exists(resolved):
            return resolved
        return value

    def file(self, source: str, yaml_keys: tuple[str, ...]) -> str:
        if source in self.staged:
            return self.staged[source]
        name = os.path.basename(source)
        while name in self.staged.values() or name == "__init__.py":
            name = "_" + name
        self.staged[source] = name
        target = os.path.join(self.folder, name)
        if source.endswith(YAML_SUFFIXES):
            self.write_yaml(source, target, yaml_keys)
        else:
            shutil.copyfile(source, target)
        return name

    def write_yaml(self, source: str, target: str, keys: tuple[str, ...]) -> None:
        """A config YAML with its path keys staged: paths against the user's working directory,
        a sweep's own ``train:`` against the YAML's folder (the rules of ``Config.path_keys``)."""
        import yaml

        from omnicodec.jobs.specs import ADAPTOR_PATH_KEYS

        data = yaml.safe_load(open(source).read())
        if isinstance(data, dict):
            for key in keys:
                _map_at(data, key.split("."), lambda v: self.path(v))
            if "search" in data and isinstance(data.get("train"), str):  # a sweep spec
                train = data["train"]
                from omnicodec.jobs.shipped import find_spec

                own = storage.absolute(train, os.path.dirname(source))
                data["train"] = self.path(own if os.path.isfile(own) else find_spec(own, by_basename=True),
                                          yaml_keys=ADAPTOR_PATH_KEYS)
        with open(target, "w") as f:
            yaml.safe_dump(data, f, sort_keys=False)


def _exists(path: str) -> bool:
    """A file, a folder, or a glob / brace pattern matching something (shards)."""
    import glob

    import braceexpand

    if os.path.exists(path) or glob.glob(path):
        return True
    try:
        return "{" in path and os.path.exists(next(iter(braceexpand.braceexpand(path))))
    except Exception:  # noqa: BLE001 - not a brace pattern after all
        return False


def _map_at(node: Any, parts: list[str], fn) -> None:
    head, rest = parts[0], parts[1:]
    keys = range(len(node)) if head == "*" and isinstance(node, list) else \
        [head] if isinstance(node, dict) and node.get(head) is not None else []
    for k in keys:
        if rest:
            _map_at(node[k], rest, fn)
        elif isinstance(node[k], str):
            node[k] = fn(node[k])
        elif isinstance(node[k], list):
            node[k] = [fn(v) if isinstance(v, str) else v for v in node[k]]


def stage_command(args: list[str], folder: str, local: bool) -> list[str]:
    """``args`` of an omnicodec command with the user's files staged in ``folder`` (see the module
    docstring); a train/sweep config by shipped name stays a name (the job's checkout has it)."""
    from omnicodec.jobs.specs import ADAPTOR_PATH_KEYS

    stager = Stager(folder, local)
    keys = {"train": ADAPTOR_PATH_KEYS, "sweep": ("storage", "eval_data")}.get(args[0] if args else "", ())
    out: list[str] = []
    for i, arg in enumerate(args):
        prev = args[i - 1] if i else ""
        if prev == "--set" and "=" in arg:
            key, value = arg.split("=", 1)
            if _is_path_key(key) and not value.lstrip().startswith(("[", "{")):
                value = stager.path(value, yaml_keys=ADAPTOR_PATH_KEYS)
            out.append(f"{key}={value}")
        elif arg.startswith("-") or i == 0:
            out.append(arg)
        elif prev in OUTPUT_FLAGS:
            out.append(storage.absolute(arg) if local and not storage.is_url(arg) else arg)
        else:
            out.append(stager.path(arg, yaml_keys=keys))
    return out


def _is_path_key(key: str) -> bool:
    from omnicodec.jobs.specs import ADAPTOR_PATH_KEYS

    key = key.removeprefix("train.")
    return key in ("storage", "train", "eval_data") or any(
        key == k or key.endswith("." + k.rsplit(".", 1)[-1]) and k.endswith(".weights") for k in ADAPTOR_PATH_KEYS)


def enter_staged_folder() -> None:
    """Job side: work from the staged folder (found on the job's import path), as the user's
    command ran from theirs; ``omnicodec.cli._job`` then runs ``omnicodec ARGS`` here."""
    import importlib.util

    spec = importlib.util.find_spec(PACKAGE)
    if spec is not None and spec.submodule_search_locations:
        os.chdir(list(spec.submodule_search_locations)[0])
