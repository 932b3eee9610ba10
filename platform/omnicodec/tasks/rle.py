"""Run-length coding of uint8 masks for JSON responses (``seg_format=rle``)."""

from __future__ import annotations

import numpy as np


def rle_encode(mask: np.ndarray) -> list[int]:
    """Row-major runs as [value, length, value, length, ...]."""
    flat = mask.reshape(-1)
    change = np.flatnonzero(np.diff(flat)) + 1
    starts = np.concatenate([[0], change])
    lengths = np.diff(np.concatenate([starts, [flat.size]]))
    return [int(v) for pair in zip(flat[starts], lengths) for v in pair]


def rle_decode(counts: list[int], height: int, width: int) -> np.ndarray:
    values, lengths = counts[0::2], counts[1::2]
    return np.repeat(np.array(values, np.uint8), lengths).reshape(height, width)
