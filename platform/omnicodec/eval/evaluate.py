"""``omnicodec eval``: every system scored on the same test images, from real bytes.

For each operating point of each system, every image is encoded once and the bytes
counted (header included); each task's frozen network scores the image it receives;
humans get PSNR and MS-SSIM from the same bitstream. Task networks also score the
original images, giving the clean ceiling and the references for label-free agreement.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
from tqdm import tqdm

from omnicodec.data.loader import iter_samples
from omnicodec.data.samples import Sample
from omnicodec.errors import OmnicodecError
from omnicodec.eval.human import msssim
from omnicodec.eval.stats import DEFAULT_SEED, percentile_interval, resample_indices
from omnicodec.eval.summary import bd_rate, delta_m, value_at_rate
from omnicodec.eval.systems import AllInOne, FrozenCodec, Jpeg, PerTaskAdaptors, System
from omnicodec.eval.tasks import TaskScorer
from omnicodec.images import psnr
from omnicodec.model import HUMAN, OmniCodec

BASELINE_SYSTEMS = ("frozen codec", "per-task adaptors", "JPEG")
DEFAULT_JPEG = (5, 10, 20, 35, 50, 75)


def reference_predictions(samples: list[Sample], tasks: list[str]) -> tuple[dict[str, list], dict[str, dict]]:
    refs, clean = {}, {}
    for t in tasks:
        scorer = TaskScorer(t)
        refs[t] = []
        for s in samples:  # each task network runs once per clean image
            pred = scorer.predict(s.image[None])
            refs[t].append(pred)
            scorer.update(s.image[None], s, refs[t][-1], pred=pred)
        clean[t] = scorer.result()
    return refs, clean


DET_RESAMPLES = 200  # mAP re-accumulates per resample (pycocotools): fewer draws, same rows for every system


def _interval(draws: np.ndarray) -> list[float] | None:
    ci = percentile_interval(draws)
    return list(ci) if ci else None


def score_system(system: System, samples: list[Sample], tasks: list[str], refs: dict[str, list],
                 bar: tqdm | None = None, idx: np.ndarray | None = None,
                 det_resamples: int = DET_RESAMPLES) -> dict[str, Any]:
    scorers = {t: TaskScorer(t) for t in tasks}
    bpp, est, p, ms = [], [], [], []
    t0 = time.perf_counter()
    if bar is not None:
        bar.set_description(f"{system.name} {system.label}")
    for i, s in enumerate(samples):
        if bar is not None:
            bar.update(1)
        out = system.run(s, tasks)
        h, w = s.image.shape[-2:]
        bpp.append(8 * out.bytes / (h * w))
        if out.bpp_estimate is not None:
            est.append(out.bpp_estimate)
        if HUMAN in out.views:
            p.append(psnr(out.views[HUMAN], s.image[None]))
            ms.append(msssim(out.views[HUMAN], s.image[None]))
        for t in tasks:
            scorers[t].update(out.views[t], s, refs[t][i])
    results = {t: sc.result() for t, sc in scorers.items()}
    point = {
        "system": system.name, "label": system.label, "images": len(samples),
        "bpp": float(np.mean(bpp)), "bpp_estimate": float(np.mean(est)) if est else None,
        "psnr": float(np.mean(p)) if p else None, "ms_ssim": float(np.mean(ms)) if ms else None,
        "tasks": results, "primary": {t: results[t][scorers[t].primary] for t in tasks},
    }
    if idx is not None:  # paired bootstrap: the same image resamples for every system
        draws = {"bpp": np.asarray(bpp)[idx].mean(1)}
        if p:
            draws["psnr"] = np.asarray(p)[idx].mean(1)
        for t in tasks:
            rows = idx[:det_resamples] if scorers[t].kind.bootstrap_cost > 1 else idx
            draws[t] = scorers[t].bootstrap(scorers[t].primary, rows)
        point["ci"] = {k: _interval(v) for k, v in draws.items()}
        point["_draws"] = draws
    point["seconds"] = round(time.perf_counter() - t0, 2)
    return point


def _score_all(systems: list[System], samples: list[Sample], tasks: list[str], refs: dict[str, list],
               progress: bool, resamples: int = 1000, seed: int = DEFAULT_SEED,
               det_resamples: int = DET_RESAMPLES) -> list[dict[str, Any]]:
    """One progress bar over every (system, image); a line per system with its time; and
    how to narrow the baselines when there are many."""
    import sys

    tty = sys.stderr.isatty()
    bar = tqdm(total=len(systems) * len(samples), unit="img", disable=not progress, mininterval=0.2 if tty else 10)
    points = []
    idx = resample_indices(len(samples), resamples, seed) if resamples else None
    for s in systems:
        points.append(score_system(s, samples, tasks, refs, bar, idx, det_resamples))
        if progress:
            bar.write(f"  {s.name} {s.label}: {len(samples)} images in {points[-1]['seconds']:.1f} s")
    bar.close()
    if progress and len(systems) > 6:
        print(f"  ({len(systems)} systems; narrow the baselines with e.g. --baseline frozen:ARCH:2,4 "
              "--baseline jpeg:10,50)", file=sys.stderr)
    return points


def _curve_points(points: list[dict[str, Any]], metric: str, row: int | None = None) -> list[dict[str, float]]:
    """A system's (bpp, metric) points; with ``row``, the values of bootstrap resample ``row``."""
    out = []
    for p in points:
        if row is None:
            out.append({"bpp": p["bpp"], "value": p["psnr"] if metric == "psnr" else p["primary"][metric]})
        elif metric in p.get("_draws", {}) and row < len(p["_draws"][metric]):
            out.append({"bpp": float(p["_draws"]["bpp"][row]), "value": float(p["_draws"][metric][row])})
    return out


def _resampled(points: list[dict[str, Any]], metric: str) -> int:
    return min((len(p["_draws"][metric]) for p in points if metric in p.get("_draws", {})), default=0)


def _higher_is_better(metric: str) -> bool:
    from omnicodec.tasks.registry import get_task

    return True if metric == "psnr" else get_task(metric).higher_is_better


def _bd_with_interval(base: list[dict[str, Any]], test: list[dict[str, Any]], metric: str) -> dict[str, Any]:
    up = _higher_is_better(metric)
    out = bd_rate(_curve_points(base, metric), _curve_points(test, metric), higher_is_better=up)
    rows = min(_resampled(base, metric), _resampled(test, metric))
    if out.get("bd_rate") is None or rows == 0:
        return out
    draws = [bd_rate(_curve_points(base, metric, r), _curve_points(test, metric, r), higher_is_better=up)["bd_rate"]
             for r in range(rows)]
    ok = np.array([d for d in draws if d is not None], float)
    if ok.size >= 0.5 * rows:
        out["ci"] = _interval(ok)
        out["resamples"] = int(ok.size)
    return out


def summarize(points: list[dict[str, Any]], tasks: list[str], test_system: str = "all-in-one") -> dict[str, Any]:
    """BD-rate per task (and for human PSNR) of ``test_system`` against each baseline, and
    Delta_m of each test point against each baseline at the same bpp, each with its paired
    bootstrap interval when the points carry resamples."""
    systems: dict[str, list[dict[str, Any]]] = {}
    for pt in points:
        systems.setdefault(pt["system"], []).append(pt)
    out: dict[str, Any] = {"bd_rate": {}, "delta_m": {}, "at_equal_rate": []}
    if test_system not in systems:
        return out
    ours = systems[test_system]
    for base, pts in systems.items():
        if base != test_system:
            out["bd_rate"][base] = {t: _bd_with_interval(pts, ours, t) for t in [*tasks, "psnr"]}
    for pt in ours:
        row = {"label": pt["label"], "bpp": pt["bpp"], "ours": pt["primary"], "baselines": {}, "delta_m": {},
               "delta_m_ci": {}}
        for base, pts in systems.items():
            if base == test_system:
                continue
            at = {t: value_at_rate(_curve_points(pts, t), pt["bpp"], _higher_is_better(t)) for t in tasks}
            row["baselines"][base] = at
            row["delta_m"][base] = delta_m(pt["primary"], at, {t: _higher_is_better(t) for t in tasks})
            row["delta_m_ci"][base] = _delta_m_interval(pt, pts, tasks)
        out["at_equal_rate"].append(row)
    for base in systems:
        if base != test_system:
            vals = [r["delta_m"][base] for r in out["at_equal_rate"] if r["delta_m"][base] is not None]
            out["delta_m"][base] = float(np.mean(vals)) if vals else None
    return out


def _delta_m_interval(pt: dict[str, Any], base: list[dict[str, Any]], tasks: list[str]) -> list[float] | None:
    rows = min([_resampled([pt], t) for t in tasks] + [_resampled(base, t) for t in tasks])
    draws = []
    for r in range(rows):
        bpp = float(pt["_draws"]["bpp"][r])
        at = {t: value_at_rate(_curve_points(base, t, r), bpp, _higher_is_better(t)) for t in tasks}
        d = delta_m({t: float(pt["_draws"][t][r]) for t in tasks}, at, {t: _higher_is_better(t) for t in tasks})
        if d is not None:
            draws.append(d)
    return _interval(np.array(draws)) if rows and len(draws) >= 0.5 * rows else None


def run_evaluation(systems: list[System], data: str | list[str], tasks: list[str], out_dir: str | None,
                   limit: int | None = None, progress: bool = True, meta: dict | None = None,
                   resamples: int = 1000, seed: int = DEFAULT_SEED,
                   det_resamples: int = DET_RESAMPLES) -> dict[str, Any]:
    samples = list(iter_samples(data))[: limit or None]
    if not samples:
        raise OmnicodecError(f"{data}: no test samples")
    t0 = time.perf_counter()
    refs, clean = reference_predictions(samples, tasks)
    det_resamples = min(resamples, det_resamples)
    points = _score_all(systems, samples, tasks, refs, progress, resamples, seed, det_resamples)
    summary = summarize(points, tasks)
    for p in points:
        p.pop("_draws", None)
    report = {"data": data if isinstance(data, str) else list(data), "images": len(samples), "tasks": tasks,
              "bootstrap": {"resamples": resamples, "det_resamples": det_resamples, "seed": seed,
                            "method": "paired percentile bootstrap over images (same resamples for every system)"},
              "clean": clean, "points": points, "summary": summary,
              "latent_decodes_per_image": {s.label: s.latent_decodes / len(samples) for s in systems if isinstance(s, AllInOne)},
              "provenance": data_provenance(data),
              "seconds": round(time.perf_counter() - t0, 1), **(meta or {})}
    if out_dir is not None:
        from omnicodec.eval.report import write_report

        report["files"] = write_report(report, out_dir)
    return report


def data_provenance(data: str | list[str]) -> dict[str, Any]:
    """What a reader needs to rebuild or verify the test set: each shard's sha256 and the
    dataset card's seed, size and source (a seed never used for training: say so there)."""
    from omnicodec.data.shards import read_card, shard_hashes

    first = data if isinstance(data, str) else data[0]
    card = read_card(first) or {}
    return {"shards_sha256": shard_hashes(data),
            "dataset": {k: card.get(k) for k in ("kind", "seed", "size", "source", "counts") if k in card}}


# ---------------------------------------------------------------------------- CLI
def build_systems(adaptor_ckpts: list[tuple[str, str]], baselines: list[str] | None, storage_root: str,
                  jpeg: tuple[int, ...] = DEFAULT_JPEG) -> tuple[list[System], list[str]]:
    """``adaptor_ckpts``: (label, checkpoint). Baseline specs: ``frozen:ARCH:Q1,Q2``,
    ``jpeg:Q1,Q2``, ``single:TASK=RUN_OR_CKPT,...[@LABEL]``. Default baselines: the
    frozen codec at every bundled quality of the adaptors' architecture, and JPEG."""
    from omnicodec import zoo
    from omnicodec.codec import CodecSpec, load_codec

    systems: list[System] = []
    tasks: list[str] | None = None
    arch = None
    for label, ckpt in adaptor_ckpts:
        model = OmniCodec.from_checkpoint(ckpt)
        tasks = tasks or model.tasks
        if model.tasks != tasks:
            raise OmnicodecError(f"{ckpt}: tasks {model.tasks} differ from {tasks}")
        arch = arch or model.codec.spec.arch
        systems.append(AllInOne(model, label))
    if tasks is None:
        raise OmnicodecError("give at least one --run or --adaptors")
    if baselines is None:
        qualities = sorted(c["quality"] for c in zoo.available() if c.get("kind") == "codec" and c.get("arch") == arch)
        baselines = ([f"frozen:{arch}:{','.join(map(str, qualities))}"] if qualities else []) + \
                    [f"jpeg:{','.join(map(str, jpeg))}"]
    for spec in baselines:
        kind, _, rest = spec.partition(":")
        if kind == "frozen":
            a, _, qs = rest.rpartition(":")
            for q in qs.split(","):
                codec = load_codec(CodecSpec(arch=a, quality=int(q)))
                systems.append(FrozenCodec(OmniCodec(codec, with_adaptors=False), f"q{q}"))
        elif kind == "jpeg":
            systems.extend(Jpeg(int(q)) for q in rest.split(","))
        elif kind == "single":
            body, _, label = rest.partition("@")
            models = {}
            for item in body.split(","):
                task, _, where = item.partition("=")
                models[task] = OmniCodec.from_checkpoint(_resolve(where, storage_root))
            missing = set(tasks) - set(models)
            if missing:
                raise OmnicodecError(f"--baseline {spec}: no per-task adaptors for {sorted(missing)}")
            systems.append(PerTaskAdaptors(models, label or body))
        else:
            raise OmnicodecError(f"--baseline {spec}: expected frozen:ARCH:Q,..., jpeg:Q,... or single:TASK=RUN,...")
    return systems, tasks


def _resolve(where: str, storage_root: str) -> str:
    """A run name (under the storage root), a run, checkpoint or adaptors folder, or zoo:NAME."""
    from omnicodec.adaptors.checkpoint import resolve

    return resolve(where, storage_root)


def short_label(location: str) -> str:
    """A readable name for an adaptor location: ``zoo:NAME`` -> NAME; a path -> its run
    folder's name (skipping ``adaptors`` and ``checkpoint_*``), never a 70-character path."""
    if location.startswith("zoo:"):
        return location[4:]
    parts = [q for q in location.rstrip("/").replace("\\", "/").split("/") if q]
    for q in reversed(parts):
        if q != "adaptors" and not q.startswith("checkpoint_"):
            return q
    return location


def evaluate_command(a: argparse.Namespace) -> None:
    from omnicodec.eval.report import print_summary

    ckpts = [(name, _resolve(name, a.storage)) for name in (a.run or [])] + \
            [(short_label(c), _resolve(c, a.storage)) for c in (a.adaptors or [])]
    systems, tasks = build_systems(ckpts, a.baseline, a.storage)
    for s in systems:
        if isinstance(s, AllInOne):
            meta = getattr(s.model, "metadata", {})
            lam = f" λ={meta['lmbda']:g}" if "lmbda" in meta else ""
            s.label = f"{s.label} q{s.model.codec.spec.quality}{lam}"
    report = run_evaluation(systems, a.data, tasks, a.out, a.limit, resamples=a.resamples)
    print_summary(report)
