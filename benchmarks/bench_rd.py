"""Human rate-distortion of the bundled codecs against JPEG and WebP, on held-out photos.

Two evaluation sets, both cut from the held-out photos that no training set contains
(``omnicodec.data.corpus``): the 12 held-out photos whole at 768 px, and the 24-image
768x512 Kodak-like set. Every codec (each bundled family at all its qualities), JPEG and
WebP (Pillow, 6 qualities each) codes every image in the same run; bpp counts real bytes.
Prints, per set, the BD-rate table (PSNR and MS-SSIM) with 95 % paired-bootstrap
intervals, and writes the full report (points, timings, plots) under
``benchmarks/results/rd-<set>/``.

Goal (issue 8): the newest bundled codec at BD-rate (PSNR) <= -20 % vs JPEG and <= 0 % vs
WebP, MS-SSIM BD-rate <= -20 % vs JPEG, PSNR strictly rising with quality. Issue 28: the
frozen ladder's rate span and PSNR per quality, also on 192 px test scenes of a seed no
training or selection used (``--scenes-seed``), with AVIF in the same run.
Run: .venv/bin/python benchmarks/bench_rd.py [--limit N] [--codec ARCH:Q1,Q2 ...] [--scenes-seed S]
"""

from __future__ import annotations

import argparse
import os

from common import machine, print_table
from omnicodec.eval.rd import DEFAULT_JPEG, DEFAULT_WEBP, default_codecs, run_rd
from omnicodec.jobs.default_data import default_heldout_photos, default_kodaklike

HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, help="images per set")
    ap.add_argument("--codec", action="append", help="ARCH:Q1,Q2 (default: every bundled codec)")
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--scenes-seed", type=int, default=None,
                    help="also code 200 fresh 192 px test scenes of this seed (never 7919: levers were chosen on it)")
    ap.add_argument("--sets", default="heldout-photos,kodaklike",
                    help="which of heldout-photos, kodaklike to code (the fresh scenes come with --scenes-seed)")
    ap.add_argument("--tag", default="", help="write the reports to results/rd-<set>-<tag> (keep the committed ones)")
    a = ap.parse_args()
    print(f"machine: {machine()}")
    codecs = a.codec or default_codecs()
    sets = [(n, f()) for n, f in (("heldout-photos", default_heldout_photos), ("kodaklike", default_kodaklike))
            if n in a.sets.split(",")]
    if a.scenes_seed is not None:
        sets.append((f"scenes-s{a.scenes_seed}", _fresh_scenes(a.scenes_seed)))
    for name, data in sets:
        out = os.path.join(HERE, "results", f"rd-{name}" + (f"-{a.tag}" if a.tag else ""))
        s = run_rd(data, out, codecs, jpeg=DEFAULT_JPEG, webp=DEFAULT_WEBP, limit=a.limit, resamples=a.resamples,
                   title=f"Human rate-distortion: {name}")
        rows = []
        for e in s["bd_rate"]:
            if e["test"] not in ("JPEG", "WebP") or (e["test"], e["anchor"]) == ("WebP", "JPEG"):
                rows.append([e["test"], e["anchor"], _fmt(e["psnr"]), _fmt(e["ms_ssim_db"])])
        print_table(f"BD-rate on {name} ({s['images']} images; 95 % paired-bootstrap intervals; negative = fewer bytes)",
                    ["codec", "anchor", "BD-rate PSNR", "BD-rate MS-SSIM"], rows)
        for fam, pts in s["curves"].items():
            if fam in ("JPEG", "WebP"):
                continue
            pts = sorted(pts, key=lambda p: p["system"])  # by quality
            psnrs = [p["psnr"] for p in pts]
            rising = all(b > a for a, b in zip(psnrs, psnrs[1:]))
            bpps = ", ".join(f"{p['bpp']:.3f}" for p in pts)
            print(f"{fam}: bpp {bpps}; PSNR {', '.join(f'{v:.2f}' for v in psnrs)} "
                  f"({'strictly rising' if rising else 'NOT rising'} with quality)")
        print(f"report: {out}/rd.md")


def _fresh_scenes(seed: int) -> str:
    """200 test scenes (192 px) of ``seed``, built once under $OMNICODEC_HOME/data."""
    from omnicodec import home
    from omnicodec.data.scenes import build_scenes

    if seed == 7919:
        raise SystemExit("scene seed 7919 chose levers: final figures come from a seed never evaluated on")
    out = os.path.join(home(), "data", f"scenes-rd-s{seed}")
    if not os.path.exists(os.path.join(out, "test-000000.tar")):
        build_scenes(out, train=0, test=200, size=192, seed=seed)
    shards = sorted(f for f in os.listdir(out) if f.startswith("test-") and f.endswith(".tar"))
    return os.path.join(out, f"test-{{000000..{len(shards) - 1:06d}}}.tar")


def _fmt(d: dict) -> str:
    if d["value"] is None:
        return "n/a"
    if d["low"] is None:
        return f"{d['value']:+.1f} %"
    return f"{d['value']:+.1f} % [{d['low']:+.1f}, {d['high']:+.1f}]"


if __name__ == "__main__":
    main()
