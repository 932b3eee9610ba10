"""Evaluation on what users bring (issue 27): an image folder of their own photos, of mixed
sizes, whose class folders are not the bundled classifier's classes and which has no masks;
blank and tiny images. Real photos written with PIL, real shards from ``omnicodec data
convert``, real bitstreams (``omnicodec eval --in-process``)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from omnicodec.cli import main

pytestmark = pytest.mark.slow  # each evaluation codes a few small images: 10-20 s on 2 cores


def _photo_folder(root, sizes=((72, 96), (96, 64), (80, 80))) -> str:
    """ROOT/<class>/<image>.jpg: two classes (cat, coffee) of real photo crops, mixed sizes."""
    import skimage.data

    for cls, photo in (("cat", skimage.data.chelsea()), ("coffee", skimage.data.coffee())):
        os.makedirs(root / cls)
        for i, (h, w) in enumerate(sizes):
            Image.fromarray(photo[20 * i : 20 * i + h, 30 * i : 30 * i + w]).save(root / cls / f"{i:02d}.jpg", quality=92)
    return str(root)


def _evaluate(shards: str, out: str, *extra: str) -> dict:
    main(["eval", "--adaptors", "zoo:adaptors-demo", "--data", shards, "--out", out, "--baseline",
          "frozen:mbt2018-mean-small:2", "--resamples", "20", "--in-process", "--no-records-cache", *extra])
    with open(os.path.join(out, "report.json")) as f:
        return json.load(f)


def test_a_users_photo_folder_is_scored_label_free_where_its_labels_are_not_the_networks(tmp_path, capsys):
    folder = _photo_folder(tmp_path / "my-photos")
    main(["data", "convert", "--from", "imagefolder", "--root", folder, "--out", str(tmp_path / "shards")])
    report = _evaluate(str(tmp_path / "shards" / "data-*.tar"), str(tmp_path / "report"), "--pictures", "0")
    plan = report["scoring"]
    # cls: the folder's classes (cat, coffee) are not the network's 8 classes; seg: no masks; det: no boxes
    assert plan["cls"] == {"metric": "agreement", "labelled": False, "why": plan["cls"]["why"]}
    assert "cat, coffee" in plan["cls"]["why"] and "mammal" in plan["cls"]["why"]
    assert not plan["seg"]["labelled"] and "seg.png" in plan["seg"]["why"]
    assert not plan["det"]["labelled"]
    assert report["clean"]["cls"]["agreement"] == 1.0 and report["clean"]["seg"]["agreement"] == 1.0
    for p in report["points"]:  # what BD-rate and Delta_m read is the agreement, not top-1 against foreign labels
        assert p["primary"]["cls"] == p["tasks"]["cls"]["agreement"] > 0
        assert p["primary"]["seg"] == p["tasks"]["seg"]["agreement"] > 0
    md = open(tmp_path / "report" / "report.md").read()
    assert "cls agreement (label-free)" in md and "seg pixel agreement (label-free)" in md
    from omnicodec.eval.report import BD_LEGEND

    body = md.replace(BD_LEGEND, "")  # the legend names every BD-metric; the tables must not say mIoU here
    assert "cls top-1" not in body and "mIoU" not in body
    assert "det: " in md and "no information" in md  # the detector sees nothing here: said, not a bare 0.000
    out = capsys.readouterr().out
    assert "cls: scored label-free" in out and "seg: scored label-free" in out


def test_labels_in_the_networks_class_space_keep_the_labelled_metric(tmp_path):
    """The other side of the decision: shards whose classes are the network's, every image
    labelled, keep top-1; one image without a label turns the task label-free, said why."""
    import torch

    from omnicodec.data.samples import Sample
    from omnicodec.eval.tasks import scoring_plan
    from omnicodec.tasks.registry import get_task

    names = get_task("cls").resolved_classes()[1]
    samples = [Sample(key=f"k{i}", url="s.tar", image=torch.zeros(3, 8, 8), cls=i % 8) for i in range(4)]
    assert scoring_plan(["cls"], samples, {"classes": names})["cls"] == {"metric": "top1", "labelled": True, "why": None}
    samples[2].cls = None
    plan = scoring_plan(["cls"], samples, {"classes": names})["cls"]
    assert plan["metric"] == "agreement" and "1 of 4 test images" in plan["why"] and "'k2'" in plan["why"]


def test_blank_images_evaluate_to_a_report_with_finite_psnr(tmp_path):
    """A constant image codes perfectly for JPEG: PSNR inf made the plots fail ("'yerr' must
    not contain negative values") and no report was written. PSNR is capped at 100 dB."""
    from omnicodec.images import PSNR_CAP

    folder = tmp_path / "odd"
    os.makedirs(folder / "things")
    Image.new("RGB", (64, 48), (128, 128, 128)).save(folder / "things" / "blank.png")
    Image.new("RGB", (40, 40), (255, 255, 255)).save(folder / "things" / "white.png")
    main(["data", "convert", "--from", "imagefolder", "--root", str(folder), "--out", str(tmp_path / "shards")])
    report = _evaluate(str(tmp_path / "shards" / "data-*.tar"), str(tmp_path / "report"), "--baseline", "jpeg:95",
                       "--pictures", "1")
    jpeg = next(p for p in report["points"] if p["system"] == "JPEG")
    assert jpeg["psnr"] == PSNR_CAP
    assert all(np.isfinite(p["psnr"]) for p in report["points"])
    assert os.path.exists(tmp_path / "report" / "curve_psnr.png") and os.path.exists(tmp_path / "report" / "pictures.png")


def test_a_tiny_image_is_refused_in_one_line_naming_its_shard_and_key(tmp_path, capsys):
    """A 3x3 photo stopped the evaluation with a raw torch error naming no file."""
    folder = tmp_path / "odd"
    os.makedirs(folder / "things")
    Image.new("RGB", (64, 48), (128, 90, 20)).save(folder / "things" / "a.png")
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (3, 3, 3), dtype=np.uint8)).save(folder / "things" / "b.png")
    main(["data", "convert", "--from", "imagefolder", "--root", str(folder), "--out", str(tmp_path / "shards")])
    capsys.readouterr()
    assert main(["eval", "--adaptors", "zoo:adaptors-demo", "--data", str(tmp_path / "shards" / "data-*.tar"),
                 "--out", str(tmp_path / "report"), "--in-process", "--no-records-cache"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "data-000000.tar, key 'data-0000001': 3x3 pixels is too small to evaluate" in err[0]


BROKEN_IMAGES = """<script>addEventListener('load', () => document.body.setAttribute('data-broken',
  [...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.getAttribute('src')).join(' ')
  || 'none'))</script>"""


def test_the_report_renders_in_a_real_browser_with_every_picture(tmp_path, browser):
    """report.html as Chromium shows it: its tables and every curve and picture sheet load
    (a script added to a copy of the page lists the images the browser could not draw)."""
    folder = _photo_folder(tmp_path / "my-photos", sizes=((72, 96), (64, 64)))
    main(["data", "convert", "--from", "imagefolder", "--root", folder, "--out", str(tmp_path / "shards")])
    out = tmp_path / "report"
    _evaluate(str(tmp_path / "shards" / "data-*.tar"), str(out), "--pictures", "1")
    page = (out / "report.html").read_text()
    assert page.count("<img") >= 3
    (out / "check.html").write_text(page.replace("</body>", BROKEN_IMAGES + "</body>"))
    dom = browser((out / "check.html").as_uri(), str(tmp_path / "report.png"))
    assert 'data-broken="none"' in dom
    assert "<h1>omnicodec evaluation</h1>" in dom and "<h2>Operating points</h2>" in dom and "<td>" in dom


def test_a_test_image_over_the_pixel_cap_is_refused_in_one_line_naming_it(tmp_path, capsys):
    """The codec codes whole images: a huge photo costs minutes and gigabytes, so it is refused
    before any coding (``sizes.check_pixels``); --max-pixels (or OMNICODEC_MAX_PIXELS) raises the cap."""
    from omnicodec.sizes import MAX_PIXELS_ENV

    folder = _photo_folder(tmp_path / "my-photos", sizes=((64, 64), (72, 96)))
    main(["data", "convert", "--from", "imagefolder", "--root", folder, "--out", str(tmp_path / "shards")])
    capsys.readouterr()
    assert main(["eval", "--adaptors", "zoo:adaptors-demo", "--data", str(tmp_path / "shards" / "data-*.tar"),
                 "--out", str(tmp_path / "report"), "--in-process", "--no-records-cache", "--max-pixels", "5000"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "96x72 = 6912 pixels exceeds the cap of 5000 pixels" in err[0], err
    assert ", key 'data-" in err[0] and "--max-pixels or OMNICODEC_MAX_PIXELS" in err[0]
    assert MAX_PIXELS_ENV not in os.environ  # the flag does not outlive the command
