"""`omnicodec eval --human`: the human rate-distortion report codes every image for real with the
learned codec and with the context codecs people use (JPEG, WebP, AVIF), and compares them by
BD-rate with intervals."""

from __future__ import annotations

import json

import pytest
import skimage.data
from PIL import Image

from omnicodec.cli import main


@pytest.mark.slow
def test_the_human_report_has_avif_beside_jpeg_and_webp(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(skimage.data.astronaut()[:128, :192]).save(folder / "astronaut.png")
    Image.fromarray(skimage.data.coffee()[100:228, 200:392]).save(folder / "coffee.png")
    out = tmp_path / "rd"
    assert main(["eval", "--human", "--data", str(folder), "--codec", "mbt2018-mean-photo:2,4", "--jpeg", "20,60",
                 "--webp", "20,60", "--avif", "20,60", "--out", str(out)]) == 0
    report = json.loads((out / "rd.json").read_text())
    avif = report["curves"]["AVIF"]
    assert [p["system"] for p in avif] == ["AVIF Q20", "AVIF Q60"] and avif[0]["bpp"] < avif[1]["bpp"]
    assert avif[0]["psnr"] < avif[1]["psnr"] and all(p["bpp"] > 0 for p in avif)
    assert {(b["test"], b["anchor"]) for b in report["bd_rate"]} >= {("mbt2018-mean-photo", "AVIF"),
                                                                      ("JPEG", "AVIF"), ("WebP", "AVIF")}
    assert "AVIF" in (out / "rd.md").read_text()


def test_avif_is_a_baseline_kind_of_the_task_evaluation():
    from omnicodec.eval.systems import SYSTEMS, system_from_recipe

    assert "avif" in SYSTEMS.names()
    system = system_from_recipe({"kind": "avif", "quality": 40})
    assert system.name == "AVIF" and system.label == "Q40"


def test_a_baseline_quality_that_is_not_a_number_is_one_line(tmp_path):
    from omnicodec.errors import OmnicodecError
    from omnicodec.eval.evaluate import build_systems

    with pytest.raises(OmnicodecError, match=r"--baseline avif:best: expected avif:Q1,Q2,\.\.\. \(integer qualities\)"):
        build_systems([("ours", "zoo:adaptors-demo")], ["avif:best"], str(tmp_path))
