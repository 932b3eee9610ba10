"""Run from the user's own folder, not the clone (issue 27): every relative path in a config or
on the command line is resolved once, in the driver, against the folder the user runs in (a
sweep spec's own `train:` against the spec's folder) and reaches Ray workers absolute; shipped
specs are found by name; a failed launch leaves nothing that blocks the corrected relaunch; a
network brought by config fails in one line before Ray starts."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import yaml

from omnicodec.cli import main

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OMNICODEC = os.path.join(os.path.dirname(sys.executable), "omnicodec")


@pytest.fixture(scope="module")
def user_dir(tmp_path_factory):
    """A user's folder: tiny scene shards under shards/, and nothing of the clone."""
    from omnicodec.data.scenes import build_scenes

    d = tmp_path_factory.mktemp("user")
    build_scenes(str(d / "shards"), train=4, test=2, size=64, maxcount=2, progress=False)
    return d


def omnicodec(args: list[str], cwd, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    """The CLI as the user runs it: its own process, in the user's folder."""
    return subprocess.run([OMNICODEC, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "OMNICODEC_HOME": str(cwd / "home"), **env})


def test_relative_paths_in_a_config_and_on_the_command_line_reach_the_workers_absolute(user_dir, monkeypatch):
    from omnicodec.jobs.adaptor_job import AdaptorTrainConfig

    monkeypatch.chdir(user_dir)
    (user_dir / "specs").mkdir(exist_ok=True)
    (user_dir / "specs" / "mine.yaml").write_text(yaml.safe_dump({
        "data": {"shards": "shards/train-*.tar"}, "run": {"storage": "runs", "wandb": {"dir": "wandb-files"}},
        "tasks": [{"name": "cls", "loss": "distill"}]}))
    cfg = AdaptorTrainConfig.from_yaml("specs/mine.yaml", ["validation.shards=[shards/test-000000.tar]",
                                                           "codec.checkpoint=s3://bucket/codec.pth.tar"])
    sent = cfg.to_dict()  # what Ray Train hands every worker
    assert sent["data"]["shards"] == str(user_dir / "shards" / "train-*.tar")  # the user's folder, not the spec's
    assert sent["validation"]["shards"] == [str(user_dir / "shards" / "test-000000.tar")]
    assert sent["run"]["storage"] == str(user_dir / "runs")
    assert sent["run"]["wandb"]["dir"] == str(user_dir / "wandb-files")
    assert sent["codec"]["checkpoint"] == "s3://bucket/codec.pth.tar"  # URLs untouched


def test_a_shipped_spec_is_found_by_name_from_any_folder(user_dir, capsys, monkeypatch):
    """`omnicodec train train` (or train.yaml, or the README's path) from the user's folder finds the
    shipped spec; the driver's shard check then names the user's folder. No Ray, no run folder."""
    monkeypatch.chdir(user_dir)
    for name in ("train", "train.yaml", "jobs/omnicodec/jobs/specs/train.yaml"):
        assert main(["train", name, "--set", "data.shards=nope/train-{000000..000001}.tar",
                     "--set", "run.storage=runs"]) == 2
        err = capsys.readouterr().err
        assert f"data.shards: shard {user_dir / 'nope' / 'train-000000.tar'} does not exist" in err, err
    assert main(["train", "trian"]) == 2
    err = capsys.readouterr().err
    assert "trian: no such config file (shipped specs, by name:" in err and "sweep, train" in err
    assert not (user_dir / "runs").exists()


def test_a_sweep_specs_own_train_path_is_next_to_the_spec(user_dir, monkeypatch):
    from omnicodec.jobs import sweep

    monkeypatch.chdir(user_dir)
    specs = user_dir / "sweeps-specs"
    specs.mkdir(exist_ok=True)
    (specs / "my-train.yaml").write_text(yaml.safe_dump({
        "data": {"shards": "shards/train-*.tar", "crop": 64}, "tasks": [{"name": "cls", "loss": "distill"}]}))
    (specs / "my-sweep.yaml").write_text(yaml.safe_dump({
        "train": "my-train.yaml", "eval_data": "shards/test-*.tar", "search": {"lmbda": {"grid": [1.0]}}}))
    cfg = sweep.SweepConfig.from_cli("sweeps-specs/my-sweep.yaml", ["train.optim.steps=2"])
    assert cfg.train == str(specs / "my-train.yaml")
    train = cfg.base_train()
    assert train["data"]["shards"] == str(user_dir / "shards" / "train-*.tar") and train["optim"]["steps"] == 2
    assert cfg.eval_data == str(user_dir / "shards" / "test-*.tar")
    sweep.preflight_sweep(cfg)  # the driver's checks pass on the user's own shards


def test_a_failed_launch_does_not_block_the_corrected_relaunch(user_dir, tmp_path):
    """A launch that failed before its first checkpoint recorded its config; relaunching the same run
    name with the corrected config trains it (there is nothing to resume), it is not refused."""
    from omnicodec.jobs.adaptor_job import AdaptorTrainConfig
    from omnicodec.jobs.runner import RUN_CONFIG_FILE, guard_relaunch

    base = {"data": {"shards": str(user_dir / "shards" / "train-*.tar")}, "tasks": [{"name": "cls", "loss": "distill"}],
            "run": {"name": "mine", "storage": str(tmp_path / "runs")}}
    first = AdaptorTrainConfig.from_dict({**base, "lmbda": 1.0})
    guard_relaunch(first)  # what the failed launch left: the run folder with its config record, no checkpoint
    corrected = AdaptorTrainConfig.from_dict({**base, "lmbda": 2.0})
    guard_relaunch(corrected)  # refused before: "was started with another config"
    assert '"lmbda": 2.0' in (tmp_path / "runs" / "mine" / RUN_CONFIG_FILE).read_text()


def _brought_network_spec(user_dir, change: dict) -> str:
    """A user's YAML naming their own segmenter (weights saved next to it, by relative path)."""
    import torch
    import torchvision.models as tvm
    from safetensors.torch import save_file

    (user_dir / "nets").mkdir(exist_ok=True)
    if not (user_dir / "nets" / "parts.safetensors").exists():
        torch.manual_seed(0)
        module = tvm.get_model("lraspp_mobilenet_v3_large", weights=None, weights_backbone=None, num_classes=6)
        save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(user_dir / "nets" / "parts.safetensors"))
    network = {"builder": "torchvision:lraspp_mobilenet_v3_large", "weights": "nets/parts.safetensors",
               "kwargs": {"num_classes": 6, "weights": None, "weights_backbone": None}, "output": "out",
               "layers": ["backbone.4", "backbone.8"], **change}
    spec = {"run": {"name": "parts", "storage": "runs", "num_workers": 1}, "optim": {"steps": 2},
            "data": {"shards": "shards/train-*.tar", "crop": 64, "batch_size": 2},
            "tasks": [{"name": "parts", "kind": "seg", "num_classes": 5, "loss": "distill", "network": network}]}
    name = f"parts-{abs(hash(repr(sorted(change.items())))) % 10**8}.yaml"
    (user_dir / name).write_text(yaml.safe_dump(spec))
    return name


@pytest.mark.slow
@pytest.mark.parametrize("change, message", [
    ({"layers": ["backbone.nope"]}, "task 'parts': network.layers: no module 'backbone.nope' in torchvision:lraspp"),
    ({"weights": "nets/missing.safetensors"}, "task 'parts': network.weights: {dir}/nets/missing.safetensors does not exist"),
    ({"kwargs": {"num_classes": 3, "weights": None, "weights_backbone": None}},
     "task 'parts': network.weights: key 'classifier.low_classifier.weight' has shape [6, 40, 1, 1] in "
     "{dir}/nets/parts.safetensors but the network expects [3, 40, 1, 1]"),
    ({"output": "logits"}, "task 'parts': network.output: 'logits' is not in the network's output (['out'])"),
], ids=["wrong-layer", "missing-weights", "shape-mismatch", "wrong-output"])
def test_a_brought_networks_error_is_one_line_before_ray_and_leaves_no_run_folder(user_dir, change, message):
    spec = _brought_network_spec(user_dir, change)
    t0 = time.perf_counter()
    out = omnicodec(["train", spec], user_dir, timeout=120)
    err = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(err) == 1, out.stderr[-3000:]
    assert err[0].startswith("omnicodec: error: " + message.format(dir=user_dir)), err[0]
    assert time.perf_counter() - t0 < 45
    assert not (user_dir / "runs").exists() and not (user_dir / "home" / "logs").exists()  # Ray never started


@pytest.mark.heavy
@pytest.mark.ray
def test_the_readme_train_command_runs_from_the_users_folder(user_dir):
    """The README's command, copied into the user's folder (relative shards, the clone's spec path):
    it trains on Ray Train, its run folder in the user's folder."""
    out = omnicodec(["train", "jobs/omnicodec/jobs/specs/train.yaml", "--set", "run.name=mine",
                     "--set", "data.shards=shards/train-*.tar", "--set", "tasks=[{name: cls, loss: distill}]",
                     "--set", "run.storage=runs", "--set", "run.num_workers=1", "--set", "optim.steps=2",
                     "--set", "run.checkpoint_every=2", "--set", "data.crop=64", "--set", "data.batch_size=2"],
                    user_dir, timeout=420)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "using the shipped spec" in out.stdout and "adaptors:" in out.stdout
    assert (user_dir / "runs" / "mine" / "omnicodec-config.json").exists()
