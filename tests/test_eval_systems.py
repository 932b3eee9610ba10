"""What ``omnicodec eval --baseline`` builds: each spec becomes named systems, the points of
one name form one curve, and a wrong spec is refused with the form it expects."""

from __future__ import annotations

import pytest

from omnicodec.codec import load_codec
from omnicodec.errors import OmnicodecError
from omnicodec.eval.evaluate import build_systems, name_adaptor_systems
from omnicodec.model import OmniCodec


def test_other_adaptor_sets_form_a_named_baseline_curve_beside_the_tested_ones(tmp_path):
    systems, tasks = build_systems([("ours", "zoo:adaptors-demo")],
                                   ["adaptors:all-in-one 300 steps=zoo:adaptors-demo,zoo:adaptors-demo"], str(tmp_path))
    name_adaptor_systems(systems)
    assert [s.name for s in systems] == ["all-in-one", "all-in-one 300 steps", "all-in-one 300 steps"]
    assert systems[1].label.startswith("adaptors-demo q2")  # labelled by how it was trained
    from omnicodec.adaptors.checkpoint import resolve

    assert systems[1].recipe == {"kind": "all-in-one", "checkpoint": resolve("zoo:adaptors-demo")}  # rebuildable on Ray
    assert tasks == systems[0].model.tasks


def test_a_malformed_or_mismatched_adaptor_baseline_is_refused_naming_the_spec(tmp_path):
    with pytest.raises(OmnicodecError, match="expected adaptors:NAME=RUN_OR_CKPT"):
        build_systems([("ours", "zoo:adaptors-demo")], ["adaptors:zoo:adaptors-demo"], str(tmp_path))
    other = OmniCodec(load_codec("mbt2018-mean-small:2"), ["cls"]).save(str(tmp_path / "cls-only"))
    with pytest.raises(OmnicodecError, match=r"has tasks \['cls'\], the adaptors \['cls', 'seg', 'det'\]"):
        build_systems([("ours", "zoo:adaptors-demo")], [f"adaptors:short={other}"], str(tmp_path))
    with pytest.raises(OmnicodecError, match="single:TASK=RUN,..., adaptors:NAME=RUN,... or finetuned:TASK=WEIGHTS"):
        build_systems([("ours", "zoo:adaptors-demo")], ["h266:1"], str(tmp_path))
