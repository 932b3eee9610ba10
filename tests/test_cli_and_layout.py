"""The command line teaches and fails cleanly; the layout never shadows stdlib `platform`;
library code imports without starting Ray."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest

from omnicodec.cli import build_parser, main

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMANDS = ["data", "pretrain", "train", "sweep", "eval", "encode", "decode", "serve", "submit", "demo"]


def test_every_promised_subcommand_exists_and_its_help_has_an_example(capsys):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(COMMANDS) <= set(sub.choices)
    for name in ["train", "sweep", "eval", "encode", "decode", "serve", "submit", "demo"]:
        with pytest.raises(SystemExit) as e:
            main([name, "--help"])
        assert e.value.code == 0
        out = capsys.readouterr().out
        assert ("example" in out or name == "demo") and len(out) > 200, name


def test_every_cli_module_is_one_registered_subcommand_of_its_own_name():
    """One module per subcommand: a file in omnicodec/cli/ (helpers start with `_`) is listed in
    SUBCOMMANDS and registers exactly the command it is named after, so a new subcommand is
    one file plus one entry, and a file nobody registered cannot sit there unseen."""
    import importlib

    from omnicodec import cli

    folder = os.path.dirname(cli.__file__)
    modules = {f[:-3] for f in os.listdir(folder) if f.endswith(".py") and not f.startswith("_")}
    assert modules == set(cli.SUBCOMMANDS)
    for name in cli.SUBCOMMANDS:
        parser = argparse.ArgumentParser()
        sub = parser.add_subparsers(dest="command")
        importlib.import_module(f"omnicodec.cli.{name}").register(sub)
        assert list(sub.choices) == [name], name


def test_help_does_not_import_torch_or_ray():
    """`omnicodec --help` and every subcommand's help answer without loading the heavy stack:
    handlers import what they need when they run."""
    code = ("import sys\nfrom omnicodec.cli import build_parser\nbuild_parser()\n"
            "print(sorted(m for m in ('torch', 'ray', 'compressai') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_user_errors_print_one_line_and_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.omc"
    bad.write_bytes(b"OMNC\x01" + bytes(10))
    assert main(["info", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("omnicodec: error:") and "truncated at byte 15" in err and "\n" not in err
    assert main(["decode", str(tmp_path / "missing.omc"), "--human", "-o", str(tmp_path / "x.png")]) == 2
    assert "no such file" in capsys.readouterr().err
    cfg = tmp_path / "t.yaml"
    cfg.write_text("optim: {lr: fast}\ndata: {shards: x}\ntasks: [{name: cls}]\n")
    assert main(["train", str(cfg)]) == 2
    assert "key 'optim.lr'" in capsys.readouterr().err


def test_repo_root_on_sys_path_does_not_shadow_stdlib_platform():
    code = "import platform, sys; print(platform.__file__); print(platform.python_version())"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": REPO}).stdout
    assert "site-packages" not in out.splitlines()[0] and REPO not in out.splitlines()[0]
    assert not os.path.exists(os.path.join(REPO, "platform", "__init__.py"))


def test_bare_checkout_on_pythonpath_finds_every_source_root():
    """What a Ray working_dir sees: no install, just the four roots on PYTHONPATH."""
    roots = os.pathsep.join(os.path.join(REPO, r) for r in ("platform", "adaptors", "jobs", "serve"))
    code = ("import sys; sys.meta_path[:] = [m for m in sys.meta_path if 'Editable' not in type(m).__name__];"
            "import omnicodec.adaptors, omnicodec.jobs.runner, omnicodec.serve.core; print(omnicodec.adaptors.__file__)")
    out = subprocess.run([sys.executable, "-c", code], cwd="/", capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": roots})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith(os.path.join(REPO, "adaptors"))


def test_a_regular_install_ships_every_package_of_the_four_roots():
    """`pip install .` (not editable) copies only the packages pyproject lists: one missed
    subpackage installs fine and fails at import time on the user's machine."""
    import tomllib

    with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
        listed = set(tomllib.load(f)["tool"]["setuptools"]["packages"])
    found = set()
    for root in ("platform", "adaptors", "jobs", "serve"):
        for folder, _, files in os.walk(os.path.join(REPO, root)):
            if "__init__.py" in files:
                found.add(os.path.relpath(folder, os.path.join(REPO, root)).replace(os.sep, "."))
    assert found == listed


def test_library_import_has_no_ray_side_effects():
    code = ("import sys, omnicodec.model, omnicodec.data.loader, omnicodec.eval.evaluate, omnicodec.adaptors;"
            "import ray; print(ray.is_initialized())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_the_core_and_the_adaptors_never_import_jobs_or_serve():
    """Dependencies point one way: jobs/ and serve/ use the core, never the reverse (the CLI
    package, whose handlers dispatch to every subcommand lazily, is the one exception)."""
    import re

    bad = []
    for root in ("platform", "adaptors"):
        for dirpath, _, files in os.walk(os.path.join(REPO, root)):
            for f in files:
                path = os.path.join(dirpath, f)
                if not f.endswith(".py") or os.path.join("omnicodec", "cli", "") in path:
                    continue
                text = open(path).read()
                if re.search(r"^\s*(from|import)\s+omnicodec\.(jobs|serve)\b", text, re.M):
                    bad.append(os.path.relpath(path, REPO))
    assert not bad, f"core modules importing jobs/serve: {bad}"


def test_the_code_base_passes_its_own_ruff_config():
    """The lint config in pyproject.toml is the one the code keeps (ruff is a test dependency)."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-m", "ruff", "check", "platform", "jobs", "serve", "adaptors", "tests",
                          "benchmarks"], cwd=root, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:]
