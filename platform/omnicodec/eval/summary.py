"""Curve summaries: Bjontegaard delta rate per task, the multi-task gain Delta_m, and
metric-at-equal-rate comparisons.

BD-rate uses the ``bjontegaard`` package (PCHIP interpolation of log-rate over the
metric, integrated over the overlapping metric range): the average % rate the test
system needs relative to the anchor for the same task accuracy; negative is better.

Every curve is first reduced to its operational frontier: a point that costs more bits
than another and scores no better is dropped (nobody would operate there). Task metrics
measured on a few hundred images are noisy, and Bjontegaard's interpolation needs the
metric to increase with rate.

Where a curve's frontier points lie far apart in rate inside the shared metric range, the
BD-rate there rests on the interpolation, not on measurements: ``rate_gap`` (the largest
rate ratio between neighbouring frontier points spanning that range, over both curves) says
how far, and reports flag values whose gap exceeds ``SPARSE_GAP``.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np


def _curve(points: list[dict[str, Any]], metric: str = "value", higher_is_better: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(rates, metrics) of the operational frontier, by increasing rate. An error metric
    (``higher_is_better=False``) is negated first, so "better" always means "larger"."""
    sign = 1.0 if higher_is_better else -1.0
    frontier: list[tuple[float, float]] = []
    for r, m in sorted((p["bpp"], sign * p[metric]) for p in points if p.get(metric) is not None):
        if not frontier or m > frontier[-1][1]:
            frontier.append((r, m))
    return np.array([f[0] for f in frontier], float), np.array([f[1] for f in frontier], float)


SPARSE_GAP = 2.0  # a chord spanning more than 2x in rate inside the compared range: flagged


def _widest_gap(rates: np.ndarray, metrics: np.ndarray, lo: float, hi: float) -> float:
    """Largest rate ratio between neighbouring frontier points whose segment reaches inside
    (lo, hi): a segment that only touches the range at its end point (a measured point sits
    exactly on the range's edge) interpolates nothing there."""
    gaps = [rates[i + 1] / rates[i] for i in range(len(rates) - 1)
            if metrics[i + 1] > lo and metrics[i] < hi and rates[i] > 0]
    return float(max(gaps, default=1.0))


def bd_rate(anchor: list[dict[str, Any]], test: list[dict[str, Any]], metric: str = "value",
            higher_is_better: bool = True) -> dict[str, Any]:
    """BD-rate (%) of ``test`` against ``anchor``; each point has ``bpp`` and ``value``.
    Negative means ``test`` needs fewer bits for the same quality, whatever the metric's
    direction."""
    import bjontegaard as bd

    ra, ma = _curve(anchor, metric, higher_is_better)
    rt, mt = _curve(test, metric, higher_is_better)
    if len(ra) < 2 or len(rt) < 2:
        return {"bd_rate": None, "note": "needs >= 2 frontier points per curve"}
    lo, hi = max(ma.min(), mt.min()), min(ma.max(), mt.max())
    if hi <= lo:
        return {"bd_rate": None, "note": "no overlap in metric range"}
    overlap = (hi - lo) / max(ma.max() - ma.min(), mt.max() - mt.min())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            value = float(bd.bd_rate(ra, ma, rt, mt, method="pchip", require_matching_points=False, min_overlap=0))
        except Exception as e:  # the package raises plain exceptions on degenerate curves
            return {"bd_rate": None, "note": f"{type(e).__name__}: {e}"}
    gap = max(_widest_gap(ra, ma, lo, hi), _widest_gap(rt, mt, lo, hi))
    return {"bd_rate": value if math.isfinite(value) else None, "overlap": round(float(overlap), 3),
            "points": [len(ra), len(rt)], "rate_gap": round(gap, 2)}


def value_at_rate(points: list[dict[str, Any]], bpp: float, higher_is_better: bool = True) -> float | None:
    """A curve's metric at ``bpp``: linear in log-rate between frontier points, no extrapolation
    (beyond the last frontier point the curve stays flat: more bits bought nothing)."""
    sign = 1.0 if higher_is_better else -1.0
    r, m = _curve(points, "value", higher_is_better)
    if len(r) and bpp > r.max() and bpp <= max(p["bpp"] for p in points):
        return sign * float(m[-1])
    if len(r) == 0 or bpp < r.min() or bpp > r.max():
        return None
    return sign * float(np.interp(np.log(bpp), np.log(r), m))


def rate_at_value(points: list[dict[str, Any]], value: float, higher_is_better: bool = True) -> tuple[float | None, bool]:
    """The bpp at which a curve first reaches ``value``: log-rate linear in the metric between
    frontier points. Returns (bpp, upper_bound): when even the curve's cheapest point beats
    ``value``, its rate is an upper bound (the curve would reach it for fewer bits, unmeasured);
    (None, False) when the curve never reaches it."""
    sign = 1.0 if higher_is_better else -1.0
    r, m = _curve(points, "value", higher_is_better)
    v = sign * value
    if len(r) == 0 or v > m.max():
        return None, False
    if v <= m[0]:
        return float(r[0]), True
    return float(np.exp(np.interp(v, m, np.log(r)))), False


def delta_m(test: dict[str, float], base: dict[str, float], higher_is_better: dict[str, bool] | None = None) -> float | None:
    """Delta_m = mean_t s_t (M_t - M_b,t) / M_b,t, in % (s_t = +1 when higher is better)."""
    terms = []
    for t, mt in test.items():
        mb = base.get(t)
        if mt is None or mb is None or mb == 0:
            return None
        s = 1 if (higher_is_better or {}).get(t, True) else -1
        terms.append(s * (mt - mb) / mb)
    return 100 * float(np.mean(terms)) if terms else None
