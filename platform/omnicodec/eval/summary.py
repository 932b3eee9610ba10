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

Overlap. BD-rate compares the curves only over the metric range both reach, BD-metric only
over the log-rate range both span. ``overlap`` is the width of that common range as a
fraction of the SHORTER curve's own span (metric span for BD-rate, log-rate span for
BD-metric; 1.0 when the shorter curve lies wholly inside the longer one). A cell whose
overlap is below ``MIN_OVERLAP`` (50 %) compares the curves over less than half of what
even the shorter one measured: reports mark it and it does not count (``counts``: False)
for acceptance or headline claims.

BD-metric (Bjontegaard delta of the metric, BD-PSNR's generalisation): the mean metric
difference test - anchor at equal rate, over the common log-rate range: each frontier is
interpolated as metric over log10(rate) with PCHIP (the interpolation BD-rate uses), the
difference integrated over the common range and divided by its width. Beyond a curve's
last frontier point and up to its costliest measured point the curve is flat (more bits
bought nothing), so the rate range is the one measured. In the metric's own
units (top-1 0.05 = 5 points of accuracy); positive = the test curve scores higher at equal
rate (for a lower-is-better metric, negative is the gain). Named per metric
(``bd_metric_name``): BD-acc, BD-mIoU, BD-mAP, BD-PSNR, ...
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
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


def _operational(points: list[dict[str, Any]], metric: str = "value", higher_is_better: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The frontier as a function of rate over the whole measured rate range: ``_curve`` plus,
    when the curve's costliest measured point lies beyond its last frontier point, that rate
    with the frontier's best value (more bits bought nothing: the curve stays flat there, as
    in ``value_at_rate``). What BD-metric integrates, over log-rate."""
    r, m = _curve(points, metric, higher_is_better)
    top = max((p["bpp"] for p in points if p.get(metric) is not None), default=None)
    if len(r) and top is not None and top > r[-1]:
        r, m = np.append(r, top), np.append(m, m[-1])
    return r, m


SPARSE_GAP = 2.0  # a chord spanning more than 2x in rate inside the compared range: flagged


def _widest_gap(rates: np.ndarray, metrics: np.ndarray, lo: float, hi: float) -> float:
    """Largest rate ratio between neighbouring frontier points whose segment reaches inside
    (lo, hi): a segment that only touches the range at its end point (a measured point sits
    exactly on the range's edge) interpolates nothing there."""
    gaps = [rates[i + 1] / rates[i] for i in range(len(rates) - 1)
            if metrics[i + 1] > lo and metrics[i] < hi and rates[i] > 0]
    return float(max(gaps, default=1.0))


TOO_FEW = "needs >= 2 frontier points per curve"  # the note of a BD cell with a curve too short
MIN_OVERLAP = 0.5  # a BD cell comparing less than half of the shorter curve's span does not count

BD_METRIC_NAMES = {"top1": "BD-acc", "miou": "BD-mIoU", "map": "BD-mAP", "map50": "BD-mAP50",
                   "agreement": "BD-agreement", "psnr": "BD-PSNR", "ms_ssim_db": "BD-MS-SSIM"}


def bd_metric_name(metric: str | None) -> str:
    """How tables name the Bjontegaard delta of ``metric`` (a task's metric key, "psnr", ...)."""
    return BD_METRIC_NAMES.get(metric or "", "BD-metric")


def overlap_fraction(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float, float]:
    """(fraction, lo, hi): the common range [lo, hi] of ranges ``a`` and ``b`` and its width as
    a fraction of the SHORTER range's width (0 when they do not overlap; 1 when the shorter
    lies inside the longer)."""
    lo, hi = float(max(a[0], b[0])), float(min(a[1], b[1]))
    shorter = float(min(a[1] - a[0], b[1] - b[0]))
    if hi <= lo or shorter <= 0:
        return 0.0, lo, hi
    return min(1.0, (hi - lo) / shorter), lo, hi


def bd_rate(anchor: list[dict[str, Any]], test: list[dict[str, Any]], metric: str = "value",
            higher_is_better: bool = True) -> dict[str, Any]:
    """BD-rate (%) of ``test`` against ``anchor``; each point has ``bpp`` and ``value``.
    Negative means ``test`` needs fewer bits for the same quality, whatever the metric's
    direction. Beside it: ``overlap`` (of the metric ranges, see the module docstring),
    ``counts`` (overlap >= MIN_OVERLAP), ``metric_range`` (the common range, metric units)
    and ``bd_metric`` (``bd_metric``'s dict: the mean metric gain at equal rate). Where
    BD-rate is undefined, ``bd_rate`` is None, ``counts`` False and ``note`` says why."""
    import bjontegaard as bd

    ra, ma = _curve(anchor, metric, higher_is_better)
    rt, mt = _curve(test, metric, higher_is_better)
    out: dict[str, Any] = {"bd_rate": None}
    if len(ra) < 2 or len(rt) < 2:
        out.update(counts=False, note=TOO_FEW)
    else:
        overlap, lo, hi = overlap_fraction((ma.min(), ma.max()), (mt.min(), mt.max()))
        sign = 1.0 if higher_is_better else -1.0
        out.update(overlap=round(overlap, 3), counts=False, points=[len(ra), len(rt)])
        if hi <= lo:
            out["note"] = "no overlap in metric range"
        else:
            out["metric_range"] = sorted([sign * float(lo), sign * float(hi)])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    value = float(bd.bd_rate(ra, ma, rt, mt, method="pchip", require_matching_points=False,
                                             min_overlap=0))
                except Exception as e:  # the package raises plain exceptions on degenerate curves
                    value, out["note"] = math.nan, f"{type(e).__name__}: {e}"
            if math.isfinite(value):
                gap = max(_widest_gap(ra, ma, lo, hi), _widest_gap(rt, mt, lo, hi))
                out.update(bd_rate=value, counts=bool(round(overlap, 3) >= MIN_OVERLAP), rate_gap=round(gap, 2))
    out["bd_metric"] = bd_metric(anchor, test, metric, higher_is_better)
    return out


def bd_metric(anchor: list[dict[str, Any]], test: list[dict[str, Any]], metric: str = "value",
              higher_is_better: bool = True) -> dict[str, Any]:
    """BD-metric of ``test`` against ``anchor`` (module docstring): ``value`` (mean metric
    difference test - anchor at equal rate, metric units; None with ``note`` where undefined),
    ``overlap`` (of the log-rate ranges), ``counts``, ``rate_range`` (bpp). Each curve is its
    operational frontier over its whole measured rate range (``_operational``)."""
    ra, ma = _operational(anchor, metric, higher_is_better)
    rt, mt = _operational(test, metric, higher_is_better)
    return _bd_metric(ra, ma, rt, mt, higher_is_better)


def _bd_metric(ra: np.ndarray, ma: np.ndarray, rt: np.ndarray, mt: np.ndarray, higher_is_better: bool) -> dict[str, Any]:
    import bjontegaard as bd

    if len(ra) < 2 or len(rt) < 2:
        return {"value": None, "counts": False, "note": TOO_FEW}
    if ra.min() <= 0 or rt.min() <= 0:
        return {"value": None, "counts": False, "note": "a rate <= 0 has no log-rate"}
    la, lt = np.log10(ra), np.log10(rt)
    overlap, lo, hi = overlap_fraction((la.min(), la.max()), (lt.min(), lt.max()))
    out: dict[str, Any] = {"value": None, "overlap": round(overlap, 3), "counts": False}
    if hi <= lo:
        return {**out, "note": "no overlap in rate range"}
    out["rate_range"] = [float(10 ** lo), float(10 ** hi)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            value = float(bd.bd_psnr(ra, ma, rt, mt, method="pchip", require_matching_points=False, min_overlap=0))
        except Exception as e:  # e.g. two frontier points at one rate
            return {**out, "note": f"{type(e).__name__}: {e}"}
    if not math.isfinite(value):
        return {**out, "note": "not finite"}
    return {**out, "value": value if higher_is_better else -value, "counts": bool(round(overlap, 3) >= MIN_OVERLAP)}


def bd_with_interval(anchor: list[dict[str, Any]], test: list[dict[str, Any]], higher_is_better: bool = True,
                     resampled: Iterable[tuple[list[dict[str, Any]], list[dict[str, Any]]]] = ()) -> dict[str, Any]:
    """``bd_rate`` of the two curves, with a paired-bootstrap 95 % interval for BD-rate (``ci``,
    ``resamples``) and for BD-metric (``bd_metric.ci``, ``bd_metric.resamples``). ``resampled``
    yields the (anchor, test) curves of each bootstrap resample (the same image draw for
    both); an interval is given where its statistic is defined on at least half of them."""
    out = bd_rate(anchor, test, higher_is_better=higher_is_better)
    rates: list[float] = []
    gains: list[float] = []
    rows = 0
    for a, t in resampled:
        rows += 1
        d = bd_rate(a, t, higher_is_better=higher_is_better)
        if d["bd_rate"] is not None:
            rates.append(d["bd_rate"])
        if d["bd_metric"]["value"] is not None:
            gains.append(d["bd_metric"]["value"])
    from omnicodec.eval.stats import percentile_interval

    for value, draws, into in ((out["bd_rate"], rates, out), (out["bd_metric"]["value"], gains, out["bd_metric"])):
        if value is not None and rows and len(draws) >= 0.5 * rows:
            into["ci"] = list(percentile_interval(draws))
            into["resamples"] = len(draws)
    return out


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
