"""Multi-task adaptor training on a real local Ray cluster: DDP over adaptors only,
exact resume after a killed worker, and adaptors that beat the frozen codec."""

from __future__ import annotations

import json
import os
import threading
import time

import psutil
import pytest
import torch

from omnicodec.errors import ConfigError
from omnicodec.jobs.adaptor_job import AdaptorTrainConfig
from omnicodec.model import OmniCodec

pytestmark = pytest.mark.ray


def _config(tmp_path, scenes: str, name: str, **over) -> AdaptorTrainConfig:
    from omnicodec.config import apply_overrides

    base = {
        "run": {"name": name, "storage": str(tmp_path / "runs"), "num_workers": 2, "cpus_per_worker": 0.5,
                "checkpoint_every": 4, "max_failures": 1, "log_every": 2, "seed": 7},
        "optim": {"steps": 16, "lr": 0.002, "warmup_steps": 2},
        "data": {"shards": os.path.join(scenes, "train-{000000..000003}.tar"), "batch_size": 2, "crop": 64,
                 "shuffle_buffer": 8},
        "codec": {"arch": "mbt2018-mean-small", "quality": 2},
        "tasks": [{"name": "cls", "loss": "label"}, {"name": "seg", "loss": "distill"}],
        "lmbda": 1.0,
    }
    return AdaptorTrainConfig.from_dict(apply_overrides(base, [f"{k}={v}" for k, v in over.items()]))


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> str:
    from omnicodec.data.scenes import build_scenes

    out = tmp_path_factory.mktemp("train-scenes")
    build_scenes(str(out), train=32, test=24, size=128, maxcount=8, progress=False)
    return str(out)


def test_config_errors_name_the_key(tmp_path, scenes):
    with pytest.raises(ConfigError, match="unknown key 'optim.learning_rate'"):
        _config(tmp_path, scenes, "x", **{"optim.learning_rate": 1})
    with pytest.raises(ConfigError, match="key 'lmbda'"):
        _config(tmp_path, scenes, "x", lmbda="lots")
    with pytest.raises(ConfigError, match="unknown task 'ocr'"):
        _config(tmp_path, scenes, "x", **{"tasks": "[{name: ocr}]"})
    with pytest.raises(ConfigError, match="duplicate task names"):
        _config(tmp_path, scenes, "x", **{"tasks": "[{name: cls}, {name: cls}]"})
    with pytest.raises(ConfigError, match="run.name"):
        _config(tmp_path, scenes, "has space")


def test_relaunch_with_a_changed_experiment_is_refused_naming_the_keys(tmp_path, scenes):
    from omnicodec.jobs.runner import STATE_FILE, guard_relaunch

    first = _config(tmp_path, scenes, "same")
    guard_relaunch(first)
    ckpt = os.path.join(first.run.run_dir(), "checkpoint_2026-12-01_10-00-00.000001")
    os.makedirs(ckpt)  # the run got as far as a checkpoint: a relaunch resumes it
    torch.save({"step": 4}, os.path.join(ckpt, STATE_FILE))
    guard_relaunch(_config(tmp_path, scenes, "same", **{"optim.steps": 32, "run.num_workers": 1}))  # longer: fine
    with pytest.raises(ConfigError, match=r"lmbda: 1\.0 -> 2\.0; tasks: "):
        guard_relaunch(_config(tmp_path, scenes, "same", lmbda=2.0, **{"tasks": "[{name: cls, loss: distill}]"}))


def test_ddp_sees_adaptor_parameters_only():
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from omnicodec.codec import load_codec

    dist.init_process_group("gloo", init_method="tcp://127.0.0.1:29581", rank=0, world_size=1)
    try:
        model = OmniCodec(load_codec("mbt2018-mean-small:2"), ["cls", "seg"])
        ddp = DistributedDataParallel(model)
        wrapped = {id(p) for p in ddp.parameters()}
        assert wrapped == {id(p) for p in model.adaptors.parameters()}
        assert not wrapped & {id(p) for p in model.codec.model.parameters()}
    finally:
        dist.destroy_process_group()


def _worker_pids(since: float) -> list[int]:
    """Ray Train worker processes started after ``since``: this run's, not an earlier
    run's worker that Ray has not reaped yet."""
    pids = []
    for p in psutil.process_iter(["pid", "cmdline", "create_time"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if "RayTrainWorker" in cmd and (p.info["create_time"] or 0) >= since:
            pids.append(p.info["pid"])
    return pids


def _final_state(result) -> dict[str, torch.Tensor]:
    return OmniCodec.from_checkpoint(result.metrics["adaptors"]).adaptors.state_dict()


def _registered_checkpoints(run_dir) -> int:
    """Checkpoints Ray Train's controller has registered (and would restore from): a
    worker's report is only collected at the controller's next poll, so a folder on disk
    alone is not enough."""
    try:
        return len(json.loads((run_dir / "checkpoint_manager_snapshot.json").read_text())["checkpoint_results"])
    except (OSError, ValueError, KeyError):
        return 0


@pytest.mark.heavy  # a fault drill (two full runs, one killed): 1.7 min on 2 cores, run with the drills
def test_killed_worker_resumes_from_last_checkpoint_and_matches_uninterrupted_run(ray_cluster, tmp_path, scenes):
    from omnicodec.jobs.train import train_adaptors

    steps = {"optim.steps": 24}
    clean = train_adaptors(_config(tmp_path, scenes, "clean", **steps))
    assert clean.error is None and clean.metrics["step"] == 24 and clean.metrics["resumed_from"] == 0

    cfg = _config(tmp_path, scenes, "killed", **steps)
    box = {}
    thread = threading.Thread(target=lambda: box.setdefault("result", train_adaptors(cfg)))
    started = time.time() - 1.0  # create_time has coarse resolution
    thread.start()
    run_dir = tmp_path / "runs" / "killed"
    deadline = time.time() + 300
    while time.time() < deadline and _registered_checkpoints(run_dir) < 1:
        time.sleep(0.05)
    pids = _worker_pids(started)
    assert pids, "no Ray Train worker process found to kill"
    psutil.Process(pids[0]).kill()  # SIGKILL: no cleanup, as a node loss would do
    thread.join(timeout=600)
    killed = box["result"]
    assert killed.error is None, killed.error
    assert killed.metrics["step"] == 24
    assert killed.metrics["resumed_from"] in (4, 8, 12, 16, 20), killed.metrics  # from a checkpoint, not from 0
    a, b = _final_state(clean), _final_state(killed)
    assert a.keys() == b.keys()
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert worst < 1e-5, f"resumed run drifted by {worst}"


def test_relaunching_a_finished_run_resumes_rather_than_restarting(ray_cluster, tmp_path, scenes):
    from omnicodec.jobs.train import train_adaptors

    cfg = _config(tmp_path, scenes, "again", **{"optim.steps": 4, "run.num_workers": 1})
    first = train_adaptors(cfg)
    second = train_adaptors(cfg)
    assert first.error is None and second.error is None
    assert second.metrics.get("already_complete") == 1.0 or second.metrics.get("resumed_from") == 4
    assert torch.equal(next(iter(_final_state(first).values())), next(iter(_final_state(second).values())))


def test_wandb_logs_offline_from_rank_zero(ray_cluster, tmp_path, scenes):
    from omnicodec.jobs.train import train_adaptors

    cfg = _config(tmp_path, scenes, "tracked", **{"optim.steps": 4, "run.num_workers": 1})
    assert train_adaptors(cfg).error is None
    runs = list((tmp_path / "runs" / "tracked" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and any(runs[0].glob("*.wandb"))


@pytest.fixture(scope="module")
def held_out_scenes(tmp_path_factory) -> str:
    """100 fresh 192 px test scenes: test objects and backgrounds, never seen in training."""
    from omnicodec.data.scenes import build_scenes

    out = tmp_path_factory.mktemp("held-out")
    build_scenes(str(out), train=4, test=100, size=192, maxcount=20, progress=False)
    return str(out)


def test_trained_adaptors_beat_the_frozen_codec_on_each_task_at_equal_bpp(tmp_path, held_out_scenes):
    """The bundled `adaptors-demo`, trained by this platform's own job (`omnicodec train
    jobs/omnicodec/jobs/specs/train.yaml`: 400 steps, 2 CPU workers, 10 min; its log and
    config ship in zoo/), against the frozen codec it adapts, on held-out scenes built here.
    Every number comes from real bytes; "equal bpp" interpolates the frozen codec's
    operational curve at our measured rate. (A budget small enough to train inside the suite
    beat it on cls and seg but not reliably on det: see docs/results.md, "Limits and honest notes".)"""
    from omnicodec.eval.evaluate import build_systems, run_evaluation
    from omnicodec.jobs.default_data import split_shards

    systems, tasks = build_systems([("ours", "zoo:adaptors-demo")], ["frozen:mbt2018-mean-small:2,3"],
                                   str(tmp_path / "runs"))
    report = run_evaluation(systems, split_shards(held_out_scenes, "test"), tasks, str(tmp_path / "report"),
                            progress=False, resamples=200, det_resamples=50)
    (row,) = report["summary"]["at_equal_rate"]
    assert set(tasks) == {"cls", "seg", "det"}
    for t in tasks:
        frozen = row["baselines"]["frozen codec"][t]
        assert frozen is not None, f"{t}: our rate {row['bpp']:.3f} is outside the frozen codec's curve"
        assert row["ours"][t] > frozen, f"{t}: adaptors {row['ours'][t]:.4f} <= frozen codec {frozen:.4f} at equal bpp"
    assert row["delta_m"]["frozen codec"] > 0
    low, high = row["delta_m_ci"]["frozen codec"]  # the report carries a paired-bootstrap interval
    assert low < row["delta_m"]["frozen codec"] < high
    assert (tmp_path / "report" / "report.html").exists() and (tmp_path / "report" / "curve_det.png").exists()
