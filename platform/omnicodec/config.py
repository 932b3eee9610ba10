"""Typed configs: pydantic models that round-trip through YAML and fail loudly.

Every config the platform reads (training runs, sweeps, serving, adaptor architecture)
derives from ``Config``. Unknown keys are errors, wrong types are errors, and the message
names the key path (``optim.lr``) and the file, because a silently ignored typo in a
sweep costs a cluster-day.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from omnicodec import storage
from omnicodec.errors import ConfigError

C = TypeVar("C", bound="Config")


class Config(BaseModel):
    """Base of all configs: frozen field set, YAML in and out."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())
    # Keys holding user paths (``tasks.*.network.weights``: ``*`` is every list item). Loading a
    # config in the driver makes them absolute against the user's working directory, so Ray
    # workers, which run in other folders, read the same files; ``spec_path_keys`` are resolved
    # against the spec file's own folder instead (a sweep's ``train:``).
    path_keys: ClassVar[tuple[str, ...]] = ()
    spec_path_keys: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any], source: str = "config") -> C:
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            raise ConfigError(format_validation_error(e, source)) from None

    @classmethod
    def from_yaml(cls: type[C], location: str | Path, overrides: list[str] | None = None) -> C:
        """Load ``location`` (path or URL) and apply ``key.sub=value`` overrides."""
        source = str(location)
        try:
            text = storage.read_text(source)
        except FileNotFoundError:
            raise ConfigError(f"{source}: no such config file") from None
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{source}: not valid YAML: {e}") from None
        if isinstance(data, dict):
            data = resolve_paths(data, cls.spec_path_keys, storage.parent(storage.absolute(source)))
        data = apply_overrides(data, overrides or [])
        return cls.from_user_dict(data, source)

    @classmethod
    def from_user_dict(cls: type[C], data: dict[str, Any], source: str = "config") -> C:
        """``from_dict`` for what a user typed (a file, flags): its paths resolved here, in the driver."""
        return cls.from_dict(resolve_paths(data, cls.path_keys) if isinstance(data, dict) else data, source)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def format_validation_error(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "<root>"
        if e["type"] == "extra_forbidden":
            lines.append(f"unknown key '{key}'")
        elif e["type"] == "missing":
            lines.append(f"missing key '{key}'")
        else:
            lines.append(f"key '{key}': {e['msg']} (got {e.get('input')!r})")
    return f"{source}: " + "; ".join(lines)


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` strings; values are parsed as YAML (``1e-4``, ``[a, b]``);
    a numeric part indexes a list (``tasks.0.weight=2``)."""
    data = copy.deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}': expected key=value")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        node: Any = data
        parts = key.strip().split(".")
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ConfigError(f"override '{item}': '{part}' is not an index of a {len(node)}-item list")
                if last:
                    node[int(part)] = value
                else:
                    node = node[int(part)]
                continue
            if not isinstance(node, dict):
                raise ConfigError(f"override '{item}': '{parts[depth - 1]}' is not a section")
            if last:
                node[part] = value
            else:
                if node.get(part) is None:
                    node[part] = {}
                node = node[part]
    return data


def resolve_paths(data: dict[str, Any], keys: tuple[str, ...], base: str | None = None) -> dict[str, Any]:
    """A copy of ``data`` whose values at ``keys`` (a string or a list of them) are absolute
    paths, relative ones taken against ``base`` (default: the working directory); URLs
    (``s3://``), brace patterns and globs keep their form, missing keys are skipped."""
    data = copy.deepcopy(data)
    for key in keys:
        _resolve_at(data, key.split("."), base)
    return data


def _resolve_at(node: Any, parts: list[str], base: str | None) -> None:
    if not parts:
        return
    head, rest = parts[0], parts[1:]
    children = (range(len(node)) if head == "*" and isinstance(node, list) else
                [head] if isinstance(node, dict) and node.get(head) is not None else [])
    for k in children:
        if rest:
            _resolve_at(node[k], rest, base)
        elif isinstance(node[k], str):
            node[k] = storage.absolute(node[k], base)
        elif isinstance(node[k], list):
            node[k] = [storage.absolute(v, base) if isinstance(v, str) else v for v in node[k]]
