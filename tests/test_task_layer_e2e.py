"""Acceptance for the open task layer, end to end on the session's local Ray: a 5-task
all-in-one run (seg, parts, saliency, normals, edges) from ONE bitstream, four of them
networks users bring by config (builder + safetensors weights saved here), trains 5 steps
with Ray Train, evaluates with each metric's own direction, and is served over HTTP."""

from __future__ import annotations

import os
import socket

import httpx
import jsonschema
import pytest
import torch
from safetensors.torch import save_file

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def _user_network(tmp_path, name: str, outputs: int) -> dict:
    """A torchvision LR-ASPP built here, its weights saved as safetensors, described by config."""
    import torchvision.models as tvm

    torch.manual_seed(outputs)
    kwargs = {"weights": None, "weights_backbone": None, "num_classes": outputs}
    module = tvm.get_model("lraspp_mobilenet_v3_large", **kwargs)
    path = str(tmp_path / f"{name}.safetensors")
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, path)
    return {"builder": "torchvision:lraspp_mobilenet_v3_large", "kwargs": kwargs, "weights": path,
            "output": "out", "layers": ["backbone.4", "backbone.8"]}


@pytest.fixture(scope="module")
def five_task_run(ray_cluster, tmp_path_factory):
    from omnicodec.config import apply_overrides
    from omnicodec.data.scenes import build_scenes
    from omnicodec.jobs.adaptor_job import AdaptorTrainConfig
    from omnicodec.jobs.train import train_adaptors

    tmp = tmp_path_factory.mktemp("five-tasks")
    build_scenes(str(tmp / "scenes"), train=8, test=6, size=96, maxcount=4, progress=False)
    tasks = [
        {"name": "seg", "loss": "distill"},
        # `parts` is a kind added as one file (kinds/parts.py) plus one registry line
        {"name": "parts", "kind": "parts", "num_classes": 5, "loss": "distill", "network": _user_network(tmp, "parts", 6)},
        {"name": "sal", "kind": "sal", "labelled": True, "loss": "label", "network": _user_network(tmp, "sal", 1)},
        {"name": "normals", "kind": "normals", "loss": "distill", "network": _user_network(tmp, "normals", 3)},
        {"name": "edge", "kind": "edge", "labelled": True, "loss": "label", "network": _user_network(tmp, "edge", 1)},
    ]
    cfg = AdaptorTrainConfig.from_dict(apply_overrides({
        "run": {"name": "five", "storage": str(tmp / "runs"), "num_workers": 1, "cpus_per_worker": 1,
                "checkpoint_every": 5, "log_every": 1},
        "optim": {"steps": 5, "lr": 0.002, "warmup_steps": 1},
        "data": {"shards": os.path.join(str(tmp / "scenes"), "train-{000000..000001}.tar"), "batch_size": 2,
                 "crop": 64, "shuffle_buffer": 4},
        "codec": {"arch": "mbt2018-mean-small", "quality": 2},
        "tasks": tasks,
    }, []))
    result = train_adaptors(cfg)
    assert result.error is None, result.error
    return tmp, result.metrics["adaptors"]


def test_five_user_and_bundled_tasks_train_from_one_bitstream_and_evaluate(five_task_run):
    from omnicodec.eval.evaluate import build_systems, run_evaluation
    from omnicodec.jobs.default_data import split_shards
    from omnicodec.jobs.evaluation import ray_predictor
    from omnicodec.tasks.registry import TASKS, get_task

    tmp, adaptors = five_task_run
    for name in ("parts", "sal", "normals", "edge"):
        TASKS.remove(name)  # a fresh process knows nothing: the checkpoint alone must define them
    systems, tasks = build_systems([("ours", adaptors)], ["frozen:mbt2018-mean-small:2,3"], str(tmp / "runs"))
    assert tasks == ["seg", "parts", "sal", "normals", "edge"]
    assert get_task("normals").higher_is_better is False and get_task("sal").higher_is_better is True
    assert get_task("parts").kind == "parts"
    # on Ray workers: the user tasks reach them as definitions, never as pickled networks
    report = run_evaluation(systems, split_shards(str(tmp / "scenes"), "test"), tasks, str(tmp / "report"),
                            progress=False, resamples=50, predictor=ray_predictor(workers=2))
    ours = next(p for p in report["points"] if p["label"] == "ours")
    assert set(ours["primary"]) == set(tasks)
    assert ours["tasks"]["normals"]["mean_angle"] >= 0 and 0 <= ours["tasks"]["edge"]["odsf"] <= 1
    assert report["clean"]["normals"]["mean_angle"] == pytest.approx(0, abs=1e-3)  # clean vs itself
    assert (tmp / "report" / "report.html").exists()
    prov = report["provenance"]  # the test set can be rebuilt and verified
    assert prov["dataset"]["seed"] == 0 and set(prov["shards_sha256"]) == {"test-000000.tar", "test-000001.tar"}
    assert "built with seed 0" in (tmp / "report" / "report.md").read_text()


def test_five_task_adaptors_are_served_with_each_kinds_json(five_task_run, tmp_path, wait_healthy):
    from ray import serve

    from omnicodec.cli import main
    from omnicodec.serve.run import config_for_adaptors, deploy
    from omnicodec.tasks.registry import get_task

    _, adaptors = five_task_run
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = config_for_adaptors(adaptors, [f"http_options.port={port}", "auth.token=tok"])
    try:  # a failed start must not leave replicas holding the session cluster's CPUs
        url = deploy(config)
        import skimage.data
        from PIL import Image

        Image.fromarray(skimage.data.astronaut()[100:196, 150:246]).save(tmp_path / "x.png")
        assert main(["encode", str(tmp_path / "x.png"), "-o", str(tmp_path / "x.omc"), "--adaptors", adaptors]) == 0
        client = httpx.Client(base_url=url, timeout=120, headers={"Authorization": "Bearer tok"})
        wait_healthy(client)
        r = client.post("/v1/analyze", params={"tasks": "seg,parts,sal,normals,edge"},
                        content=(tmp_path / "x.omc").read_bytes(), headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["latent_decodes"] == 1
        for task, answer in body["tasks"].items():
            answer = {k: v for k, v in answer.items() if k != "version"}
            jsonschema.validate(answer, get_task(task).task_kind.response_schema)
    finally:
        serve.shutdown()
