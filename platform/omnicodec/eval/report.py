"""Writing an evaluation: report.md, report.html, one PNG per curve, points.csv, report.json."""

from __future__ import annotations

import csv
import html
import io
import json
import os
from typing import Any

from omnicodec import storage

METRIC_NAMES = {"top1": "top-1", "miou": "mIoU", "map": "mAP@[.5:.95]", "agreement": "agreement"}


def _f(v: Any, nd: int = 4) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def _primary_name(report: dict[str, Any], task: str) -> str:
    from omnicodec.tasks.registry import get_task

    return METRIC_NAMES.get(get_task(task).metric, get_task(task).metric)


def points_table(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    tasks = report["tasks"]
    head = ["system", "point", "bpp", "bpp (estimate)", "PSNR", "MS-SSIM", *[f"{t} {_primary_name(report, t)}" for t in tasks]]
    rows = [["original (clean)", "-", "-", "-", "-", "-",
             *[_f(report["clean"][t].get(_key(report, t))) for t in tasks]]]
    for p in report["points"]:
        rows.append([p["system"], p["label"], _f(p["bpp"]), _f(p["bpp_estimate"]), _f(p["psnr"], 2),
                     _f(p["ms_ssim"]), *[_f(p["primary"][t]) for t in tasks]])
    return head, rows


def _key(report: dict[str, Any], task: str) -> str:
    from omnicodec.tasks.registry import get_task

    return get_task(task).metric


def summary_tables(report: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    tasks, s = report["tasks"], report["summary"]
    out = []
    if s.get("bd_rate"):
        head = ["anchor (baseline)", *[f"BD-rate {t} (%)" for t in tasks], "BD-rate PSNR (%)"]
        rows = [[base, *[_f(v[t]["bd_rate"], 1) for t in tasks], _f(v["psnr"]["bd_rate"], 1)]
                for base, v in s["bd_rate"].items()]
        out.append(("BD-rate of all-in-one against each baseline (negative = fewer bits for the same accuracy)", head, rows))
    if s.get("at_equal_rate"):
        head = ["all-in-one point", "bpp", *tasks, "baseline", *[f"{t} (baseline @ same bpp)" for t in tasks], "Delta_m (%)"]
        rows = []
        for r in s["at_equal_rate"]:
            for base, vals in r["baselines"].items():
                rows.append([r["label"], _f(r["bpp"]), *[_f(r["ours"][t]) for t in tasks], base,
                             *[_f(vals[t]) for t in tasks], _f(r["delta_m"][base], 2)])
        out.append(("Task accuracy at equal rate, and the multi-task gain Delta_m", head, rows))
    return out


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
            if v is not None:
                systems.setdefault(p["system"], []).append((p["bpp"], v, p["label"]))
        for name, pts in systems.items():
            pts.sort()
            ax.plot([q[0] for q in pts], [q[1] for q in pts], marker="o", label=name)
        if t != "psnr":
            clean = report["clean"][t].get(_key(report, t))
            if clean is not None:
                ax.axhline(clean, color="grey", ls="--", lw=1, label="original (clean)")
        ax.set_xlabel("bits per pixel (real bytes)")
        ax.set_ylabel("PSNR (dB), human view" if t == "psnr" else f"{t}: {_primary_name(report, t)}")
        ax.set_title("human view" if t == "psnr" else f"task {t}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        plt.close(fig)
        name = f"curve_{t}.png"
        storage.write_bytes(storage.join(out_dir, name), buf.getvalue())
        files.append(name)
    return files


def write_report(report: dict[str, Any], out_dir: str) -> dict[str, str]:
    storage.makedirs(out_dir)
    plots = plot_curves(report, out_dir)
    head, rows = points_table(report)
    md = [f"# omnicodec evaluation", "",
          f"{report['images']} test images from `{report['data']}`; tasks: {', '.join(report['tasks'])}. "
          "Rates are real bytes (container header included) per pixel; every all-in-one point sends ONE "
          "bitstream per image for all tasks, per-task adaptors send one per task (all counted).", "",
          "## Operating points", "", markdown_table(head, rows), ""]
    for title, h, r in summary_tables(report):
        md += [f"## {title}", "", markdown_table(h, r), ""]
    md += ["## Curves", ""] + [f"![{p}]({p})" for p in plots] + [""]
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
             "<h2>Operating points</h2>", table(head, rows)]
    for title, h, r in summary_tables(report):
        parts += [f"<h2>{html.escape(title)}</h2>", table(h, r)]
    parts += ["<h2>Curves</h2>"] + [f'<img src="{p}" alt="{p}">' for p in plots]
    style = ("body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f3f3f3}"
             "img{margin:8px;border:1px solid #eee}")
    return f"<!doctype html><html><head><meta charset='utf-8'><title>omnicodec evaluation</title><style>{style}</style></head><body>{''.join(parts)}</body></html>"


def print_summary(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if Console().is_terminal else 170)
    head, rows = points_table(report)
    t = Table(title=f"{report['images']} test images, real bytes")
    for h in head:
        t.add_column(h, justify="right")
    for r in rows:
        t.add_row(*r)
    console.print(t)
    for title, h, r in summary_tables(report):
        tt = Table(title=title)
        for c in h:
            tt.add_column(c, justify="right")
        for row in r:
            tt.add_row(*row)
        console.print(tt)
    if "files" in report:
        console.print(f"report: {report['files']['markdown']}  ({os.path.dirname(report['files']['html'])}/report.html)")
