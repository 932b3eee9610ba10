"""``omnicodec eval``: rate/accuracy (or, with ``--human``, rate/distortion) reports from real bitstreams."""

from __future__ import annotations

import argparse
import os

from omnicodec.cli._common import HOME, add_command
from omnicodec.eval.systems import baseline_help


def register(sub: argparse._SubParsersAction) -> None:
    s = add_command(sub, "eval", "rate/accuracy evaluation from real bitstreams, with baselines and a report",
                    "Encodes each test image once (real bytes), decodes per task, scores the frozen task nets,\n"
                    "compares against the frozen codec, JPEG (and WebP, per-task adaptors with --baseline), and\n"
                    "writes report.md/.html, PNG plots, CSV, JSON. The per-image work runs as Ray work over\n"
                    "shards (one actor per core here; --address to use a cluster).\n\n"
                    "example: omnicodec eval --run demo-l0 --run demo-l1 --data DIR/test-000000.tar --out report/\n"
                    "         omnicodec eval --human --data ~/.cache/omnicodec/data/kodaklike --out rd/",
                    _eval)
    _add_systems(s)
    _add_statistics(s)
    _add_execution(s)


def _add_systems(s: argparse.ArgumentParser) -> None:
    """What is measured: the adaptors (or the human view), on which data, against which baselines."""
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--run", action="append", help="training run name (repeat for several lambdas)")
    g.add_argument("--adaptors", action="append",
                   help="adaptors: run name, run / checkpoint / adaptors folder, or zoo:NAME (repeatable)")
    g.add_argument("--human", action="store_true",
                   help="human rate-distortion report instead: learned codecs vs JPEG, WebP and AVIF (PSNR, MS-SSIM, "
                        "BD-rate with bootstrap intervals, timings); --data may be shards or an image folder")
    s.add_argument("--data", required=True, help="test shards (with --human: shards or an image folder)")
    s.add_argument("--codec", action="append", metavar="ARCH:Q1,Q2",
                   help="--human: a codec family to measure (default: every bundled codec, all qualities)")
    s.add_argument("--checkpoint", action="append", default=[], metavar="ARCH=PATH",
                   help="--human: any CompressAI checkpoint (state dict or {'state_dict': ...}), path or URL")
    s.add_argument("--jpeg", default=",".join(map(str, (5, 10, 20, 35, 50, 70, 85))), help="--human: JPEG qualities")
    s.add_argument("--webp", default=",".join(map(str, (5, 20, 40, 60, 80, 92))), help="--human: WebP qualities")
    s.add_argument("--avif", default=",".join(map(str, (10, 30, 50, 70, 85))),
                   help="--human: AVIF qualities (Pillow's libavif; empty: none)")
    s.add_argument("--out", default="report", help="report folder")
    s.add_argument("--storage", default=os.path.join(HOME, "runs"), help="where --run names live")
    s.add_argument("--baseline", action="append", default=None, metavar="NAME",
                   help=baseline_help())  # each system kind's own form (omnicodec.eval.systems)
    s.add_argument("--rate-levels", metavar="L1,L2", type=_levels,
                   help="a rate-conditioned set: evaluate it (and the default frozen ladder) at these levels of "
                        "its variable-rate codec, 1-based like its qualities, fractions between two levels "
                        "allowed (default: every trained level)")
    s.add_argument("--limit", type=int, help="evaluate only the first N images")
    s.add_argument("--max-pixels", type=int, metavar="N",
                   help="refuse test images of more than N pixels, naming them, before any is coded (default: "
                        "$OMNICODEC_MAX_PIXELS or 16777216 = 4096x4096; the codec codes whole images)")


def _add_statistics(s: argparse.ArgumentParser) -> None:
    """How uncertain the figures are, and what the report shows."""
    s.add_argument("--resamples", type=int, default=1000,
                   help="paired-bootstrap resamples for the 95 %% intervals (0: no intervals)")
    s.add_argument("--bootstrap-by", metavar="META_FIELD",
                   help="resample whole groups of test images sharing this meta field instead of single images "
                        "(the cluster bootstrap), for test sets whose images are not independent: e.g. 'source' "
                        "for the Kodak-like set, two crops of each held-out photo")
    s.add_argument("--pictures", type=int, default=3, metavar="N",
                   help="picture sheet of the first N test images at two rates: the original, the human view "
                        "and each task's view with its predictions drawn (0: none; default 3)")


def _add_execution(s: argparse.ArgumentParser) -> None:
    """Where the per-image work runs, and what it may reuse."""
    s.add_argument("--address", help="Ray address to join (default: start a local loopback Ray); every "
                                      "(system, shard) pair is one unit of Ray work")
    s.add_argument("--cpus-per-worker", type=float, default=1.0,
                   help="CPUs per evaluation actor (default 1: one actor per core)")
    s.add_argument("--in-process", action="store_true", help="no Ray: evaluate every system in this process")
    s.add_argument("--records-cache", default=os.path.join(HOME, "eval-records"), metavar="DIR",
                   help="keep each system's per-image records here and reuse them when the same weights meet "
                        "the same shard bytes and tasks again: a new checkpoint is compared with a dozen "
                        "baselines without coding them again (default: %(default)s)")
    s.add_argument("--no-records-cache", action="store_true", help="compute every system's records afresh")


def _eval(a: argparse.Namespace) -> None:
    from omnicodec.sizes import MAX_PIXELS_ENV

    previous = os.environ.get(MAX_PIXELS_ENV)
    if a.max_pixels is not None:  # read where the test set loads, in this process (eval.predict.load_test_set)
        os.environ[MAX_PIXELS_ENV] = str(a.max_pixels)
    try:
        if a.human:
            _human(a)
        else:
            _tasks(a)
    finally:
        if previous is None:
            os.environ.pop(MAX_PIXELS_ENV, None)
        else:
            os.environ[MAX_PIXELS_ENV] = previous


def _human(a: argparse.Namespace) -> None:
    """``--human``: the rate/distortion report of the learned codecs against JPEG, WebP, AVIF."""
    from omnicodec.errors import OmnicodecError
    from omnicodec.eval.rd import run_rd

    if getattr(a, "bootstrap_by", None):
        raise OmnicodecError("--bootstrap-by groups the task report's images; the --human report "
                             "resamples single images (drop one of the two)")
    summary = run_rd(a.data, a.out, a.codec, a.checkpoint, _qualities(a.jpeg), _qualities(a.webp), a.limit,
                     avif=_qualities(a.avif))
    print(summary["markdown"])
    print(f"report: {os.path.join(a.out, 'rd.md')} (rd.png, rd.json, rd_rows.csv)")


def _tasks(a: argparse.Namespace) -> None:
    """The rate/accuracy report; the per-image work is Ray work unless ``--in-process``."""
    from omnicodec import storage
    from omnicodec.eval.evaluate import evaluate_checkpoints
    from omnicodec.eval.report import print_summary

    # paths typed on the command line are made absolute here, in the driver: Ray workers and
    # actors run in other folders than the user's
    data, out, records_cache, storage_root = (storage.absolute(v) for v in (a.data, a.out, a.records_cache, a.storage))
    adaptors = [storage.absolute(x) if os.path.exists(os.path.expanduser(x)) else x for x in a.adaptors or []] or None
    predictor = None
    if not a.in_process:  # each (system, shard) is Ray work: local loopback Ray, or --address
        from omnicodec.jobs.evaluation import ray_predictor
        from omnicodec.runtime.ray_env import init_ray

        init_ray(a.address)
        predictor = ray_predictor(a.cpus_per_worker)
    report = evaluate_checkpoints(data, out, storage_root, runs=a.run, adaptors=adaptors, baselines=a.baseline,
                                  limit=a.limit, resamples=a.resamples, predictor=predictor, pictures=a.pictures,
                                  records_cache=None if a.no_records_cache else records_cache,
                                  bootstrap_by=a.bootstrap_by, rate_levels=a.rate_levels)
    print_summary(report)
    cache = report.get("records_cache")
    if cache and cache["reused"]:
        print(f"records of {len(cache['reused'])} systems reused from {cache['dir']} "
              f"({len(cache['computed'])} computed; --no-records-cache to recompute all)")


def _qualities(text: str) -> tuple[int, ...]:
    from omnicodec.errors import OmnicodecError

    try:
        return tuple(int(q) for q in text.split(",") if q.strip())
    except ValueError:
        raise OmnicodecError(f"qualities must be integers separated by commas, got '{text}'") from None


def _levels(text: str) -> list[float]:
    """``--rate-levels 1,3,5.5``: numbers, checked against the set's levels when it loads."""
    try:
        levels = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"rate levels are numbers separated by commas, got '{text}'") from None
    if not levels:
        raise argparse.ArgumentTypeError("give at least one rate level")
    return levels
