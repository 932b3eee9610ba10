"""The demo's curves: its bundled sets exist in a fresh clone, the main curve is ONE
rate-conditioned set of a variable-rate codec, the fixed-rate sets adapt the codec it trains."""

import pytest

from omnicodec.errors import OmnicodecError
from omnicodec.jobs.demo import bundled_points, demo_baselines, load_demo_spec, rate_conditioned_set
from omnicodec.model import OmniCodec


def test_every_bundled_point_loads_and_adapts_the_trained_codec():
    spec = load_demo_spec()
    points = bundled_points(spec, spec["train"]["codec"]["arch"])
    assert len(points) == len(spec["bundled"]) >= 2
    for label, where in points:
        assert "bundled" in label  # the curve says which points were not trained live
        model = OmniCodec.from_checkpoint(where)
        assert model.codec.spec.arch == spec["train"]["codec"]["arch"]
        assert [t["name"] for t in spec["train"]["tasks"]] == model.tasks


def test_a_bundled_set_of_another_codec_is_refused():
    with pytest.raises(OmnicodecError, match="adapts mbt2018-mean-photo q2, the demo trains on mbt2018-mean-small"):
        bundled_points(load_demo_spec(), "mbt2018-mean-small")


def test_the_main_curve_is_one_rate_conditioned_set_at_several_rates_against_its_frozen_ladder():
    spec = load_demo_spec()
    label, where, levels, arch = rate_conditioned_set(spec)
    model = OmniCodec.from_checkpoint(where)
    assert model.variable_rate and model.codec.spec.arch == arch
    assert len(levels) >= 3 and all(1 <= lv <= model.adaptors.config.rate_levels for lv in levels)
    assert [t["name"] for t in spec["train"]["tasks"]] == model.tasks
    baselines = demo_baselines(spec, arch, spec["train"]["codec"]["arch"], ["/runs/live"])
    assert baselines[0] == f"frozen:{arch}:{','.join(str(round(lv)) for lv in levels)}"
    assert baselines[1].startswith("adaptors:fixed-rate sets (live + bundled)=/runs/live,")
