"""WebDataset shards: naming, writing, resolving URLs and reading samples with exact errors.

A sample is a run of consecutive tar members sharing a key (the basename up to its first
dot). ``iter_shard`` reads one shard and yields samples; when a shard is truncated or
its members for one key are not contiguous, it raises ``DataError`` naming the shard,
the key and the byte offset (the tar header position) where it went wrong, so that
``data verify`` can point at the exact member and the loader can skip and report it.
"""

from __future__ import annotations

import glob
import io
import json
import os
import posixpath
import tarfile
from collections.abc import Iterable, Iterator
from typing import Any

import braceexpand
import fsspec
import webdataset as wds

from omnicodec import storage
from omnicodec.errors import DataError

# Per-sample member extensions written by this project (see docs/data.md).
IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")
DATASET_CARD = "dataset.json"


def sample_key(name: str) -> tuple[str, str]:
    """``dir/abc.seg.png`` -> (``dir/abc``, ``seg.png``): key up to the basename's first dot."""
    directory, base = posixpath.split(name)
    stem, dot, ext = base.partition(".")
    return (posixpath.join(directory, stem) if directory else stem), ext.lower()


def check_shards_exist(spec: str | Iterable[str], key: str = "shards") -> list[str]:
    """Resolve ``spec`` and check that every shard exists (local files all; for URLs the
    first and last, one request each), raising one ``DataError`` that names ``key``."""
    try:
        urls = resolve_shards(spec)
    except DataError as e:
        raise DataError(f"{key}: {e}") from None
    local = [u for u in urls if not storage.is_url(u)]
    remote = [u for u in urls if storage.is_url(u)]
    missing = [u for u in local if not os.path.isfile(u)] + \
              [u for u in dict.fromkeys(remote[:1] + remote[-1:]) if not storage.exists(u)]
    if missing:
        raise DataError(f"{key}: shard {missing[0]} does not exist"
                        + (f" ({len(missing)} of {len(urls)} shards missing)" if len(missing) > 1 else ""))
    return urls


def resolve_shards(spec: str | Iterable[str]) -> list[str]:
    """Shard URLs from a list, a brace pattern, a folder (its ``*.tar``), a glob, or one tar."""
    if not isinstance(spec, str):
        out = [u for s in spec for u in resolve_shards(s)]
        if not out:
            raise DataError("no shards given")
        return out
    spec = spec.strip()
    if not storage.is_url(spec):
        spec = os.path.expanduser(spec)
    if "{" in spec and ".." in spec:
        return list(braceexpand.braceexpand(spec))
    if storage.is_url(spec):
        fs, path = fsspec.core.url_to_fs(spec)
        if any(ch in path for ch in "*?["):
            found = fs.glob(path)
        elif fs.isdir(path):
            found = fs.glob(posixpath.join(path, "*.tar"))
        else:
            found = [path] if fs.exists(path) else []
        if not found:
            raise DataError(f"{spec}: no shards found")
        return sorted(fs.unstrip_protocol(p) for p in found)
    if os.path.isdir(spec):
        found = sorted(glob.glob(os.path.join(spec, "*.tar")))
    elif any(ch in spec for ch in "*?["):
        found = sorted(glob.glob(spec))
    else:
        found = [spec] if os.path.exists(spec) else []
    if not found:
        raise DataError(f"{spec}: no shards found")
    return [os.path.abspath(p) for p in found]


def _member_bytes(tar: tarfile.TarFile, info: tarfile.TarInfo, url: str, key: str) -> bytes:
    """A member's bytes, or ``DataError`` naming it and where it breaks off."""
    try:
        data = tar.extractfile(info).read()
        if len(data) != info.size:
            raise EOFError("member shorter than its header says")
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DataError(f"shard {url}: member '{info.name}' (key '{key}') truncated at byte {info.offset_data} ({e})") from None
    return data


def _archive_size(fileobj, seekable: bool) -> int:
    """The archive's true length: its end for a seekable file, what a stream still holds otherwise."""
    if seekable:
        return fileobj.seek(0, io.SEEK_END)
    while fileobj.read(1 << 20):
        pass
    return fileobj.count


def iter_shard(url: str, fileobj: io.BufferedIOBase | None = None) -> Iterator[dict[str, Any]]:
    """Samples of one shard, in file order. Raises ``DataError`` on any structural fault."""
    close = fileobj is None
    if fileobj is None:
        try:
            fileobj = storage.open_file(url, "rb")
        except FileNotFoundError:
            raise DataError(f"shard {url}: no such file") from None
    current: dict[str, Any] | None = None
    seen: set[str] = set()
    offset = 0
    # Seekable files (local, most fsspec stores) are read in place; pure streams through a
    # byte counter. Either way the archive's true length is known at the end.
    seekable = getattr(fileobj, "seekable", lambda: False)()
    counted = None if seekable else _Counting(fileobj)
    try:
        tar = tarfile.open(fileobj=fileobj if seekable else counted, mode="r:" if seekable else "r|")
        while True:
            try:
                info = tar.next()
            except (tarfile.TarError, EOFError, OSError, ValueError) as e:
                after = f" after key '{current['__key__']}'" if current else ""
                raise DataError(f"shard {url}: corrupt or truncated tar at byte {offset}{after} ({e})") from None
            if info is None:
                break
            offset = info.offset
            if not info.isreg() or posixpath.basename(info.name).startswith("__"):
                continue
            key, ext = sample_key(info.name)
            data = _member_bytes(tar, info, url, key)
            if current is None or key != current["__key__"]:
                if key in seen:
                    raise DataError(
                        f"shard {url}: members of key '{key}' are not contiguous (again at byte {info.offset}); "
                        "write shards sorted by name"
                    )
                if current is not None:
                    yield current
                seen.add(key)
                current = {"__key__": key, "__url__": url, "__offset__": info.offset}
            if ext in current:
                raise DataError(f"shard {url}: duplicate member '{info.name}' at byte {info.offset}")
            current[ext] = data
            tar.members = []
        # Python's tarfile ends quietly when a stream stops at a header boundary: a complete
        # archive has two zero blocks after its last member, a truncated one does not.
        size = _archive_size(fileobj if seekable else counted, seekable)
        if size < tar.offset + 2 * tarfile.BLOCKSIZE:
            last = f" (last key '{current['__key__']}' may be incomplete)" if current else ""
            raise DataError(f"shard {url}: truncated at byte {size}: the end-of-archive marker is missing{last}")
        if current is not None:
            yield current
    finally:
        if close:
            fileobj.close()


class _Counting(io.RawIOBase):
    """A read-only stream that counts the bytes it delivers."""

    def __init__(self, inner: Any):
        self.inner, self.count = inner, 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        data = self.inner.read(n)
        self.count += len(data)
        return data


def write_card(directory: str, card: dict[str, Any]) -> None:
    storage.write_text(storage.join(directory, DATASET_CARD), json.dumps(card, indent=2) + "\n")


def shard_hashes(shards: str | Iterable[str]) -> dict[str, str]:
    """sha256 of every shard's bytes, by file name: what a zoo card records as its data."""
    import hashlib

    out = {}
    for url in resolve_shards(shards):
        h = hashlib.sha256()
        with storage.open_file(url, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        out[posixpath.basename(url)] = h.hexdigest()
    return out


def read_card(shards: str) -> dict[str, Any] | None:
    """The ``dataset.json`` next to the shards, if any (classes, counts, provenance)."""
    first = resolve_shards(shards)[0]
    location = storage.join(storage.parent(first), DATASET_CARD)
    return json.loads(storage.read_text(location)) if storage.exists(location) else None


class ShardSink:
    """Writes samples (dicts of ``ext -> bytes`` plus ``__key__``) into numbered shards.

    ``<directory>/<prefix>-000000.tar`` ... with at most ``maxcount`` samples each. Keys
    must arrive sorted so that every shard is sorted, as WebDataset readers assume.
    """

    def __init__(self, directory: str, prefix: str, maxcount: int = 64):
        storage.makedirs(directory)
        self.directory, self.prefix, self.maxcount = directory, prefix, maxcount
        self.count, self.shards, self._writer, self._last_key = 0, [], None, None

    def write(self, sample: dict[str, Any]) -> None:
        key = sample["__key__"]
        if self._last_key is not None and key <= self._last_key:
            raise DataError(f"sample keys must be written in increasing order: '{key}' after '{self._last_key}'")
        if self._writer is None or self.count % self.maxcount == 0:
            self._open()
        self._writer.write(sample)
        self._last_key = key
        self.count += 1

    def _open(self) -> None:
        self.close()
        url = storage.join(self.directory, f"{self.prefix}-{len(self.shards):06d}.tar")
        self._stream = storage.open_file(url, "wb")
        self._writer = wds.TarWriter(self._stream, encoder=False, mtime=1_700_000_000)
        self.shards.append(url)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._stream.close()
            self._writer = None

    def __enter__(self) -> ShardSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SplitSink:
    """Two ``ShardSink``s, ``train-*.tar`` and ``test-*.tar``, fed by a stable split: a sample
    goes to test when the hash of its source name (``json.source``, else its key) falls under
    ``test_fraction``, so the same file lands on the same side on every machine and run."""

    def __init__(self, directory: str, test_fraction: float, maxcount: int = 64):
        if not 0.0 < test_fraction < 1.0:
            raise DataError(f"test fraction must be between 0 and 1, got {test_fraction}")
        self.fraction = test_fraction
        self.sinks = {"train": ShardSink(directory, "train", maxcount), "test": ShardSink(directory, "test", maxcount)}
        self.counts = {"train": 0, "test": 0}

    def write(self, sample: dict[str, Any]) -> None:
        from omnicodec.data.sources import stable_fraction

        try:
            source = json.loads(sample.get("json", b"{}")).get("source") or sample["__key__"]
        except (ValueError, AttributeError):
            source = sample["__key__"]
        split = "test" if stable_fraction(str(source)) < self.fraction else "train"
        self.sinks[split].write(sample)
        self.counts[split] += 1

    @property
    def shards(self) -> list[str]:
        return self.sinks["train"].shards + self.sinks["test"].shards

    def close(self) -> None:
        for sink in self.sinks.values():
            sink.close()

    def __enter__(self) -> SplitSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

