"""Shards, the streaming loader and the converters, on real tar files."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile

import numpy as np
import pytest
import torch
import webdataset as wds
from PIL import Image

from omnicodec.cli import main
from omnicodec.data.loader import LoaderConfig, flip, iter_samples, make_loader, make_pipeline, random_crop
from omnicodec.data.samples import decode_sample, make_sample
from omnicodec.data.scenes import build_scenes
from omnicodec.data.shards import ShardSink, iter_shard, resolve_shards
from omnicodec.errors import DataError


def _sample(i: int, size: int = 32) -> dict:
    rng = np.random.default_rng(i)
    img = Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8))
    seg = np.zeros((size, size), np.uint8)
    seg[4:12, 4:12] = 1 + i % 3
    return make_sample(f"s-{i:05d}", img, cls=i % 3, seg=seg, meta={"boxes": [[4, 4, 12, 12]], "labels": [i % 3]})


def _write(directory, n_shards: int, per_shard: int = 4) -> list[str]:
    with ShardSink(str(directory), "part", per_shard) as sink:
        for i in range(n_shards * per_shard):
            sink.write(_sample(i))
    return sink.shards


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("scenes")
    build_scenes(str(out), train=16, test=4, size=128, source="debian", maxcount=4, progress=False)
    return str(out)


def test_scene_builder_writes_sorted_multitask_shards_with_exact_labels(scenes):
    card = json.load(open(os.path.join(scenes, "dataset.json")))
    assert card["source"] == "debian" and card["counts"] == {"train": 16, "test": 4}
    samples = list(iter_samples(os.path.join(scenes, "train-00000{0..3}.tar"), require=("cls", "seg.png", "inst.png", "json")))
    assert len(samples) == 16
    for s in samples:
        assert s.image.shape == (3, 128, 128) and s.seg.shape == (128, 128)
        assert len(s.boxes) == len(s.labels) >= 1
        # every labelled instance is visible inside its box, with its class in the semantic mask
        for k, (b, l) in enumerate(zip(s.boxes.long().tolist(), s.labels.tolist())):
            region = s.inst[b[1]:b[3], b[0]:b[2]] == k + 1
            assert region.any()
            assert (s.seg[s.inst == k + 1] == l + 1).all()
        assert s.cls in s.labels.tolist()
    keys = [s.key for s in samples]
    assert keys == sorted(keys)


def test_train_and_test_scenes_share_no_object_or_photo(scenes):
    def used(split):
        objs, bgs = set(), set()
        for s in iter_samples(resolve_shards(scenes)):
            if s.key.startswith(split):
                objs.update(s.meta["source"]["objects"])
                bgs.add(s.meta["source"]["background"])
        return objs, bgs
    (o1, b1), (o2, b2) = used("train"), used("test")
    assert not (o1 & o2) and not (b1 & b2)


def test_portable_source_needs_only_pip(tmp_path):
    card = build_scenes(str(tmp_path), train=4, test=2, size=96, source="portable", progress=False)
    assert card["classes"][0] == "disc"
    assert len(list(iter_samples(str(tmp_path)))) == 6


def test_shards_from_tarwriter_and_gnu_tar_load(tmp_path):
    # webdataset's own writer
    with wds.TarWriter(str(tmp_path / "wds.tar")) as w:
        for i in range(3):
            s = _sample(i)
            w.write({"__key__": s["__key__"], "jpg": s["jpg"], "cls": s["cls"]})
    # GNU tar over plain files, sorted
    files = tmp_path / "files"
    files.mkdir()
    for i in range(3):
        s = _sample(10 + i)
        for ext in ("jpg", "cls", "seg.png"):
            (files / f"{s['__key__']}.{ext}").write_bytes(s[ext])
    subprocess.run(["tar", "--sort=name", "-cf", str(tmp_path / "gnu.tar"), "-C", str(files), "."], check=True)
    ours = tmp_path / "ours"
    _write(ours, 1, 3)
    for spec in (str(tmp_path / "wds.tar"), str(tmp_path / "gnu.tar"), str(ours)):
        got = list(iter_samples(spec, require=("cls",)))
        assert len(got) == 3 and all(s.image.shape[0] == 3 for s in got), spec


def test_two_ranks_with_two_workers_read_disjoint_shards(tmp_path):
    _write(tmp_path, n_shards=8, per_shard=3)
    seen = {}
    for rank in (0, 1):
        cfg = LoaderConfig(shards=str(tmp_path), batch_size=1, crop=None, resampled=False, shardshuffle=False,
                           shuffle_buffer=0, num_workers=2)
        keys = [k for b in make_loader(cfg, rank=rank, world_size=2) for k in b["keys"]]
        assert len(keys) == len(set(keys)) == 12  # 4 shards x 3 samples, none read twice
        seen[rank] = set(keys)
    assert not seen[0] & seen[1] and len(seen[0] | seen[1]) == 24


def test_worker_processes_send_uint8_and_the_consumer_gets_the_same_float_batches(tmp_path):
    """Decoding in worker processes changes nothing the trainer sees: float images in [0, 1]
    and int64 masks equal to the in-process loader's (only uint8 crosses the process boundary)."""
    from omnicodec.data.loader import collate, to_training_dtypes

    _write(tmp_path, n_shards=2, per_shard=3)
    cfg = dict(shards=str(tmp_path), batch_size=3, crop=None, resampled=False, shardshuffle=False, shuffle_buffer=0)
    in_process = list(make_loader(LoaderConfig(**cfg, num_workers=0), rank=0, world_size=1))
    in_workers = list(make_loader(LoaderConfig(**cfg, num_workers=1), rank=0, world_size=1))
    assert [b["keys"] for b in in_workers] == [b["keys"] for b in in_process]
    for a, b in zip(in_process, in_workers):
        assert b["image"].dtype == torch.float32 and b["seg"].dtype == torch.int64
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["seg"], b["seg"])
        assert all(torch.equal(x, y) for x, y in zip(a["boxes"], b["boxes"], strict=True))
        assert all(torch.equal(x, y) for x, y in zip(a["labels"], b["labels"], strict=True))
    samples = list(iter_samples(str(tmp_path)))[:2]
    raw = collate([_as_uint8(s) for s in samples], as_float=False)
    assert raw["image"].dtype == torch.uint8 and raw["seg"].dtype == torch.uint8
    assert torch.equal(to_training_dtypes(raw)["image"], collate([_as_uint8(s) for s in samples])["image"])


def _as_uint8(s):
    s.image = (s.image * 255).round().to(torch.uint8) if s.image.is_floating_point() else s.image
    s.seg = s.seg.to(torch.uint8) if s.seg is not None else None
    return s


def test_resampled_mode_gives_every_rank_equal_steps(tmp_path):
    _write(tmp_path, n_shards=3, per_shard=2)
    for rank in (0, 1):
        it = iter(make_pipeline(LoaderConfig(shards=str(tmp_path), batch_size=2, crop=16, shuffle_buffer=4), rank, 2))
        batches = [next(it) for _ in range(7)]  # an endless stream: any count is available
        assert all(b["image"].shape == (2, 3, 16, 16) for b in batches)


def _corrupt(tmp_path) -> tuple[list[str], str]:
    shards = _write(tmp_path, n_shards=3, per_shard=4)
    # shard 1: a corrupt JPEG in key s-00005
    with tarfile.open(shards[1]) as t:
        members = [(m, t.extractfile(m).read()) for m in t.getmembers()]
    with tarfile.open(shards[1], "w") as t:
        for m, data in members:
            if m.name == "s-00005.jpg":
                data = b"\xff\xd8\xff" + b"garbage" * 20
                m.size = len(data)
            t.addfile(m, io.BytesIO(data))
    # shard 2: truncated in the middle
    raw = open(shards[2], "rb").read()
    open(shards[2], "wb").write(raw[: len(raw) // 2])
    return shards, "s-00005"


def test_corrupt_jpeg_and_truncated_shard_are_skipped_and_reported(tmp_path):
    shards, bad_key = _corrupt(tmp_path)
    cfg = LoaderConfig(shards=str(tmp_path), batch_size=4, crop=None, resampled=False, shardshuffle=False, shuffle_buffer=0)
    batches = list(make_loader(cfg, rank=0, world_size=1))
    keys = [k for b in batches for k in b["keys"]]
    skipped = [s for b in batches for s in b["skipped"]]
    assert bad_key not in keys and "s-00004" in keys
    assert any(s["key"] == bad_key and s["shard"] == shards[1] and "undecodable" in s["reason"] for s in skipped)
    assert any(s["shard"] == shards[2] and "truncated" in s["reason"] for s in skipped)


def test_strict_mode_raises_naming_shard_and_key(tmp_path):
    shards, bad_key = _corrupt(tmp_path)
    cfg = LoaderConfig(shards=shards[:2], batch_size=4, crop=None, resampled=False, shardshuffle=False,
                       shuffle_buffer=0, strict=True)
    with pytest.raises(DataError, match=rf"{shards[1]}.*{bad_key}"):
        list(make_loader(cfg, rank=0, world_size=1))


def test_verify_lists_each_fault_and_exits_nonzero(tmp_path, capsys):
    shards, bad_key = _corrupt(tmp_path)
    assert main(["data", "verify", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"key '{bad_key}'" in out and shards[2] in out and "byte" in out
    clean = tmp_path / "clean"
    _write(clean, 1)
    assert main(["data", "verify", str(clean)]) == 0


def test_members_of_one_key_must_be_contiguous(tmp_path):
    path = tmp_path / "unsorted.tar"
    s0, s1 = _sample(0), _sample(1)
    with tarfile.open(path, "w") as t:
        for key, ext, data in [(s0["__key__"], "jpg", s0["jpg"]), (s1["__key__"], "jpg", s1["jpg"]),
                               (s0["__key__"], "cls", s0["cls"])]:
            info = tarfile.TarInfo(f"{key}.{ext}")
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    with pytest.raises(DataError, match=r"key 's-00000' are not contiguous \(again at byte \d+\)"):
        list(iter_shard(str(path)))


def test_fsspec_memory_urls_and_brace_patterns_load(tmp_path):
    import fsspec

    local = _write(tmp_path, 2, 2)
    fs = fsspec.filesystem("memory")
    for p in local:
        fs.pipe(f"/shards/{os.path.basename(p)}", open(p, "rb").read())
    assert len(resolve_shards("memory://shards/part-{000000..000001}.tar")) == 2
    cfg = LoaderConfig(shards="memory://shards", batch_size=2, crop=None, resampled=False, shuffle_buffer=0)
    assert sum(len(b["keys"]) for b in make_loader(cfg, rank=0, world_size=1)) == 4


def test_random_crop_and_flip_keep_boxes_on_their_objects():
    import random

    s = decode_sample({**_sample(0, size=64), "__url__": "x"})
    s = random_crop(s, 48, random.Random(3))
    assert s.image.shape == (3, 48, 48)
    b = s.boxes[0].long().tolist()
    assert (s.seg[b[1]:b[3], b[0]:b[2]] > 0).all()
    f = flip(s)
    b = f.boxes[0].long().tolist()
    assert (f.seg[b[1]:b[3], b[0]:b[2]] > 0).all()


def test_inspect_prints_counts_and_writes_a_contact_sheet(scenes, tmp_path, capsys):
    sheet = tmp_path / "sheet.png"
    assert main(["data", "inspect", scenes, "--sheet", str(sheet), "--count", "4"]) == 0
    out = capsys.readouterr().out
    assert "20 samples" in out and "seg.png" in out and "class histogram" in out
    assert Image.open(sheet).size[0] > 0


# --------------------------------------------------------------- converters
def test_imagefolder_converter(tmp_path):
    for c in ("cat", "dog"):
        (tmp_path / "in" / c).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (20, 16), (i * 50, 100, 0)).save(tmp_path / "in" / c / f"{i}.png")
    assert main(["data", "convert", "--from", "imagefolder", "--root", str(tmp_path / "in"), "--out", str(tmp_path / "out")]) == 0
    got = list(iter_samples(str(tmp_path / "out"), require=("cls",)))
    assert [s.cls for s in got] == [0, 0, 1, 1]


def test_coco_converter_rasterises_polygons_into_masks_and_boxes(tmp_path):
    imgs = tmp_path / "images"
    imgs.mkdir()
    Image.new("RGB", (40, 30), "white").save(imgs / "a.jpg")
    Image.new("RGB", (40, 30), "gray").save(imgs / "b.jpg")
    ann = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 40, "height": 30},
                   {"id": 2, "file_name": "b.jpg", "width": 40, "height": 30}],
        "categories": [{"id": 3, "name": "cup"}, {"id": 7, "name": "kite"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 7, "bbox": [5, 5, 10, 10], "area": 100, "iscrowd": 0,
             "segmentation": [[5, 5, 15, 5, 15, 15, 5, 15]]},
            {"id": 2, "image_id": 2, "category_id": 3, "bbox": [20, 10, 8, 6], "area": 48, "iscrowd": 0,
             "segmentation": [[20, 10, 28, 10, 28, 16, 20, 16]]},
        ],
    }
    (tmp_path / "ann.json").write_text(json.dumps(ann))
    assert main(["data", "convert", "--from", "coco", "--images", str(imgs), "--annotations", str(tmp_path / "ann.json"),
                 "--out", str(tmp_path / "out")]) == 0
    a, b = iter_samples(str(tmp_path / "out"), require=("json", "seg.png", "cls"))
    assert a.labels.tolist() == [1] and a.cls == 1 and b.cls == 0
    assert a.boxes.tolist() == [[5, 5, 15, 15]]
    assert (a.seg[6:14, 6:14] == 2).all() and a.seg[0, 0] == 0


def test_pascal_context_converter(tmp_path):
    (tmp_path / "JPEGImages").mkdir()
    (tmp_path / "SegmentationClassContext").mkdir()
    Image.new("RGB", (24, 16), "blue").save(tmp_path / "JPEGImages" / "2008_000001.jpg")
    mask = np.zeros((16, 24), np.uint8)
    mask[:, 12:] = 5
    Image.fromarray(mask).save(tmp_path / "SegmentationClassContext" / "2008_000001.png")
    assert main(["data", "convert", "--from", "pascal-context", "--root", str(tmp_path), "--out", str(tmp_path / "out")]) == 0
    (s,) = iter_samples(str(tmp_path / "out"), require=("seg.png",))
    assert s.cls == 4 and int(s.seg.max()) == 5


def _pascal_multitask_tree(root, n: int = 3) -> None:
    """The multi-task PASCAL-Context layout in miniature: semantic masks, human parts,
    saliency, normals (RGB (n + 1) / 2 * 255)."""
    for d in ("JPEGImages", "SegmentationClassContext", "human_parts", "sal_distill", "normals_distill"):
        (root / d).mkdir()
    for i in range(n):
        name = f"2008_{i:06d}"
        Image.new("RGB", (24, 16), "blue").save(root / "JPEGImages" / f"{name}.jpg")
        mask = np.zeros((16, 24), np.uint8)
        mask[:, 12:] = 5
        Image.fromarray(mask).save(root / "SegmentationClassContext" / f"{name}.png")
        if i < 2:  # parts exist only where people are: the third image has none
            parts = np.zeros((16, 24), np.uint8)
            parts[4:8, 2:6] = 3
            Image.fromarray(parts, "L").save(root / "human_parts" / f"{name}.png")
        Image.fromarray(np.where(mask > 0, 255, 0).astype(np.uint8)).save(root / "sal_distill" / f"{name}.png")
        normals = np.zeros((16, 24, 3), np.uint8)
        normals[..., 0], normals[..., 1], normals[..., 2] = 230, 128, 180  # n_x > 0: facing right
        Image.fromarray(normals).save(root / "normals_distill" / f"{name}.png")


def test_pascal_context_multitask_converter_feeds_the_papers_task_kinds(tmp_path):
    from omnicodec.tasks.kinds.edges import edge_target
    from omnicodec.tasks.kinds.normals import from_png
    from omnicodec.tasks.kinds.saliency import salient

    _pascal_multitask_tree(tmp_path)
    assert main(["data", "convert", "--from", "pascal-context", "--root", str(tmp_path), "--out", str(tmp_path / "out")]) == 0
    card = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert card["maps"] == {"parts": {"images": 2, "from": "human_parts"}, "sal": {"images": 3, "from": "sal_distill"},
                            "normals": {"images": 3, "from": "normals_distill"}}
    a, b, c = iter_samples(str(tmp_path / "out"))
    assert set(a.maps) == {"parts", "sal", "normals"} and "parts" not in c.maps
    assert a.maps["parts"].shape == (16, 24) and int(a.maps["parts"][5, 3]) == 3
    assert salient(a)[:, 12:].all() and not salient(a)[:, :12].any()
    assert edge_target(a)[:, 11].all()  # no edge.png: the semantic mask's boundary
    n = from_png(a.maps["normals"])
    assert n.shape == (3, 16, 24) and float(n[0].mean()) > 0.5
    flipped = flip(a)  # a mirrored surface faces the other way
    assert float(from_png(flipped.maps["normals"])[0].mean()) < -0.5
    batch = make_loader(LoaderConfig(shards=str(tmp_path / "out" / "*.tar"), batch_size=2, crop=16, hflip=False,
                                     shuffle_buffer=0, num_workers=0), 0, 1)
    first = next(iter(batch))
    assert first["maps"]["parts"].shape == (2, 16, 16) and first["maps"]["normals"].shape == (2, 3, 16, 16)


def test_pascal_context_matlab_parts_are_refused_naming_the_file(tmp_path, capsys):
    _pascal_multitask_tree(tmp_path, n=1)
    (tmp_path / "human_parts" / "2008_000000.png").unlink()
    (tmp_path / "human_parts" / "2008_000000.mat").write_bytes(b"MATLAB 5.0")
    assert main(["data", "convert", "--from", "pascal-context", "--root", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "human_parts/2008_000000.mat: MATLAB annotations are not read" in capsys.readouterr().err


def test_converter_errors_name_the_file(tmp_path):
    (tmp_path / "ann.json").write_text("{not json")
    assert main(["data", "convert", "--from", "coco", "--images", str(tmp_path), "--annotations",
                 str(tmp_path / "ann.json"), "--out", str(tmp_path / "o")]) == 2


@pytest.mark.parametrize("name", __import__("omnicodec.data.converters", fromlist=["CONVERTERS"]).CONVERTERS.names())
def test_every_converter_is_a_choice_with_its_usage_and_flags_in_help(name, capsys):
    from omnicodec.data.converters import CONVERTERS, Converter

    conv = CONVERTERS.get(name)
    assert issubclass(conv, Converter) and conv.usage.startswith(f"{name}: ")
    with pytest.raises(SystemExit):
        main(["data", "convert", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert name in out.split("{")[1].split("}")[0].split(",") and " ".join(conv.usage.split()) in out
    for flag, kw in conv.flags.items():
        assert f"{flag} " in out and kw["help"] in out
    assert main(["data", "convert", "--from", name, "--out", "/nonexistent/x"] +
                [a for f in conv.flags for a in (f, "/nonexistent/y")]) == 2  # parsed; refused by the converter


def test_a_converter_is_one_file_plus_one_registry_line(throwaway, tmp_path, capsys):
    """The acceptance of the registry: a throwaway converter (one new file, imported: its
    decorator is the registry line) is a --from choice with its own flag and converts."""
    from omnicodec.data.converters import CONVERTERS

    throwaway(CONVERTERS, "flat", '''
        import os

        from omnicodec.data.converters.base import CONVERTERS, Converter, image_member, need, sink
        from omnicodec.errors import DataError


        @CONVERTERS.register("flat")
        class Flat(Converter):
            usage = "flat: --flat-dir DIR of unlabelled images."
            flags = {"--flat-dir": {"help": "folder of images"}}

            @staticmethod
            def convert(options, out, prefix, maxcount, test_fraction):
                from omnicodec.data.shards import write_card

                folder, names = need(options, "--flat-dir"), []
                if not os.path.isdir(folder):
                    raise DataError(f"{folder}: not a folder")
                with sink(out, prefix, maxcount, test_fraction) as shards:
                    for i, f in enumerate(sorted(os.listdir(folder))):
                        ext, data, _ = image_member(os.path.join(folder, f))
                        shards.write({"__key__": f"{prefix}-{i:07d}", ext: data})
                        names.append(f)
                card = {"kind": "flat", "count": len(names)}
                write_card(out, card)
                return card
        ''')
    test_every_converter_is_a_choice_with_its_usage_and_flags_in_help("flat", capsys)
    (tmp_path / "in").mkdir()
    for i in range(3):
        Image.new("RGB", (20, 16), (i * 50, 100, 0)).save(tmp_path / "in" / f"{i}.png")
    assert main(["data", "convert", "--from", "flat", "--flat-dir", str(tmp_path / "in"), "--out", str(tmp_path / "out")]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 3
    assert len(list(iter_samples(str(tmp_path / "out")))) == 3
