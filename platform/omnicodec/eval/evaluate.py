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
        for s in samples:
            pred = scorer.predict(s.image[None])
            refs[t].append(pred if scorer.info.kind != "det" else None)
            scorer.update(s.image[None], s, refs[t][-1])
        clean[t] = scorer.result()
    return refs, clean


def score_system(system: System, samples: list[Sample], tasks: list[str], refs: dict[str, list],
                 progress: bool = True) -> dict[str, Any]:
    scorers = {t: TaskScorer(t) for t in tasks}
    bpp, est, p, ms = [], [], [], []
    t0 = time.perf_counter()
    for i, s in enumerate(tqdm(samples, desc=f"{system.name} {system.label}", disable=None if progress else True, leave=False)):
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
    return {
        "system": system.name, "label": system.label, "images": len(samples),
        "bpp": float(np.mean(bpp)), "bpp_estimate": float(np.mean(est)) if est else None,
        "psnr": float(np.mean(p)) if p else None, "ms_ssim": float(np.mean(ms)) if ms else None,
        "tasks": results, "primary": {t: results[t][scorers[t].primary] for t in tasks},
        "seconds": round(time.perf_counter() - t0, 2),
    }


def summarize(points: list[dict[str, Any]], tasks: list[str], test_system: str = "all-in-one") -> dict[str, Any]:
    """BD-rate per task (and for human PSNR) of ``test_system`` against each baseline,
    and Delta_m of each test point against each baseline at the same bpp."""
    curves: dict[str, dict[str, list]] = {}
    for pt in points:
        c = curves.setdefault(pt["system"], {t: [] for t in [*tasks, "psnr"]})
        for t in tasks:
            c[t].append({"bpp": pt["bpp"], "value": pt["primary"][t]})
        c["psnr"].append({"bpp": pt["bpp"], "value": pt["psnr"]})
    out: dict[str, Any] = {"bd_rate": {}, "delta_m": {}, "at_equal_rate": []}
    if test_system not in curves:
        return out
    for base in curves:
        if base == test_system:
            continue
        out["bd_rate"][base] = {t: bd_rate(curves[base][t], curves[test_system][t]) for t in [*tasks, "psnr"]}
    for pt in (q for q in points if q["system"] == test_system):
        row = {"label": pt["label"], "bpp": pt["bpp"], "ours": pt["primary"], "baselines": {}, "delta_m": {}}
        for base in curves:
            if base == test_system:
                continue
            at = {t: value_at_rate(curves[base][t], pt["bpp"]) for t in tasks}
            row["baselines"][base] = at
            row["delta_m"][base] = delta_m(pt["primary"], at)
        out["at_equal_rate"].append(row)
    for base in curves:
        if base != test_system:
            vals = [r["delta_m"][base] for r in out["at_equal_rate"] if r["delta_m"][base] is not None]
            out["delta_m"][base] = float(np.mean(vals)) if vals else None
    return out


def run_evaluation(systems: list[System], data: str | list[str], tasks: list[str], out_dir: str | None,
                   limit: int | None = None, progress: bool = True, meta: dict | None = None) -> dict[str, Any]:
    samples = list(iter_samples(data))[: limit or None]
    if not samples:
        raise OmnicodecError(f"{data}: no test samples")
    t0 = time.perf_counter()
    refs, clean = reference_predictions(samples, tasks)
    points = [score_system(s, samples, tasks, refs, progress) for s in systems]
    report = {"data": data if isinstance(data, str) else list(data), "images": len(samples), "tasks": tasks,
              "clean": clean, "points": points, "summary": summarize(points, tasks),
              "latent_decodes_per_image": {s.label: s.latent_decodes / len(samples) for s in systems if isinstance(s, AllInOne)},
              "seconds": round(time.perf_counter() - t0, 1), **(meta or {})}
    if out_dir is not None:
        from omnicodec.eval.report import write_report

        report["files"] = write_report(report, out_dir)
    return report


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


def evaluate_command(a: argparse.Namespace) -> None:
    from omnicodec.eval.report import print_summary

    ckpts = [(name, _resolve(name, a.storage)) for name in (a.run or [])] + [(c, c) for c in (a.adaptors or [])]
    systems, tasks = build_systems(ckpts, a.baseline, a.storage)
    for s in systems:
        if isinstance(s, AllInOne) and "lmbda" in getattr(s.model, "metadata", {}):
            s.label = f"{s.label} (lambda={s.model.metadata['lmbda']:g})"
    report = run_evaluation(systems, a.data, tasks, a.out, a.limit)
    print_summary(report)
