"""BD cells are honest about overlap (issue 28 item 3): every BD-rate and BD-metric carries the
fraction of the SHORTER curve's span that the two curves share, a cell under 50 % is marked and
does not count, and BD-metric (the mean accuracy gain at equal rate) sits beside BD-rate with
its own paired-bootstrap interval."""

from __future__ import annotations

import numpy as np
import pytest

from omnicodec.eval.stats import resample_indices
from omnicodec.eval.summary import MIN_OVERLAP, bd_metric, bd_metric_name, bd_rate, bd_with_interval, overlap_fraction


def _curve(rates, values):
    return [{"bpp": r, "value": v} for r, v in zip(rates, values)]


def test_overlap_is_the_fraction_of_the_shorter_curves_span():
    assert overlap_fraction((0.0, 2.0), (1.0, 5.0))[0] == pytest.approx(0.5)  # 1 of the shorter's 2
    assert overlap_fraction((1.0, 2.0), (0.0, 5.0))[0] == pytest.approx(1.0)  # the shorter lies inside
    assert overlap_fraction((0.0, 1.0), (2.0, 3.0))[0] == 0.0
    # accuracy spans 0.45-0.60 (anchor, 0.15 wide) and 0.50-0.90 (test): they share 0.50-0.60
    anchor = _curve([0.1, 0.2, 0.4], [0.45, 0.52, 0.60])
    test = _curve([0.05, 0.1, 0.2, 0.4], [0.50, 0.62, 0.75, 0.90])
    res = bd_rate(anchor, test)
    assert res["overlap"] == pytest.approx(round(0.10 / 0.15, 3))
    assert res["metric_range"] == pytest.approx([0.50, 0.60]) and res["counts"] is True
    # BD-metric's own overlap is over log-rate: anchor 0.1-0.4, test 0.05-0.4, the anchor's whole span
    assert res["bd_metric"]["overlap"] == pytest.approx(1.0)
    assert res["bd_metric"]["rate_range"] == pytest.approx([0.1, 0.4])
    # log-rate spans 0.1-0.4 and 0.2-1.6: they share 0.2-0.4, 1 of the shorter's 2 octaves
    half = bd_metric(_curve([0.1, 0.4], [0.4, 0.6]), _curve([0.2, 1.6], [0.5, 0.8]))
    assert half["overlap"] == pytest.approx(0.5) and half["counts"] is True


def test_a_cell_under_half_the_shorter_span_is_marked_and_does_not_count():
    from omnicodec.eval.report import OVERLAP_MARK, _bd, bd_rows, counted_cells

    anchor = _curve([0.1, 0.2, 0.4], [0.40, 0.50, 0.60])  # 0.20 wide
    test = _curve([0.05, 0.1, 0.2, 0.4], [0.55, 0.70, 0.85, 0.95])  # shares 0.55-0.60: 25 % of 0.20
    res = bd_rate(anchor, test)
    assert res["overlap"] == pytest.approx(0.25) and res["overlap"] < MIN_OVERLAP
    assert res["bd_rate"] is not None and res["counts"] is False
    cell = _bd(res)
    assert "(ov 25 %)" in cell and cell.endswith(OVERLAP_MARK)
    full = bd_rate(anchor, _curve([0.05, 0.1, 0.2], [0.40, 0.50, 0.60]))
    assert full["counts"] is True and "(ov 100 %)" in _bd(full) and OVERLAP_MARK not in _bd(full)
    report = {"tasks": ["cls"], "scoring": {"cls": {"metric": "top1", "labelled": True}},
              "summary": {"bd_rate": {"frozen codec": {"cls": res, "psnr": full}}}}
    rows = bd_rows(report)
    assert rows[0][:2] == ["frozen codec", "cls (BD-acc)"] and rows[0][2].endswith(OVERLAP_MARK)
    assert rows[1][1] == "PSNR (BD-PSNR, dB)" and OVERLAP_MARK not in rows[1][2]
    assert "frozen codec/cls BD-rate" in counted_cells(report)["not counted"]
    assert "frozen codec/psnr BD-rate" in counted_cells(report)["counts"]


def test_a_cell_just_under_half_never_reads_fifty_percent():
    from omnicodec.eval.report import OVERLAP_MARK, fmt_bd

    assert fmt_bd(-12.0, None, 0.499, False) == f"-12.0 (ov 49 %) {OVERLAP_MARK}"
    assert fmt_bd(-12.0, [-20.0, -4.0], 0.5, True) == "-12.0 [-20.0, -4.0] (ov 50 %)"
    assert fmt_bd(None, None, 0.9, True) == "n/a"


def test_bd_metric_of_a_curve_shifted_up_is_the_shift_and_of_itself_zero():
    rates = [0.1, 0.2, 0.4, 0.8]
    anchor = _curve(rates, [0.40, 0.52, 0.60, 0.66])
    for c in (0.05, 0.013, -0.02):
        shifted = _curve(rates, [v + c for v in (0.40, 0.52, 0.60, 0.66)])
        assert bd_metric(anchor, shifted)["value"] == pytest.approx(c, abs=1e-6)
        assert bd_rate(anchor, shifted)["bd_metric"]["value"] == pytest.approx(c, abs=1e-6)
    assert bd_metric(anchor, anchor)["value"] == pytest.approx(0.0, abs=1e-12)
    # a lower-is-better metric (an error) lowered by 2: the gain reads -2 in the metric's own units
    errors = _curve(rates, [40.0, 30.0, 20.0, 10.0])
    lower = _curve(rates, [38.0, 28.0, 18.0, 8.0])
    assert bd_metric(errors, lower, higher_is_better=False)["value"] == pytest.approx(-2.0, abs=1e-6)


def test_bd_metric_of_disjoint_rate_ranges_is_not_computable_and_says_why():
    low = _curve([0.05, 0.1], [0.40, 0.50])
    high = _curve([0.4, 0.8], [0.45, 0.55])  # shares the accuracy 0.45-0.50, not a single rate
    res = bd_rate(low, high)
    assert res["bd_rate"] is not None
    assert res["bd_metric"]["value"] is None and res["bd_metric"]["counts"] is False
    assert "no overlap in rate range" in res["bd_metric"]["note"]
    assert bd_metric(_curve([0.1], [0.5]), high)["note"].startswith("needs >= 2 frontier points")


def test_bd_metric_keeps_the_curve_flat_up_to_its_costliest_measured_point():
    """A point that costs more and scores no better is off the frontier, but it was measured: the
    operational curve stays at the frontier's best up to its rate (as ``value_at_rate`` reads it),
    so the rate range BD-metric compares over is the one measured."""
    anchor = _curve([0.1, 0.2, 0.4, 0.8], [0.40, 0.50, 0.60, 0.70])
    test = _curve([0.1, 0.2, 0.8], [0.50, 0.60, 0.55])  # 0.8 bpp bought nothing over 0.2
    res = bd_metric(anchor, test)
    assert res["rate_range"] == pytest.approx([0.1, 0.8]) and res["overlap"] == pytest.approx(1.0)
    # by hand, in octaves x = log2(bpp / 0.1) over 0..3: the anchor is 0.4 + 0.1 x (PCHIP keeps a
    # line), integral 1.65. The test's PCHIP is flat on 1..3 (0.6 * 2) and on 0..1 the Hermite cubic
    # from 0.5 to 0.6 with end slopes 4 * 0.1 / 3 (PCHIP's end-point rule) and 0 (a flat neighbour):
    # integral (0.5 + 0.6) / 2 + (0.4 / 3 - 0) / 12. The mean difference is the integrals' over 3.
    test_integral = (0.5 + 0.6) / 2 + (0.4 / 3) / 12 + 0.6 * 2
    assert res["value"] == pytest.approx((test_integral - 1.65) / 3, abs=1e-9)


def _per_image(n: int, rng: np.random.Generator, rates, offset: float) -> list[dict[str, np.ndarray]]:
    """Per-image bpp and accuracy of a curve's points (accuracy rising with log-rate)."""
    out = []
    for r in rates:
        bpp = r * np.exp(rng.normal(0, 0.15, n))
        acc = 0.3 + 0.1 * np.log2(bpp / 0.1) + offset + rng.normal(0, 0.2, n)
        out.append({"bpp": bpp, "value": acc})
    return out


def test_bd_intervals_are_paired_bootstrap_intervals_around_the_estimate():
    rng = np.random.default_rng(28)
    n = 300
    anchor = _per_image(n, rng, [0.1, 0.2, 0.4, 0.8], 0.0)
    test = _per_image(n, rng, [0.1, 0.2, 0.4, 0.8], 0.04)
    idx = resample_indices(n, 300, seed=3)

    def means(curve, row=None):
        return [{"bpp": float(p["bpp"][row].mean() if row is not None else p["bpp"].mean()),
                 "value": float(p["value"][row].mean() if row is not None else p["value"].mean())} for p in curve]

    res = bd_with_interval(means(anchor), means(test), resampled=((means(anchor, r), means(test, r)) for r in idx))
    lo, hi = res["ci"]
    assert lo <= res["bd_rate"] <= hi and hi < 0 and res["resamples"] > 150
    m = res["bd_metric"]
    assert m["ci"][0] <= m["value"] <= m["ci"][1] and m["resamples"] > 150
    assert m["value"] == pytest.approx(0.04, abs=0.03) and m["ci"][0] > 0
    assert bd_with_interval(means(anchor), means(test)).get("ci") is None  # no resamples: no interval


def test_the_human_report_shows_bd_psnr_with_its_interval_overlap_and_marker():
    from omnicodec.eval.rd import markdown, summarize
    from omnicodec.eval.report import OVERLAP_MARK

    rng = np.random.default_rng(5)
    rows = []
    for fam, rates, shift in (("ours", [0.1, 0.2, 0.4, 0.8], 1.5), ("JPEG", [0.2, 0.4, 0.8, 1.6], 0.0),
                              ("WebP", [0.7, 1.4, 2.8], 0.0)):
        for q, r in enumerate(rates):
            for i in range(40):
                bpp = r * float(np.exp(rng.normal(0, 0.1)))
                p = 30 + 3 * np.log2(bpp / 0.1) + shift + float(rng.normal(0, 1))
                rows.append({"family": fam, "system": f"{fam} {q}", "key": f"img{i}", "bytes": 1, "bpp": bpp,
                             "psnr": p, "ms_ssim": 0.9, "ms_ssim_db": p / 3, "encode_s": 0.0, "decode_s": 0.0})
    s = summarize(rows, anchors=("JPEG", "WebP"), resamples=200)
    (vs_jpeg,) = [e for e in s["bd_rate"] if (e["test"], e["anchor"]) == ("ours", "JPEG")]
    m = vs_jpeg["psnr"]["bd_metric"]
    assert m["name"] == "BD-PSNR" and m["value"] == pytest.approx(1.5, abs=0.6)
    # log-rates 0.1-0.8 and 0.2-1.6 (3 octaves each) share 0.2-0.8: 2 of 3 octaves
    assert m["low"] <= m["value"] <= m["high"] and m["overlap"] == pytest.approx(2 / 3, abs=0.03) and m["counts"]
    assert vs_jpeg["psnr"]["overlap"] > 0.5 and vs_jpeg["psnr"]["counts"] is True
    (vs_webp,) = [e for e in s["bd_rate"] if (e["test"], e["anchor"]) == ("ours", "WebP")]
    assert vs_webp["psnr"]["bd_metric"]["counts"] is False  # rates 0.7-0.8 of WebP's 0.7-2.8: 10 %
    md = markdown(s, "t")
    assert "BD-PSNR (dB)" in md and f"(ov {int(100 * m['overlap'])} %)" in md and OVERLAP_MARK in md
    assert f"{OVERLAP_MARK} overlap < 50 %" in md


def test_bd_metric_is_named_after_the_tasks_metric():
    assert [bd_metric_name(k) for k in ("top1", "miou", "map", "psnr", "odsf", None)] == [
        "BD-acc", "BD-mIoU", "BD-mAP", "BD-PSNR", "BD-metric", "BD-metric"]
