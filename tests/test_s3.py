"""Storage on a real S3 API: moto's S3 server on 127.0.0.1 (no mock of our code), credentials
and endpoint from the standard AWS variables. Shards are read from s3://, a training run
checkpoints and exports its adaptors to s3://, resumes from there, and eval and the Serve
router load the adaptors from s3://."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")
pytestmark = pytest.mark.slow
BUCKET = "omnicodec-test"


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """(env with the AWS variables pointing at the loopback server, s3fs filesystem)."""
    import s3fs

    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://{host}:{port}"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    fs = s3fs.S3FileSystem()
    fs.mkdir(BUCKET)
    from omnicodec.data.scenes import build_scenes

    local = tmp_path_factory.mktemp("s3-scenes")
    build_scenes(str(local), train=8, test=6, size=96, maxcount=4, progress=False)
    fs.put(str(local) + "/", f"{BUCKET}/scenes/", recursive=True)
    yield env, fs
    for k, v in saved.items():
        os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    fs.clear_instance_cache()
    server.stop()


def test_shards_are_read_from_s3_like_local_ones(s3):
    from omnicodec.data.loader import iter_samples

    env, fs = s3
    assert fs.ls(f"{BUCKET}/scenes")
    keys = [s.key for s in iter_samples([f"s3://{BUCKET}/scenes/test-00000{i}.tar" for i in (0, 1)])]
    assert len(keys) == 6 and len(set(keys)) == 6


def _cli(env: dict, home: str, *args: str) -> subprocess.CompletedProcess:
    run_env = {**os.environ, **env, "OMNICODEC_HOME": home, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    return subprocess.run([sys.executable, "-m", "omnicodec.cli", *args], env=run_env, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.heavy
def test_a_run_checkpoints_to_s3_resumes_from_there_and_eval_and_serve_load_it(s3, tmp_path):
    env, fs = s3
    spec = os.path.join(os.path.dirname(__file__), "..", "jobs", "omnicodec", "jobs", "specs", "train.yaml")
    common = [spec, "--set", "run.name=s3run", "--set", f"run.storage=s3://{BUCKET}/runs",
              "--set", "run.num_workers=1", "--set", "run.cpus_per_worker=1", "--set", "run.checkpoint_every=2",
              "--set", f"data.shards=s3://{BUCKET}/scenes/train-{{000000..000001}}.tar", "--set", "data.batch_size=2",
              "--set", "data.crop=64", "--set", "data.shuffle_buffer=4", "--set", "data.num_workers=0",
              "--set", "tasks=[{name: cls, loss: distill}, {name: seg, loss: distill}]"]
    first = _cli(env, str(tmp_path), "train", *common, "--set", "optim.steps=4")
    assert first.returncode == 0, first.stderr[-3000:]
    checkpoints = fs.glob(f"{BUCKET}/runs/s3run/checkpoint_*/adaptors/adaptors.json")
    assert checkpoints, fs.find(f"{BUCKET}/runs/s3run")[:20]

    again = _cli(env, str(tmp_path), "train", *common, "--set", "optim.steps=6")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resum" in (again.stdout + again.stderr).lower()

    from omnicodec.adaptors.checkpoint import read_config, resolve

    adaptors = resolve(f"s3://{BUCKET}/runs/s3run")
    assert adaptors.startswith("s3://") and read_config(adaptors)["tasks"] == ["cls", "seg"]
    report = _cli(env, str(tmp_path), "eval", "--adaptors", adaptors, "--data", f"s3://{BUCKET}/scenes/test-{{000000..000001}}.tar",
                  "--baseline", "frozen:mbt2018-mean-small:2,3", "--resamples", "20", "--out", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr[-3000:]
    assert (tmp_path / "report" / "report.json").exists()

    from omnicodec.serve.config import ServeConfig
    from omnicodec.serve.core import RouterCore

    router = RouterCore(ServeConfig.from_dict({"tasks": {"cls": {"versions": {"v1": adaptors}}}}))
    assert router.encoder.tasks == ["cls", "seg"]
