"""The specs that ship with omnicodec (``jobs/omnicodec/jobs/specs/*.yaml``), addressable by name.

Users run omnicodec from their own folders, not from the clone: ``omnicodec train train`` (or
``train.yaml``, or the README's ``jobs/omnicodec/jobs/specs/train.yaml``) finds the shipped
spec when no such local file exists, as torchtune's recipes do. A local file always wins.
This module imports nothing heavy: ``--help`` lists the names.
"""

from __future__ import annotations

import os

SPECS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "specs")


def shipped_specs() -> list[str]:
    """The shipped specs' names (``train``, ``sweep``, ``curves``, ...)."""
    if not os.path.isdir(SPECS_DIR):
        return []
    return sorted(n[:-len(".yaml")] for n in os.listdir(SPECS_DIR) if n.endswith(".yaml"))


def find_spec(location: str, by_basename: bool = False) -> str:
    """``location`` as typed: an existing local file (made absolute) or a URL as it is; else
    the shipped spec it names (``NAME``, ``NAME.yaml``, a path ending in the specs folder, or
    with ``by_basename`` any path whose file name is a shipped spec's: a shipped sweep spec
    copied elsewhere still finds its ``train: train.yaml``). Raises ConfigError listing the
    shipped names."""
    from omnicodec.errors import ConfigError

    if "://" in location:
        return location
    local = os.path.expanduser(location)
    if os.path.isfile(local):
        return os.path.abspath(local)
    name = os.path.basename(local)
    by_name = os.sep not in location and "/" not in location
    if by_name or by_basename or location.replace(os.sep, "/").endswith("jobs/specs/" + name):
        for candidate in (name, name + ".yaml"):
            path = os.path.join(SPECS_DIR, candidate)
            if os.path.isfile(path):
                print(f"{location}: not in {os.getcwd()}; using the shipped spec {path}")
                return path
    raise ConfigError(f"{location}: no such config file (shipped specs, by name: {', '.join(shipped_specs())})")
