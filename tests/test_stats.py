"""The statistics every report rests on: the paired bootstrap has the width theory says,
pairing removes shared per-image variance, BD-rate is exact on hand-computed curves and
ignores points off the operational frontier, and the task metrics' per-image resampling
reproduces the metric itself on the identity resample."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from omnicodec.eval.stats import mean_interval, resample_indices, statistic_interval
from omnicodec.eval.summary import bd_rate


def test_bootstrap_interval_of_a_mean_has_the_textbook_width():
    rng = np.random.default_rng(1)
    values = rng.normal(10.0, 2.0, size=400)  # sd 2: standard error 0.1, 95 % half-width ~0.196
    ci = mean_interval(values, resample_indices(400, 2000, seed=3))
    half = (ci.high - ci.low) / 2
    assert ci.value == pytest.approx(values.mean())
    assert half == pytest.approx(1.96 * values.std(ddof=1) / 20, rel=0.12)
    assert ci.low < ci.value < ci.high and ci.n == 400


def test_pairing_removes_the_variance_two_systems_share():
    """System B = system A + 0.5 on every image (plus tiny noise): each mean has a wide
    interval, but the paired difference is pinned near 0.5."""
    rng = np.random.default_rng(2)
    a = rng.normal(0.0, 3.0, size=200)
    b = a + 0.5 + rng.normal(0.0, 0.01, size=200)
    idx = resample_indices(200, 1000, seed=4)
    wide = mean_interval(a, idx)
    diff = statistic_interval({"a": a, "b": b}, lambda d: float(d["b"].mean() - d["a"].mean()), idx)
    assert (wide.high - wide.low) > 0.6
    assert diff.low > 0.49 and diff.high < 0.51


def test_several_statistics_share_one_bootstrap_and_each_gets_its_own_interval():
    """``statistic_intervals`` (BD-rate and BD-metric of one pair of curves in one pass) gives
    each statistic the interval ``statistic_interval`` gives it alone; one defined on fewer
    than half of the resamples gets none."""
    from omnicodec.eval.stats import statistic_intervals

    rng = np.random.default_rng(9)
    data = {"a": rng.normal(0.0, 1.0, 120), "b": rng.normal(0.3, 1.0, 120)}
    idx = resample_indices(120, 400, seed=2)

    def diff(d):
        return float(d["b"].mean() - d["a"].mean())

    def rarely(d):
        return 1.0 if d["a"].mean() > 0.5 else None

    both = statistic_intervals(data, lambda d: {"diff": diff(d), "rarely": rarely(d)}, idx)
    alone = statistic_interval(data, diff, idx)
    assert (both["diff"].value, both["diff"].low, both["diff"].high) == (alone.value, alone.low, alone.high)
    assert both["rarely"].low is None


def test_cluster_bootstrap_draws_whole_groups():
    groups = [f"photo-{i // 4}" for i in range(40)]  # 10 photos, 4 crops each, in order
    idx = resample_indices(40, 200, seed=5, groups=groups)
    assert idx.shape == (200, 40)
    for row in idx:
        counts = np.bincount(row // 4, minlength=10)
        assert (counts % 4 == 0).all() and counts.sum() == 40  # a photo comes with all its crops or not at all
        assert (np.bincount(row, minlength=40).reshape(10, 4) == (counts // 4)[:, None]).all()


def test_cluster_bootstrap_widens_the_interval_of_correlated_images():
    """50 photos x 8 crops that agree exactly within a photo: the information is that of 50
    images. The cluster bootstrap gives the textbook width for 50; resampling crops one by
    one pretends there are 400 and is about sqrt(8) times too narrow."""
    rng = np.random.default_rng(7)
    per_photo = rng.normal(0.0, 1.0, size=50)
    values = np.repeat(per_photo, 8)
    groups = np.repeat(np.arange(50), 8).tolist()
    cluster = mean_interval(values, resample_indices(400, 2000, seed=8, groups=groups))
    naive = mean_interval(values, resample_indices(400, 2000, seed=8))
    textbook = 1.96 * per_photo.std(ddof=1) / np.sqrt(50)
    assert (cluster.high - cluster.low) / 2 == pytest.approx(textbook, rel=0.12)
    assert (cluster.high - cluster.low) / (naive.high - naive.low) == pytest.approx(np.sqrt(8), rel=0.2)


def test_cluster_bootstrap_with_unequal_groups_and_bad_labels():
    groups = ["a"] * 5 + ["b"] * 2 + ["c"] * 3
    idx = resample_indices(10, 50, seed=1, groups=groups)
    assert idx.shape == (50, 10) and idx.min() >= 0 and idx.max() < 10
    with pytest.raises(ValueError, match="9 labels for 10 images"):
        resample_indices(10, 5, groups=groups[:9])
    with pytest.raises(ValueError, match="one group"):
        resample_indices(3, 5, groups=["x", "x", "x"])


def test_grouping_by_a_missing_meta_field_names_the_shard_and_sample():
    from omnicodec.data.samples import Sample
    from omnicodec.errors import OmnicodecError
    from omnicodec.eval.evaluate import bootstrap_groups

    img = torch.zeros(3, 8, 8)
    samples = [Sample("crop-00", "s.tar", img, meta={"source": "p1"}), Sample("crop-01", "s.tar", img, meta={})]
    assert bootstrap_groups(samples[:1], "source") == ["p1"]
    with pytest.raises(OmnicodecError, match=r"s.tar: sample 'crop-01' has no meta field 'source'"):
        bootstrap_groups(samples, "source")


def test_statistic_interval_reports_undefined_statistics():
    values = {"x": np.arange(10, dtype=float)}
    out = statistic_interval(values, lambda d: None, resample_indices(10, 50))
    assert out.value is None and out.low is None and out.valid == 0


def _curve(rates, values):
    return [{"bpp": r, "value": v} for r, v in zip(rates, values)]


def test_bd_rate_is_exact_when_one_curve_needs_half_the_bits():
    anchor = _curve([0.1, 0.2, 0.4, 0.8], [28.0, 30.0, 32.0, 34.0])
    test = _curve([0.05, 0.1, 0.2, 0.4], [28.0, 30.0, 32.0, 34.0])
    assert bd_rate(anchor, test)["bd_rate"] == pytest.approx(-50.0, abs=1e-6)
    assert bd_rate(test, anchor)["bd_rate"] == pytest.approx(100.0, abs=1e-6)


def test_bd_rate_drops_points_off_the_operational_frontier():
    """A point that costs more bits and scores no better than a cheaper one is never an
    operating point: adding it must not change the BD-rate."""
    anchor = _curve([0.1, 0.2, 0.4, 0.8], [28.0, 30.0, 32.0, 34.0])
    noisy = anchor + _curve([0.3], [29.0])
    test = _curve([0.05, 0.1, 0.2, 0.4], [28.0, 30.0, 32.0, 34.0])
    assert bd_rate(noisy, test)["bd_rate"] == pytest.approx(-50.0, abs=1e-6)


def test_bd_rate_names_the_widest_rate_gap_its_interpolation_spans():
    """The anchor's range 30-32 falls between test points 0.05 and 0.4 bpp (8x apart): the
    value there is the interpolation's, and the report must be able to say so."""
    anchor = _curve([0.1, 0.2, 0.4, 0.8], [28.0, 30.0, 32.0, 34.0])
    sparse = _curve([0.05, 0.4], [29.0, 33.0])
    assert bd_rate(anchor, sparse)["rate_gap"] == pytest.approx(8.0)
    dense = _curve([0.05, 0.1, 0.2, 0.4], [28.0, 30.0, 32.0, 34.0])
    assert bd_rate(anchor, dense)["rate_gap"] == pytest.approx(2.0)  # every neighbour 2x apart
    # a collapsed point 10x below, whose segment ends exactly on the compared range's lower
    # edge (28, the anchor's lowest), interpolates nothing inside 28-33: the widest gap there
    # is the anchor's own 2x, not 10x
    edge = _curve([0.01, 0.1, 0.12], [20.0, 28.0, 33.0])
    assert bd_rate(anchor, edge)["rate_gap"] == pytest.approx(2.0)
    from omnicodec.eval.report import _bd

    assert _bd({"bd_rate": -40.0, "rate_gap": 8.0}).endswith("†") and "†" not in _bd({"bd_rate": -40.0, "rate_gap": 2.0})
    assert _bd(bd_rate(anchor, sparse)) == f"{bd_rate(anchor, sparse)['bd_rate']:+.1f} † (ov 100 %)"


def test_bd_rate_says_why_it_is_undefined():
    one_point = _curve([0.2], [30.0])
    assert bd_rate(one_point, _curve([0.1, 0.2], [29.0, 31.0]))["note"].startswith("needs >= 2 frontier points")
    apart = bd_rate(_curve([0.1, 0.2], [20.0, 21.0]), _curve([0.1, 0.2], [30.0, 31.0]))
    assert apart["bd_rate"] is None and "overlap" in apart["note"]


def test_task_metrics_resampled_with_the_identity_reproduce_the_metric():
    from omnicodec.tasks.metrics import MeanAP, MeanIoU, TopK

    rng = np.random.default_rng(5)
    top = TopK()
    for _ in range(30):
        top.update(torch.from_numpy(rng.random((1, 4))), torch.tensor([int(rng.integers(0, 4))]),
                   torch.from_numpy(rng.random((1, 4))))
    iou = MeanIoU(3)
    for _ in range(12):
        iou.update(torch.from_numpy(rng.integers(0, 3, (8, 8))), torch.from_numpy(rng.integers(0, 3, (8, 8))),
                   torch.from_numpy(rng.integers(0, 3, (8, 8))))
    ap = MeanAP(2)
    for _ in range(10):
        gt = torch.tensor([[10.0, 10.0, 40.0, 50.0]])
        jitter = torch.from_numpy(rng.normal(0, 4, (2, 4))).float()
        ap.update([{"boxes": gt.repeat(2, 1) + jitter, "scores": torch.tensor([0.9, 0.3]),
                    "labels": torch.tensor([0, 1])}], [gt], [torch.tensor([0])], (64, 64))
    for metric, keys, n in ((top, ("top1", "agreement"), 30), (iou, ("miou", "pixel_acc", "agreement"), 12),
                            (ap, ("map", "map50"), 10)):
        identity = np.arange(n)[None]
        for key in keys:
            assert metric.bootstrap(key, identity)[0] == pytest.approx(metric.result()[key], abs=1e-9), key
        draws = metric.bootstrap(keys[0], resample_indices(n, 40, seed=6))
        assert draws.shape == (40,) and np.isfinite(draws).all()


def test_an_error_metric_gets_the_same_bd_rate_sign_and_delta_m_direction():
    """Lower-is-better (e.g. mean angular error): needing half the bits for the same error
    is still -50 %, and a lower error counts as a gain in Delta_m."""
    from omnicodec.eval.summary import delta_m, value_at_rate

    anchor = _curve([0.1, 0.2, 0.4, 0.8], [40.0, 30.0, 20.0, 10.0])
    test = _curve([0.05, 0.1, 0.2, 0.4], [40.0, 30.0, 20.0, 10.0])
    assert bd_rate(anchor, test, higher_is_better=False)["bd_rate"] == pytest.approx(-50.0, abs=1e-6)
    assert value_at_rate(anchor, 0.2, higher_is_better=False) == pytest.approx(30.0)
    assert delta_m({"normals": 15.0}, {"normals": 20.0}, {"normals": False}) == pytest.approx(25.0)


def test_map_resamples_equal_pycocotools_accumulate_on_the_drawn_images():
    """The bootstrap's vectorized accumulate (one area range, one detection cap) gives exactly
    what pycocotools' own ``accumulate`` gives for the same drawn images, duplicates included."""
    import contextlib
    import io

    from omnicodec.tasks.metrics import MeanAP

    rng = np.random.default_rng(11)
    ap = MeanAP(3)
    for _ in range(25):
        n_gt = int(rng.integers(0, 4))
        xy = rng.uniform(0, 40, (n_gt, 2))
        gt = torch.from_numpy(np.concatenate([xy, xy + rng.uniform(8, 24, (n_gt, 2))], 1)).float()
        labels = torch.from_numpy(rng.integers(0, 3, n_gt))
        n_dt = int(rng.integers(0, 6))
        base = gt[rng.integers(0, max(n_gt, 1), n_dt)] if n_gt else torch.full((n_dt, 4), 5.0) + torch.tensor([0, 0, 9, 9])
        dets = {"boxes": base + torch.from_numpy(rng.normal(0, 3, (n_dt, 4))).float(),
                "scores": torch.from_numpy(rng.random(n_dt)).float(), "labels": torch.from_numpy(rng.integers(0, 3, n_dt))}
        ap.update([dets], [gt], [labels], (64, 64))
    idx = resample_indices(25, 6, seed=3)
    ev = ap._evaluated()
    per, ids = list(ev.evalImgs), list(ev._paramsEval.imgIds)
    n_img, n_area, n_cat = len(ids), len(ev._paramsEval.areaRng), len(ev._paramsEval.catIds)
    for key in ("map", "map50"):
        expected = []
        for row in idx:
            ev.evalImgs = [per[k * n_area * n_img + a * n_img + i] for k in range(n_cat) for a in range(n_area) for i in row]
            ev.params.imgIds = ev._paramsEval.imgIds = [ids[i] for i in row]
            with contextlib.redirect_stdout(io.StringIO()):
                ev.accumulate()
            prec = ev.eval["precision"][:, :, :, 0, -1]
            prec = prec[0] if key == "map50" else prec
            expected.append(prec[prec > -1].mean())
        assert ap.bootstrap(key, idx) == pytest.approx(np.array(expected), abs=1e-12), key
