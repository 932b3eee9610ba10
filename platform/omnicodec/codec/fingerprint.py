"""Fingerprints: the identity of a set of weights, independent of how it was stored.

A fingerprint is the sha256 of a canonical serialisation of a state dict: keys sorted,
each entry written as ``key|dtype|shape|`` followed by its little-endian bytes. Two files
holding the same weights (a CompressAI training checkpoint, a bare ``state_dict``, a
safetensors file) therefore get the same fingerprint, and any change to any weight
changes it.

The entropy coders' CDF tables (``_quantized_cdf``, ``_offset``, ``_cdf_length``) are
left out on purpose: they are derived from the weights by ``update(force=True)``, which
every load runs, so they carry no identity of their own and a checkpoint saved before or
after ``update`` must fingerprint the same.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import torch

DERIVED_BUFFERS = ("_quantized_cdf", "_offset", "_cdf_length")

# Bytes of the fingerprint stored in a bitstream header: 64 bits identify the pair
# (collision odds ~1e-19 per pair) at a fraction of the rate 32 bytes would cost.
SHORT_BYTES = 8


def state_dict_digest(state: Mapping[str, torch.Tensor], salt: str = "") -> str:
    """sha256 hex digest of a state dict in canonical form (see module docstring)."""
    h = hashlib.sha256()
    h.update(salt.encode())
    for key in sorted(state):
        if key.rsplit(".", 1)[-1] in DERIVED_BUFFERS:
            continue
        t = state[key].detach().to("cpu").contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def codec_fingerprint(model: torch.nn.Module, arch: str) -> str:
    """Fingerprint of a codec: its architecture name and canonical state dict."""
    return state_dict_digest(model.state_dict(), salt=f"codec:{arch}|")


def short_fingerprint(fingerprint: str) -> bytes:
    """The first ``SHORT_BYTES`` bytes of a hex fingerprint, as stored in headers."""
    return bytes.fromhex(fingerprint)[:SHORT_BYTES]
