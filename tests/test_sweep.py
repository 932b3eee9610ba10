"""Ray Tune over Ray Train trials, ending in a rate/accuracy Pareto front."""

from __future__ import annotations

import json
import os

import pytest

from omnicodec.errors import ConfigError
from omnicodec.jobs.sweep import SweepConfig, pareto_front, run_sweep


def _train(scenes: str) -> dict:
    return {"run": {"num_workers": 1, "cpus_per_worker": 1, "checkpoint_every": 3, "wandb": {"mode": "disabled"}},
            "optim": {"steps": 3, "lr": 0.003},
            "data": {"shards": os.path.join(scenes, "train-{000000..000003}.tar"), "batch_size": 2, "crop": 64,
                     "shuffle_buffer": 4},
            "codec": {"arch": "mbt2018-mean-small", "quality": 2}, "tasks": [{"name": "cls"}]}


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> str:
    from omnicodec.data.scenes import build_scenes

    out = tmp_path_factory.mktemp("sweep-scenes")
    build_scenes(str(out), train=16, test=4, size=96, maxcount=4, progress=False)
    return str(out)


def test_pareto_front_keeps_only_non_dominated_trials():
    trials = [{"trial": "a", "eval_bpp": 0.2, "eval_score": 0.5}, {"trial": "b", "eval_bpp": 0.3, "eval_score": 0.4},
              {"trial": "c", "eval_bpp": 0.4, "eval_score": 0.7}, {"trial": "d", "eval_bpp": 0.1, "eval_score": 0.3}]
    assert sorted(pareto_front(trials)) == ["a", "c", "d"]


def test_a_search_key_that_is_not_a_config_key_is_refused(scenes, tmp_path):
    cfg = SweepConfig.from_dict({"train": _train(scenes), "eval_data": scenes, "storage": str(tmp_path),
                                 "search": {"lambda": {"grid": [1, 2]}}})
    with pytest.raises(ConfigError, match="search key 'lambda'"):
        run_sweep(cfg)


@pytest.mark.ray
def test_sweep_runs_train_trials_and_reports_the_pareto_front(ray_cluster, scenes, tmp_path):
    cfg = SweepConfig.from_dict({
        "name": "tiny", "storage": str(tmp_path), "train": _train(scenes),
        "eval_data": os.path.join(scenes, "test-000000.tar"), "eval_limit": 4,
        "search": {"lmbda": {"grid": [0.5, 4.0]}, "adaptor.bottleneck_ratio": {"grid": [4]}},
    })
    summary = run_sweep(cfg)
    assert len(summary["trials"]) == 2 and all(t["error"] is None for t in summary["trials"])
    assert {t["config"]["lmbda"] for t in summary["trials"]} == {0.5, 4.0}
    assert all(t["eval_bpp"] > 0 and 0 <= t["eval_score"] <= 1 for t in summary["trials"])
    assert summary["pareto"]
    out = tmp_path / "tiny"
    assert json.loads((out / "sweep.json").read_text())["pareto"] == summary["pareto"]
    assert (out / "pareto.png").stat().st_size > 0 and (out / "trials.csv").exists()


@pytest.mark.heavy  # three Ray Train trials through the CLI: 2.5 min on 2 cores, run with the drills
def test_asha_stops_a_trial_whose_validation_loss_trails(scenes, tmp_path):
    """Trials report the objective on a held-out batch (val_loss) at every checkpoint; ASHA
    stops the trial that trails at its first rung (lambda 50 weighs the task loss 500x more,
    so its val_loss is far above lambda 0.1's at every report), and the trial after it still
    gets the CPUs: the stopped trial's Ray Train placement group is freed by the sweep's
    reaper (without it the third trial waited forever on 2 cores). Run as a user does,
    through the CLI with its own local Ray."""
    import subprocess
    import sys

    import yaml

    train = _train(scenes)
    train["run"]["checkpoint_every"], train["optim"]["steps"] = 1, 4
    spec = {"name": "asha", "storage": str(tmp_path), "train": train,
            "eval_data": os.path.join(scenes, "test-000000.tar"), "eval_limit": 4,
            "search": {"lmbda": {"grid": [0.1, 50.0, 0.2]}}, "max_concurrent_trials": 1,
            "scheduler": {"kind": "asha", "metric": "val_loss", "grace_period": 1, "reduction_factor": 2,
                          "validation_images": 2}}
    (tmp_path / "asha.yaml").write_text(yaml.safe_dump(spec))
    cli = os.path.join(os.path.dirname(sys.executable), "omnicodec")
    out = subprocess.run([cli, "sweep", str(tmp_path / "asha.yaml")], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    summary = json.loads((tmp_path / "asha" / "sweep.json").read_text())
    by_lambda = {t["config"]["lmbda"]: t for t in summary["trials"]}
    assert by_lambda[0.1]["status"] == "done" and by_lambda[0.1]["eval_bpp"] > 0
    assert by_lambda[0.2]["status"] in ("done", "stopped early") and by_lambda[0.2]["reports"] >= 1  # it ran
    assert summary["freed_placement_groups"] >= 1  # the stopped trial's Train group, freed by the reaper
    stopped = by_lambda[50.0]
    assert stopped["status"] == "stopped early" and stopped["reports"] < 4, stopped
    assert stopped["val_loss"] > 0 and "val_bpp" in stopped and "val_L_cls" in stopped
