"""The evaluation's records cache: a system seen before (same weights, same shard bytes, same
tasks) is served from disk and gives the very same report figures; anything that changes a
record changes the key; entries are safetensors, never pickles."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module")
def test_shards(tmp_path_factory) -> str:
    from omnicodec.data.scenes import build_scenes

    out = tmp_path_factory.mktemp("scenes")
    build_scenes(str(out), train=1, test=4, size=96, maxcount=2, progress=False, seed=41)
    return str(out / "test-*.tar")


def _counting(asked: list[str]):
    from omnicodec.eval.predict import predict_in_process

    def predictor(systems, chunks, samples, tasks, bar):
        asked.extend(f"{s.name} {s.label}".strip() for s in systems)
        return predict_in_process(systems, chunks, samples, tasks, bar)

    return predictor


def test_a_second_evaluation_codes_only_the_systems_it_has_not_seen(test_shards, tmp_path):
    from omnicodec.eval.evaluate import build_systems, run_evaluation

    cache = str(tmp_path / "records")
    first, tasks = build_systems([("ours", "zoo:adaptors-demo")], ["jpeg:30"], str(tmp_path))
    asked: list[str] = []
    a = run_evaluation(first, test_shards, tasks, None, progress=False, resamples=20, det_resamples=5,
                       predictor=_counting(asked), records_cache=cache)
    assert asked == ["original clean", "all-in-one ours", "JPEG Q30"]
    assert a["records_cache"]["reused"] == []

    again, _ = build_systems([("ours", "zoo:adaptors-demo")], ["jpeg:30", "webp:30"], str(tmp_path))
    asked.clear()
    b = run_evaluation(again, test_shards, tasks, None, progress=False, resamples=20, det_resamples=5,
                       predictor=_counting(asked), records_cache=cache)
    assert asked == ["WebP Q30"]  # only the new system was coded and scored
    assert b["records_cache"]["reused"] == ["original clean", "all-in-one ours", "JPEG Q30"]
    for pa, pb in zip(a["points"], b["points"]):
        assert (pb["bpp"], pb["psnr"], pb["primary"], pb["ci"]) == (pa["bpp"], pa["psnr"], pa["primary"], pa["ci"])
    assert b["clean"] == a["clean"]
    assert all(p.suffix == ".safetensors" for p in (tmp_path / "records").rglob("*") if p.is_file())


def test_changed_weights_or_shards_change_the_key(test_shards, tmp_path):
    from omnicodec.eval.evaluate import build_systems
    from omnicodec.eval.predict import Chunk
    from omnicodec.eval.record_cache import RecordCache, system_digest

    systems, tasks = build_systems([("ours", "zoo:adaptors-demo")], ["jpeg:30"], str(tmp_path))
    ours, jpeg = systems[0], systems[1]
    before = system_digest(ours)
    with torch.no_grad():
        next(ours.model.parameters()).add_(1e-3)  # retrained in place: same recipe, other weights
    assert system_digest(ours) != before
    assert system_digest(jpeg) != system_digest(build_systems([("ours", "zoo:adaptors-demo")], ["jpeg:31"],
                                                              str(tmp_path))[0][1])
    cache = RecordCache(str(tmp_path), tasks, {"a.tar": "0" * 64, "b.tar": "1" * 64})
    assert cache.key(before, Chunk("x/a.tar", 4)) != cache.key(before, Chunk("y/b.tar", 4))
    assert cache.key(before, Chunk("x/a.tar", 4)) != cache.key(before, Chunk("x/a.tar", 3))


def test_records_round_trip_tensors_arrays_and_nesting(tmp_path):
    import numpy as np

    from omnicodec.eval.record_cache import RecordCache

    cache = RecordCache(str(tmp_path), ["cls"], {})
    records = [{"bpp": 0.25, "psnr": None, "preds": {"det": {"boxes": torch.zeros(0, 4), "scores": torch.ones(2)},
                                                     "seg": np.arange(6, dtype=np.uint8).reshape(2, 3),
                                                     "pair": (1, [2.5, "x"])}}]
    cache.put("ab" * 32, records)
    back = cache.get("ab" * 32)
    assert back[0]["bpp"] == 0.25 and back[0]["psnr"] is None
    assert back[0]["preds"]["det"]["boxes"].shape == (0, 4) and torch.equal(back[0]["preds"]["det"]["scores"],
                                                                          torch.ones(2))
    assert np.array_equal(back[0]["preds"]["seg"], records[0]["preds"]["seg"])
    assert back[0]["preds"]["pair"] == (1, [2.5, "x"])
    assert cache.get("cd" * 32) is None


def test_an_interrupted_evaluation_keeps_the_systems_it_finished(test_shards, tmp_path):
    from omnicodec.eval.evaluate import build_systems, run_evaluation
    from omnicodec.eval.predict import predict_in_process

    cache = str(tmp_path / "records")
    systems, tasks = build_systems([("ours", "zoo:adaptors-demo")], ["jpeg:30"], str(tmp_path))

    def dies_on_the_last_system(systems, chunks, samples, tasks, bar, on_done=None):
        def done(i, records):
            on_done(i, records)
            if i == len(systems) - 2:
                raise KeyboardInterrupt  # the user gives up during the last system
        return predict_in_process(systems, chunks, samples, tasks, bar, on_done=done)

    with pytest.raises(KeyboardInterrupt):
        run_evaluation(systems, test_shards, tasks, None, progress=False, resamples=0,
                       predictor=dies_on_the_last_system, records_cache=cache)
    asked: list[str] = []
    again = run_evaluation(systems, test_shards, tasks, None, progress=False, resamples=0,
                           predictor=_counting(asked), records_cache=cache)
    assert again["records_cache"]["reused"] == ["original clean", "all-in-one ours"]
    assert asked == ["JPEG Q30"]
