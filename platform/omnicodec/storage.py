"""Paths and URLs through one door: local paths, ``file://`` and every fsspec scheme.

Checkpoints, shards, codec weights and reports may live on a laptop disk, on NFS or in
an object store (``s3://``, ``gs://``); in tests they live in ``memory://``. Everything
that reads or writes a user-given location goes through these helpers so that a URL
works wherever a path does.
"""

from __future__ import annotations

import os
import posixpath
from typing import IO

import fsspec


def is_url(location: str) -> bool:
    """True for ``scheme://...`` locations (``file://`` included)."""
    return "://" in str(location)


def absolute(location: str | os.PathLike, base: str | None = None) -> str:
    """Local paths become absolute (Ray's storage_path must be; Ray workers run in other
    folders than the user's): relative ones against ``base`` (default: the working directory,
    a URL base joins as a URL); URLs pass unchanged."""
    location = str(location)
    if is_url(location):
        return location
    location = os.path.expanduser(location)
    if base is not None and not os.path.isabs(location):
        if is_url(base):
            return posixpath.join(base, location)
        location = os.path.join(base, location)
    return os.path.abspath(location)


def join(base: str, *parts: str) -> str:
    base = str(base)
    return posixpath.join(base, *parts) if is_url(base) else os.path.join(base, *parts)


def open_file(location: str, mode: str = "rb") -> IO:
    """Open a local path or fsspec URL; parent folders are created for writes."""
    location = str(location)
    if "w" in mode:
        makedirs(parent(location))
    if not is_url(location):  # the builtin file object: tarfile's many small reads stay in C
        return open(os.path.expanduser(location), mode)
    return fsspec.open(location, mode).open()


def read_bytes(location: str) -> bytes:
    with open_file(location, "rb") as f:
        return f.read()


def write_bytes(location: str, data: bytes) -> None:
    with open_file(location, "wb") as f:
        f.write(data)


def read_text(location: str) -> str:
    return read_bytes(location).decode("utf-8")


def write_text(location: str, text: str) -> None:
    write_bytes(location, text.encode("utf-8"))


def exists(location: str) -> bool:
    fs, path = fsspec.core.url_to_fs(str(location))
    return fs.exists(path)


def makedirs(location: str) -> None:
    if not location:
        return
    fs, path = fsspec.core.url_to_fs(str(location))
    fs.makedirs(path, exist_ok=True)


def remove(location: str) -> None:
    """Delete a file or folder (recursively) if it exists."""
    fs, path = fsspec.core.url_to_fs(str(location))
    if fs.exists(path):
        fs.rm(path, recursive=True)


def parent(location: str) -> str:
    location = str(location)
    return posixpath.dirname(location) if is_url(location) else os.path.dirname(location)


def listdir(location: str) -> list[str]:
    """Names (not full paths) of the entries directly under ``location``."""
    fs, path = fsspec.core.url_to_fs(str(location))
    if not fs.exists(path):
        return []
    return sorted(posixpath.basename(p.rstrip("/")) for p in fs.ls(path, detail=False))
