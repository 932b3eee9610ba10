"""Training without Ray (``omnicodec train --local DEVICE``): the same steps Ray Train runs,
in one process on one device, with the same run folder, checkpoints and resume."""

from __future__ import annotations

import os

import pytest
import torch
from safetensors.torch import load_file

from omnicodec.errors import ConfigError
from omnicodec.jobs.adaptor_job import AdaptorTrainConfig
from omnicodec.jobs.local import fit_local, latest_checkpoint, resolve_device
from omnicodec.model import OmniCodec


def _config(tmp_path, scenes: str, name: str, steps: int) -> AdaptorTrainConfig:
    return AdaptorTrainConfig.from_dict({
        "run": {"name": name, "storage": str(tmp_path / "runs"), "checkpoint_every": 2, "seed": 3,
                "wandb": {"mode": "disabled"}},
        # constant LR: a run stopped at step 2 then trained to 4 sees the schedule of one run to 4
        "optim": {"steps": steps, "lr": 0.002, "warmup_steps": 1, "schedule": "constant"},
        "data": {"shards": os.path.join(scenes, "train-{000000..000001}.tar"), "batch_size": 2, "crop": 64,
                 "shuffle_buffer": 4, "num_workers": 0},
        "codec": {"arch": "mbt2018-mean-small", "quality": 2},
        "tasks": [{"name": "cls", "loss": "distill"}, {"name": "det", "loss": "label"}],
        "lmbda": 1.0,
    })


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> str:
    from omnicodec.data.scenes import build_scenes

    out = tmp_path_factory.mktemp("local-scenes")
    build_scenes(str(out), train=16, test=8, size=128, maxcount=8, progress=False)
    return str(out)


def _adaptors(result) -> dict[str, torch.Tensor]:
    return load_file(os.path.join(result.checkpoint, "adaptors", "adaptors.safetensors"))


def test_a_killed_local_run_resumes_to_the_same_adaptors_as_an_uninterrupted_one(tmp_path, scenes):
    whole = fit_local("adaptors", _config(tmp_path, scenes, "whole", steps=4))
    assert whole.error is None and whole.metrics["step"] == 4
    assert os.path.basename(whole.checkpoint) == "checkpoint_000004"

    first = fit_local("adaptors", _config(tmp_path, scenes, "split", steps=2))  # stopped after 2 steps
    assert first.metrics["step"] == 2
    resumed = fit_local("adaptors", _config(tmp_path, scenes, "split", steps=4))  # relaunch, trained longer
    assert resumed.metrics["resumed_from"] == 2 and resumed.metrics["step"] == 4
    a, b = _adaptors(whole), _adaptors(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # the checkpoint is what every other command reads; only the newest two are kept
    model = OmniCodec.from_checkpoint(os.path.join(resumed.checkpoint, "adaptors"))
    assert model.tasks == ["cls", "det"]
    assert sorted(os.listdir(resumed.run_dir)) == ["checkpoint_000002", "checkpoint_000004", "omnicodec-config.json"]

    again = fit_local("adaptors", _config(tmp_path, scenes, "split", steps=4))  # complete: nothing trains
    assert again.metrics["already_complete"] == 1.0 and again.checkpoint.endswith("checkpoint_000004")


def test_a_missing_device_or_changed_experiment_is_refused_before_training(tmp_path, scenes):
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device"):
            resolve_device("cuda")
        result = fit_local("adaptors", _config(tmp_path, scenes, "nogpu", steps=2), device="cuda")
        assert "no CUDA device" in result.error and latest_checkpoint(result.run_dir) is None
    fit_local("adaptors", _config(tmp_path, scenes, "same", steps=2))
    changed = _config(tmp_path, scenes, "same", steps=4).model_copy(update={"lmbda": 3.0})
    result = fit_local("adaptors", changed)
    assert result.error.startswith("ConfigError") and "lmbda: 1.0 -> 3.0" in result.error


def test_the_cli_trains_locally_and_never_imports_ray(tmp_path, scenes):
    """In a process where ``import ray`` fails (a GPU box without Ray), ``train --local`` works."""
    import subprocess
    import sys

    import yaml

    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(_config(tmp_path, scenes, "cli", steps=2).to_dict()))
    code = ("import sys; sys.modules['ray'] = None; from omnicodec.cli import main\n"
            "if __name__ == '__main__': main(sys.argv[1:])")
    script = tmp_path / "no_ray.py"
    script.write_text(code)
    out = subprocess.run([sys.executable, str(script), "train", str(spec), "--local"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "checkpoint_000002" in out.stdout and "adaptors:" in out.stdout


def test_a_local_run_leaves_the_callers_thread_count_alone(tmp_path, scenes):
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        fit_local("adaptors", _config(tmp_path, scenes, "threads", steps=1))  # trains with 1 thread
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
