"""Mutated containers only ever raise ``BitstreamError``: never IndexError, a crash or a hang."""

from __future__ import annotations

import random
import struct
import time
import zlib

import pytest
import torch

from omnicodec.bitstream import HEADER_SIZE, Bitstream
from omnicodec.errors import BitstreamError
from omnicodec.model import OmniCodec

PER_CASE_S = 2.0


@pytest.fixture(scope="module")
def model(small_codec):
    return OmniCodec(small_codec, ["cls"])


@pytest.fixture(scope="module")
def container(model, photo) -> bytes:
    return model.encode(photo).to_bytes()


def _recrc(data: bytes) -> bytes:
    body = data[:-4]
    return body + struct.pack(">I", zlib.crc32(body))


def mutations(data: bytes, rng: random.Random):
    n = len(data)
    for cut in range(n):  # truncation at every length
        yield f"truncate@{cut}", data[:cut], True
    for bit in range(8 * (HEADER_SIZE + 8)):  # every header and length bit
        b = bytearray(data)
        b[bit // 8] ^= 1 << (bit % 8)
        yield f"flip-header-bit{bit}", bytes(b), True
    for _ in range(800):  # payload and CRC bit flips
        b = bytearray(data)
        pos = rng.randrange(HEADER_SIZE + 8, n)
        b[pos] ^= 1 << rng.randrange(8)
        yield f"flip-payload@{pos}", bytes(b), True
    for _ in range(200):  # bursts
        b = bytearray(data)
        pos = rng.randrange(n)
        for j in range(pos, min(n, pos + rng.randrange(2, 16))):
            b[j] = rng.randrange(256)
        if bytes(b) != data:
            yield f"burst@{pos}", bytes(b), True
    for i in range(50):
        yield f"trailing+{i + 1}", data + bytes(rng.randrange(256) for _ in range(i + 1)), True
    for i in range(50):  # swapped fingerprints with a valid CRC: parse passes, decode must refuse
        b = bytearray(data)
        lo = 6 if i % 2 == 0 else 14
        b[lo : lo + 8] = rng.randbytes(8)
        if lo == 14:
            b[5] = 1
        yield f"swap-fp@{lo}", _recrc(bytes(b)), True
    yield "empty", b"", True
    yield "png-magic", b"\x89PNG\r\n\x1a\n" + bytes(40), True


def test_two_thousand_mutated_containers_raise_only_the_documented_error(model, container):
    rng = random.Random(0)
    cases = errors = 0
    t0 = time.perf_counter()
    for name, data, must_fail in mutations(container, rng):
        cases += 1
        start = time.perf_counter()
        try:
            model.decode(data, tasks=["cls"])
        except BitstreamError:
            errors += 1
        except Exception as e:  # anything else is a bug
            raise AssertionError(f"{name}: {type(e).__name__}: {e}") from None
        else:
            assert not must_fail, f"{name}: a corrupted container decoded without error"
        assert time.perf_counter() - start < PER_CASE_S, f"{name} took too long"
    assert cases >= 2000 and errors == cases
    assert time.perf_counter() - t0 < 120


def test_crafted_payload_with_valid_crc_decodes_garbage_without_crashing(model, container):
    """Past the CRC (an integrity check, not authentication), a crafted payload reaches
    CompressAI's rANS decoder; the zero-padding guard keeps its reads in bounds, so the
    worst outcome is a garbage image, never a crash."""
    rng = random.Random(1)
    header = Bitstream.from_bytes(container)
    payload_start = len(container) - 4 - sum(len(s) for s in header.strings)
    for _ in range(40):
        b = bytearray(container)
        for _ in range(8):
            b[rng.randrange(payload_start, len(b) - 4)] = rng.randrange(256)
        try:
            out = model.decode(_recrc(bytes(b)), tasks=["cls"])
            assert torch.isfinite(out["cls"]).all()
        except BitstreamError:
            pass


def test_error_messages_name_the_fault(container):
    with pytest.raises(BitstreamError, match="bad magic"):
        Bitstream.from_bytes(b"JUNK" + container[4:])
    with pytest.raises(BitstreamError, match="unsupported version 9"):
        Bitstream.from_bytes(container[:4] + b"\x09" + container[5:])
    with pytest.raises(BitstreamError, match=f"truncated at byte {len(container) - 10}"):
        Bitstream.from_bytes(container[:-10])
    flipped = bytearray(container)
    flipped[-20] ^= 0x01
    with pytest.raises(BitstreamError, match="CRC mismatch"):
        Bitstream.from_bytes(bytes(flipped))
