"""Evaluation as Ray work over shards: the same report as in one process, from actors that
rebuild each system from its recipe (no pickled models), with WebP among the baselines."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def test_shards(tmp_path_factory) -> str:
    from omnicodec.data.scenes import build_scenes

    out = tmp_path_factory.mktemp("scenes")
    build_scenes(str(out), train=2, test=6, size=96, maxcount=2, progress=False, seed=31)
    return str(out / "test-*.tar")


def test_ray_workers_over_shards_give_the_in_process_report(ray_cluster, test_shards, tmp_path):
    from omnicodec.eval.evaluate import build_systems, run_evaluation
    from omnicodec.jobs.evaluation import ray_predictor

    systems, tasks = build_systems([("ours", "zoo:adaptors-demo")],
                                   ["frozen:mbt2018-mean-small:2", "jpeg:30", "webp:30"], str(tmp_path))
    local = run_evaluation(systems, test_shards, tasks, None, progress=False, resamples=50, det_resamples=10)
    remote = run_evaluation(systems, test_shards, tasks, str(tmp_path / "report"), progress=False, resamples=50,
                            det_resamples=10, predictor=ray_predictor(workers=2), pictures=2)
    assert [p["system"] for p in remote["points"]] == ["all-in-one", "frozen codec", "JPEG", "WebP"]
    for a, b in zip(local["points"], remote["points"]):
        assert b["images"] == 6
        assert b["bpp"] == pytest.approx(a["bpp"], rel=1e-3), a["label"]
        assert b["psnr"] == pytest.approx(a["psnr"], abs=1e-2), a["label"]
        for t in tasks:
            assert b["primary"][t] == pytest.approx(a["primary"][t], abs=1e-6), (a["label"], t)
    assert remote["latent_decodes_per_image"] == {"ours": 1.0}  # decoded once for all three tasks
    assert remote["clean"] == local["clean"]

    # the picture sheet: 2 images x (ours, then the frozen point nearest in rate) rows of
    # original + human view + one tile per task, and the report points to it
    from PIL import Image

    sheet = Image.open(tmp_path / "report" / "pictures.png")
    assert sheet.size[0] == (2 + len(tasks)) * 192 and sheet.size[1] >= 4 * 96
    assert remote["pictures"]["rows"] == ["all-in-one ours", "frozen codec q2"]
    assert "![pictures](pictures.png)" in (tmp_path / "report" / "report.md").read_text()


def test_a_system_built_from_an_object_is_refused_on_ray_with_the_reason(ray_cluster, test_shards):
    from omnicodec.adaptors.checkpoint import resolve
    from omnicodec.errors import OmnicodecError
    from omnicodec.eval.evaluate import run_evaluation
    from omnicodec.eval.systems import AllInOne
    from omnicodec.jobs.evaluation import ray_predictor
    from omnicodec.model import OmniCodec

    model = OmniCodec.from_checkpoint(resolve("zoo:adaptors-demo", "."))
    with pytest.raises(OmnicodecError, match="all-in-one mine were built from objects"):
        run_evaluation([AllInOne(model, "mine")], test_shards, model.tasks, None, progress=False,
                       predictor=ray_predictor(workers=1))
