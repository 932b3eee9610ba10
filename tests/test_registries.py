"""Every extension point is one ``omnicodec.registry.Registry``: one decorator shape, ``get``
whose error lists the known names, ``names()``; here the shape itself, the contracts of the
registries whose members have no test file of their own (codec architectures, tasks,
training jobs), and a CLI subcommand added as one file plus one registry line."""

from __future__ import annotations

import pytest

from omnicodec.errors import ConfigError, OmnicodecError
from omnicodec.registry import Registry


def test_one_shape_register_get_names_and_an_error_listing_the_known_names():
    reg = Registry("widget", error=ConfigError, hint="; or make one")

    @reg.register("a")
    def a():
        return 1

    @reg.register()
    def b():
        return 2

    assert reg.names() == ["a", "b"] and list(reg) == ["a", "b"] and "a" in reg and len(reg) == 2
    assert reg.get("a") is a and reg.register("a")(a) is a  # the same object again: a no-op
    with pytest.raises(ConfigError, match=r"^unknown widget 'c' \(known: a, b; or make one\)$"):
        reg.get("c")
    with pytest.raises(ConfigError, match=r"widget 'a' is registered twice \(a, b\)"):
        reg.register("a")(b)
    reg.add("a", b, replace=True)
    assert reg.get("a") is b
    reg.remove("a")
    assert reg.names() == ["b"]


def test_a_lazy_member_is_imported_on_first_get_only():
    reg = Registry("thing", lazy=True)
    reg.add("join", "os.path:join")
    assert reg.names() == ["join"]
    import os.path

    assert reg.get("join") is os.path.join
    with pytest.raises(TypeError, match="lazy=True"):
        Registry("thing").add("x", "os.path:join")


@pytest.mark.parametrize("name", __import__("omnicodec.codec", fromlist=["ARCHITECTURES"]).ARCHITECTURES.names())
def test_every_codec_architecture_builds_and_its_taps_are_stages_of_its_transforms(name):
    from omnicodec.codec import ARCHITECTURES, get_architecture

    arch = get_architecture(name)
    assert arch is ARCHITECTURES.get(name) and arch.name == name and arch.description
    model = arch.build(min(arch.sizes))
    assert max(arch.analysis_taps) < len(model.g_a) and max(arch.synthesis_taps) < len(model.g_s)
    assert arch.stage_channels(model) > 0


def test_an_unknown_architecture_lists_the_known_ones():
    from omnicodec.codec import get_architecture

    with pytest.raises(OmnicodecError, match=r"unknown codec architecture 'h266' \(known: .*mbt2018-mean-small"):
        get_architecture("h266")


@pytest.mark.parametrize("name", __import__("omnicodec.tasks.registry", fromlist=["TASKS"]).TASKS.names())
def test_every_task_names_a_registered_kind_and_a_metric_of_it(name):
    from omnicodec.tasks.kinds import KINDS
    from omnicodec.tasks.registry import get_task

    info = get_task(name)
    assert info.name == name and info.kind in KINDS and info.description
    assert info.metric in (info.task_kind.metric, info.task_kind.label_free_metric)


def test_validating_a_config_registers_no_task_and_the_job_registers_it_explicitly(tmp_path):
    """A task a config defines is known only once a process running the job registers it."""
    from omnicodec.jobs.adaptor_job import TaskSpec
    from omnicodec.tasks.registry import TASKS

    network = {"builder": "torchvision:lraspp_mobilenet_v3_large", "output": "out",
               "kwargs": {"weights": None, "weights_backbone": None, "num_classes": 3}}
    spec = TaskSpec.from_dict({"name": "myseg-reg", "kind": "seg", "loss": "distill", "network": network})
    assert "myseg-reg" not in TASKS and spec.definition()["kind"] == "seg"
    try:
        spec.register()
        assert TASKS.get("myseg-reg").network == spec.info().network
    finally:
        TASKS.remove("myseg-reg")


@pytest.mark.parametrize("name", __import__("omnicodec.jobs.runner", fromlist=["JOBS"]).JOBS.names())
def test_every_training_job_is_a_job_with_its_config_class(name):
    from omnicodec.config import Config
    from omnicodec.jobs.runner import Job, job_class

    cls = job_class(name)
    assert issubclass(cls, Job) and issubclass(cls.config_class, Config)


def test_a_subcommand_is_one_file_plus_one_registry_line(throwaway, capsys):
    from omnicodec.cli import SUBCOMMANDS, build_parser, main

    throwaway(SUBCOMMANDS, "hello", '''
        """``omnicodec hello``: a throwaway subcommand."""
        from omnicodec.cli._common import add_command


        def register(sub):
            s = add_command(sub, "hello", "say hello", "Says hello.\\n\\nexample: omnicodec hello --to you",
                            lambda a: print(f"hello {a.to}"))
            s.add_argument("--to", default="world")
        ''', lazy_attr="register")
    assert "hello" in build_parser().format_help()
    assert main(["hello", "--to", "registry"]) == 0
    assert capsys.readouterr().out == "hello registry\n"
    with pytest.raises(SystemExit):
        main(["hello", "--help"])
    assert "example: omnicodec hello" in capsys.readouterr().out


def test_the_task_registry_lists_bundled_tasks_without_torch():
    """``--help`` may list the tasks ``pretrain task`` trains, and their kinds' defaults,
    without importing torch (the CLI's parser stays instant)."""
    import subprocess
    import sys

    code = ("import sys; from omnicodec.tasks.registry import trainable_tasks; "
            "print(','.join(trainable_tasks()), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["cls,seg,det", "False"]
