"""Human rate-distortion report: learned codecs against JPEG, WebP and AVIF, from real bytes.

Every system codes every image for real: the learned codecs through omnicodec's container
(header included in the bytes), JPEG, WebP and AVIF through Pillow (the file Pillow writes).
Per image: bytes, bpp = 8 * bytes / (H * W), PSNR (RGB, 8-bit), MS-SSIM, encode and decode
seconds. A curve point is the mean over images; BD-rate (Bjontegaard, PCHIP on the
operational frontier, see ``summary.bd_rate``) compares a codec family's curve with an
anchor's, on PSNR and on MS-SSIM in dB (-10 log10(1 - MS-SSIM)); beside each, BD-PSNR /
BD-MS-SSIM (the mean dB gain at equal rate, ``summary.bd_metric``). Each carries its overlap
(a cell under 50 % is marked and does not count) and a paired-bootstrap 95 % interval over
images (``stats``).
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image

from omnicodec.eval.human import msssim
from omnicodec.eval.stats import resample_indices, statistic_intervals
from omnicodec.eval.summary import bd_rate
from omnicodec.images import load_image, psnr, to_pil, to_tensor

DEFAULT_JPEG = (5, 10, 20, 35, 50, 70, 85)
DEFAULT_WEBP = (5, 20, 40, 60, 80, 92)
DEFAULT_AVIF = (10, 30, 50, 70, 85)
FAMILIES = {"JPEG": "JPEG", "WEBP": "WebP", "AVIF": "AVIF"}  # Pillow format -> family label
METRICS = ("psnr", "ms_ssim_db")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".ppm", ".tif", ".tiff")


@dataclass
class RDSystem:
    """One operating point: ``code(x)`` returns (bytes, x_hat, encode_s, decode_s)."""

    family: str
    label: str
    code: Any = field(repr=False)


def pillow_system(fmt: str, quality: int) -> RDSystem:
    def code(x: torch.Tensor) -> tuple[int, torch.Tensor, float, float]:
        buf = io.BytesIO()
        t0 = time.perf_counter()
        kwargs = {"method": 6} if fmt == "WEBP" else {}
        to_pil(x).save(buf, format=fmt, quality=quality, **kwargs)
        t1 = time.perf_counter()
        x_hat = to_tensor(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))[0]
        return buf.tell(), x_hat, t1 - t0, time.perf_counter() - t1
    return RDSystem(FAMILIES[fmt], f"{FAMILIES[fmt]} Q{quality}", code)


def codec_system(codec, family: str, label: str) -> RDSystem:
    from omnicodec.model import HUMAN, OmniCodec

    model = OmniCodec(codec, with_adaptors=False)

    @torch.no_grad()
    def code(x: torch.Tensor) -> tuple[int, torch.Tensor, float, float]:
        t0 = time.perf_counter()
        data = model.encode(x[None]).to_bytes()
        t1 = time.perf_counter()
        x_hat = model.decode(data, human=True)[HUMAN][0]
        return len(data), x_hat, t1 - t0, time.perf_counter() - t1
    return RDSystem(family, label, code)


def iter_images(location: str, limit: int | None = None) -> Iterator[tuple[str, torch.Tensor]]:
    """(key, CHW float image) from an image folder or from shards (paths, braces, URLs)."""
    if os.path.isdir(os.path.expanduser(location)) and not any(
            f.endswith(".tar") for f in os.listdir(os.path.expanduser(location))):
        folder = os.path.expanduser(location)
        files = sorted(f for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTENSIONS))
        items: Iterator[tuple[str, torch.Tensor]] = (
            (f, load_image(os.path.join(folder, f))[0]) for f in files)
    else:
        from omnicodec.data.loader import iter_samples

        items = ((s.key, s.image) for s in iter_samples(location))
    for i, item in enumerate(items):
        if limit is not None and i >= limit:
            return
        yield item


def measure(images: list[tuple[str, torch.Tensor]], systems: list[RDSystem], progress: bool = True) -> list[dict[str, Any]]:
    """One row per (system, image)."""
    from tqdm import tqdm

    rows = []
    bar = tqdm(total=len(images) * len(systems), desc="rate-distortion", unit="code", disable=not progress)
    for s in systems:
        t_sys = time.perf_counter()
        for key, x in images:
            nbytes, x_hat, enc, dec = s.code(x)
            x_hat = x_hat.clamp(0, 1)
            ms = msssim(x_hat[None], x[None])
            rows.append({"family": s.family, "system": s.label, "key": key, "bytes": nbytes,
                         "bpp": 8 * nbytes / (x.shape[-2] * x.shape[-1]), "psnr": psnr(x_hat, x), "ms_ssim": ms,
                         "ms_ssim_db": -10 * float(np.log10(max(1e-10, 1 - ms))), "encode_s": enc, "decode_s": dec})
            bar.update(1)
        bar.set_postfix_str(f"{s.label}: {time.perf_counter() - t_sys:.1f} s")
    bar.close()
    return rows


def _arrays(rows: list[dict[str, Any]], family: str, keys: list[str]) -> dict[str, dict[str, np.ndarray]]:
    """system label -> metric -> per-image array in ``keys`` order (pairing by image)."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for label in dict.fromkeys(r["system"] for r in rows if r["family"] == family):
        by_key = {r["key"]: r for r in rows if r["system"] == label}
        out[label] = {m: np.array([by_key[k][m] for k in keys], float) for m in ("bpp", *METRICS)}
    return out


def _points(a: dict[str, np.ndarray], family: str, metric: str) -> list[dict[str, float]]:
    """A family's curve (mean bpp, mean metric per system) from the per-image arrays ``a``."""
    labels = sorted({k.split("|")[1] for k in a if k.startswith(family + "|")})
    return [{"bpp": float(a[f"{family}|{lab}|bpp"].mean()), "value": float(a[f"{family}|{lab}|{metric}"].mean())}
            for lab in labels]


def _bd_statistic(test: str, anchor: str, metric: str):
    """BD-rate and BD-metric of ``test`` against ``anchor`` on (resampled) per-image arrays."""
    def stat(a: dict[str, np.ndarray]) -> dict[str, float | None]:
        out = bd_rate(_points(a, anchor, metric), _points(a, test, metric))
        return {"bd_rate": out["bd_rate"], "bd_metric": out["bd_metric"]["value"]}
    return stat


def _bd_cell(flat: dict[str, np.ndarray], test: str, anchor: str, metric: str, idx: np.ndarray) -> dict[str, Any]:
    """One BD cell: the BD-rate interval dict (value, low, high, n, resamples) with its
    ``overlap``, ``counts`` and ``rate_gap``, and ``bd_metric``: the same for BD-PSNR /
    BD-MS-SSIM (dB), with its rate overlap (``summary.bd_rate``)."""
    from omnicodec.eval.summary import bd_metric_name

    point = bd_rate(_points(flat, anchor, metric), _points(flat, test, metric))
    ivs = statistic_intervals(flat, _bd_statistic(test, anchor, metric), idx)
    cell = {**ivs["bd_rate"].to_dict(), **{k: point[k] for k in ("overlap", "counts", "rate_gap", "note") if k in point}}
    pm = point["bd_metric"]
    cell["bd_metric"] = {"name": bd_metric_name(metric), **ivs["bd_metric"].to_dict(),
                         **{k: pm[k] for k in ("overlap", "counts", "rate_range", "note") if k in pm}}
    return cell


def summarize(rows: list[dict[str, Any]], anchors: tuple[str, ...] = ("JPEG", "WebP", "AVIF"),
              resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Curves (mean per point, with intervals) and BD-rates of every family against each anchor."""
    from omnicodec.eval.stats import mean_interval

    keys = list(dict.fromkeys(r["key"] for r in rows))
    families = list(dict.fromkeys(r["family"] for r in rows))
    idx = resample_indices(len(keys), resamples, seed)
    flat: dict[str, np.ndarray] = {}
    curves: dict[str, list[dict[str, Any]]] = {}
    for fam in families:
        arrays = _arrays(rows, fam, keys)
        curves[fam] = []
        for label, arr in arrays.items():
            sys_rows = [r for r in rows if r["system"] == label]
            point = {"system": label, "bpp": float(arr["bpp"].mean()),
                     "encode_s": float(np.mean([r["encode_s"] for r in sys_rows])),
                     "decode_s": float(np.mean([r["decode_s"] for r in sys_rows]))}
            for m in ("bpp", *METRICS):
                point[f"{m}_ci"] = mean_interval(arr[m], idx).to_dict()
                point.setdefault(m, float(arr[m].mean()))
                flat[f"{fam}|{label}|{m}"] = arr[m]
            point["ms_ssim"] = float(np.mean([r["ms_ssim"] for r in sys_rows]))
            curves[fam].append(point)
    bd: list[dict[str, Any]] = []
    for fam in families:
        for anchor in anchors:
            if anchor == fam or anchor not in families:
                continue
            entry = {"test": fam, "anchor": anchor}
            for m in METRICS:
                entry[m] = _bd_cell(flat, fam, anchor, m, idx)
            bd.append(entry)
    return {"images": len(keys), "keys": keys, "resamples": resamples, "seed": seed, "curves": curves, "bd_rate": bd}


def _ci(d: dict[str, Any], pct: bool = False, digits: int = 2) -> str:
    v, lo, hi = d.get("value"), d.get("low"), d.get("high")
    if v is None:
        return "n/a"
    f = (lambda t: f"{t:+.{digits}f} %") if pct else (lambda t: f"{t:.{digits}f}")
    return f(v) if lo is None else f"{f(v)} [{f(lo)}, {f(hi)}]"


def bd_cells(cell: dict[str, Any]) -> str:
    """``BD-rate cell | BD-metric cell`` of one ``_bd_cell`` dict (either may lack the new keys:
    an rd.json written before BD-metric existed)."""
    from omnicodec.eval.report import fmt_bd

    m = cell.get("bd_metric") or {}
    ci = [cell.get("low"), cell.get("high")]
    mci = [m.get("low"), m.get("high")]
    return (f"{fmt_bd(cell.get('value'), ci, cell.get('overlap'), cell.get('counts', True))} | "
            f"{fmt_bd(m.get('value'), mci, m.get('overlap'), m.get('counts', True), digits=2)}")


def markdown(summary: dict[str, Any], title: str) -> str:
    from omnicodec.eval.report import BD_LEGEND

    n = summary["images"]
    lines = [f"# {title}", "",
             f"{n} images; every rate counts real bytes; intervals are 95 % paired-bootstrap intervals over "
             f"images ({summary['resamples']} resamples, seed {summary['seed']}). BD-rate: Bjontegaard (PCHIP) "
             "on each curve's operational frontier; negative = fewer bytes than the anchor for the same quality.",
             "", "## BD-rate and BD-PSNR", "",
             "| codec | anchor | BD-rate % (PSNR) | BD-PSNR (dB) | BD-rate % (MS-SSIM dB) | BD-MS-SSIM (dB) |",
             "|---|---|---|---|---|---|"]
    for e in summary["bd_rate"]:
        lines.append(f"| {e['test']} | {e['anchor']} | " + " | ".join(bd_cells(e[m]) for m in METRICS) + " |")
    lines += ["", BD_LEGEND, "", "n/a: the two curves share no PSNR (or MS-SSIM) range (BD-rate) or no rate range "
              "(BD-PSNR), or a curve has fewer than two frontier points, so nothing can be compared.", "",
              "## Points", "", "| system | bpp | PSNR (dB) | MS-SSIM | encode s/img | decode s/img |",
              "|---|---|---|---|---|---|"]
    for points in summary["curves"].values():
        for p in sorted(points, key=lambda p: p["bpp"]):
            lines.append(f"| {p['system']} | {_ci(p['bpp_ci'], digits=3)} | {_ci(p['psnr_ci'])} | {p['ms_ssim']:.4f} | "
                         f"{p['encode_s']:.3f} | {p['decode_s']:.3f} |")
    return "\n".join(lines) + "\n"


def plot(summary: dict[str, Any], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=110)
    for ax, metric, name in ((axes[0], "psnr", "PSNR (dB)"), (axes[1], "ms_ssim_db", "MS-SSIM (dB)")):
        for fam, points in summary["curves"].items():
            pts = sorted(points, key=lambda p: p["bpp"])
            x = [p["bpp"] for p in pts]
            y = [p[metric] for p in pts]
            ax.errorbar(x, y, yerr=_errors(pts, metric), xerr=_errors(pts, "bpp"), marker="o", ms=3, capsize=2, label=fam)
        ax.set_xlabel("bits per pixel (real bytes)")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{summary['images']} images, 95 % bootstrap intervals")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _errors(pts: list[dict[str, Any]], metric: str) -> list[list[float]]:
    """[below, above] error bars of ``metric``, never negative or NaN (``report._bar``)."""
    from omnicodec.eval.report import _bar

    bars = [_bar([p[f"{metric}_ci"].get("low"), p[f"{metric}_ci"].get("high")]
                 if p[f"{metric}_ci"].get("low") is not None else None, p[metric]) for p in pts]
    return [[b[0] for b in bars], [b[1] for b in bars]]


def write_report(summary: dict[str, Any], rows: list[dict[str, Any]], out: str, title: str) -> str:
    import csv
    import json

    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "rd.json"), "w") as f:
        json.dump(summary, f, indent=1)
    with open(os.path.join(out, "rd_rows.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    plot(summary, os.path.join(out, "rd.png"))
    md = markdown(summary, title) + "\n![rate-distortion](rd.png)\n"
    with open(os.path.join(out, "rd.md"), "w") as f:
        f.write(md)
    return md


def default_codecs() -> list[str]:
    """Every bundled codec architecture with all its bundled qualities (``ARCH:Q1,Q2,...``; a
    variable-rate codec, whose card lists one lambda per level: every level)."""
    from omnicodec import zoo

    by_arch: dict[str, list[int]] = {}
    for c in zoo.available():
        if c.get("kind") == "codec" and isinstance(c.get("lambda"), list):
            by_arch[c["arch"]] = list(range(1, len(c["lambda"]) + 1))
        elif c.get("kind") == "codec":
            by_arch.setdefault(c["arch"], []).append(int(c["quality"]))
    return [f"{a}:{','.join(map(str, sorted(qs)))}" for a, qs in sorted(by_arch.items())]


def build_systems(codecs: list[str], checkpoints: list[str], jpeg: tuple[int, ...], webp: tuple[int, ...],
                  avif: tuple[int, ...] = ()) -> list[RDSystem]:
    """``codecs``: ``ARCH:Q1,Q2``; ``checkpoints``: ``ARCH=PATH_OR_URL`` (any CompressAI checkpoint)."""
    from omnicodec.codec import CodecSpec, load_codec
    from omnicodec.errors import OmnicodecError

    systems = []
    for ref in codecs:
        arch, _, qs = ref.partition(":")
        if not qs:
            raise OmnicodecError(f"--codec {ref}: expected ARCH:Q1,Q2,... (e.g. mbt2018-mean-photo:1,2,3,5)")
        for q in qs.split(","):
            systems.append(codec_system(load_codec(CodecSpec(arch=arch, quality=int(q))), arch, f"{arch} q{q}"))
    for ref in checkpoints:
        arch, sep, path = ref.partition("=")
        if not sep:
            raise OmnicodecError(f"--checkpoint {ref}: expected ARCH=PATH_OR_URL")
        family = f"{arch} ({os.path.basename(path)})"
        systems.append(codec_system(load_codec(CodecSpec(arch=arch, quality=None, checkpoint=path)), family, family))
    systems += [pillow_system(fmt, q) for fmt, qs in (("JPEG", jpeg), ("WEBP", webp), ("AVIF", avif)) for q in qs]
    return systems


def run_rd(data: str, out: str | None, codecs: list[str] | None = None, checkpoints: list[str] = (),
           jpeg: tuple[int, ...] = DEFAULT_JPEG, webp: tuple[int, ...] = DEFAULT_WEBP, limit: int | None = None,
           resamples: int = 1000, title: str | None = None, progress: bool = True,
           avif: tuple[int, ...] = DEFAULT_AVIF) -> dict[str, Any]:
    images = list(iter_images(data, limit))
    if not images:
        from omnicodec.errors import DataError

        raise DataError(f"{data}: no images")
    systems = build_systems(codecs if codecs is not None else default_codecs(), list(checkpoints), jpeg, webp, avif)
    rows = measure(images, systems, progress)
    summary = summarize(rows, resamples=resamples)
    summary["data"] = data
    if out:
        summary["markdown"] = write_report(summary, rows, out, title or f"Human rate-distortion on {data}")
    return summary
