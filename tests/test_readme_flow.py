"""The README's "Your own photos" flow, command by command, as a new user types it in their
OWN folder (not the clone), with relative paths, photos of mixed sizes and no masks:
ImageFolder -> `data convert` (with a test split) -> `train` with the README's spec path ->
`eval --run NAME` -> `sweep` with the SHIPPED spec (made tiny with --set) -> `serve
--adaptors NAME` -> `client analyze`. Every step is the real CLI in its own process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

OMNICODEC = os.path.join(os.path.dirname(sys.executable), "omnicodec")
pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.heavy]  # 3 min: runs in make test-cluster


def _run(args: list[str], env: dict[str, str], timeout: float = 400) -> subprocess.CompletedProcess:
    out = subprocess.run([OMNICODEC, *args], cwd=env["USER_FOLDER"], env=env, capture_output=True, text=True,
                         timeout=timeout)
    assert out.returncode == 0, f"omnicodec {' '.join(args)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


def _make_photos(root) -> None:
    """ROOT/<class>/<image>.jpg: two classes of real photo crops of ten different sizes each."""
    import skimage.data
    from PIL import Image

    for cls, photo in (("cat", skimage.data.chelsea()), ("coffee", skimage.data.coffee())):
        os.makedirs(root / cls)
        for i in range(10):
            y, x, h, w = 8 * i, 10 * i, 96 + 17 * i, 200 - 9 * i
            Image.fromarray(photo[y : y + h, x : x + w]).save(root / cls / f"{i:02d}.jpg", quality=92)


def test_the_readme_flow_from_an_image_folder_to_served_answers(tmp_path, free_port):
    me = tmp_path / "me"  # the user's own folder: every path below is relative to it
    _make_photos(me / "my-photos")
    image_folder, shards = "my-photos/", "shards"
    env = {**os.environ, "OMNICODEC_HOME": str(tmp_path / "home"), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
           "RAY_USAGE_STATS_ENABLED": "0", "WANDB_MODE": "offline", "USER_FOLDER": str(me)}

    # 1. data convert, with a stable train/test split; a second convert into the same folder is refused
    card = json.loads(_run(["data", "convert", "--from", "imagefolder", "--root", image_folder, "--out", shards,
                            "--test-fraction", "0.3", "--maxcount", "4"], env).stdout)
    assert card["splits"]["train"] > 0 and card["splits"]["test"] > 0
    again = subprocess.run([OMNICODEC, "data", "convert", "--from", "imagefolder", "--root", image_folder,
                            "--out", shards], cwd=me, env=env, capture_output=True, text=True)
    assert again.returncode == 2 and "already holds a dataset" in again.stderr

    # 2. train the shipped spec, named as the README names it, on photos of mixed sizes (the default
    # data.fit), label-free distillation: these labels are not the cls net's classes
    train = ["train", "jobs/omnicodec/jobs/specs/train.yaml", "--set", "run.name=mine",
             "--set", f"data.shards={shards}/train-*.tar", "--set", "data.batch_size=2",
             "--set", "optim.steps=4", "--set", "run.checkpoint_every=2", "--set", "run.cpus_per_worker=0.5",
             "--set", "tasks=[{name: cls, loss: distill}]"]
    out = _run(train, env)
    assert "adaptors:" in out.stdout
    # relaunching a finished run says so in a sentence, without starting Ray
    t0 = time.perf_counter()
    assert "already complete" in _run(train, env).stdout
    assert time.perf_counter() - t0 < 30

    # 3. eval by run name (the documented form that used to crash)
    out = _run(["eval", "--run", "mine", "--data", f"{shards}/test-*.tar", "--out", "report/",
                "--baseline", "frozen:mbt2018-mean-small:2,3", "--baseline", "jpeg:20", "--resamples", "100"], env)
    text = (me / "report" / "report.md").read_text()
    assert "mine q2" in text and "cls agreement (label-free)" in text  # the folder's labels are not the net's

    # 4. the shipped sweep spec fits this machine; made tiny with --set (train.* reaches the referenced YAML)
    out = _run(["sweep", "jobs/omnicodec/jobs/specs/sweep.yaml", "--set", "storage=sweeps",
                "--set", f"eval_data={shards}/test-*.tar", "--set", "eval_limit=2",
                "--set", "search={lmbda: {grid: [1.0]}}",
                "--set", f"train.data.shards={shards}/train-*.tar", "--set", "train.data.batch_size=2", "--set", "train.optim.steps=2",
                "--set", "train.run.checkpoint_every=2", "--set", "train.tasks=[{name: cls, loss: distill}]"], env)
    assert (me / "sweeps" / "lambda-and-width" / "sweep.json").exists()

    # 5. serve the run by name, 6. the edge client encodes locally and sends only the bytes
    port = free_port()
    server = subprocess.Popen([OMNICODEC, "serve", "--adaptors", "mine", "--set", f"http_options.port={port}"],
                              cwd=me, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 180
        while time.time() < deadline:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, server.stdout.read()[-3000:]
            time.sleep(1)
        docs = httpx.get(f"{url}/docs", timeout=10).text
        assert "/docs-assets/swagger-ui-bundle.js" in docs and "cdn" not in docs.lower()
        assert httpx.get(f"{url}/docs-assets/swagger-ui-bundle.js", timeout=10).status_code == 200
        img = os.path.join(image_folder, "cat", "01.jpg")
        answer = json.loads(_run(["client", "analyze", img, "--url", url, "--tasks", "cls"], env).stdout)
        assert answer["tasks"]["cls"]["top_k"][0]["class"] is not None
        wrong = subprocess.run([OMNICODEC, "client", "analyze", img, "--url", url, "--tasks", "det"], cwd=me,
                               env=env, capture_output=True, text=True)
        assert wrong.returncode == 2 and "does not serve 'det'" in wrong.stderr
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
