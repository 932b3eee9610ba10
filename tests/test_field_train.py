"""Training on what users bring (issue 27): a folder of photos of several sizes, converted
with ``omnicodec data convert``, trained with the SHIPPED train.yaml (``data.crop: null``),
which died on its first batch: "The size of tensor a (255) must match the size of tensor b
(172)". ``data.fit`` (default 192) now scales and cuts other sizes; a corrupt sample is
skipped, counted and named in the training log."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from omnicodec.cli import main
from omnicodec.data.loader import LoaderConfig, make_pipeline
from omnicodec.errors import DataError

SIZES = ((172, 255), (120, 90), (192, 192), (64, 300))


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> str:
    """``data convert`` of ROOT/<class>/*.jpg: real photo crops of four different sizes."""
    import skimage.data

    root = tmp_path_factory.mktemp("my-photos")
    for cls, photo in (("cat", skimage.data.chelsea()), ("coffee", skimage.data.coffee())):
        os.makedirs(root / cls)
        for i, (h, w) in enumerate(SIZES):
            Image.fromarray(photo[10 * i : 10 * i + h, 5 * i : 5 * i + w]).save(root / cls / f"{i:02d}.jpg", quality=90)
    out = tmp_path_factory.mktemp("shards") / "sh"
    assert main(["data", "convert", "--from", "imagefolder", "--root", str(root), "--out", str(out)]) == 0
    return str(out / "data-*.tar")


def _loader(shards: str, **kw) -> LoaderConfig:
    return LoaderConfig(shards=shards, batch_size=4, crop=None, shuffle_buffer=0, resampled=False, **kw)


def test_mixed_size_photos_batch_at_the_default_fit(shards):
    batches = list(make_pipeline(_loader(shards), rank=0, world_size=1))
    assert [tuple(b["image"].shape) for b in batches] == [(4, 3, 192, 192)] * 2
    assert all(0 < float(b["image"].mean()) < 1 for b in batches)  # photos, not padding
    small = next(iter(make_pipeline(_loader(shards, fit=64), rank=0, world_size=1)))
    assert tuple(small["image"].shape) == (4, 3, 64, 64)


def test_without_fit_a_mixed_batch_is_refused_naming_both_samples(shards):
    with pytest.raises(DataError, match=r"a batch mixes image sizes: shard .*data-000000\.tar, key 'data-0000000' "
                                        r"is \(172, 255\), .*key 'data-0000001' is \(120, 90\); set data.crop or data.fit"):
        list(make_pipeline(_loader(shards, fit=None), rank=0, world_size=1))


@pytest.mark.slow
def test_the_shipped_train_yaml_trains_on_mixed_size_photos(shards, tmp_path, monkeypatch, capsys):
    """The reported replay, in this process (``--local``): 2 steps of the shipped spec."""
    monkeypatch.setenv("OMNICODEC_HOME", str(tmp_path / "home"))
    code = main(["train", "jobs/omnicodec/jobs/specs/train.yaml", "--local", "cpu", "--set", "run.name=mine",
                 "--set", f"data.shards={shards}", "--set", "tasks=[{name: cls, loss: distill}]",
                 "--set", "optim.steps=2", "--set", "run.checkpoint_every=2", "--set", "data.batch_size=2",
                 "--set", "data.num_workers=0", "--set", "data.shuffle_buffer=4",
                 "--set", f"run.storage={tmp_path / 'runs'}"])
    assert code == 0, capsys.readouterr().err
    assert os.path.isdir(tmp_path / "runs" / "mine" / "checkpoint_000002")


def test_a_corrupt_sample_is_skipped_counted_and_logged_with_shard_key_and_file(tmp_path, caplog):
    """Training skips what evaluation refuses, never silently: both name shard, key and the
    user's file. ``data convert`` decodes every photo in full, so the damage (a JPEG cut
    short) is done to the shard member after conversion."""
    import io
    import tarfile

    from omnicodec.data.loader import iter_samples

    root = tmp_path / "photos" / "cat"
    os.makedirs(root)
    for i in range(3):
        Image.fromarray(np.full((40, 40, 3), 60 * i, np.uint8)).save(root / f"{i}.jpg")
    assert main(["data", "convert", "--from", "imagefolder", "--root", str(tmp_path / "photos"), "--out", str(tmp_path / "sh")]) == 0
    shard = str(tmp_path / "sh" / "data-000000.tar")
    with tarfile.open(shard) as t:  # rewrite the shard with the second image cut short
        members = [(m, t.extractfile(m).read()) for m in t.getmembers()]
    with tarfile.open(shard, "w") as t:
        for m, data in members:
            data = data[:100] if m.name == "data-0000001.jpg" else data
            m.size = len(data)
            t.addfile(m, io.BytesIO(data))
    cfg = LoaderConfig(shards=shard, batch_size=2, crop=32, shuffle_buffer=0, resampled=False)
    with caplog.at_level("WARNING", logger="omnicodec.data"):
        batches = list(make_pipeline(cfg, rank=0, world_size=1))
    assert sum(len(b["keys"]) for b in batches) == 2
    [skipped] = [s for b in batches for s in b.get("skipped", [])]
    assert skipped["key"] == "data-0000001" and "(file cat/1.jpg)" in skipped["reason"]
    assert "skipped corrupt sample 1" in caplog.text and "key 'data-0000001' (file cat/1.jpg)" in caplog.text
    with pytest.raises(DataError, match=r"data-000000\.tar, key 'data-0000001' \(file cat/1\.jpg\), member 'jpg'"):
        list(iter_samples(shard))  # evaluation: the same words, refused
