"""Curve summaries: BD-rate sign and magnitude, operational frontiers, Delta_m, report files."""

from __future__ import annotations

import math

import pytest

from omnicodec.eval.summary import bd_rate, delta_m, value_at_rate


def _curve(rates, values):
    return [{"bpp": r, "value": v} for r, v in zip(rates, values)]


def test_bd_rate_of_a_curve_needing_half_the_bits_is_minus_fifty_percent():
    anchor = _curve([0.2, 0.4, 0.8, 1.6], [0.5, 0.6, 0.7, 0.8])
    test = _curve([0.1, 0.2, 0.4, 0.8], [0.5, 0.6, 0.7, 0.8])
    assert bd_rate(anchor, test)["bd_rate"] == pytest.approx(-50.0, abs=0.5)
    assert bd_rate(test, anchor)["bd_rate"] == pytest.approx(100.0, abs=1.0)


def test_dominated_points_are_dropped_before_interpolation():
    noisy = _curve([0.2, 0.3, 0.4, 0.5], [0.50, 0.62, 0.58, 0.70])  # 0.4 bpp buys less than 0.3
    assert value_at_rate(noisy, 0.35) == pytest.approx(0.62 + (0.70 - 0.62) * math.log(0.35 / 0.3) / math.log(0.5 / 0.3))
    assert bd_rate(noisy, _curve([0.1, 0.2], [0.5, 0.7]))["bd_rate"] < 0


def test_no_overlap_or_too_few_points_give_no_number_and_a_reason():
    assert bd_rate(_curve([0.1], [0.5]), _curve([0.1, 0.2], [0.5, 0.6]))["bd_rate"] is None
    res = bd_rate(_curve([0.1, 0.2], [0.1, 0.2]), _curve([0.1, 0.2], [0.5, 0.6]))
    assert res["bd_rate"] is None and "overlap" in res["note"] and res["counts"] is False
    # the same rates: BD-metric is defined where BD-rate is not (the accuracy gain at equal rate)
    assert res["bd_metric"]["value"] == pytest.approx(0.4) and res["bd_metric"]["counts"] is True


def test_overlap_is_of_the_shorter_curves_span_not_the_longers():
    """A short anchor wholly inside a long test curve is compared over ALL of what it measured:
    overlap 1.0 (it used to read 0.25 here, the share of the LONGER curve's span)."""
    anchor = _curve([0.2, 0.3, 0.4], [0.50, 0.55, 0.60])  # 0.10 wide
    test = _curve([0.05, 0.1, 0.2, 0.4, 0.8], [0.40, 0.45, 0.55, 0.65, 0.80])  # 0.40 wide
    res = bd_rate(anchor, test)
    assert res["overlap"] == pytest.approx(1.0) and res["counts"] is True and res["bd_rate"] < 0
    assert value_at_rate(_curve([0.2, 0.4], [0.5, 0.6]), 0.1) is None  # no extrapolation


def test_delta_m_is_the_mean_relative_gain_in_percent():
    assert delta_m({"cls": 0.6, "seg": 0.4}, {"cls": 0.5, "seg": 0.5}) == pytest.approx(100 * (0.2 - 0.2) / 2)
    assert delta_m({"cls": 0.6}, {"cls": 0.5}) == pytest.approx(20.0)
    assert delta_m({"err": 0.4}, {"err": 0.5}, {"err": False}) == pytest.approx(20.0)
    assert delta_m({"cls": 0.6}, {"cls": None}) is None


def test_rate_at_equal_metrics_is_the_hardest_tasks_rate_with_its_bound():
    """The bits a curve needs to match a point on every task: log-rate interpolated in the
    metric, the hardest task deciding; below the curve's cheapest point it is an upper bound."""
    from omnicodec.eval.summary import rate_at_value

    curve = [{"bpp": 0.1, "value": 0.50}, {"bpp": 0.4, "value": 0.70}]
    assert rate_at_value(curve, 0.60) == (pytest.approx(0.2), False)  # geometric midpoint: log-rate linear
    assert rate_at_value(curve, 0.40) == (0.1, True)
    assert rate_at_value(curve, 0.80) == (None, False)
    errors = [{"bpp": 0.1, "value": 30.0}, {"bpp": 0.4, "value": 10.0}]  # lower is better
    assert rate_at_value(errors, 20.0, higher_is_better=False) == (pytest.approx(0.2), False)


def test_summary_reports_our_rate_for_a_baselines_accuracy_on_every_task():
    from omnicodec.eval.evaluate import summarize

    ours = [{"system": "all-in-one", "label": f"p{i}", "bpp": b, "psnr": 30.0, "primary": {"cls": c, "seg": s}}
            for i, (b, c, s) in enumerate([(0.1, 0.50, 0.30), (0.4, 0.70, 0.40)])]
    per_task = {"system": "per-task adaptors", "label": "3 streams", "bpp": 0.6, "psnr": 30.0,
                "primary": {"cls": 0.60, "seg": 0.38}}
    rows = summarize([*ours, per_task], ["cls", "seg"])["at_equal_metrics"]
    (row,) = rows
    # cls 0.60 needs 0.2 bpp; seg 0.38 needs 0.1 * 4 ** 0.8: seg is the harder task and decides
    assert row["ours_bpp"] == pytest.approx(0.1 * 4 ** 0.8) and not row["upper_bound"]
    assert row["ratio"] == pytest.approx(0.1 * 4 ** 0.8 / 0.6)


def test_human_tradeoff_compares_each_adapted_point_with_the_frozen_codec_at_its_rate():
    """People vs machines: PSNR of the adapted stream's frozen view minus the frozen codec's
    PSNR at the same bpp (log-rate interpolation), beside Delta_m; only adapted systems."""
    from omnicodec.eval.evaluate import summarize

    def pt(system, label, bpp, psnr, cls):
        return {"system": system, "label": label, "bpp": bpp, "psnr": psnr, "primary": {"cls": cls}}

    frozen = [pt("frozen codec", "q1", 0.1, 30.0, 0.40), pt("frozen codec", "q2", 0.4, 32.0, 0.50)]
    points = [*frozen, pt("all-in-one", "q1 λ=2", 0.2, 29.0, 0.55), pt("all-in-one +human", "q1 λ=2 μ=0.01", 0.2, 30.8, 0.50),
              pt("jpeg", "Q10", 0.2, 28.0, 0.30)]
    rows = summarize(points, ["cls"])["human_tradeoff"]
    assert [r["system"] for r in rows] == ["all-in-one", "all-in-one +human"]  # JPEG is not adapted
    frozen_at = {"psnr": 31.0, "cls": 0.45}  # 0.2 bpp is half-way between 0.1 and 0.4 in log-rate
    assert rows[0]["delta_psnr"] == pytest.approx(29.0 - frozen_at["psnr"])
    assert rows[1]["delta_psnr"] == pytest.approx(30.8 - frozen_at["psnr"])
    assert rows[0]["delta_m"] == pytest.approx(100 * (0.55 - 0.45) / 0.45)
    assert rows[1]["delta_m"] == pytest.approx(100 * (0.50 - 0.45) / 0.45)


def test_adaptor_sets_are_named_by_how_they_were_trained():
    from omnicodec.eval.evaluate import describe_adaptors

    assert describe_adaptors({"lmbda": 2.0}, "run", 2) == ("all-in-one", "run q2 λ=2")
    assert describe_adaptors({"lmbda": 2.0, "train_s_adaptor": False}, "run", 2) == ("decoder-only", "run q2 λ=2")
    assert describe_adaptors({"lmbda": 2.0, "human_weight": 0.01}, "run", 3) == ("all-in-one +human", "run q3 λ=2 μ=0.01")
