"""Portable streams, measured (issue 26): the large decode matrix, the rate cost and the time cost.

1. Matrix: >= 1000 crops of real photos (held-out photos, random crops 128-320 px) and real
   scenes (192 px, seed 2027: never trained, evaluated or selected on) coded by the frozen
   photo codec (portable, and CompressAI's float coding for contrast) and by the bundled
   all-in-one adaptors (portable; human + cls/seg/det views), then decoded in fresh
   processes under every float setting of ``omnicodec.eval.portability.SETTINGS``.
2. Rate cost: BD-rate (PSNR and MS-SSIM) of the portable coding against CompressAI's float
   coding, q2-q6 of the bundled photo codec, on the held-out photos (whole, 768 px) and on
   200 of the scenes; encode and decode time ratios from the same run.

    .venv/bin/python benchmarks/bench_portable.py [--crops 400 --scenes 600] [--out DIR]

Writes ``benchmarks/results/portable-streams/report.json`` and ``report.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

from omnicodec.data import sources
from omnicodec.eval import portability
from omnicodec.eval.rd import RDSystem, iter_images, measure, summarize
from omnicodec.images import to_tensor
from omnicodec.model import HUMAN

HERE = os.path.dirname(os.path.abspath(__file__))
SCENE_SEED = 2027
QUALITIES = (2, 3, 4, 5, 6)


def photo_crops(count: int, seed: int = 0) -> list[tuple[str, torch.Tensor]]:
    """Random crops (128-320 px a side) of the held-out photos, never in any training set."""
    rng = np.random.default_rng(seed)
    photos = [p.load().convert("RGB") for p in sources.photos(sources.pick_source(None), "test")]
    out = []
    for i in range(count):
        img = photos[i % len(photos)]
        w, h = (int(v) for v in rng.integers(128, 321, size=2))
        w, h = min(w, img.size[0]), min(h, img.size[1])
        x0, y0 = int(rng.integers(0, img.size[0] - w + 1)), int(rng.integers(0, img.size[1] - h + 1))
        out.append((f"crop-{i:04d}", to_tensor(img.crop((x0, y0, x0 + w, y0 + h)))[0]))
    return out


def scenes(folder: str, count: int) -> list[tuple[str, torch.Tensor]]:
    from omnicodec.data.scenes import build_scenes

    if not os.path.exists(os.path.join(folder, "dataset.json")):
        build_scenes(folder, train=0, test=count, seed=SCENE_SEED, progress=False)
    return list(iter_images(os.path.join(folder, "test-*.tar"), limit=count))


def run_matrix(images, out: str) -> dict:
    systems = [
        {"name": "frozen-q3", "codec": "mbt2018-mean-photo:3", "coding": "portable", "views": [HUMAN]},
        {"name": "adaptors-q2", "adaptors": "zoo:adaptors-photo-q2", "coding": "portable",
         "views": [HUMAN, "cls", "seg", "det"]},
        {"name": "frozen-q3-compressai", "codec": "mbt2018-mean-photo:3", "coding": "compressai", "views": [HUMAN]},
    ]
    t0 = time.perf_counter()
    portability.encode_reference(images, systems, os.path.join(out, "reference"), keep_views=64)
    print(f"encoded {len(images)} images x {len(systems)} systems in {time.perf_counter() - t0:.0f} s", flush=True)
    settings = {}
    for name in portability.SETTINGS:
        t0 = time.perf_counter()
        settings[name] = portability.run_setting(os.path.join(out, "reference"), name, timeout=3600)
        print(f"{name}: {time.perf_counter() - t0:.0f} s {json.dumps(settings[name]['systems'])}", flush=True)
    return {"images": len(images), "systems": systems, "settings": settings}


def coding_system(quality: int, coding: str) -> RDSystem:
    from omnicodec.codec import load_codec
    from omnicodec.model import OmniCodec

    model = OmniCodec(load_codec(f"mbt2018-mean-photo:{quality}"), with_adaptors=False)
    model.coding = coding

    @torch.no_grad()
    def code(x: torch.Tensor):
        t0 = time.perf_counter()
        data = model.encode(x[None]).to_bytes()
        t1 = time.perf_counter()
        x_hat = model.decode(data, human=True)[HUMAN][0]
        return len(data), x_hat, t1 - t0, time.perf_counter() - t1
    return RDSystem(coding, f"q{quality}", code)


def rate_cost(images) -> dict:
    systems = [coding_system(q, c) for c in ("compressai", "portable") for q in QUALITIES]
    rows = measure(images, systems, progress=False)
    summary = summarize(rows, anchors=("compressai",))
    summary.update(time_ratio(images))
    summary.pop("keys")
    return summary


def time_ratio(images, quality: int = 3, repeats: int = 3) -> dict:
    """Encode and decode seconds of both codings, alternating per image and keeping each
    image's fastest of ``repeats`` runs, so that other load on the machine cancels out."""
    systems = {c: coding_system(quality, c) for c in ("compressai", "portable")}
    total = {f"{c}_{k}": 0.0 for c in systems for k in ("encode_s", "decode_s")}
    for _, x in images:
        for c, system in systems.items():
            runs = [system.code(x) for _ in range(repeats)]
            total[f"{c}_encode_s"] += min(r[2] for r in runs)
            total[f"{c}_decode_s"] += min(r[3] for r in runs)
    return {**total, "time_quality": quality,
            "encode_s_ratio": total["portable_encode_s"] / total["compressai_encode_s"],
            "decode_s_ratio": total["portable_decode_s"] / total["compressai_decode_s"]}


def markdown(report: dict) -> str:
    lines = ["# Portable streams: decode matrix, rate and time cost", "",
             f"{report['matrix']['images']} images (photo crops and scenes) x {len(portability.SETTINGS)} decoder "
             "settings; counts summed over the settings.", "",
             "| system | coding | decodes | mismatched indexes | streams with any | refused | broken decodes "
             "| broken without the check | y_hat bit-exact | max view error |", "|---|---|---|---|---|---|---|---|---|---|"]
    for s in report["matrix"]["systems"]:
        tot = {k: sum(v["systems"][s["name"]][k] for v in report["matrix"]["settings"].values())
               for k in ("streams", "mismatched_indexes", "indexes", "mismatched_streams", "refused",
                         "broken_decodes", "broken_unchecked", "y_hat_exact")}
        err = max(v["systems"][s["name"]]["max_view_error"] for v in report["matrix"]["settings"].values())
        lines.append(f"| {s['name']} | {s['coding']} | {tot['streams']} | {tot['mismatched_indexes']} of "
                     f"{tot['indexes']} | {tot['mismatched_streams']} | {tot['refused']} | {tot['broken_decodes']} | "
                     f"{tot['broken_unchecked']} | {tot['y_hat_exact']} | {err:.1e} |")
    lines += ["", "| data | BD-rate PSNR, portable vs CompressAI float | BD-rate MS-SSIM | encode time ratio "
              "| decode time ratio |", "|---|---|---|---|---|"]
    for name, summary in report["rate_cost"].items():
        bd = summary["bd_rate"][0]
        cells = [f"{bd[m]['value']:+.3f} % [{bd[m]['low']:+.3f}, {bd[m]['high']:+.3f}]" for m in ("psnr", "ms_ssim_db")]
        lines.append(f"| {name} ({summary['images']} images) | {cells[0]} | {cells[1]} | "
                     f"{summary['encode_s_ratio']:.2f}x | {summary['decode_s_ratio']:.2f}x |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--crops", type=int, default=400)
    p.add_argument("--scenes", type=int, default=600)
    p.add_argument("--rd-scenes", type=int, default=200)
    p.add_argument("--rd-photos", type=int, default=None, help="held-out photos in the rate cost (default: all)")
    p.add_argument("--work", default=os.path.expanduser("~/.cache/omnicodec/bench-portable"))
    p.add_argument("--out", default=os.path.join(HERE, "results", "portable-streams"))
    a = p.parse_args()
    torch.set_num_threads(2)
    scene_images = scenes(os.path.join(a.work, f"scenes-s{SCENE_SEED}-{a.scenes}"), a.scenes)
    images = photo_crops(a.crops) + scene_images
    report = {"matrix": run_matrix(images, a.work)}
    from omnicodec.data.photos import build_heldout_photos

    heldout = os.path.join(a.work, "heldout")
    if not os.path.exists(os.path.join(heldout, "dataset.json")):
        build_heldout_photos(heldout)
    report["rate_cost"] = {"held-out photos": rate_cost(list(iter_images(os.path.join(heldout, "heldout-*.tar"),
                                                                                 limit=a.rd_photos))),
                           "scenes": rate_cost(scene_images[: a.rd_scenes])}
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "report.json"), "w") as f:
        json.dump(report, f, indent=1)
    text = markdown(report)
    with open(os.path.join(a.out, "report.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
