"""`omnicodec submit` sends a real Ray Job to a real (local, loopback) Ray head."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import httpx
import pytest

from omnicodec.model import OmniCodec

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def head(tmp_path_factory, free_port):
    """A second Ray head with the dashboard (job submission), on loopback ports of its own."""
    tmp = tmp_path_factory.mktemp("head")
    gcs, dash, agent = free_port(), free_port(), free_port()
    ray = os.path.join(os.path.dirname(sys.executable), "ray")
    # jobs run `python` from the head's PATH: here, this virtualenv's (a cluster image's own python elsewhere)
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0",
           "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}
    proc = subprocess.Popen([ray, "start", "--head", "--block", f"--port={gcs}", "--node-ip-address=127.0.0.1",
                             "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}", "--include-dashboard=true",
                             f"--dashboard-agent-listen-port={agent}", "--num-cpus=1", f"--temp-dir={tmp}"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{dash}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            httpx.get(f"{url}/api/version", timeout=2)
            break
        except httpx.HTTPError:
            time.sleep(1)
    yield url
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def test_submit_runs_an_omnicodec_command_on_the_cluster(head, trained_codec, photo, tmp_path):
    from omnicodec.jobs.submit import submit

    path = tmp_path / "x.omc"
    path.write_bytes(OmniCodec(trained_codec, with_adaptors=False).encode(photo).to_bytes())
    deadline = time.time() + 120
    while True:  # the head's job agent needs a few seconds after start
        try:
            job_id, status = submit(head, ["info", str(path)], wait=True, timeout_s=180)
            break
        except RuntimeError as e:
            if "No available agent" not in str(e) or time.time() > deadline:
                raise
            time.sleep(2)
    assert status.endswith("SUCCEEDED"), status
    from ray.job_submission import JobSubmissionClient

    logs = JobSubmissionClient(head).get_job_logs(job_id)
    header = json.loads(logs[logs.index("{"): logs.rindex("}") + 1])
    assert header["width"] == 300 and header["height"] == 200


def _submit(head: str, args: list[str], cwd, timeout: float = 300) -> subprocess.CompletedProcess:
    """`omnicodec submit` as the user runs it, from their own folder; retried while the head's job
    agent is still starting."""
    omnicodec = os.path.join(os.path.dirname(sys.executable), "omnicodec")
    deadline = time.time() + 120
    while True:
        out = subprocess.run([omnicodec, "submit", "--address", head, "--", *args], cwd=cwd, capture_output=True,
                             text=True, timeout=timeout, env={**os.environ, "OMNICODEC_HOME": str(cwd / "home")})
        if "No available agent" not in out.stderr or time.time() > deadline:
            return out
        time.sleep(2)


def test_submit_ships_the_users_files_and_finds_the_bundled_weights(head, tmp_path):
    """From the user's folder: their image (a relative path) travels with the job, the bundled codec's
    weights (left out of the upload) are found, the output lands back in their folder (the cluster
    runs on this machine), and the job's log lines are printed."""
    import skimage.data
    from PIL import Image

    Image.fromarray(skimage.data.astronaut()[:96, :128]).save(tmp_path / "photo.png")
    out = _submit(head, ["encode", "photo.png", "-o", "photo.omc", "--codec", "mbt2018-mean-small:2"], tmp_path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert (tmp_path / "photo.omc").stat().st_size > 20
    assert "photo.omc" in out.stdout.split("submitted", 1)[1]  # the job's own output, streamed back


def test_submit_ships_a_training_config_and_the_network_weights_it_names(head, tmp_path):
    """`submit -- train my.yaml`: the YAML and the weights file it names by relative path travel; the
    job's driver builds the user's network and reports its wrong layer in one line (no training)."""
    import torch
    import torchvision.models as tvm
    import yaml
    from safetensors.torch import save_file

    torch.manual_seed(0)
    module = tvm.get_model("lraspp_mobilenet_v3_large", weights=None, weights_backbone=None, num_classes=6)
    (tmp_path / "nets").mkdir()
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(tmp_path / "nets" / "parts.safetensors"))
    shards = tmp_path / "shards"
    from omnicodec.data.scenes import build_scenes

    build_scenes(str(shards), train=2, test=1, size=64, maxcount=2, progress=False)
    network = {"builder": "torchvision:lraspp_mobilenet_v3_large", "weights": "nets/parts.safetensors",
               "kwargs": {"num_classes": 6, "weights": None, "weights_backbone": None}, "output": "out",
               "layers": ["backbone.nope"]}
    (tmp_path / "my.yaml").write_text(yaml.safe_dump({
        "run": {"storage": "runs"}, "data": {"shards": "shards/train-*.tar", "crop": 64},
        "tasks": [{"name": "parts", "kind": "seg", "num_classes": 5, "loss": "distill", "network": network}]}))
    out = _submit(head, ["train", "my.yaml"], tmp_path)
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-3000:]
    assert "omnicodec: error: task 'parts': network.layers: no module 'backbone.nope'" in out.stdout, out.stdout[-3000:]


@pytest.mark.slow
def test_ray_job_submit_of_the_checkout_stays_under_rays_upload_cap():
    """`ray job submit --working-dir .` from a checkout: Ray's own packaging, which honours .rayignore
    and .gitignore, leaves the bundled weights (and .git) out and stays under its 100 MiB cap; the
    weights' JSON cards travel."""
    import zipfile

    from ray._private.runtime_env.packaging import GCS_STORAGE_MAX_SIZE, _zip_files

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with tempfile.TemporaryDirectory() as tmp:
        package = os.path.join(tmp, "pkg.zip")
        _zip_files(repo, [], package, include_gitignore=True)
        size = os.path.getsize(package)
        names = zipfile.ZipFile(package).namelist()
    assert size < GCS_STORAGE_MAX_SIZE, f"{size / 2**20:.1f} MiB"
    assert not [n for n in names if n.startswith(("platform/omnicodec/zoo/weights/codec-", ".git/"))
                and not n.endswith(".json")]
    assert "platform/omnicodec/zoo/weights/codec-mbt2018-mean-small-q2.json" in names
