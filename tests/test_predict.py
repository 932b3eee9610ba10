"""The per-image half of an evaluation: images are coded one by one (their bytes are their
own) and each task's network sees batches of views; batching must not change what a
network predicts for an image."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    from omnicodec.data.scenes import build_scenes
    from omnicodec.eval.predict import load_test_set

    out = tmp_path_factory.mktemp("scenes")
    build_scenes(str(out), train=1, test=5, size=96, maxcount=8, progress=False, seed=43)
    return load_test_set(str(out / "test-*.tar"))[0]


def test_batched_task_networks_predict_what_single_images_get(samples):
    from omnicodec.eval.predict import predict_images
    from omnicodec.eval.systems import Jpeg

    tasks = ["cls", "seg", "det"]
    batched = predict_images(Jpeg(40), samples, tasks, batch=4)  # 4 + 1: a full and a ragged batch
    single = predict_images(Jpeg(40), samples, tasks, batch=1)
    for a, b in zip(batched, single):
        assert a["bpp"] == b["bpp"] and a["psnr"] == b["psnr"]
        assert torch.allclose(a["preds"]["cls"], b["preds"]["cls"], atol=1e-5)
        assert a["preds"]["cls"].shape == b["preds"]["cls"].shape == (1, a["preds"]["cls"].shape[1])
        assert torch.equal(a["preds"]["seg"], b["preds"]["seg"]) or \
            (a["preds"]["seg"] != b["preds"]["seg"]).float().mean() < 1e-3
        (da,), (db,) = a["preds"]["det"], b["preds"]["det"]
        assert da["boxes"].shape == db["boxes"].shape and torch.allclose(da["scores"], db["scores"], atol=1e-4)
