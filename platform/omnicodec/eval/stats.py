"""Paired bootstrap over images: 95 % intervals for means, curve summaries, BD-rates and BD-metrics.

Every system is scored on the SAME images, so the resamples are paired: one resample is
one draw of image indices (with replacement), applied to every system at once. A statistic
of several systems (a BD-rate or BD-metric between two curves, a Delta_m) is recomputed on each
resample, and the interval is the 2.5th-97.5th percentile of those values (the
percentile bootstrap). Paired resampling removes the between-image variance that two
systems share, which is most of it: a BD-rate interval is far narrower than what two
independent per-curve intervals would suggest.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 20261125


@dataclass(frozen=True)
class Interval:
    value: float | None
    low: float | None
    high: float | None
    n: int  # images
    valid: int = 0  # resamples on which the statistic was defined

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "low": self.low, "high": self.high, "n": self.n, "resamples": self.valid}

    def fmt(self, digits: int = 3, pct: bool = False) -> str:
        if self.value is None:
            return "n/a"
        f = (lambda v: f"{v:+.{digits}f}%") if pct else (lambda v: f"{v:.{digits}f}")
        if self.low is None or self.high is None:
            return f(self.value)
        return f"{f(self.value)} [{f(self.low)}, {f(self.high)}]"


def percentile_interval(draws: np.ndarray | Sequence[float], level: float = 0.95) -> tuple[float, float] | None:
    """The central ``level`` interval of bootstrap draws (non-finite draws ignored), or None."""
    d = np.asarray(draws, dtype=float)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return None
    lo, hi = np.quantile(d, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def resample_indices(n: int, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
                     groups: Sequence[Hashable] | None = None) -> np.ndarray:
    """(resamples, n) image indices; the same array must be used for every system.

    ``groups`` (one label per image, e.g. the photo a crop was cut from) makes it the cluster
    bootstrap: whole groups are drawn with replacement, because images of one group are
    correlated and drawing them one by one gives intervals that are too narrow. A row draws
    groups until it holds n images; with groups of one size that is exactly as many draws as
    there are groups, otherwise the last group drawn is cut so that every row has n indices."""
    rng = np.random.default_rng(seed)
    if groups is None:
        return rng.integers(0, n, size=(resamples, n))
    members = group_members(groups, n)
    rows = np.empty((resamples, n), dtype=np.int64)
    for r in range(resamples):
        drawn: list[np.ndarray] = []
        held = 0
        while held < n:
            g = members[int(rng.integers(0, len(members)))]
            drawn.append(g)
            held += g.size
        rows[r] = np.concatenate(drawn)[:n]
    return rows


def group_members(groups: Sequence[Hashable], n: int) -> list[np.ndarray]:
    """The image indices of each group, in order of first appearance; at least two groups."""
    if len(groups) != n:
        raise ValueError(f"bootstrap groups: {len(groups)} labels for {n} images (one label per image)")
    index: dict[Hashable, list[int]] = {}
    for i, g in enumerate(groups):
        index.setdefault(g, []).append(i)
    if len(index) < 2:
        raise ValueError(f"bootstrap groups: all {n} images are in one group; resampling groups needs two or more")
    return [np.asarray(v, dtype=np.int64) for v in index.values()]


def mean_interval(values: Sequence[float], idx: np.ndarray | None = None, level: float = 0.95) -> Interval:
    """Mean of per-image values with its percentile-bootstrap interval."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return Interval(None, None, None, 0)
    idx = resample_indices(v.size) if idx is None else idx
    means = v[idx].mean(axis=1)
    lo, hi = percentile_interval(means, level)
    return Interval(float(v.mean()), lo, hi, int(v.size), int(means.size))


def statistic_interval(per_image: dict[str, np.ndarray], statistic: Callable[[dict[str, np.ndarray]], float | None],
                       idx: np.ndarray | None = None, level: float = 0.95) -> Interval:
    """A statistic of several per-image arrays (all of length n, paired by image), with its
    paired percentile-bootstrap interval. ``statistic`` receives a dict of arrays (the same
    keys, each resampled with the same indices) and may return None where undefined; the
    interval is taken over the resamples where it is defined (their count is reported)."""
    return statistic_intervals(per_image, lambda d: {"value": statistic(d)}, idx, level)["value"]


def statistic_intervals(per_image: dict[str, np.ndarray],
                        statistics: Callable[[dict[str, np.ndarray]], dict[str, float | None]],
                        idx: np.ndarray | None = None, level: float = 0.95) -> dict[str, Interval]:
    """``statistic_interval`` for several statistics computed together (e.g. BD-rate and
    BD-metric of one pair of curves): ``statistics`` returns a dict of values, each gets its
    own interval from the same resamples. A statistic defined on fewer than half of the
    resamples (or undefined on the data) gets no interval."""
    n = len(next(iter(per_image.values())))
    if any(len(v) != n for v in per_image.values()):
        raise ValueError("per-image arrays must all have one value per image (paired)")
    values = statistics(per_image)
    idx = resample_indices(n) if idx is None else idx
    draws: dict[str, list[float]] = {k: [] for k in values}
    for row in idx:
        for k, s in statistics({k: v[row] for k, v in per_image.items()}).items():
            if k in draws and s is not None and math.isfinite(s):
                draws[k].append(s)
    out = {}
    for k, value in values.items():
        if value is None or len(draws[k]) < 0.5 * len(idx):
            out[k] = Interval(value, None, None, n, len(draws[k]))
        else:
            lo, hi = percentile_interval(draws[k], level)
            out[k] = Interval(float(value), lo, hi, n, len(draws[k]))
    return out
