"""Writing an evaluation: report.md, report.html, one PNG per curve, points.csv, report.json."""

from __future__ import annotations

import csv
import html
import io
import json
import math
import os
from typing import Any

from omnicodec import storage


def _f(v: Any, nd: int = 4) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def _primary_name(report: dict[str, Any], task: str) -> str:
    """How tables name the metric ``task`` was scored with: "top-1", or "agreement
    (label-free)" when the evaluation had no labels it could score against."""
    from omnicodec.tasks.registry import get_task

    info = get_task(task)
    key = _key(report, task)
    name = info.task_kind.metric_labels.get(key, key)
    return name if _labelled(report, task) else f"{name} (label-free)"


def _labelled(report: dict[str, Any], task: str) -> bool:
    from omnicodec.tasks.registry import get_task

    plan = (report.get("scoring") or {}).get(task)
    return plan["labelled"] if plan else get_task(task).labelled


def scoring_notes(report: dict[str, Any]) -> list[str]:
    """One line per labelled task that was scored label-free, and why."""
    return [f"{t}: scored label-free ({p['metric']} with the network's own output on the original), because "
            f"{p['why']}." for t, p in (report.get("scoring") or {}).items()
            if p.get("why") and (not p["labelled"] and "defined label-free" not in p["why"] or "no information" in p["why"])]


def _pm(value: Any, ci: list[float] | None, nd: int = 3) -> str:
    """``value ±half-width`` of its 95 % interval (compact enough for a 120-column terminal)."""
    if value is None:
        return "n/a"
    if not ci:
        return _f(value, nd)
    return f"{value:.{nd}f} ±{(ci[1] - ci[0]) / 2:.{nd}f}"


def points_table(report: dict[str, Any], compact: bool = False) -> tuple[list[str], list[list[str]]]:
    """Every operating point; task scores as ``value ±half-width`` of the 95 % interval."""
    tasks = report["tasks"]
    extra = [] if compact else ["bpp (estimate)", "MS-SSIM"]
    head = ["system", "point", "bpp", "PSNR", *extra, *[f"{t} {_primary_name(report, t)}" for t in tasks]]
    rows = [["original (clean)", "-", "-", "-", *(["-"] * len(extra)),
             *[_f(report["clean"][t].get(_key(report, t)), 3) for t in tasks]]]
    for p in report["points"]:
        ci = p.get("ci") or {}
        more = [] if compact else [_f(p["bpp_estimate"]), _f(p["ms_ssim"])]
        rows.append([p["system"], p["label"], _f(p["bpp"]), _f(p["psnr"], 2), *more,
                     *[_pm(p["primary"][t], ci.get(t)) for t in tasks]])
    return head, rows


def _provenance_line(report: dict[str, Any]) -> str:
    prov = report.get("provenance") or {}
    ds, hashes = prov.get("dataset") or {}, prov.get("shards_sha256") or {}
    built = f"built with seed {ds['seed']}, {ds.get('size')} px, source {ds.get('source')}; " if "seed" in ds else ""
    return f"Data: {len(hashes)} shard(s), {built}each shard's sha256 is in report.json (`provenance`)."


OVERLAP_MARK = "‡"


def fmt_bd(value: float | None, ci: list[float] | None = None, overlap: float | None = None, counts: bool = True,
           digits: int = 1, sparse: bool = False) -> str:
    """One BD cell: ``value [95 % interval]``, ``†`` (sparse), ``(ov NN %)`` the overlap
    fraction (rounded down, so a cell just under 50 % never reads 50 %) and ``‡`` when the
    cell does not count (overlap below 50 % of the shorter curve's span)."""
    if value is None:
        return "n/a"
    f = f"+.{digits}f"
    out = f"{value:{f}}" + (f" [{ci[0]:{f}}, {ci[1]:{f}}]" if ci and None not in ci else "")
    out += " †" if sparse else ""
    out += f" (ov {math.floor(100 * overlap + 1e-9):d} %)" if overlap is not None else ""
    return out + (f" {OVERLAP_MARK}" if not counts else "")


def _bd(v: dict[str, Any]) -> str:
    """The BD-rate cell of a ``summary.bd_rate`` dict (% points)."""
    from omnicodec.eval.summary import SPARSE_GAP

    return fmt_bd(v.get("bd_rate"), v.get("ci"), v.get("overlap"), v.get("counts", True),
                  sparse=v.get("rate_gap", 1.0) > SPARSE_GAP)


def _bd_metric(v: dict[str, Any], digits: int = 3) -> str:
    """The BD-metric cell of a ``summary.bd_rate`` dict (metric units)."""
    m = v.get("bd_metric") or {}
    return fmt_bd(m.get("value"), m.get("ci"), m.get("overlap"), m.get("counts", True), digits)


BD_LEGEND = ("ov: overlap. BD-rate compares two curves only over the accuracy range both reach, BD-metric only over "
             "the rate range both span; ov is that common range as a fraction of the SHORTER curve's own span "
             "(accuracy span for BD-rate, log-rate span for BD-metric). "
             f"{OVERLAP_MARK} overlap < 50 % of the shorter curve's span: shown, not counted "
             "(report.json: counts false). BD-metric (BD-acc, BD-mIoU, BD-mAP, BD-PSNR in dB, ...): the mean "
             "metric difference, test minus anchor, at equal rate over the common log-rate range (PCHIP on the "
             "operational frontiers, as BD-rate), in the metric's units; positive = the test scores higher (for a "
             "lower-is-better metric, negative is the gain).")

NA_NOTE = ("n/a in a BD-rate cell: the two curves do not share a range of the metric, or a curve has fewer than "
           "two points on its operational frontier (a point that costs more bits and scores no better is dropped), "
           "so no rate can be compared at equal accuracy; n/a in a BD-metric cell: the curves share no rate range "
           "(or a curve has fewer than two frontier points). n/a in a baseline cell: the baseline's curve does not "
           "reach that bpp (no extrapolation). †: inside the compared accuracy range a curve's neighbouring "
           "frontier points lie more than 2x apart in rate (report.json: rate_gap), so the value rests on the "
           "interpolation there, not on measured points; the interval covers image sampling only.")


def bd_rows(report: dict[str, Any]) -> list[list[str]]:
    """One row per (baseline, task or PSNR): BD-rate and BD-metric, each with its overlap."""
    from omnicodec.eval.summary import TOO_FEW, bd_metric_name

    rows = []
    for base, v in report["summary"]["bd_rate"].items():
        if v and all(c.get("bd_rate") is None and (c.get("bd_metric") or {}).get("value") is None
                     and c.get("note") == TOO_FEW for c in v.values()):
            rows.append([base, "every task, PSNR", f"n/a ({TOO_FEW})", "n/a"])
            continue
        for t in [*report["tasks"], "psnr"]:
            if t not in v:
                continue
            if t == "psnr":
                what, digits = f"PSNR ({bd_metric_name('psnr')}, dB)", 2
            else:
                what, digits = f"{t}{'' if _labelled(report, t) else ' label-free'} ({bd_metric_name(_key(report, t))})", 3
            rows.append([base, what, _bd(v[t]), _bd_metric(v[t], digits)])
    return rows


def counted_cells(report: dict[str, Any]) -> dict[str, list[str]]:
    """The BD cells that count (defined, overlap >= 50 %) and those that do not, as
    ``baseline/task[ BD-metric]`` names: what a headline may quote, and what it may not."""
    out: dict[str, list[str]] = {"counts": [], "not counted": []}
    for base, v in ((report.get("summary") or {}).get("bd_rate") or {}).items():
        for t, cell in v.items():
            for name, c in ((f"{base}/{t} BD-rate", cell), (f"{base}/{t} BD-metric", cell.get("bd_metric") or {})):
                value = c.get("bd_rate") if c is cell else c.get("value")
                if value is not None:
                    out["counts" if c.get("counts", True) else "not counted"].append(name)
    return out


def not_counted_line(report: dict[str, Any]) -> list[str]:
    """A line naming the BD cells that do not count (empty when all defined cells count)."""
    cells = counted_cells(report)["not counted"]
    return [f"Not counted ({OVERLAP_MARK}, overlap < 50 %): {', '.join(cells)}.", ""] if cells else []


def _has_bd(report: dict[str, Any]) -> bool:
    """Whether the report has a BD table."""
    return bool((report.get("summary") or {}).get("bd_rate"))


def _key(report: dict[str, Any], task: str) -> str:
    from omnicodec.tasks.registry import get_task

    plan = (report.get("scoring") or {}).get(task)
    return plan["metric"] if plan else get_task(task).metric


def summary_tables(report: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    tasks, s = report["tasks"], report["summary"]
    out = []
    if s.get("bd_rate"):
        head = ["anchor (baseline)", "task (BD-metric)", "BD-rate % [95 %] (ov)", "BD-metric [95 %] (ov)"]
        out.append(("BD-rate of all-in-one against each baseline (negative = fewer bits for the same accuracy) and "
                    "BD-metric (positive = more accuracy at the same rate)", head, bd_rows(report)))
    if s.get("at_equal_rate"):
        head = ["all-in-one point", "bpp", *tasks, "baseline", *[f"{t} (baseline @ same bpp)" for t in tasks], "Delta_m (%)"]
        rows = []
        for r in s["at_equal_rate"]:
            for base, vals in r["baselines"].items():
                ci = (r.get("delta_m_ci") or {}).get(base)
                dm = _f(r["delta_m"][base], 2) + (f" [{ci[0]:+.1f}, {ci[1]:+.1f}]" if ci and r["delta_m"][base] is not None else "")
                rows.append([r["label"], _f(r["bpp"]), *[_f(r["ours"][t], 3) for t in tasks], base,
                             *[_f(vals[t], 3) for t in tasks], dm])
        out.append(("Task accuracy at equal rate, and the multi-task gain Delta_m", head, rows))
    if s.get("at_equal_metrics"):
        head = ["baseline", "point", "baseline bpp", "all-in-one bpp", "rate ratio [95 %]"]
        rows = []
        for r in s["at_equal_metrics"]:
            if r["ratio"] is None:
                ratio = "n/a (not reached)"
            else:
                ci = r.get("ci")
                ratio = ("<= " if r["upper_bound"] else "") + f"{r['ratio']:.2f}x" + \
                    (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")
            rows.append([r["baseline"], r["label"], _f(r["bpp"]), _f(r["ours_bpp"]), ratio])
        out.append(("Bits all-in-one needs to match each baseline point on EVERY task (the hardest task decides; "
                    "<= : all-in-one's cheapest point already beats it)", head, rows))
    if s.get("human_tradeoff"):
        head = ["system", "point", "bpp", "PSNR (dB)", "PSNR vs frozen @ same bpp (dB) [95 %]", "Delta_m vs frozen (%) [95 %]"]
        rows = [[r["system"], r["label"], _f(r["bpp"]), _f(r["psnr"], 2), _with_ci(r["delta_psnr"], r.get("delta_psnr_ci"), 2),
                 _with_ci(r["delta_m"], r.get("delta_m_ci"), 1)] for r in s["human_tradeoff"]]
        out.append(("People and machines: what the tasks gain and the frozen decoder's picture loses, against the "
                    "frozen codec at the same rate (the human term mu trades one for the other)", head, rows))
    return out


def _with_ci(v: float | None, ci: list[float] | None, digits: int) -> str:
    if v is None:
        return "n/a"
    return f"{v:+.{digits}f}" + (f" [{ci[0]:+.{digits}f}, {ci[1]:+.{digits}f}]" if ci else "")


def markdown_table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def plot_curves(report: dict[str, Any], out_dir: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    series = [*report["tasks"], "psnr"]
    for t in series:
        fig, ax = plt.subplots(figsize=(5.2, 3.8), dpi=110)
        systems: dict[str, list] = {}
        for p in report["points"]:
            v = p["psnr"] if t == "psnr" else p["primary"][t]
            if v is not None and math.isfinite(v):
                lo, hi = _bar((p.get("ci") or {}).get(t), v)
                systems.setdefault(p["system"], []).append((p["bpp"], v, p["label"], lo, hi))
        for name, pts in systems.items():
            pts.sort()
            ax.errorbar([q[0] for q in pts], [q[1] for q in pts], yerr=[[q[3] for q in pts], [q[4] for q in pts]],
                        marker="o", ms=4, capsize=3, label=name)
        if t != "psnr":
            clean = report["clean"][t].get(_key(report, t))
            if clean is not None:
                ax.axhline(clean, color="grey", ls="--", lw=1, label="original (clean)")
        ax.set_xlabel("bits per pixel (real bytes)")
        ax.set_ylabel("PSNR (dB), human view" if t == "psnr" else f"{t}: {_primary_name(report, t)}")
        ax.set_title(("human view" if t == "psnr" else f"task {t}") + f" (n = {report['images']}, 95 % intervals)")
        files.append(_save(fig, ax, out_dir, f"curve_{t}.png"))
    return files


def plot_tradeoff(report: dict[str, Any], out_dir: str) -> list[str]:
    """Delta_m (machines) against the PSNR change (people), one marker per adapted point."""
    rows = (report.get("summary") or {}).get("human_tradeoff") or []
    if not rows:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.6, 4.0), dpi=110)
    for name in dict.fromkeys(r["system"] for r in rows):
        pts = [r for r in rows if r["system"] == name and r["delta_m"] is not None]
        ax.errorbar([r["delta_psnr"] for r in pts], [r["delta_m"] for r in pts], xerr=_bars(pts, "delta_psnr"),
                    yerr=_bars(pts, "delta_m"), fmt="o", ms=4, capsize=3, label=name)
        for r in pts:
            ax.annotate(r["label"].split(" ", 1)[-1], (r["delta_psnr"], r["delta_m"]), fontsize=6,
                        xytext=(3, 3), textcoords="offset points")
    ax.axhline(0, color="grey", lw=1)
    ax.axvline(0, color="grey", lw=1)
    ax.axvline(-0.5, color="grey", ls="--", lw=1, label="-0.5 dB")
    ax.set_xlabel("PSNR of the frozen decoder's view vs frozen codec @ same bpp (dB)")
    ax.set_ylabel("Delta_m vs frozen codec @ same bpp (%)")
    ax.set_title(f"people vs machines (n = {report['images']}, 95 % intervals)")
    return [_save(fig, ax, out_dir, "tradeoff_human.png")]


def _bar(ci: list[float] | None, v: float) -> tuple[float, float]:
    """(below, above) error bar lengths of value ``v`` with interval ``ci``: never negative
    or NaN (matplotlib refuses those), e.g. a degenerate interval or one not containing v."""
    if not ci:
        return 0.0, 0.0
    lo, hi = v - ci[0], ci[1] - v
    return (lo if math.isfinite(lo) and lo > 0 else 0.0), (hi if math.isfinite(hi) and hi > 0 else 0.0)


def _bars(rows: list[dict[str, Any]], key: str) -> list[list[float]]:
    """Matplotlib's [below, above] error bars from each row's ``key`` and ``key_ci`` (none: 0)."""
    bars = [_bar(r.get(f"{key}_ci"), r[key]) for r in rows]
    return [[b[0] for b in bars], [b[1] for b in bars]]


def _save(fig, ax, out_dir: str, name: str) -> str:
    """Grid, legend, tight layout; the figure as PNG under ``out_dir`` (any fsspec URL)."""
    import matplotlib.pyplot as plt

    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    storage.write_bytes(storage.join(out_dir, name), buf.getvalue())
    return name


def write_report(report: dict[str, Any], out_dir: str) -> dict[str, str]:
    storage.makedirs(out_dir)
    plots = plot_curves(report, out_dir) + plot_tradeoff(report, out_dir)
    head, rows = points_table(report)
    boot = report.get("bootstrap") or {}
    md = ["# omnicodec evaluation", "",
          f"n = {report['images']} test images from `{report['data']}`; tasks: {', '.join(report['tasks'])}. "
          "Rates are real bytes (container header included) per pixel; every all-in-one point sends ONE "
          "bitstream per image for all tasks, per-task adaptors and per-task fine-tuned codecs (full "
          "fine-tuning: one whole codec per task) send one per task (all counted).", "",
          (f"Uncertainty: `value ±h` is the value with the half-width of its 95 % interval; intervals in brackets "
           f"are 95 % intervals. All come from a {boot.get('method', 'paired bootstrap')} with "
           f"{boot.get('resamples')} resamples ({boot.get('det_resamples')} for mAP), seed {boot.get('seed')}."
           if boot.get("resamples") else "No bootstrap was run (resamples = 0): values carry no intervals."), "",
          _provenance_line(report), "", *[f"- {n}" for n in scoring_notes(report)], "",
          "## Operating points", "", markdown_table(head, rows), ""]
    for title, h, r in summary_tables(report):
        md += [f"## {title}", "", markdown_table(h, r), ""]
    md += ([BD_LEGEND, "", *not_counted_line(report)] if _has_bd(report) else []) + [NA_NOTE, ""]
    md += ["## Curves", ""] + [f"![{p}]({p})" for p in plots] + [""]
    if report.get("pictures"):
        pic = report["pictures"]
        md += ["## What each machine receives", "",
               f"The first {pic['images']} test images; one row per operating point ({'; '.join(pic['rows'])}): "
               "the original, the human view of the bitstream, and each task's decoded view with that task's "
               "predictions drawn on it.", "", f"![pictures]({pic['file']})", ""]
    storage.write_text(storage.join(out_dir, "report.md"), "\n".join(md))
    storage.write_text(storage.join(out_dir, "report.html"), _html(report, head, rows, plots))
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["system", "point", "bpp", "bpp_estimate", "psnr", "ms_ssim",
                *[f"{t}_{k}" for t in report["tasks"] for k in sorted(report["points"][0]["tasks"][t])]])
    for p in report["points"]:
        w.writerow([p["system"], p["label"], p["bpp"], p["bpp_estimate"], p["psnr"], p["ms_ssim"],
                    *[p["tasks"][t][k] for t in report["tasks"] for k in sorted(p["tasks"][t])]])
    storage.write_text(storage.join(out_dir, "points.csv"), buf.getvalue())
    storage.write_text(storage.join(out_dir, "report.json"), json.dumps(report, indent=2, default=str))
    return {"markdown": storage.join(out_dir, "report.md"), "html": storage.join(out_dir, "report.html"),
            "csv": storage.join(out_dir, "points.csv"), "json": storage.join(out_dir, "report.json"),
            "plots": [storage.join(out_dir, p) for p in plots]}


def _html(report: dict[str, Any], head: list[str], rows: list[list[str]], plots: list[str]) -> str:
    def table(h: list[str], r: list[list[str]]) -> str:
        th = "".join(f"<th>{html.escape(c)}</th>" for c in h)
        trs = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in r)
        return f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"

    parts = [f"<h1>omnicodec evaluation</h1><p>{report['images']} test images; tasks: "
             f"{html.escape(', '.join(report['tasks']))}. Rates are real bytes per pixel.</p>",
             *[f"<p>{html.escape(n)}</p>" for n in scoring_notes(report)],
             "<h2>Operating points</h2>", table(head, rows)]
    for title, h, r in summary_tables(report):
        parts += [f"<h2>{html.escape(title)}</h2>", table(h, r)]
    parts += [f"<p>{html.escape(n)}</p>" for n in
              ([BD_LEGEND, *not_counted_line(report)] if _has_bd(report) else []) + [NA_NOTE]]
    parts += ["<h2>Curves</h2>"] + [f'<img src="{p}" alt="{p}">' for p in plots]
    if report.get("pictures"):
        parts += ["<h2>What each machine receives</h2>", f'<img src="{report["pictures"]["file"]}" alt="pictures">']
    style = ("body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f3f3f3}"
             "img{margin:8px;border:1px solid #eee}")
    return f"<!doctype html><html><head><meta charset='utf-8'><title>omnicodec evaluation</title><style>{style}</style></head><body>{''.join(parts)}</body></html>"


def print_summary(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=120)
    head, rows = points_table(report, compact=True)
    t = Table(title=f"n = {report['images']} test images, real bytes; ±: half-width of the 95 % interval")
    for h in head:
        t.add_column(h, justify="right")
    for r in rows:
        t.add_row(*r)
    console.print(t)
    for note in scoring_notes(report):
        console.print(note)
    for title, h, r in summary_tables(report):
        tt = Table(title=title)
        for c in h:
            tt.add_column(c, justify="right")
        for row in r:
            tt.add_row(*row)
        console.print(tt)
    if _has_bd(report):
        console.print(BD_LEGEND)
        for line in not_counted_line(report):
            console.print(line)
    if any(v.get("bd_rate") is None or (v.get("bd_metric") or {}).get("value", 0) is None
           for b in report["summary"].get("bd_rate", {}).values() for v in b.values()):
        console.print(NA_NOTE)
    if "files" in report:
        console.print(f"report: {report['files']['markdown']}  ({os.path.dirname(report['files']['html'])}/report.html)")
