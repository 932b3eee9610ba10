"""``omnicodec eval``: every system scored on the same test images, from real bytes.

For each operating point of each system, every image is encoded once and the bytes
counted (header included); each task's frozen network scores the image it receives;
humans get PSNR and MS-SSIM from the same bitstream. Task networks also score the
original images, giving the clean ceiling and the references for label-free agreement.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from tqdm import tqdm

from omnicodec.data.samples import Sample
from omnicodec.data.shards import read_card
from omnicodec.errors import OmnicodecError
from omnicodec.eval.predict import Chunk, Predictor, load_test_set, predict_in_process, widen
from omnicodec.eval.stats import DEFAULT_SEED, percentile_interval, resample_indices
from omnicodec.eval.summary import bd_with_interval, delta_m, rate_at_value, value_at_rate
from omnicodec.eval.systems import AllInOne, Context, Original, System, build_baselines
from omnicodec.eval.systems.adaptors import adaptor_systems, frozen_levels, short_label
from omnicodec.eval.tasks import TaskScorer, note_uninformative, scoring_plan
from omnicodec.model import OmniCodec

DEFAULT_JPEG = (5, 10, 20, 35, 50, 75)


DET_RESAMPLES = 200  # mAP re-accumulates per resample (pycocotools): fewer draws, same rows for every system


def _interval(draws: np.ndarray) -> list[float] | None:
    ci = percentile_interval(draws)
    return list(ci) if ci else None


def score_records(system: System, records: list[dict[str, Any]], samples: list[Sample], tasks: list[str],
                  refs: dict[str, list], idx: np.ndarray | None = None,
                  det_resamples: int = DET_RESAMPLES, labelled: dict[str, bool] | None = None) -> dict[str, Any]:
    """One operating point from its per-image records: means, each task's metric, and (with
    ``idx``) the paired-bootstrap draws and 95 % intervals. ``labelled``: per task, False to
    score it label-free (``eval.tasks.scoring_plan``)."""
    scorers = {t: TaskScorer(t, labelled=(labelled or {}).get(t)) for t in tasks}
    for i, (s, rec) in enumerate(zip(samples, records)):
        for t in tasks:
            scorers[t].update(None, s, refs[t][i], pred=widen(rec["preds"][t]))
    bpp = np.array([r["bpp"] for r in records])
    est = [r["bpp_estimate"] for r in records if r.get("bpp_estimate") is not None]
    p = [r["psnr"] for r in records if "psnr" in r]
    ms = [r["ms_ssim"] for r in records if "ms_ssim" in r]
    results = {t: sc.result() for t, sc in scorers.items()}
    point = {
        "system": system.name, "label": system.label, "images": len(samples),
        "bpp": float(bpp.mean()), "bpp_estimate": float(np.mean(est)) if est else None,
        "psnr": float(np.mean(p)) if p else None, "ms_ssim": float(np.mean(ms)) if ms else None,
        "tasks": results, "primary": {t: results[t][scorers[t].primary] for t in tasks},
        "seconds": round(sum(r["seconds"] for r in records), 2),  # compute time, wherever it ran
        "latent_decodes": sum(r.get("latent_decodes", 0) for r in records),
    }
    if idx is not None:  # paired bootstrap: the same image resamples for every system
        draws = {"bpp": bpp[idx].mean(1)}
        if len(p) == len(records):
            draws["psnr"] = np.asarray(p)[idx].mean(1)
        for t in tasks:
            rows = idx[:det_resamples] if scorers[t].kind.bootstrap_cost > 1 else idx
            draws[t] = scorers[t].bootstrap(scorers[t].primary, rows)
        point["ci"] = {k: _interval(v) for k, v in draws.items()}
        point["_draws"] = draws
    return point


def _clean_scores(records: list[dict[str, Any]], samples: list[Sample], tasks: list[str],
                  labelled: dict[str, bool] | None = None) -> dict[str, dict]:
    """Each task network on the original images, scored against itself for label-free tasks."""
    out = {}
    for t in tasks:
        scorer = TaskScorer(t, labelled=(labelled or {}).get(t))
        for s, rec in zip(samples, records):
            scorer.update(None, s, widen(rec["preds"][t]), pred=widen(rec["preds"][t]))
        out[t] = scorer.result()
    return out


def _predict_all(systems: list[System], chunks: list[Chunk], samples: list[Sample], tasks: list[str],
                 predictor: Predictor, progress: bool) -> tuple[list[list[dict]], list[dict]]:
    """Records for the original images and for every system, behind ONE progress bar."""
    import sys

    tty = sys.stderr.isatty()
    everything = [Original(), *systems]
    bar = tqdm(total=len(everything) * len(samples), unit="img", disable=not progress,
               mininterval=0.2 if tty else 10)
    records = predictor(everything, chunks, samples, tasks, bar)
    bar.close()
    if progress:
        for s, recs in zip(everything, records):
            print(f"  {s.name} {s.label}: {len(recs)} images, {sum(r['seconds'] for r in recs):.1f} s of compute",
                  file=sys.stderr)
        if len(systems) > 6:
            print(f"  ({len(systems)} systems; narrow the baselines with e.g. --baseline frozen:ARCH:2,4 "
                  "--baseline jpeg:10,50)", file=sys.stderr)
    return records[1:], records[0]


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
    """BD-rate and BD-metric of ``test`` against ``base``, each with its paired-bootstrap interval."""
    rows = min(_resampled(base, metric), _resampled(test, metric))
    return bd_with_interval(_curve_points(base, metric), _curve_points(test, metric), _higher_is_better(metric),
                            ((_curve_points(base, metric, r), _curve_points(test, metric, r)) for r in range(rows)))


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
            at = _at_rate(pts, pt["bpp"], tasks)
            row["baselines"][base] = at
            row["delta_m"][base] = delta_m(pt["primary"], at, _directions(tasks))
            row["delta_m_ci"][base] = _delta_m_interval(pt, pts, tasks)
        out["at_equal_rate"].append(row)
    for base in systems:
        if base != test_system:
            vals = [r["delta_m"][base] for r in out["at_equal_rate"] if r["delta_m"][base] is not None]
            out["delta_m"][base] = float(np.mean(vals)) if vals else None
    out["at_equal_metrics"] = [_rate_ratio(pt, ours, tasks) for base, pts in systems.items() if base != test_system
                               for pt in pts]
    out["human_tradeoff"] = human_tradeoff(systems, tasks)
    return out


ADAPTED = ("all-in-one", "decoder-only", "encoder-only")  # system names whose stream people may also watch


def human_tradeoff(systems: dict[str, list[dict[str, Any]]], tasks: list[str],
                   reference: str = "frozen codec") -> list[dict[str, Any]]:
    """What machines gain and people lose, per adapted point, both against ``reference`` at
    the same rate: Delta_m of the tasks, and the PSNR of the frozen decoder's view of the
    adapted stream minus the reference's PSNR (dB), each with its paired-bootstrap interval."""
    if reference not in systems:
        return []
    base = systems[reference]
    rows = []
    for name, pts in systems.items():
        if not name.startswith(ADAPTED):
            continue
        for pt in pts:
            at = _at_rate(base, pt["bpp"], ["psnr", *tasks])
            if pt["psnr"] is None or at["psnr"] is None:
                continue
            draws = []
            for r in range(min(_resampled([pt], "psnr"), _resampled(base, "psnr"))):
                psnr_at = _at_rate(base, float(pt["_draws"]["bpp"][r]), ["psnr"], r)["psnr"]
                if psnr_at is not None:
                    draws.append(float(pt["_draws"]["psnr"][r]) - psnr_at)
            rows.append({"system": name, "label": pt["label"], "bpp": pt["bpp"], "psnr": pt["psnr"],
                         "delta_psnr": pt["psnr"] - at["psnr"], "delta_psnr_ci": _interval(np.array(draws)) if draws else None,
                         "delta_m": delta_m(pt["primary"], {t: at[t] for t in tasks}, _directions(tasks)),
                         "delta_m_ci": _delta_m_interval(pt, base, tasks)})
    return rows


def _at_rate(curve: list[dict[str, Any]], bpp: float, metrics: list[str], row: int | None = None) -> dict[str, float | None]:
    """Each metric of ``curve`` (of bootstrap resample ``row``, if given) at ``bpp``."""
    return {m: value_at_rate(_curve_points(curve, m, row), bpp, _higher_is_better(m)) for m in metrics}


def _directions(tasks: list[str]) -> dict[str, bool]:
    return {t: _higher_is_better(t) for t in tasks}


def _rate_needed(curve: list[dict[str, Any]], target: dict[str, float], tasks: list[str]) -> tuple[float | None, bool]:
    """Bits ``curve`` needs to match ``target`` on EVERY task: the hardest task decides, and
    the figure is an upper bound when that task's target lies below the curve's cheapest point."""
    need = [rate_at_value(_curve_points(curve, t), target[t], _higher_is_better(t)) for t in tasks]
    if any(r is None for r, _ in need):
        return None, False
    return max(need, key=lambda n: n[0])


def _rate_ratio(base_pt: dict[str, Any], ours: list[dict[str, Any]], tasks: list[str]) -> dict[str, Any]:
    """Rate of the test curve at the baseline point's task metrics (all tasks at least as good),
    as a ratio to the baseline point's rate, with its paired-bootstrap interval. ``upper_bound``:
    the test curve's cheapest point already beats the baseline, so the true ratio is lower."""
    need, upper = _rate_needed(ours, base_pt["primary"], tasks)
    row = {"baseline": base_pt["system"], "label": base_pt["label"], "bpp": base_pt["bpp"],
           "ours_bpp": need, "ratio": None if need is None else need / base_pt["bpp"], "upper_bound": upper}
    rows = min([_resampled([base_pt], t) for t in tasks] + [_resampled(ours, t) for t in tasks])
    if need is None or rows == 0 or base_pt["bpp"] <= 0:
        return row
    draws = []
    for r in range(rows):
        curve = [{"bpp": float(p["_draws"]["bpp"][r]), "primary": {t: float(p["_draws"][t][r]) for t in tasks}}
                 for p in ours]
        got, _ = _rate_needed(curve, {t: float(base_pt["_draws"][t][r]) for t in tasks}, tasks)
        if got is not None:
            draws.append(got / float(base_pt["_draws"]["bpp"][r]))
    if len(draws) >= 0.5 * rows:
        row["ci"] = _interval(np.array(draws))
    return row


def _delta_m_interval(pt: dict[str, Any], base: list[dict[str, Any]], tasks: list[str]) -> list[float] | None:
    rows = min([_resampled([pt], t) for t in tasks] + [_resampled(base, t) for t in tasks])
    draws = []
    for r in range(rows):
        at = _at_rate(base, float(pt["_draws"]["bpp"][r]), tasks, r)
        d = delta_m({t: float(pt["_draws"][t][r]) for t in tasks}, at, _directions(tasks))
        if d is not None:
            draws.append(d)
    return _interval(np.array(draws)) if rows and len(draws) >= 0.5 * rows else None


def run_evaluation(systems: list[System], data: str | list[str], tasks: list[str], out_dir: str | None,
                   limit: int | None = None, progress: bool = True, meta: dict | None = None,
                   resamples: int = 1000, seed: int = DEFAULT_SEED, det_resamples: int = DET_RESAMPLES,
                   predictor: Predictor | None = None, pictures: int = 0,
                   records_cache: str | None = None, bootstrap_by: str | None = None) -> dict[str, Any]:
    """Score every system on the same test images. ``predictor`` does the per-image work
    (default: in this process; ``omnicodec.jobs.evaluation.ray_predictor``: Ray work over
    shards); scoring, intervals and the report happen here. ``pictures``: a picture sheet
    of that many test images at two rates (``omnicodec.eval.sheet``) joins the report.
    ``records_cache``: a folder where per-image records of systems with a recipe are kept
    and reused (``omnicodec.eval.record_cache``: keyed by weights, shard bytes and tasks).
    ``bootstrap_by``: a meta field of the samples (e.g. ``source``, the photo a crop was cut
    from); the bootstrap then resamples whole groups of images sharing it (``stats.resample_indices``)."""
    samples, chunks = load_test_set(data, limit)
    t0 = time.perf_counter()
    provenance = data_provenance(data)
    predictor = predictor or predict_in_process
    cache = None
    if records_cache:
        from omnicodec.eval.record_cache import RecordCache

        cache = RecordCache(records_cache, tasks, provenance["shards_sha256"])
        predictor = cache.wrap(predictor)
    records, original = _predict_all(systems, chunks, samples, tasks, predictor, progress)
    refs = {t: [widen(r["preds"][t]) for r in original] for t in tasks}
    plan = scoring_plan(tasks, samples, read_card(data if isinstance(data, str) else data[0]))
    labelled = {t: p["labelled"] for t, p in plan.items()}
    clean = _clean_scores(original, samples, tasks, labelled)
    note_uninformative(plan, clean)
    det_resamples = min(resamples, det_resamples)
    groups = bootstrap_groups(samples, bootstrap_by) if bootstrap_by else None
    idx = resample_indices(len(samples), resamples, seed, groups) if resamples else None
    points = [score_records(s, recs, samples, tasks, refs, idx, det_resamples, labelled)
              for s, recs in zip(systems, records)]
    summary = summarize(points, tasks)
    for p in points:
        p.pop("_draws", None)
    report = {"data": data if isinstance(data, str) else list(data), "images": len(samples), "tasks": tasks,
              "bootstrap": {"resamples": resamples, "det_resamples": det_resamples, "seed": seed,
                            **_bootstrap_method(bootstrap_by, groups)},
              **({"records_cache": {"dir": cache.root, "reused": cache.reused, "computed": cache.computed}}
                 if cache else {}),
              "scoring": plan, "clean": clean, "points": points, "summary": summary,
              "latent_decodes_per_image": {p["label"]: p["latent_decodes"] / len(samples)
                                           for p in points if p["system"] == "all-in-one"},
              "provenance": provenance,
              "seconds": round(time.perf_counter() - t0, 1), **(meta or {})}
    if out_dir is not None:
        from omnicodec.eval.report import write_report

        if pictures:
            from omnicodec import storage
            from omnicodec.eval.sheet import picture_sheet, sheet_systems

            chosen = sheet_systems(systems, points)
            if chosen:
                storage.makedirs(out_dir)
                storage.write_bytes(storage.join(out_dir, "pictures.png"), picture_sheet(chosen, samples[:pictures], tasks))
                report["pictures"] = {"file": "pictures.png", "images": min(pictures, len(samples)),
                                      "rows": [f"{s.name} {s.label}" for s in chosen]}
        report["files"] = write_report(report, out_dir)
    return report


def bootstrap_groups(samples: list, field: str) -> list[str]:
    """Each sample's ``meta[field]``: the group the cluster bootstrap draws it with. A sample
    without it is named (shard and key): guessing its group would understate the interval."""
    groups = []
    for s in samples:
        if field not in s.meta:
            raise OmnicodecError(f"{s.url}: sample '{s.key}' has no meta field '{field}' to group the bootstrap by "
                                 f"(it has: {sorted(s.meta) or 'no meta'})")
        groups.append(str(s.meta[field]))
    return groups


def _bootstrap_method(field: str | None, groups: list[str] | None) -> dict[str, Any]:
    """The report's words for how images were resampled (and, grouped, by what and into how many)."""
    if not groups:
        return {"method": "paired percentile bootstrap over images (same resamples for every system)"}
    count = len(set(groups))
    return {"method": f"paired percentile cluster bootstrap over the {count} groups of images sharing meta "
                      f"'{field}' (whole groups drawn; same resamples for every system)",
            "groups_by": field, "groups": count}


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
                  jpeg: tuple[int, ...] = DEFAULT_JPEG, rate_levels: list[float] | None = None
                  ) -> tuple[list[System], list[str]]:
    """``adaptor_ckpts``: (label, checkpoint). Baseline specs ``KIND:...``, each parsed by its
    system kind (``omnicodec.eval.systems``: ``frozen:ARCH:Q1,Q2``, ``jpeg:Q1,Q2``, ``single:...``,
    ``adaptors:NAME=...``, ``finetuned:...``, ...). Default baselines: the frozen codec at every
    bundled quality of the adaptors' architecture (a variable-rate codec: at every level, or at
    ``rate_levels``, the levels a rate-conditioned set is evaluated at), and JPEG."""

    systems: list[System] = []
    tasks: list[str] | None = None
    arch = quality = levels = None
    for label, ckpt in adaptor_ckpts:
        model = OmniCodec.from_checkpoint(ckpt)
        tasks = tasks or model.tasks
        if model.tasks != tasks:
            raise OmnicodecError(f"{ckpt}: tasks {model.tasks} differ from {tasks}")
        arch, quality = arch or model.codec.spec.arch, quality or model.codec.spec.quality
        systems += adaptor_systems(model, label, source=ckpt, rate_levels=rate_levels)
        levels = getattr(model.codec.model, "levels", None) if model.variable_rate else None
    if tasks is None:
        raise OmnicodecError("give at least one --run or --adaptors")
    if baselines is None:
        qualities = _frozen_qualities(arch, levels, rate_levels)
        baselines = ([f"frozen:{arch}:{','.join(map(str, qualities))}"] if qualities else []) + \
                    [f"jpeg:{','.join(map(str, jpeg))}"]
    systems += build_baselines(baselines, Context(tasks, arch, quality, lambda w: _resolve(w, storage_root),
                                                  rate_levels))
    return systems, tasks


def _frozen_qualities(arch: str | None, levels: int | None, rate_levels: list[float] | None) -> list[int]:
    """The default frozen ladder: a variable-rate codec at the levels its set is evaluated at
    (the nearest whole level), a fixed-rate one at every bundled quality."""
    from omnicodec import zoo

    if levels:
        return frozen_levels(rate_levels) if rate_levels else list(range(1, levels + 1))
    return sorted(c["quality"] for c in zoo.available() if c.get("kind") == "codec" and c.get("arch") == arch)


def _resolve(where: str, storage_root: str) -> str:
    """A run name (under the storage root), a run, checkpoint or adaptors folder, or zoo:NAME."""
    from omnicodec.adaptors.checkpoint import resolve

    return resolve(where, storage_root)


def describe_adaptors(meta: dict[str, Any], label: str, quality: int) -> tuple[str, str]:
    """(system name, label) of an adaptor set from how it was trained: ablations and the human
    term are curves of their own (BD-rate and Delta_m compare curves by system name), never
    points of the all-in-one curve."""
    name = "all-in-one"
    if meta.get("train_s_adaptor") is False:
        name = "decoder-only"
    elif meta.get("train_t_adaptors") is False:
        name = "encoder-only"
    label = f"{label} q{quality}" + (f" λ={meta['lmbda']:g}" if "lmbda" in meta else "")
    if meta.get("human_weight"):
        name, label = f"{name} +human", f"{label} μ={meta['human_weight']:g}"
    return name, label


def name_adaptor_systems(systems: list[System]) -> None:
    """Label every adaptor set by how it was trained (quality, lambda, mu) and put the test
    sets on their curve (all-in-one, decoder-only, ... +human); a baseline curve given a name
    (``adaptors:NAME=...``) keeps it."""
    for s in systems:
        if isinstance(s, AllInOne):
            name, s.label = describe_adaptors(getattr(s.model, "metadata", {}), s.label, s.model.codec.spec.quality)
            if s.position is not None:  # one rate-conditioned set: its points differ by rate only
                s.label = f"{s.label} p={s.position:g}"
            s.name = name if s.name == "all-in-one" else s.name


def evaluate_checkpoints(data: str | list[str], out_dir: str | None, storage_root: str,
                         runs: list[str] | None = None, adaptors: list[str] | None = None,
                         baselines: list[str] | None = None, limit: int | None = None, resamples: int = 1000,
                         predictor: Predictor | None = None, pictures: int = 0, records_cache: str | None = None,
                         bootstrap_by: str | None = None, rate_levels: list[float] | None = None) -> dict[str, Any]:
    """``omnicodec eval``'s evaluation: adaptor sets named as ``runs`` (run names under
    ``storage_root``; labelled by name) and ``adaptors`` (run, checkpoint or adaptors folders,
    ``zoo:NAME``; labelled by path), each labelled by how it was trained, against ``baselines``
    (``build_systems``), scored on ``data`` by ``run_evaluation``; a rate-conditioned set at
    ``rate_levels`` (default: every trained level). Returns the report."""
    ckpts = [(name, _resolve(name, storage_root)) for name in (runs or [])] + \
            [(short_label(c), _resolve(c, storage_root)) for c in (adaptors or [])]
    systems, tasks = build_systems(ckpts, baselines, storage_root, rate_levels=rate_levels)
    name_adaptor_systems(systems)
    return run_evaluation(systems, data, tasks, out_dir, limit, resamples=resamples, predictor=predictor,
                          pictures=pictures, records_cache=records_cache, bootstrap_by=bootstrap_by)
