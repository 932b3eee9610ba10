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


def test_a_rate_conditioned_baseline_set_is_evaluated_at_the_same_rate_levels(tmp_path):
    systems, _ = build_systems([("ours", "zoo:adaptors-photo-vr-rate")],
                               ["adaptors:earlier=zoo:adaptors-photo-vr-rate"], str(tmp_path), rate_levels=[1, 4.5])
    assert [(s.name, s.position) for s in systems] == [("all-in-one", 0.0), ("all-in-one", 3.5),
                                                        ("earlier", 0.0), ("earlier", 3.5)]


def test_a_malformed_or_mismatched_adaptor_baseline_is_refused_naming_the_spec(tmp_path):
    with pytest.raises(OmnicodecError, match="expected adaptors:NAME=RUN_OR_CKPT"):
        build_systems([("ours", "zoo:adaptors-demo")], ["adaptors:zoo:adaptors-demo"], str(tmp_path))
    other = OmniCodec(load_codec("mbt2018-mean-small:2"), ["cls"]).save(str(tmp_path / "cls-only"))
    with pytest.raises(OmnicodecError, match=r"has tasks \['cls'\], the adaptors \['cls', 'seg', 'det'\]"):
        build_systems([("ours", "zoo:adaptors-demo")], [f"adaptors:short={other}"], str(tmp_path))
    with pytest.raises(OmnicodecError, match="single:TASK=RUN,..., adaptors:NAME=RUN,... or finetuned:TASK=WEIGHTS"):
        build_systems([("ours", "zoo:adaptors-demo")], ["h266:1"], str(tmp_path))


# a --baseline spec per kind whose systems are cheap to build here (finetuned: test_full_finetune.py)
EXAMPLES = {"frozen": "frozen:mbt2018-mean-small:2", "jpeg": "jpeg:10", "webp": "webp:10", "avif": "avif:30",
            "adaptors": "adaptors:other=zoo:adaptors-demo",
            "single": "single:cls=zoo:adaptors-demo,seg=zoo:adaptors-demo,det=zoo:adaptors-demo@one"}


@pytest.mark.parametrize("name", __import__("omnicodec.eval.systems", fromlist=["SYSTEMS"]).SYSTEMS.names())
def test_every_system_kind_keeps_the_contract(name, tmp_path, capsys):
    """A baseline kind is in `eval --help` and in the refusal of an unknown kind; its systems
    carry a recipe that rebuilds the same system (what Ray workers and the records cache use)."""
    from omnicodec.cli import main
    from omnicodec.eval.systems import SYSTEMS, SystemKind, system_from_recipe

    kind = SYSTEMS.get(name)
    assert issubclass(kind, SystemKind) and kind.recipes
    if kind.usage:
        assert kind.usage.startswith(f"{name}:") and kind.short.startswith(f"{name}:")
        with pytest.raises(SystemExit):
            main(["eval", "--help"])
        assert " ".join(kind.usage.split()) in " ".join(capsys.readouterr().out.split())
        with pytest.raises(OmnicodecError, match=rf"expected .*{kind.short.replace('.', '[.]')}"):
            build_systems([("ours", "zoo:adaptors-demo")], ["h266:1"], str(tmp_path))
    spec = EXAMPLES.get(name, None if name in ("finetuned", "original") else f"{name}:")
    if spec:
        systems, _ = build_systems([("ours", "zoo:adaptors-demo")], [spec], str(tmp_path))
        for s in systems[1:]:
            assert s.recipe["kind"] in kind.recipes
            again = system_from_recipe(s.recipe)
            assert type(again) is type(s) and again.recipe == s.recipe


def test_a_baseline_kind_is_one_file_plus_one_registry_line(throwaway, tmp_path, capsys):
    """The acceptance of the registry: a throwaway baseline kind from one new file (imported:
    its decorator is the registry line) is in --help, parses its --baseline and keeps the contract."""
    from omnicodec.eval.systems import SYSTEMS

    throwaway(SYSTEMS, "raw", '''
        from omnicodec.eval.systems.base import SYSTEMS, Decoded, System, SystemKind


        class Raw(System):
            """The image as 8-bit RGB, uncompressed: three bytes a pixel."""

            name, label, recipe = "raw", "8-bit", {"kind": "raw"}

            def run(self, sample, tasks):
                from omnicodec.model import HUMAN

                x = sample.image[None]
                return Decoded(x.numel(), {HUMAN: x, **{t: x for t in tasks}})


        @SYSTEMS.register("raw")
        class RawKind(SystemKind):
            usage = "raw: (uncompressed 8-bit RGB)"
            short = "raw:"
            recipes = ("raw",)

            @staticmethod
            def parse(spec, rest, ctx):
                return [Raw()]

            @staticmethod
            def from_recipe(recipe):
                return Raw()
        ''')
    systems, _ = build_systems([("ours", "zoo:adaptors-demo")], ["raw:", "jpeg:10"], str(tmp_path))
    assert [s.name for s in systems] == ["all-in-one", "raw", "JPEG"]
    test_every_system_kind_keeps_the_contract("raw", tmp_path, capsys)
