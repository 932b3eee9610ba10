"""Converters from common on-disk datasets to omnicodec's multi-task shards
(``omnicodec data convert --from NAME``).

A converter is one file in this folder whose class is decorated with
``@CONVERTERS.register("name")``, plus one import line below: the class says what it reads
(``usage``, for ``--help``), declares its own flags (``flags``: ``--flag`` -> argparse
keywords; two converters may share a flag) and converts (``convert``). Modules import
their heavy dependencies inside ``convert``: the CLI builds its parser from this registry.
Image bytes are copied as they are (no re-encoding) when they are JPEG or PNG.
"""

from __future__ import annotations

import argparse
from typing import Any

from omnicodec.data.converters.base import CONVERTERS, Converter

# the registry: one import per converter (each file registers itself), in --help's order
# isort: off
from omnicodec.data.converters import imagefolder, coco, pascal_context  # noqa: F401
# isort: on

__all__ = ["CONVERTERS", "Converter", "add_flags", "convert", "describe"]


def describe(width: int = 100) -> str:
    """Every converter's ``usage``, two spaces apart, wrapped at ``width`` (``--help``)."""
    lines: list[str] = []
    for name in CONVERTERS:
        usage = CONVERTERS.get(name).usage
        if lines and len(lines[-1]) + 2 + len(usage) <= width:
            lines[-1] += "  " + usage
        else:
            lines.append(usage)
    return "\n".join(lines)


def add_flags(parser: argparse.ArgumentParser) -> None:
    """Each converter's own flags, once each; a flag several converters read names them all."""
    users: dict[str, list[str]] = {}
    keywords: dict[str, dict[str, Any]] = {}
    for name in CONVERTERS:
        for flag, kw in CONVERTERS.get(name).flags.items():
            users.setdefault(flag, []).append(name)
            keywords.setdefault(flag, kw)
    for flag, kw in keywords.items():
        parser.add_argument(flag, **{**kw, "help": f"{kw['help']} ({', '.join(users[flag])})"})


def convert(fmt: str, out: str, options: dict[str, Any], prefix: str = "data", maxcount: int = 100,
            test_fraction: float = 0.0, overwrite: bool = False) -> dict[str, Any]:
    """Convert with converter ``fmt`` into ``out``; ``options`` holds its flags' values (by
    dest). ``test_fraction`` > 0 writes ``train-*.tar`` and ``test-*.tar`` (stable split by
    source file name) instead of ``<prefix>-*.tar``. A folder that already holds a converted
    dataset is refused unless ``overwrite``: nothing is silently replaced."""
    from omnicodec import storage
    from omnicodec.errors import DataError

    converter = CONVERTERS.get(fmt)
    if storage.exists(storage.join(out, "dataset.json")) and not overwrite:
        raise DataError(f"{out} already holds a dataset (dataset.json); choose another --out, or pass --overwrite")
    return converter.convert(options, out, prefix, maxcount, test_fraction)
