"""The demo's curve: its bundled points exist in a fresh clone and adapt the codec it trains."""

import pytest

from omnicodec.errors import OmnicodecError
from omnicodec.jobs.demo import bundled_points, load_demo_spec
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
