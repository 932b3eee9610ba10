"""The Serve application over real HTTP on 127.0.0.1: answers equal the library's own,
the latent is decoded once per request, bad input gets 4xx and the server keeps serving,
auth, versions side by side, and autoscaling up and back down."""

from __future__ import annotations

import base64
import io
import struct
import threading
import time
import zlib

import httpx
import numpy as np
import pytest
import torch
from PIL import Image

from omnicodec.cli import main
from omnicodec.codec import load_codec
from omnicodec.model import OmniCodec
from omnicodec.tasks.registry import load_task_net

pytestmark = pytest.mark.ray
TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, str]:
    """v1: all-in-one adaptors (cls, seg, det); v2: the same S-Adaptor, other cls T-Adaptors."""
    root = tmp_path_factory.mktemp("serve-ckpts")
    torch.manual_seed(0)
    model = OmniCodec(load_codec("mbt2018-mean-small:2"), ["cls", "seg", "det"])
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.02)
    model.save(str(root / "v1"))
    for p in model.adaptors.t["cls"].parameters():
        torch.nn.init.normal_(p, std=0.05)
    model.save(str(root / "v2"))
    return {"v1": str(root / "v1"), "v2": str(root / "v2")}


@pytest.fixture(scope="module")
def server(ray_cluster, checkpoints, wait_healthy, free_port):
    from ray import serve

    from omnicodec.serve.run import deploy

    port = free_port()
    fast = {"min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": 1, "upscale_delay_s": 0.5,
            "downscale_delay_s": 3, "metrics_interval_s": 0.5, "look_back_period_s": 2}
    args = {
        "auth": {"token": TOKEN}, "max_request_bytes": 200_000, "request_timeout_s": 60,
        "router": {"decode_batch_wait_s": 0.05},  # concurrent requests share entropy-decode calls
        "tasks": {"cls": {"versions": checkpoints, "default": "v1", "autoscaling": fast, "max_batch_size": 4},
                  "seg": {"versions": {"v1": checkpoints["v1"]}}, "det": {"versions": {"v1": checkpoints["v1"]}}},
    }
    try:  # a failed start must not leave replicas holding the session cluster's CPUs
        url = deploy({"http_options": {"host": "127.0.0.1", "port": port},
                      "applications": [{"name": "omnicodec", "route_prefix": "/", "args": args}]})
        client = httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {TOKEN}"})
        wait_healthy(client, 120)
        yield client
        client.close()
    finally:
        serve.shutdown()


@pytest.fixture(scope="module")
def stream(checkpoints, tmp_path_factory) -> tuple[bytes, torch.Tensor]:
    """A bitstream made by `omnicodec encode`, and the image it came from."""
    import skimage.data

    d = tmp_path_factory.mktemp("stream")
    img = Image.fromarray(skimage.data.chelsea()[40:200, 60:300])
    img.save(d / "cat.png")
    assert main(["encode", str(d / "cat.png"), "-o", str(d / "cat.omc"), "--adaptors", checkpoints["v1"]]) == 0
    return (d / "cat.omc").read_bytes(), torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)[None].float() / 255


def _post(client, path, data, **params):
    return client.post(path, params=params, content=data, headers={"Content-Type": "application/octet-stream"})


def _local(checkpoint: str, data: bytes, task: str):
    model = OmniCodec.from_checkpoint(checkpoint)
    x_hat = model.decode(data, tasks=[task])[task]
    return load_task_net(task).predict(x_hat)


def test_analyze_equals_the_librarys_own_decode_and_task_networks(server, stream, checkpoints):
    data, _ = stream
    r = _post(server, "/v1/analyze", data, tasks="cls,seg,det")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["latent_decodes"] == 1 and body["bitstream"]["bytes"] == len(data)
    cls = _local(checkpoints["v1"], data, "cls")[0]
    top = body["tasks"]["cls"]["top_k"]
    assert top[0]["index"] == int(cls.argmax())
    assert abs(top[0]["score"] - float(cls.max())) < 1e-5
    seg = _local(checkpoints["v1"], data, "seg")[0].numpy().astype(np.uint8)
    served = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["tasks"]["seg"]["png_base64"]))))
    assert np.array_equal(served, seg)
    det = _local(checkpoints["v1"], data, "det")[0]
    assert len(body["tasks"]["det"]["boxes"]) == len(det["boxes"])
    if len(det["boxes"]):
        assert np.allclose(body["tasks"]["det"]["boxes"], det["boxes"].numpy(), atol=0.01)
        assert body["tasks"]["det"]["labels"] == det["labels"].tolist()


def test_rle_segmentation_round_trips(server, stream, checkpoints):
    from omnicodec.serve.core import rle_decode

    data, _ = stream
    seg = _post(server, "/v1/analyze", data, tasks="seg", seg_format="rle").json()["tasks"]["seg"]
    mask = rle_decode(seg["counts"], seg["height"], seg["width"])
    assert np.array_equal(mask, _local(checkpoints["v1"], data, "seg")[0].numpy())


def test_router_decodes_the_latent_once_whatever_the_number_of_tasks(server, stream):
    data, _ = stream
    before = server.get("/v1/stats").json().get("latent_decodes", 0)
    assert _post(server, "/v1/analyze", data, tasks="cls,seg,det").status_code == 200
    assert server.get("/v1/stats").json()["latent_decodes"] == before + 1
    assert _post(server, "/v1/analyze", data, tasks="cls").status_code == 200
    assert server.get("/v1/stats").json()["latent_decodes"] == before + 2


def test_concurrent_requests_share_entropy_decode_calls_and_get_their_own_answers(server, stream):
    """The router batches concurrent requests' entropy decoding (off its event loop); each
    request still gets exactly the answer it gets alone."""
    data, _ = stream
    alone = _post(server, "/v1/analyze", data, tasks="cls").json()["tasks"]["cls"]["top_k"]
    before = server.get("/v1/stats").json()
    answers: list = []

    def one():
        answers.append(_post(server, "/v1/analyze", data, tasks="cls"))

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status_code for r in answers] == [200] * 8
    assert all(r.json()["tasks"]["cls"]["top_k"] == alone for r in answers)
    after = server.get("/v1/stats").json()
    assert after["latent_decodes"] - before["latent_decodes"] == 8
    assert after["decode_calls"] - before["decode_calls"] < 8


def test_adaptor_versions_are_served_side_by_side(server, stream, checkpoints):
    data, _ = stream
    v1 = _post(server, "/v1/analyze", data, tasks="cls@v1").json()["tasks"]["cls"]
    v2 = _post(server, "/v1/analyze", data, tasks="cls@v2").json()["tasks"]["cls"]
    assert v1["version"] == "v1" and v2["version"] == "v2"
    local2 = _local(checkpoints["v2"], data, "cls")[0]
    assert abs(v2["top_k"][0]["score"] - float(local2.max())) < 1e-5
    assert v1["top_k"] != v2["top_k"]


def _recrc(b: bytes) -> bytes:
    return b[:-4] + struct.pack(">I", zlib.crc32(b[:-4]))


@pytest.mark.parametrize("case,status,code", [
    ("garbage", 400, "malformed_bitstream"),
    ("truncated", 400, "malformed_bitstream"),
    ("other_codec", 409, "codec_mismatch"),
    ("no_adaptor", 409, "adaptor_mismatch"),
    ("unknown_task", 404, "unknown_task"),
    ("unknown_version", 404, "unknown_version"),
    ("no_tasks", 422, "bad_request"),
    ("too_large", 413, "too_large"),
    ("empty", 400, "empty_body"),
])
def test_bad_input_gets_a_4xx_json_error_and_the_server_keeps_serving(server, stream, case, status, code, photo):
    data, _ = stream
    tasks = "cls"
    if case == "garbage":
        data = b"\x00garbage" * 10
    elif case == "truncated":
        data = data[:-7]
    elif case == "other_codec":
        b = bytearray(data)
        b[6:14] = bytes(8)
        data = _recrc(bytes(b))
    elif case == "no_adaptor":
        data = OmniCodec(load_codec("mbt2018-mean-small:2"), with_adaptors=False).encode(photo).to_bytes()
    elif case == "unknown_task":
        tasks = "cls,ocr"
    elif case == "unknown_version":
        tasks = "cls@v9"
    elif case == "no_tasks":
        tasks = ""
    elif case == "too_large":
        data = bytes(300_000)
    elif case == "empty":
        data = b""
    r = _post(server, "/v1/analyze", data, tasks=tasks)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code and r.json()["error"]["message"]
    assert _post(server, "/v1/analyze", stream[0], tasks="cls").status_code == 200


def test_bearer_token_is_required_except_for_health(server, stream):
    data, _ = stream
    anonymous = httpx.Client(base_url=str(server.base_url), timeout=30)
    assert anonymous.get("/healthz").status_code == 200
    assert _post(anonymous, "/v1/analyze", data, tasks="cls").status_code == 401
    wrong = httpx.Client(base_url=str(server.base_url), timeout=30, headers={"Authorization": "Bearer nope"})
    assert _post(wrong, "/v1/analyze", data, tasks="cls").status_code == 403
    assert anonymous.get("/openapi.json").json()["paths"]["/v1/analyze"]["post"]


def test_server_encode_matches_local_encode_and_analyze_image_works(server, stream, checkpoints, tmp_path):
    _, x = stream
    buf = io.BytesIO()
    Image.fromarray((x[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(buf, format="PNG")
    r = _post(server, "/v1/encode", buf.getvalue())
    assert r.status_code == 200
    assert r.content == OmniCodec.from_checkpoint(checkpoints["v1"]).encode(x).to_bytes()
    r = _post(server, "/v1/analyze-image", buf.getvalue(), tasks="cls,det")
    assert r.status_code == 200 and set(r.json()["tasks"]) == {"cls", "det"}
    assert _post(server, "/v1/encode", b"not an image").status_code == 400


def test_analyze_without_tasks_answers_every_served_task(server, stream):
    """No ``tasks=``: every served task (the default was cls, a 404 where cls is not served)."""
    data, _ = stream
    r = _post(server, "/v1/analyze", data)
    assert r.status_code == 200 and set(r.json()["tasks"]) == {"cls", "seg", "det"}


def test_a_16_bit_png_is_encoded_as_its_grey_levels_by_the_server(server):
    """``/v1/encode`` and ``/v1/analyze-image`` read a 16-bit PNG as its 8-bit grey levels
    (the same bytes as the 8-bit PNG of the same picture), not as white."""
    grey = (np.random.default_rng(3).random((48, 64)) * 30000 + 20000).astype(np.uint16)
    wide, eight = io.BytesIO(), io.BytesIO()
    Image.fromarray(grey).save(wide, format="PNG")
    Image.fromarray(np.rint(grey / 257).astype(np.uint8)).convert("RGB").save(eight, format="PNG")
    r = _post(server, "/v1/encode", wide.getvalue())
    assert r.status_code == 200 and r.content == _post(server, "/v1/encode", eight.getvalue()).content
    assert _post(server, "/v1/analyze-image", wide.getvalue(), tasks="cls").status_code == 200


def test_tasks_endpoint_lists_versions_and_codec(server, checkpoints):
    body = server.get("/v1/tasks").json()
    assert body["codec"]["fingerprint"] == load_codec("mbt2018-mean-small:2").fingerprint
    assert set(body["tasks"]["cls"]["versions"]) == {"v1", "v2"}


def test_edge_client_encodes_locally_and_sends_only_the_bytes(server, stream, checkpoints, tmp_path, monkeypatch):
    import omnicodec.serve.client as client_mod

    monkeypatch.setattr(client_mod, "HOME", str(tmp_path))
    _, x = stream
    client = client_mod.OmnicodecClient(str(server.base_url), TOKEN)
    local = OmniCodec.from_checkpoint(checkpoints["v1"])
    assert client.encode(x) == local.encode(x).to_bytes()
    out = client.analyze(x, "cls,seg")
    assert out["latent_decodes"] == 1 and out["bitstream"]["bytes"] == len(local.encode(x).to_bytes())


def test_autoscaling_adds_replicas_under_load_and_removes_them_after(server, stream):
    from ray import serve

    data, _ = stream

    def replicas() -> int:
        dep = serve.status().applications["omnicodec"].deployments["task-cls"]
        return dep.replica_states.get("RUNNING", 0)

    assert replicas() == 1
    stop = threading.Event()

    def load():
        c = httpx.Client(base_url=str(server.base_url), timeout=60, headers={"Authorization": f"Bearer {TOKEN}"})
        while not stop.is_set():
            _post(c, "/v1/analyze", data, tasks="cls")

    threads = [threading.Thread(target=load) for _ in range(6)]
    for t in threads:
        t.start()
    peak, deadline = 1, time.time() + 60
    try:
        while time.time() < deadline and peak < 2:
            peak = max(peak, replicas())
            time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert peak == 2, "task-cls did not scale up under load"
    deadline = time.time() + 90
    while time.time() < deadline and replicas() > 1:
        time.sleep(1)
    assert replicas() == 1, "task-cls did not scale back down after the load"


def test_docs_render_every_operation_in_a_real_browser(server, browser, tmp_path):
    """Swagger UI (served from the installed wheel, no CDN) reads the app's OpenAPI document:
    the bundled 4.15 could not read FastAPI's 3.1.0 ('does not specify a valid version field')."""
    dom = browser(f"{server.base_url}/docs", str(tmp_path / "docs.png"))
    assert "Unable to render" not in dom and "valid version field" not in dom
    for path in ("/v1/analyze", "/v1/encode", "/v1/analyze-image", "/v1/tasks", "/healthz"):
        assert f'data-path="{path}"' in dom, path
    assert "Analyze one bitstream" in dom
    from openapi_spec_validator import validate
    from openapi_spec_validator.validation import OpenAPIV30SpecValidator

    doc = server.get("/openapi.json").json()
    assert doc["openapi"] == "3.0.3"
    validate(doc, cls=OpenAPIV30SpecValidator)  # nullable, not 3.1's type: null


def test_a_stream_the_client_wrote_under_another_float_path_is_answered_like_the_library(server, checkpoints,
                                                                                          tmp_path):
    """Issue 26: the client encodes on an AVX2-only machine (a process with oneDNN and ATen
    capped at AVX2, one thread); the replicas decode with this machine's own kernels."""
    import os
    import subprocess
    import sys

    import skimage.data

    Image.fromarray(skimage.data.coffee()[60:260, 100:400]).save(tmp_path / "coffee.png")
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "omnicodec.cli", "encode", str(tmp_path / "coffee.png"), "-o",
                    str(tmp_path / "coffee.omc"), "--adaptors", checkpoints["v1"]], env=env, check=True,
                   capture_output=True, timeout=300)
    data = (tmp_path / "coffee.omc").read_bytes()
    r = _post(server, "/v1/analyze", data, tasks="cls,seg")
    assert r.status_code == 200, r.text
    cls = _local(checkpoints["v1"], data, "cls")[0]
    assert r.json()["tasks"]["cls"]["top_k"][0]["index"] == int(cls.argmax())
    served = np.asarray(Image.open(io.BytesIO(base64.b64decode(r.json()["tasks"]["seg"]["png_base64"]))))
    assert np.array_equal(served, _local(checkpoints["v1"], data, "seg")[0].numpy().astype(np.uint8))


def test_a_stream_whose_entropy_parameters_differ_gets_422_in_one_line(server, stream):
    import dataclasses

    from omnicodec.bitstream import Bitstream

    parsed = Bitstream.from_bytes(stream[0])
    bad = dataclasses.replace(parsed, entropy_check=parsed.entropy_check ^ 0x10).to_bytes()
    r = _post(server, "/v1/analyze", bad, tasks="cls")
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "entropy_desync" and "cannot be decoded here" in err["message"]
    assert "\n" not in err["message"]
    assert _post(server, "/v1/analyze", stream[0], tasks="cls").status_code == 200  # and it keeps serving


def _png(h: int, w: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(2).integers(0, 255, (h, w, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _clean_line(message: str) -> bool:
    return "\n" not in message and "\x1b" not in message and "actor" not in message.lower()


def test_images_and_streams_under_32_px_a_side_get_422_in_one_line(server, checkpoints):
    """A 3x3 image was a 500 carrying a Ray traceback (ANSI codes, actor id); the rule is the
    evaluator's (``sizes.MIN_SIDE``). Encoding it is fine: only the task networks need 32 px."""
    tiny = _png(3, 3)
    r = _post(server, "/v1/analyze-image", tiny, tasks="cls,seg,det")
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "too_small" and "3x3 pixels is too small" in err["message"] and _clean_line(err["message"])
    stream = _post(server, "/v1/encode", tiny)
    assert stream.status_code == 200
    r = _post(server, "/v1/analyze", stream.content, tasks="det")
    assert r.status_code == 422 and r.json()["error"]["code"] == "too_small", r.text
    assert _post(server, "/v1/analyze-image", _png(32, 40), tasks="cls").status_code == 200


def test_a_stream_over_the_pixel_cap_gets_413_from_its_header(server, stream):
    """H x W come from the header: refused with the numbers before any entropy decoding."""
    big = bytearray(stream[0])
    big[22:26] = struct.pack(">HH", 5000, 6000)
    t0 = time.perf_counter()
    r = _post(server, "/v1/analyze", _recrc(bytes(big)), tasks="cls")
    assert r.status_code == 413, r.text
    err = r.json()["error"]
    assert err["code"] == "too_large" and "6000x5000" in err["message"] and str(4096 * 4096) in err["message"]
    assert time.perf_counter() - t0 < 5
    assert _post(server, "/v1/analyze", stream[0], tasks="cls").status_code == 200


def test_a_ray_error_is_answered_in_one_clean_line(ray_cluster):
    """What a 500 says: the replica's exception in one line, without Ray's traceback, ANSI
    colour codes or actor ids (``core.one_line``)."""
    import ray

    from omnicodec.serve.core import one_line

    @ray.remote
    class Failing:
        def run(self):
            raise RuntimeError("Given groups=1, weight of size [32, 3, 3, 3], expected input[1, 3, 2, 2]\nmore")

    actor = Failing.remote()
    with pytest.raises(Exception) as info:
        ray.get(actor.run.remote())
    assert "\n" in str(info.value)  # Ray's own text: a traceback
    line = one_line(info.value)
    assert line == "RuntimeError: Given groups=1, weight of size [32, 3, 3, 3], expected input[1, 3, 2, 2]"
    assert _clean_line(line)
    ray.kill(actor)
