"""Do the adaptors pay? Rate/accuracy CURVES on freshly built scenes, with 95 % intervals.

1. ``omnicodec sweep jobs/omnicodec/jobs/specs/curves.yaml`` (Ray Tune; skipped when its
   sweep.json exists): all-in-one adaptors (cls, seg, det) at every bundled quality of
   ``mbt2018-mean-photo``, one trial per quality; ``curves-lambda.yaml``: the low-rate end
   (quality 2, smaller lambda); ``curves-pertask.yaml`` (lambda 2) and ``curves-pertask-lambda.yaml``
   (lambda 0.4): one adaptor set per task at quality 2 (the per-task baseline, its three
   bitstreams counted; ``--equal-rate`` compares the two curves at equal rate). Relaunching
   resumes a sweep.
2. ``omnicodec eval`` as Ray work over shards, on 1000 scenes built with seed 7919 (a seed
   no training or selection ever used; the report records it and every shard's sha256):
   the trials' adaptors against the frozen codec at the same qualities, JPEG and WebP at
   5 qualities each, all on the same images, with paired-bootstrap intervals for every
   metric, BD-rate and Delta_m, and a picture sheet.

Goal (issue 9): BD-rate against the frozen codec <= -30 % on every task, upper 95 % bound < 0.
Run: .venv/bin/python benchmarks/bench_curves.py [--limit N] [--adaptors PATH ...]
"""

from __future__ import annotations

import argparse
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
FRESH_SEED = 7919


def _run(args: list[str]) -> None:
    print("$ omnicodec " + " ".join(args), flush=True)
    subprocess.run([CLI, *args], check=True, cwd=REPO)


SPECS = os.path.join(REPO, "jobs/omnicodec/jobs/specs")
LAMBDA = os.path.join(SPECS, "curves-lambda.yaml")
# per-task sweeps (one adaptor set, one bitstream, per task and trial), each one point of the per-task curve:
# curves-pertask.yaml (lambda 2) and curves-pertask-lambda.yaml (lambda 0.4; another lambda with
# `--set name=curves-photo-pertask-l<L> --set train.lmbda=<L>`), all named with this prefix
PERTASK = "curves-photo-pertask"
TOP = ("curves-photo-q6", "curves-q6.yaml")  # the all-in-one curve's top quality, its own sweep
# evaluated when they ran (never started from here): lambda 0.2, the human term, the decoder-only ablation
OPTIONAL = {"curves-photo-lambda-fill": "curves-lambda-fill.yaml", "curves-photo-human": "curves-human.yaml",
            "curves-photo-decoder-only": "curves-decoder-only.yaml"}


def _trials(name: str, spec: str, run_missing: bool = True) -> list[dict]:
    """A sweep's finished trials (running the sweep first when it never finished: it resumes)."""
    sweep_json = os.path.join(HOME, "sweeps", name, "sweep.json")
    if not os.path.exists(sweep_json):
        if not run_missing:
            return []
        _run(["sweep", spec])
    return [t for t in json.load(open(sweep_json))["trials"] if t.get("adaptors")]


def _trial_adaptors(name: str, spec: str, run_missing: bool = True) -> list[str]:
    """Adaptor folders of a sweep's trials, ordered by quality then lambda."""
    def order(t: dict) -> tuple:
        return t["config"].get("codec.quality", 2), -t["config"].get("lmbda", 2.0)

    return [t["adaptors"] for t in sorted(_trials(name, spec, run_missing), key=order)]


def _pertask_points() -> list[str]:
    """One ``single:`` baseline per per-task sweep that ran (``omnicodec sweep
    jobs/omnicodec/jobs/specs/curves-pertask*.yaml``): its three task sets as ONE system, rates
    summed, labelled with its lambda; repeated, the points draw the per-task curve."""
    sweeps = os.path.join(HOME, "sweeps")
    names = sorted(n for n in os.listdir(sweeps) if n.startswith(PERTASK)) if os.path.isdir(sweeps) else []
    points = {}
    for name in names:
        trials = _trials(name, "", run_missing=False)  # no spec: a sweep that never ran is not started from here
        if trials:
            meta = json.load(open(os.path.join(trials[0]["adaptors"], "adaptors.json")))["metadata"]
            sets = ",".join(f"{t['config']['tasks'][0]['name']}={t['adaptors']}" for t in trials)
            points[meta["lmbda"]] = f"single:{sets}@q2 λ={meta['lmbda']:g}"
    return [points[lm] for lm in sorted(points, reverse=True)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, help="test images (default: all 1000)")
    ap.add_argument("--sweep", default=os.path.join(REPO, "jobs/omnicodec/jobs/specs/curves.yaml"))
    ap.add_argument("--adaptors", action="append", default=[],
                    help="adaptor checkpoints to evaluate (default: every finished trial of the curves sweep)")
    ap.add_argument("--out", help="report folder (default: benchmarks/results/curves-photo-{fresh,long,levers,union}-s7919)")
    ap.add_argument("--single", action="append", default=[], metavar="TASK=CKPT",
                    help="per-task adaptors evaluated as ONE system, rates summed (default: the curves-pertask sweeps, "
                         "one point per lambda)")
    ap.add_argument("--jpeg", default="5,10,20,35,50", help="JPEG qualities ('' for none)")
    ap.add_argument("--webp", default="5,20,40,60,80", help="WebP qualities ('' for none)")
    ap.add_argument("--bundle", action="store_true",
                    help="copy each evaluated adaptor set into the zoo as adaptors-photo-q<N>, with a card")
    ap.add_argument("--skip-eval", action="store_true", help="reuse the report in --out (with --bundle)")
    ap.add_argument("--long", metavar="RUNS_DIR",
                    help="evaluate the longer runs of benchmarks/train_long_gpu.py in RUNS_DIR instead: their "
                         "all-in-one curve against the frozen codec, JPEG, WebP, their per-task curve and the "
                         "300-step all-in-one curve (the training-length ablation)")
    ap.add_argument("--levers", metavar="RUNS_DIR",
                    help="the det levers of `train_long_gpu.py --plan det` in RUNS_DIR, each a named curve beside the "
                         "2000-step all-in-one curve (label-loss det): det distilled, det weighted 2x, T-Adaptors 2x")
    ap.add_argument("--union", metavar="RUNS_DIR", action="append",
                    help="every bundled-kind all-in-one set (the 300-step trials and the long runs in RUNS_DIR; "
                         "repeat for runs kept in several folders, e.g. GPU and CPU batches) as ONE curve against "
                         "the frozen codec: the operational frontier a deployment picks from")
    ap.add_argument("--finetuned", metavar="STORAGE",
                    help="the full fine-tuning baseline of benchmarks/train_finetune.py in STORAGE (one whole codec "
                         "per task, 300 steps) against the 300-step all-in-one curve trained on the same budget")
    ap.add_argument("--equal-rate", action="store_true",
                    help="all-in-one against per-task adaptors at EQUAL total rate: the 300-step all-in-one curve up to "
                         "q6 (curves-q6.yaml) against the per-task curve (curves-pertask*.yaml, every lambda), same "
                         "training budget; Delta_m of every all-in-one point the per-task curve reaches")
    ap.add_argument("--long-runs", default=os.path.join(HOME, "runs-gpu"),
                    help="with --finetuned: the 2000-step runs, drawn as a named curve (default: %(default)s)")
    a = ap.parse_args()
    print(f"machine: {machine()}")
    t0 = time.perf_counter()
    if a.finetuned:
        return finetuned(a, t0)
    if a.long:
        return long_runs(a, t0)
    if a.union:
        return union(a, t0)
    if a.levers:
        return levers(a, t0)
    if a.equal_rate:
        return equal_rate(a, t0)
    adaptors = a.adaptors or [*_trial_adaptors("curves-photo", a.sweep), *_trial_adaptors("curves-photo-lambda", LAMBDA),
                              *[p for n, f in OPTIONAL.items() for p in _trial_adaptors(n, os.path.join(SPECS, f), False)]]
    single = [f"single:{','.join(a.single)}@q2 λ=2"] if a.single else _pertask_points()
    out = a.out or _default_out("fresh")
    args = _eval_args(a, adaptors, out, [*([f"jpeg:{a.jpeg}"] if a.jpeg else []), *([f"webp:{a.webp}"] if a.webp else []),
                                         *single], pictures=3)
    if not a.skip_eval:
        _run(args)
    if a.bundle:
        bundle(adaptors, os.path.join(out, "report.json"), " ".join(["omnicodec", *args]))
    print(f"bench_curves: {(time.perf_counter() - t0) / 60:.1f} min; report: {out}/report.md")


def _eval_args(a: argparse.Namespace, adaptors: list[str], out: str, baselines: list[str] | tuple[str, ...] = (),
               pictures: int = 0) -> list[str]:
    """``omnicodec eval`` of ``adaptors`` on the fresh scenes against the frozen photo codec at
    every bundled quality, then ``baselines``; every view of this script evaluates this way."""
    qualities = sorted(c["quality"] for c in zoo.available()
                       if c.get("kind") == "codec" and c.get("arch") == "mbt2018-mean-photo")
    return ["eval", *[x for p in adaptors for x in ("--adaptors", p)], "--data", _fresh_scenes(), "--out", out,
            *[x for b in [f"frozen:mbt2018-mean-photo:{','.join(map(str, qualities))}", *baselines]
              for x in ("--baseline", b)],
            "--pictures", str(pictures), *(["--limit", str(a.limit)] if a.limit else [])]


def _default_out(view: str) -> str:
    return os.path.join(HERE, "results", f"curves-photo-{view}-s{FRESH_SEED}")


def _fresh_scenes() -> str:
    fresh = os.path.join(HOME, "data", f"scenes-fresh-s{FRESH_SEED}")
    if not os.path.exists(os.path.join(fresh, "test-000019.tar")):
        _run(["data", "scenes", "--out", fresh, "--train", "0", "--test", "1000", "--seed", str(FRESH_SEED)])
    return os.path.join(fresh, "test-{000000..000019}.tar")


def long_runs(a: argparse.Namespace, t0: float) -> None:
    """The training-length lever: the same spec trained 2000 steps (GPU) instead of 300 (CPU)."""
    def run_dir(run: str) -> str:
        return os.path.join(a.long, run)  # eval resolves a run folder to its newest checkpoint

    aio = [os.path.basename(p) for p in _runs(a.long, "long-aio-")]
    lambdas = [_lambda(p) for p in _runs(a.long, "long-cls-")]
    short = _short_curve(a)
    out = a.out or _default_out("long")
    args = _eval_args(a, [run_dir(r) for r in aio], out, [
        f"jpeg:{a.jpeg}", f"webp:{a.webp}",
        *["single:" + ",".join(f"{t}={run_dir(f'long-{t}-l{lm}')}" for t in ("cls", "seg", "det")) + f"@2000 steps λ={lm}"
          for lm in lambdas],
        *(["adaptors:all-in-one 300 steps=" + ",".join(short)] if short else [])], pictures=3)
    if not a.skip_eval:
        _run(args)
    if a.bundle:
        train = _long_train_command(None, f"on one GPU; {os.path.join(a.long, 'summary.json')} records the batch")
        bundle([run_dir(r) for r in aio], os.path.join(out, "report.json"), " ".join(["omnicodec", *args]),
               name_suffix="-long", train_command=train)
    print(f"bench_curves --long: {(time.perf_counter() - t0) / 60:.1f} min; report: {out}/report.md")


def _short_curve(a: argparse.Namespace) -> list[str]:
    """The 300-step all-in-one sets (CPU sweeps): quality ladder and lambda ladder at q2."""
    return [*_trial_adaptors("curves-photo", a.sweep, False), *_trial_adaptors("curves-photo-lambda", LAMBDA, False),
            *_trial_adaptors("curves-photo-lambda-fill", os.path.join(SPECS, OPTIONAL["curves-photo-lambda-fill"]), False)]


# run-name prefix in a train_long_gpu.py storage folder -> the curve its runs draw in --levers
LEVERS = {"long-dd-": "det distilled", "long-det2-": "det weight 2", "long-big-": "T-Adaptors 2x"}


def _lambda(run: str) -> str:
    """The lambda in a run folder's name, ``...-l<lambda>``."""
    return os.path.basename(run).rsplit("-l", 1)[-1]


def _runs(runs_dir: str, prefix: str) -> list[str]:
    """Run folders named ``<prefix>l<lambda>``, in lambda order."""
    names = [r for r in os.listdir(runs_dir) if r.startswith(prefix) and os.path.isdir(os.path.join(runs_dir, r))]
    return [os.path.join(runs_dir, r) for r in sorted(names, key=lambda r: float(_lambda(r)))]


def _not_bundled(runs: list[str]) -> list[str]:
    """The long q2 run folders whose zoo entry (``adaptors-photo-q2-l<lambda>-long``) does not exist yet."""
    return [p for p in runs if not (zoo.WEIGHTS_DIR / zoo_name(2, float(_lambda(p)), suffix="-long")).exists()]


def _long_train_command(plan: str | None, note: str) -> str:
    """A zoo card's training command for a `train_long_gpu.py` run (RUN: the run's name)."""
    return (f"python benchmarks/train_long_gpu.py {f'--plan {plan} ' if plan else ''}--data "
            f"'<scenes-192>/train-{{000000..000019}}.tar' --steps 2000 --only RUN  ({note})")


def levers(a: argparse.Namespace, t0: float) -> None:
    """The det levers after longer training: every lever its own named curve, on the same images."""
    out = a.out or _default_out("levers")
    curves = {name: _runs(a.levers, prefix) for prefix, name in LEVERS.items()}
    aio = _runs(a.levers, "long-aio-")
    args = _eval_args(a, aio, out, [f"adaptors:{name}=" + ",".join(runs) for name, runs in curves.items() if runs])
    if not a.skip_eval:
        _run(args)
        for name, runs in curves.items():  # each lever's own BD-rate against the frozen codec
            if len(runs) >= 2:
                _run(_eval_args(a, runs, os.path.join(out, name.replace(" ", "-"))))
    if a.bundle:  # the long all-in-one points not bundled yet, and the det-distilled curve
        train = _long_train_command("det", f"on one GPU; {a.levers}/summary-det-call*.json record the batch")
        new = _not_bundled(aio)
        report, command = os.path.join(out, "report.json"), " ".join(["omnicodec", *args])
        bundle(new, report, command, name_suffix="-long", train_command=train)
        bundle(curves["det distilled"], report, command, name_suffix="-detdistill-long", train_command=train,
               curve="det distilled")
    print(f"bench_curves --levers: {(time.perf_counter() - t0) / 60:.1f} min; report: {out}/report.md")


def union(a: argparse.Namespace, t0: float) -> None:
    longs = [p for runs_dir in a.union for prefix in ("long-aio-", *LEVERS) for p in _runs(runs_dir, prefix)]
    out = a.out or _default_out("union")
    args = _eval_args(a, [*longs, *_short_curve(a)], out)
    if not a.skip_eval:
        _run(args)
    if a.bundle:  # long all-in-one runs not in the zoo yet (e.g. a later --plan fill run), one call per plan
        from train_long_gpu import PLANS

        new = _not_bundled([p for p in longs if os.path.basename(p).startswith("long-aio-")])
        for plan, runs in PLANS.items():
            mine = [p for p in new if os.path.basename(p) in runs]
            if mine:
                train = _long_train_command(plan, "--device cuda on one GPU, or --device cpu --threads 2 on 2 cores: "
                                                  "the same run")
                bundle(mine, os.path.join(out, "report.json"), " ".join(["omnicodec", *args]), name_suffix="-long",
                       train_command=train)
    print(f"bench_curves --union: {(time.perf_counter() - t0) / 60:.1f} min; report: {out}/report.md")


def equal_rate(a: argparse.Namespace, t0: float) -> None:
    """Delta_m at equal rate against single-task adaptors (issue 9): one all-in-one bitstream
    against three per-task ones whose rates add up. Both trained 300 steps on 2 cores; the
    per-task curve starts where its lambda still pays for three streams (0.4, lower collapses),
    so the all-in-one curve is extended to q6 to reach it. q5's trial lives in the zoo only
    (its sweep was stopped before recording it)."""
    top = _trial_adaptors(TOP[0], os.path.join(SPECS, TOP[1]), run_missing=True)
    q5 = zoo.WEIGHTS_DIR / zoo_name(5, 2.0)
    aio = [*_short_curve(a), *([str(q5)] if q5.exists() else []), *top]
    out = a.out or _default_out("equalrate")
    args = _eval_args(a, aio, out, _pertask_points())
    if not a.skip_eval:
        _run(args)
    if a.bundle:
        bundle([p for p in top if not (zoo.WEIGHTS_DIR / zoo_name(6, 2.0)).exists()], os.path.join(out, "report.json"),
               " ".join(["omnicodec", *args]))
    print(f"bench_curves --equal-rate: {(time.perf_counter() - t0) / 60:.1f} min; report: {out}/report.md")


def finetuned(a: argparse.Namespace, t0: float) -> None:
    """Full fine-tuning (one codec per task, every weight) against adaptors at the same training
    budget (300 steps of 8 scenes), with the 2000-step adaptor curve beside them."""
    from omnicodec.jobs.codec_job import WEIGHTS_FILE
    from omnicodec.jobs.local import latest_checkpoint

    runs = {}  # lambda -> {task: codec weights}
    for run in sorted(os.listdir(a.finetuned)):
        ck = latest_checkpoint(os.path.join(a.finetuned, run))
        if run.startswith("ft-") and ck:
            runs.setdefault(_lambda(run), {})[run.split("-")[1]] = os.path.join(ck, WEIGHTS_FILE)
    points = [f"finetuned:{','.join(f'{t}={w}' for t, w in sorted(ws.items()))}@300 steps λ={lm}"
              for lm, ws in sorted(runs.items(), key=lambda kv: float(kv[0])) if len(ws) == 3]
    if not points:
        raise SystemExit(f"no complete fine-tuned set (cls, seg and det at one lambda) in {a.finetuned}")
    longs = _runs(a.long_runs, "long-aio-") if os.path.isdir(a.long_runs) else []
    out = a.out or _default_out("finetune")
    _run(_eval_args(a, _short_curve(a), out, [*points, *(["adaptors:all-in-one 2000 steps=" + ",".join(longs)]
                                                          if longs else [])]))
    print(f"bench_curves --finetuned: {(time.perf_counter() - t0) / 60:.1f} min; report: {out}/report.md")


def zoo_name(quality: int, lmbda: float, mu: float = 0.0, decoder_only: bool = False, suffix: str = "") -> str:
    """The zoo's name for a photo-codec adaptor set (λ=2 is the default and goes unnamed)."""
    return (f"adaptors-photo-q{quality}" + ("" if lmbda == 2.0 else f"-l{lmbda:g}") + (f"-mu{mu:g}" if mu else "")
            + ("-decoder-only" if decoder_only else "") + suffix)


def bundle(adaptors: list[str], report_json: str, eval_command: str, name_suffix: str = "",
           train_command: str | None = None, curve: str | None = None) -> None:
    """Each adaptor set into ``zoo/weights/adaptors-photo-q<N>/`` with ``card.json``: how it
    was trained (config, training shards' sha256), how it was measured (the evaluation
    command, the test set's provenance) and its operating point with 95 % intervals.
    ``curve``: the report's name for these sets when they were evaluated as a named
    ``adaptors:NAME=...`` baseline rather than as the all-in-one curve."""
    import shutil

    from omnicodec.adaptors.checkpoint import resolve
    from omnicodec.data.shards import shard_hashes
    from omnicodec.eval.evaluate import describe_adaptors
    from omnicodec.model import OmniCodec

    report = json.load(open(report_json))

    for location in adaptors:
        location = resolve(location)  # a run folder -> its newest checkpoint's adaptors/
        model = OmniCodec.from_checkpoint(location)
        q = model.codec.spec.quality
        lmbda, mu = model.metadata.get("lmbda", 2.0), model.metadata.get("human_weight") or 0.0
        system, suffix = describe_adaptors(model.metadata, "", q)
        system = curve or system
        name = zoo_name(q, lmbda, mu, system.startswith("decoder-only"), name_suffix)
        (point,) = [p for p in report["points"] if p["system"] == system and p["label"].endswith(suffix)]
        dest = zoo.WEIGHTS_DIR / name
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(location, dest)
        cfg = model.metadata.get("config", {})
        card = {"name": name, "kind": "adaptors", "codec": f"{model.codec.spec.arch} q{q}",
                "tasks": model.tasks, "lmbda": model.metadata.get("lmbda"),
                "command": train_command.replace("RUN", str(model.metadata.get("run"))) if train_command else
                f"omnicodec sweep jobs/omnicodec/jobs/specs/{_spec_of(location)}  (its trial "
                f"{model.metadata.get('run')}; relaunching resumes an interrupted sweep)",
                "system": system,
                "train_config": cfg, "train_data": {"shards_sha256": shard_hashes(cfg["data"]["shards"])},
                "evaluation": {"command": eval_command, "images": report["images"],
                               "provenance": report["provenance"], "bootstrap": report["bootstrap"]},
                "metrics": {k: point[k] for k in ("bpp", "psnr", "primary", "ci")},
                "parameters": sum(p.numel() for p in model.parameters())}
        (dest / "card.json").write_text(json.dumps(card, indent=2, default=str) + "\n")
        print(f"bundled {name}: {point['bpp']:.3f} bpp, {point['primary']}")


def _spec_of(location: str) -> str:
    """The sweep spec that trained the adaptors at ``location`` (sweeps keep trials under their name)."""
    for name, spec in (*OPTIONAL.items(), ("curves-photo-lambda", "curves-lambda.yaml"), TOP,
                       ("curves-photo-pertask", "curves-pertask.yaml")):
        if f"/{name}/" in location:
            return spec
    return "curves.yaml"


if __name__ == "__main__":
    main()
