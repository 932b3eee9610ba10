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
            "import omnicodec.adaptors, omnicodec.jobs.runner, omnicodec.serve.core, omnicodec.runtime.ray_env;"
            "import omnicodec.cli; print(omnicodec.adaptors.__file__)")
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


# The layers, lowest first, and what each may import: the core (every package of platform/ and
# adaptors/) only itself; the Ray runtime (omnicodec.runtime, in serve/) the core; Serve and the
# jobs, siblings, the core, the runtime and themselves; the CLI (in jobs/), the top, anything.
ROOTS = ("platform", "adaptors", "serve", "jobs")
MAY_IMPORT = {"core": {"core"}, "runtime": {"core", "runtime"}, "serve": {"core", "runtime", "serve"},
              "jobs": {"core", "runtime", "jobs"}, "cli": {"core", "runtime", "serve", "jobs", "cli"}}


def layer_of(module: str) -> str | None:
    """The layer of an ``omnicodec`` module (or of a name inside one); None outside omnicodec."""
    parts = module.split(".")
    if parts[0] != "omnicodec":
        return None
    return {"cli": "cli", "jobs": "jobs", "serve": "serve", "runtime": "runtime"}.get(parts[1] if len(parts) > 1 else "",
                                                                                     "core")


def imported_modules(source: str, module: str) -> list[tuple[int, str]]:
    """(line, module) of every import in ``source`` wherever it sits (module level, functions,
    ``if`` blocks): ``import a.b``, ``from a.b import c`` (as ``a.b.c``: ``from omnicodec import
    jobs`` is an import of ``omnicodec.jobs``), relative imports resolved against ``module``,
    ``importlib.import_module("...")`` and the lazy registries' ``"package.module:attr"`` strings."""
    import ast
    import re

    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # (a package's __init__ resolves one level deeper: none in this tree)
                base = ".".join(module.split(".")[:-node.level] + ([base] if base else []))
            out += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module" \
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            out.append((node.lineno, node.args[0].value))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and re.fullmatch(r"omnicodec(\.\w+)+:\w+", node.value):
            out.append((node.lineno, node.value.split(":")[0]))
    return out


def layer_violations(source: str, module: str) -> list[str]:
    """Every import in ``source`` (the module ``module``) of a layer its own layer may not import."""
    own = layer_of(module)
    bad = []
    for line, target in imported_modules(source, module):
        other = layer_of(target)
        if own is not None and other is not None and other not in MAY_IMPORT[own]:
            bad.append(f"{module}:{line} ({own}) imports {target} ({other})")
    return bad


def source_modules():
    """(path, module name) of every Python file of the four source roots."""
    for root in ROOTS:
        base = os.path.join(REPO, root)
        for folder, _, files in os.walk(base):
            for f in sorted(files):
                if f.endswith(".py"):
                    rel = os.path.relpath(os.path.join(folder, f), base)[:-3]
                    yield os.path.join(folder, f), rel.replace(os.sep, ".").removesuffix(".__init__")


def test_layers_point_downward_in_every_source_root():
    """Core < runtime < {serve, jobs} < CLI: no module imports a layer above it or a sibling,
    at module level or inside a function (a lazy import is still a dependency)."""
    bad = []
    for path, module in source_modules():
        with open(path) as f:
            bad += layer_violations(f.read(), module)
    assert not bad, "imports against the layers:\n" + "\n".join(bad)


def test_each_root_holds_only_its_own_layers():
    """platform/ and adaptors/ hold the core; serve/ the runtime and Serve; jobs/ the jobs and the CLI."""
    allowed = {"platform": {"core"}, "adaptors": {"core"}, "serve": {"runtime", "serve"}, "jobs": {"jobs", "cli"}}
    for path, module in source_modules():
        root = os.path.relpath(path, REPO).split(os.sep)[0]
        assert layer_of(module) in allowed[root], (path, module, layer_of(module))


@pytest.mark.parametrize("module, source", [
    ("omnicodec.eval.evaluate", "def f():\n    from omnicodec.jobs.runner import fit\n    return fit\n"),
    ("omnicodec.model", "from omnicodec import serve\n"),
    ("omnicodec.adaptors.sets", "import omnicodec.runtime.ray_env\n"),
    ("omnicodec.serve.run", "import omnicodec.jobs\n"),
    ("omnicodec.jobs.demo", "if True:\n    from omnicodec.serve.app import build_app\n"),
    ("omnicodec.runtime.ray_env", "def g():\n    import omnicodec.serve\n"),
    ("omnicodec.jobs.runner", "from omnicodec.cli import main\n"),
    ("omnicodec.jobs.evaluation", "from ..serve import core\n"),
    ("omnicodec.data.loader", "import importlib\nimportlib.import_module('omnicodec.jobs.train')\n"),
    ("omnicodec.tasks.registry", "R.add('x', 'omnicodec.serve.core:TaskWorker')\n"),
], ids=["core-jobs-in-function", "core-from-omnicodec-import-serve", "core-runtime", "serve-jobs", "jobs-serve",
        "runtime-serve", "jobs-cli", "relative", "import_module", "registry-string"])
def test_the_layer_check_flags_an_upward_or_sideways_import(module, source):
    assert layer_violations(source, module), (module, source)


def test_the_cli_may_import_every_layer_and_the_core_itself():
    both = "from omnicodec.jobs.train import launch_adaptors\nfrom omnicodec import serve\nimport omnicodec.runtime\n"
    assert layer_violations(both, "omnicodec.cli.train") == []
    assert layer_violations("import os\nfrom omnicodec import storage\nimport ray\n", "omnicodec.codec.latent") == []
    assert layer_violations("from omnicodec.runtime.ray_env import init_ray\n", "omnicodec.serve.run") == []


def test_no_argparse_namespace_below_the_cli():
    """Handlers in omnicodec/cli/ turn the parsed flags into typed calls; no function elsewhere
    takes or returns an ``argparse.Namespace``."""
    import ast

    bad = []
    for path, module in source_modules():
        if layer_of(module) == "cli":
            continue
        with open(path) as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = node.args
                annotations = [x.annotation for x in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]
                               if x is not None and x.annotation is not None] + [node.returns]
                if any(t is not None and "Namespace" in ast.unparse(t) for t in annotations):
                    bad.append(f"{module}:{node.lineno} {node.name}")
    assert not bad, f"argparse.Namespace in signatures below the CLI: {bad}"


def test_the_code_base_passes_its_own_ruff_config():
    """The lint config in pyproject.toml is the one the code keeps (ruff is a test dependency)."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-m", "ruff", "check", "platform", "jobs", "serve", "adaptors", "tests",
                          "benchmarks"], cwd=root, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:]
