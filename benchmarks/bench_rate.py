"""ONE rate-conditioned adaptor set against the frozen ladder and against 19 fixed-rate sets.

Issue 28's acceptance, measured on scenes of a seed no training or selection used:

1. ``omnicodec eval`` of the rate-conditioned set (one curve: a point per trained level of
   the variable-rate photo codec) against that codec frozen at its 8 levels, on 1000 fresh
   192 px scenes: per task BD-rate with its interval and overlap, BD-metric beside it
   (goal: BD-rate <= -30 %, upper bound < 0, overlap >= 50 %, on cls, seg and det).
2. The same set against the union of the 19 separately trained all-in-one sets of the fixed
   photo codec (every bundled all-in-one set of ``mbt2018-mean-photo``, one named curve),
   with both frozen ladders, on the first ``--fixed-shards`` shards of the same scenes
   (goal: BD-rate of the one set against the 19 <= +5 %), and what each side cost:
   training samples (steps x batch x workers), training wall time where recorded, and
   bytes on disk (adaptor weights, and the codec weights each side needs).

The rate set's records are computed once and reused by step 2 (the records cache keys them
by weights and shard bytes). ``--bundle`` copies the set into the zoo as
``adaptors-photo-vr-rate`` with a card (training config and data hashes, the evaluation
command, one measured point per rate level with 95 % intervals).

Run: .venv/bin/python benchmarks/bench_rate.py --adaptors RUN_OR_CKPT [--seed S] [--bundle]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import time

from common import machine
from omnicodec import zoo

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
HOME = os.path.expanduser(os.environ.get("OMNICODEC_HOME", "~/.cache/omnicodec"))
CLI = os.path.join(os.path.dirname(sys.executable), "omnicodec")
VR = "mbt2018-mean-photo-vr"
FIXED = "mbt2018-mean-photo"
ZOO_NAME = "adaptors-photo-vr-rate"
USED_SEEDS = (7919, 60613, 104729)  # 7919 chose levers; 60613 measured the variable-rate codec; 104729 chose
# between the det levers of the one set (271828 measured the 800-step set and chose nothing: reproducible here)


def _run(args: list[str]) -> None:
    print("$ omnicodec " + " ".join(args), flush=True)
    subprocess.run([CLI, *args], check=True, cwd=REPO)


def fresh_scenes(seed: int, count: int) -> str:
    """``count`` test scenes (192 px) of ``seed``, built once under $OMNICODEC_HOME/data."""
    if seed in USED_SEEDS:
        raise SystemExit(f"seed {seed} was already used to choose or measure something; pick another")
    folder = os.path.join(HOME, "data", f"scenes-fresh-s{seed}")
    shards = (count + 49) // 50
    if not os.path.exists(os.path.join(folder, f"test-{shards - 1:06d}.tar")):
        _run(["data", "scenes", "--out", folder, "--train", "0", "--test", str(count), "--seed", str(seed)])
    return folder


def shard_range(folder: str, shards: int) -> str:
    return os.path.join(folder, f"test-{{000000..{shards - 1:06d}}}.tar")


def fixed_sets() -> list[str]:
    """Every bundled all-in-one set of the fixed photo codec (the 19 of the union report):
    not the decoder-only ablation, not the +human curve."""
    return [c["name"] for c in fixed_cards()]


def fixed_cards() -> list[dict]:
    cards = [json.load(open(p)) for p in sorted(glob.glob(str(zoo.WEIGHTS_DIR / "adaptors-photo-q*" / "card.json")))]
    return [c for c in cards if c["codec"].startswith(f"{FIXED} q") and not c["name"].endswith("-decoder-only")
            and c.get("system") in ("all-in-one", "det distilled", None)]


def ladder(arch: str, levels: list[int] | None = None) -> str:
    """The frozen ladder: the variable-rate codec at ``levels``, the fixed one at every bundled quality."""
    qualities = levels if arch == VR else \
        sorted(c["quality"] for c in zoo.available() if c.get("kind") == "codec" and c.get("arch") == arch)
    return f"frozen:{arch}:{','.join(map(str, qualities))}"


def acceptance_args(adaptors: str, data: str, out: str, levels: list[int], resamples: int, jpeg: str) -> list[str]:
    return ["eval", "--adaptors", adaptors, "--rate-levels", ",".join(map(str, levels)), "--data", data,
            "--out", out, "--baseline", ladder(VR, levels), *(["--baseline", f"jpeg:{jpeg}"] if jpeg else []),
            "--resamples", str(resamples), "--pictures", "2"]


def against_fixed_args(adaptors: str, data: str, out: str, levels: list[int], resamples: int,
                       fixed_ladder: bool) -> list[str]:
    union = "adaptors:19 fixed-rate sets=" + ",".join(f"zoo:{n}" for n in fixed_sets())
    return ["eval", "--adaptors", adaptors, "--rate-levels", ",".join(map(str, levels)), "--data", data,
            "--out", out, "--baseline", union, "--baseline", ladder(VR, levels),
            *(["--baseline", ladder(FIXED)] if fixed_ladder else []), "--resamples", str(resamples), "--pictures", "0"]


def _dir_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs
               if f.endswith(".safetensors"))


def _samples_per_step(cfg: dict) -> int:
    return cfg["data"]["batch_size"] * cfg["run"]["num_workers"]


def cost(adaptors: str, wall_s: float | None) -> dict:
    """Training samples, wall time and bytes of the one set against the 19 (from their cards)."""
    from omnicodec.adaptors.checkpoint import resolve
    from omnicodec.jobs.adaptor_job import trained_samples
    from omnicodec.model import OmniCodec

    where = resolve(adaptors)
    model = OmniCodec.from_checkpoint(where)  # a continued set (init) counts its start's samples too
    cards = fixed_cards()
    samples = trained_samples(model.metadata)
    fixed_codecs = sorted({c["codec"].split(" q")[1] for c in cards})
    codec_bytes = {q: os.path.getsize(zoo.weights_file(zoo.artifact_name("codec", FIXED, int(q)))) for q in fixed_codecs}
    return {
        "one_set": {"adaptor_bytes": _dir_bytes(where), "codec_bytes": os.path.getsize(zoo.weights_file(
            zoo.artifact_name("codec", VR))), "samples": samples,
            "steps": samples // _samples_per_step(model.metadata["config"]), "wall_s": wall_s,
            "parameters": sum(p.numel() for p in model.adaptors.parameters())},
        "fixed_sets": {"count": len(cards), "adaptor_bytes": sum(_dir_bytes(str(zoo.WEIGHTS_DIR / c["name"]))
                                                                 for c in cards),
                       "codec_bytes": sum(codec_bytes.values()), "codec_qualities": fixed_codecs,
                       "samples": sum(trained_samples({"config": c["train_config"]}) for c in cards),
                       "steps": sum(c["train_config"]["optim"]["steps"] for c in cards),
                       "parameters": sum(c.get("parameters", 0) for c in cards)},
    }


def write_cost(out: str, c: dict) -> None:
    one, many = c["one_set"], c["fixed_sets"]
    rows = [("training samples (steps x batch x workers)", f"{one['samples']:,}", f"{many['samples']:,}"),
            ("training steps", f"{one['steps']:,}", f"{many['steps']:,} ({many['count']} runs)"),
            ("adaptor weights on disk", f"{one['adaptor_bytes'] / 1e6:.2f} MB", f"{many['adaptor_bytes'] / 1e6:.2f} MB"),
            ("codec weights they need", f"{one['codec_bytes'] / 1e6:.1f} MB (1 file)",
             f"{many['codec_bytes'] / 1e6:.1f} MB ({len(many['codec_qualities'])} files)"),
            ("adaptor parameters", f"{one['parameters']:,}", f"{many['parameters']:,}")]
    if one["wall_s"]:
        rows.append(("training wall time (one set, 2 CPU cores)", f"{one['wall_s'] / 60:.0f} min", "see cards"))
    md = ["| cost | one rate-conditioned set | 19 fixed-rate sets |", "|---|---|---|",
          *[f"| {a} | {b} | {d} |" for a, b, d in rows]]
    with open(os.path.join(out, "cost.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    with open(os.path.join(out, "cost.json"), "w") as f:
        json.dump(c, f, indent=2)
    print("\n".join(md))


def bundle(adaptors: str, report_json: str, eval_command: str, train_command: str, history: list[str]) -> None:
    """The set into the zoo as ``adaptors-photo-vr-rate`` with a card: one point per rate level."""
    import shutil

    from omnicodec.adaptors.checkpoint import resolve
    from omnicodec.data.shards import shard_hashes
    from omnicodec.model import OmniCodec

    where = resolve(adaptors)
    model = OmniCodec.from_checkpoint(where)
    report = json.load(open(report_json))
    points = [p for p in report["points"] if p["system"] == "all-in-one"]
    dest = zoo.WEIGHTS_DIR / ZOO_NAME
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(where, dest)
    cfg = model.metadata.get("config", {})
    card = {"name": ZOO_NAME, "kind": "adaptors", "codec": f"{model.codec.spec.arch} q{model.codec.spec.quality}",
            "tasks": model.tasks, "lmbda": model.metadata.get("lmbda"), "rate_levels": model.adaptors.config.rate_levels,
            "command": train_command, "history": history, "system": "all-in-one",
            "train_config": cfg, "train_data": {"shards_sha256": shard_hashes(cfg["data"]["shards"])},
            "evaluation": {"command": eval_command, "images": report["images"],
                           "provenance": report["provenance"], "bootstrap": report["bootstrap"]},
            "metrics": {**_at_position(points, model.codec.spec.quality - 1),
                        "per_level": [{"label": p["label"], **{k: p[k] for k in ("bpp", "psnr", "primary", "ci")}}
                                      for p in points]},
            "parameters": sum(p.numel() for p in model.parameters())}
    (dest / "card.json").write_text(json.dumps(card, indent=2, default=str) + "\n")
    print(f"bundled {ZOO_NAME}: {len(points)} rate levels, {points[0]['bpp']:.3f}-{points[-1]['bpp']:.3f} bpp")


def _at_position(points: list[dict], position: int) -> dict:
    """The card's headline point: the set at its codec's default level (``p=<position>``), or
    the evaluated level nearest to it."""
    point = min(points, key=lambda p: abs(float(p["label"].rsplit("p=", 1)[1]) - position))
    return {"position": float(point["label"].rsplit("p=", 1)[1]), **{k: point[k] for k in ("bpp", "psnr", "primary", "ci")}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--adaptors", required=True, help="the rate-conditioned set: run folder, checkpoint or zoo:NAME")
    ap.add_argument("--seed", type=int, default=271828, help=f"scene seed (refused: {USED_SEEDS}, used to choose)")
    ap.add_argument("--images", type=int, default=1000, help="fresh test scenes for the acceptance run")
    ap.add_argument("--fixed-shards", type=int, default=4,
                    help="shards (50 scenes each) for the comparison with the 19 fixed sets (default 4 = 200 scenes; "
                         "0: acceptance only)")
    ap.add_argument("--levels", default="1,3,5,7",
                    help="rate levels of the set and of the frozen ladder (default: every other one of the 8; "
                         "2 CPU cores code ~3.6 images/s of this codec with adaptors)")
    ap.add_argument("--jpeg", default="", help="JPEG qualities beside the acceptance run (default: none)")
    ap.add_argument("--fixed-ladder", action="store_true",
                    help="also the fixed-rate photo codec frozen at its bundled qualities, in the 19-set comparison")
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--train-wall-min", type=float, help="the set's training wall time, for the cost table")
    ap.add_argument("--train-command", default="", help="for the zoo card")
    ap.add_argument("--history", action="append", default=[], help="for the zoo card: one line per training leg")
    ap.add_argument("--skip-eval", action="store_true", help="reuse the reports in --out (with --bundle)")
    ap.add_argument("--bundle", action="store_true", help=f"copy the set into the zoo as {ZOO_NAME}")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    a = ap.parse_args()
    print(f"machine: {machine()}")
    t0 = time.perf_counter()
    folder = fresh_scenes(a.seed, a.images)
    acc_out = os.path.join(a.out, f"rate-conditioned-s{a.seed}")
    fixed_out = os.path.join(a.out, f"rate-vs-fixed-s{a.seed}")
    levels = [int(v) for v in a.levels.split(",")]
    acc_args = acceptance_args(a.adaptors, shard_range(folder, (a.images + 49) // 50), acc_out, levels, a.resamples,
                               a.jpeg)
    if not a.skip_eval:
        _run(acc_args)
        if a.fixed_shards:
            _run(against_fixed_args(a.adaptors, shard_range(folder, a.fixed_shards), fixed_out, levels, a.resamples,
                                    a.fixed_ladder))
    os.makedirs(fixed_out, exist_ok=True)
    write_cost(fixed_out, cost(a.adaptors, a.train_wall_min * 60 if a.train_wall_min else None))
    if a.bundle:
        bundle(a.adaptors, os.path.join(acc_out, "report.json"), " ".join(["omnicodec", *acc_args]),
               a.train_command, a.history)
    print(f"bench_rate: {(time.perf_counter() - t0) / 60:.1f} min; reports: {acc_out}/report.md, {fixed_out}/report.md")


if __name__ == "__main__":
    main()
