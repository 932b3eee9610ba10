"""What a new user types works: every way of naming adaptors resolves the same way, bad
inputs fail in one line before Ray starts, and a sweep that cannot fit the cluster is
refused in seconds instead of waiting forever."""

from __future__ import annotations

import os
import time

import pytest

from omnicodec.adaptors.checkpoint import CONFIG, resolve
from omnicodec.cli import main
from omnicodec.errors import CheckpointError, ConfigError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory, trained_codec) -> dict[str, str]:
    """A run folder shaped like Ray Train's: two checkpoints (the newer one holds adaptors),
    a half-written newest folder without them, and Ray's checkpoint_manager_snapshot.json,
    whose name sorts after every checkpoint folder (the old crash)."""
    from omnicodec.model import OmniCodec

    root = tmp_path_factory.mktemp("home") / "runs"
    run = root / "my-run"
    model = OmniCodec(trained_codec, ["cls"])
    older, newer = run / "checkpoint_2026-11-25_10-00-00.000001", run / "checkpoint_2026-11-25_11-00-00.000001"
    model.save(str(older / "adaptors"), metadata={"which": "older"})
    model.save(str(newer / "adaptors"), metadata={"which": "newer"})
    (run / "checkpoint_2026-11-25_12-00-00.000001").mkdir()  # being written: no adaptors yet
    (run / "checkpoint_manager_snapshot.json").write_text("{}")
    return {"root": str(root), "run": str(run), "newer": str(newer)}


def test_run_name_run_folder_checkpoint_folder_and_adaptors_folder_resolve_to_the_same_adaptors(run_folder):
    want = os.path.join(run_folder["newer"], "adaptors")
    assert resolve("my-run", run_folder["root"]) == want
    assert resolve(run_folder["run"]) == want
    assert resolve(run_folder["newer"]) == want
    assert resolve(want) == want
    assert os.path.exists(os.path.join(resolve("zoo:adaptors-demo"), CONFIG))


def test_an_unknown_adaptor_location_says_which_forms_are_accepted(run_folder):
    with pytest.raises(CheckpointError, match="run name .* run folder, a checkpoint folder .* zoo:NAME"):
        resolve("no-such-run", run_folder["root"])


def test_eval_run_name_and_encode_accept_a_run_name(run_folder, tmp_path, monkeypatch):
    """`eval --run NAME` used to crash on Ray's snapshot JSON; `encode --adaptors NAME` now
    resolves run names through the same helper (OMNICODEC_HOME/runs)."""
    from omnicodec.eval.evaluate import _resolve

    assert _resolve("my-run", run_folder["root"]).endswith(os.path.join("checkpoint_2026-11-25_11-00-00.000001", "adaptors"))
    import skimage.data
    from PIL import Image

    monkeypatch.setenv("OMNICODEC_HOME", os.path.dirname(run_folder["root"]))
    img = tmp_path / "a.png"
    Image.fromarray(skimage.data.astronaut()[:96, :128]).save(img)
    assert main(["encode", str(img), "-o", str(tmp_path / "a.omc"), "--adaptors", "my-run"]) == 0
    assert (tmp_path / "a.omc").stat().st_size > 20


def test_a_missing_shard_fails_in_one_line_before_ray_and_leaves_no_run_folder(tmp_path):
    """Run as the user runs it (its own process): one line, exit 2, no Ray started, no folder."""
    import subprocess
    import sys

    omnicodec = os.path.join(os.path.dirname(sys.executable), "omnicodec")
    t0 = time.perf_counter()
    out = subprocess.run([omnicodec, "train", os.path.join(REPO, "jobs/omnicodec/jobs/specs/train.yaml"),
                          "--set", f"data.shards={tmp_path}/nope/train-{{000000..000003}}.tar",
                          "--set", f"run.storage={tmp_path}/runs"],
                         env={**os.environ, "OMNICODEC_HOME": str(tmp_path)}, capture_output=True, text=True)
    err = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(err) == 1, out.stderr
    assert "data.shards" in err[0] and "nope/train-000000.tar does not exist" in err[0]
    assert time.perf_counter() - t0 < 30
    assert not (tmp_path / "runs").exists() and not (tmp_path / "logs").exists()  # Ray never started


@pytest.mark.ray
def test_a_sweep_whose_trial_cannot_fit_the_cluster_is_refused_in_seconds(ray_cluster, tmp_path):
    from omnicodec.jobs.sweep import SweepConfig, run_sweep

    cfg = SweepConfig.from_cli(os.path.join(REPO, "jobs/omnicodec/jobs/specs/sweep.yaml"),
                               [f"storage={tmp_path}", "train.run.cpus_per_worker=1.0"])
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match=r"each sweep trial needs 2\.1 CPUs \(trial_cpus 0\.1 \+ 2 workers x 1 CPU\) "
                                          r"but the Ray cluster has 2 CPUs"):
        run_sweep(cfg)
    assert time.perf_counter() - t0 < 10


def test_the_shipped_sweep_fits_a_two_core_machine():
    from omnicodec.jobs.adaptor_job import AdaptorTrainConfig
    from omnicodec.jobs.sweep import SweepConfig

    cfg = SweepConfig.from_cli(os.path.join(REPO, "jobs/omnicodec/jobs/specs/sweep.yaml"), [])
    run = AdaptorTrainConfig.from_dict(cfg.base_train()).run
    assert cfg.trial_cpus + run.num_workers * run.cpus_per_worker <= 2.0
