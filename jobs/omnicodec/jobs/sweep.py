"""``omnicodec sweep``: Ray Tune over adaptor sizes, lambda and task weights; Pareto front.

Each trial is a Ray Tune function that runs one Ray Train fit (Train V2 has no
``Tuner(trainer)``) and reports its training metrics through ``TuneReportCallback``;
the trial then evaluates its adaptors on held-out shards from real bitstreams and
reports the final objectives: real bpp (minimise) and the mean task score (maximise).
The sweep ends with the non-dominated trials: ``pareto.png``, ``trials.csv``,
``sweep.json``.
"""

from __future__ import annotations

import copy
import json
import os
from typing import Any, Literal

from pydantic import Field, model_validator

from omnicodec import storage
from omnicodec.config import Config, apply_overrides, resolve_paths
from omnicodec.errors import ConfigError
from omnicodec.jobs.specs import ADAPTOR_PATH_KEYS, DEFAULT_HOME


class SearchDim(Config):
    """One searched key: exactly one of grid / choice / uniform / loguniform / randint."""

    grid: list[Any] | None = None
    choice: list[Any] | None = None
    uniform: tuple[float, float] | None = None
    loguniform: tuple[float, float] | None = None
    randint: tuple[int, int] | None = None

    @model_validator(mode="after")
    def _one(self) -> SearchDim:
        if sum(v is not None for v in (self.grid, self.choice, self.uniform, self.loguniform, self.randint)) != 1:
            raise ValueError("give exactly one of grid, choice, uniform, loguniform, randint")
        return self

    def to_tune(self):
        from ray import tune

        if self.grid is not None:
            return tune.grid_search(self.grid)
        if self.choice is not None:
            return tune.choice(self.choice)
        if self.uniform is not None:
            return tune.uniform(*self.uniform)
        if self.loguniform is not None:
            return tune.loguniform(*self.loguniform)
        return tune.randint(*self.randint)


class SchedulerSpec(Config):
    """Early stopping: ASHA on a metric every trial reports at each checkpoint. Trials get a
    validation batch (``validation_images`` of ``eval_data``) and report ``val_loss``,
    ``val_bpp`` and ``val_L_<task>``; stop on ``val_loss`` when trials share lambda and task
    weights (searching widths, families, learning rates), on a ``val_L_<task>`` otherwise."""

    kind: Literal["asha"] = "asha"
    metric: str = "val_loss"
    mode: Literal["min", "max"] = "min"
    grace_period: int = Field(2, ge=1, description="reports every trial gets before it can be stopped")
    reduction_factor: float = Field(2.0, gt=1)
    validation_images: int = Field(8, ge=1, le=256)


class SweepConfig(Config):
    # a spec's own relative `train:` is next to the spec; --set train=... and the rest: the working directory
    path_keys = ("storage", "train", "eval_data")
    spec_path_keys = ("train",)

    name: str = "sweep"
    storage: str = Field(os.path.join(DEFAULT_HOME, "sweeps"))
    train: str | dict[str, Any] = Field(..., description="training YAML path, or its content inline")
    train_set: list[str] = Field(default_factory=list, description="KEY=VALUE overrides of the training config "
                                 "(on the command line: --set train.KEY=VALUE)")
    search: dict[str, SearchDim] = Field(..., description="config key path -> search space")
    num_samples: int = Field(1, ge=1)
    searcher: Literal["basic", "optuna"] = "basic"
    max_concurrent_trials: int = Field(1, ge=1)
    trial_cpus: float = Field(0.1, gt=0, description="CPU held by each trial's driver function")
    eval_data: str | list[str] = Field(..., description="held-out shards for the objectives")
    eval_limit: int | None = Field(None, ge=1)
    time_budget_s: float | None = Field(None, gt=0)
    scheduler: SchedulerSpec | None = Field(None, description="early stopping (e.g. {kind: asha, metric: val_loss})")

    def base_train(self) -> dict[str, Any]:
        """The training config with ``train_set`` applied and its paths absolute (against the
        working directory: it is called in the driver first, whose result trials receive)."""
        import yaml

        from omnicodec.jobs.shipped import find_spec

        if isinstance(self.train, dict):
            base = copy.deepcopy(self.train)
        else:
            try:
                base = yaml.safe_load(storage.read_text(find_spec(self.train, by_basename=True)))
            except ConfigError as e:
                raise ConfigError(f"sweep key 'train': {e}") from None
        return resolve_paths(apply_overrides(base, self.train_set), ADAPTOR_PATH_KEYS)

    @classmethod
    def from_cli(cls, path: str, sets: list[str]) -> SweepConfig:
        """``--set train.KEY=VALUE`` overrides the training config (even a referenced YAML);
        any other ``--set`` overrides the sweep config."""
        cfg = cls.from_yaml(path, [s for s in sets if not s.startswith("train.")])
        cfg.train_set = [*cfg.train_set, *(s[len("train."):] for s in sets if s.startswith("train."))]
        return cfg


def _trial(config: dict[str, Any], sweep: dict[str, Any]) -> None:
    from ray import tune
    from ray.tune.integration.ray_train import TuneReportCallback

    from omnicodec.eval.evaluate import run_evaluation
    from omnicodec.eval.systems import AllInOne
    from omnicodec.jobs.adaptor_job import AdaptorTrainConfig
    from omnicodec.jobs.train import train_adaptors
    from omnicodec.model import OmniCodec

    cfg = SweepConfig.from_dict(sweep)
    trial_id = tune.get_context().get_trial_id()
    train = apply_overrides(cfg.base_train(), [f"{k}={json.dumps(v)}" for k, v in config.items()])
    if cfg.scheduler is not None and not train.get("validation"):
        train["validation"] = {"shards": cfg.eval_data, "images": cfg.scheduler.validation_images}
    train.setdefault("run", {})
    train["run"].update(name=f"{cfg.name}-{trial_id}", storage=storage.join(cfg.storage, cfg.name, "trials"))
    tcfg = AdaptorTrainConfig.from_dict(train, source=f"trial {trial_id}")
    result = train_adaptors(tcfg, callbacks=[TuneReportCallback()])
    if result.error:
        raise RuntimeError(result.error)
    model = OmniCodec.from_checkpoint(result.metrics["adaptors"])
    report = run_evaluation([AllInOne(model, trial_id)], cfg.eval_data, model.tasks, None, cfg.eval_limit, progress=False,
                            resamples=0)
    point = report["points"][0]
    tune.report({"eval_bpp": point["bpp"], "eval_score": float(sum(point["primary"].values()) / len(point["primary"])),
                 **{f"eval_{t}": v for t, v in point["primary"].items()}, "eval_psnr": point["psnr"] or 0.0,
                 "adaptors": result.metrics["adaptors"], "trainable": sum(p.numel() for p in model.parameters()),
                 **{k: v for k, v in result.metrics.items() if k.startswith("val_")}})  # what a scheduler reads


def run_sweep(cfg: SweepConfig) -> dict[str, Any]:
    """Search the space on Ray Tune (restoring an interrupted sweep of the same name), then
    write the report with the rate/accuracy Pareto front."""
    from functools import partial

    from ray import tune

    from omnicodec.jobs.adaptor_job import AdaptorTrainConfig
    from omnicodec.jobs.reaper import ReapStoppedTrials

    # Trials run in their own working folders: hand them the training config itself, read
    # here (a relative `train:` path means the caller's folder), with the overrides applied.
    cfg = cfg.model_copy(update={"train": cfg.base_train(), "train_set": []})
    train_cfg = AdaptorTrainConfig.from_dict(cfg.base_train(), source="sweep train config")
    _check_search_keys(cfg, train_cfg.to_dict())
    _check_trial_fits(cfg, train_cfg)
    trainable = tune.with_resources(partial(_trial, sweep=cfg.to_dict()), {"cpu": cfg.trial_cpus})
    path = storage.join(cfg.storage, cfg.name)
    reaper = ReapStoppedTrials()
    if tune.Tuner.can_restore(path):  # (a restored experiment brings back the callbacks it started with)
        tuner = tune.Tuner.restore(path, trainable, resume_errored=True)
    else:
        tuner = tune.Tuner(
            trainable, param_space={k: v.to_tune() for k, v in cfg.search.items()},
            tune_config=tune.TuneConfig(num_samples=cfg.num_samples, search_alg=_search_algorithm(cfg),
                                        scheduler=_scheduler(cfg, train_cfg),
                                        max_concurrent_trials=cfg.max_concurrent_trials,
                                        time_budget_s=cfg.time_budget_s),
            run_config=tune.RunConfig(name=cfg.name, storage_path=storage.absolute(cfg.storage),
                                      callbacks=[reaper]),
        )
    trials = [_trial_row(r) for r in tuner.fit()]
    front = pareto_front([t for t in trials if t["eval_bpp"] is not None])
    summary = {"name": cfg.name, "trials": trials, "pareto": front,
               "freed_placement_groups": reaper.removed}  # of Train runs whose trial was stopped early
    write_sweep_report(summary, path)
    return summary


def _check_search_keys(cfg: SweepConfig, resolved: dict[str, Any]) -> None:
    """Every search key must exist in the training config: a typo would silently sweep nothing."""
    for key in cfg.search:
        node: Any = resolved
        for part in key.split("."):
            if isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            elif isinstance(node, dict) and part in node:
                node = node[part]
            else:
                raise ConfigError(f"search key '{key}' is not a key of the training config")


def _search_algorithm(cfg: SweepConfig):
    if cfg.searcher != "optuna":
        return None
    from ray.tune.search.optuna import OptunaSearch

    return OptunaSearch(metric=["eval_bpp", "eval_score"], mode=["min", "max"])


def _scheduler(cfg: SweepConfig, train_cfg):
    if cfg.scheduler is None:
        return None
    from ray.tune.schedulers import ASHAScheduler

    # A trial reports once per checkpoint, then once more with its evaluation: max_t leaves
    # that last report alone (ASHA stops every trial that reaches max_t).
    reports = max(1, -(-train_cfg.optim.steps // train_cfg.run.checkpoint_every))
    sch = cfg.scheduler
    return ASHAScheduler(metric=sch.metric, mode=sch.mode, max_t=reports + 1,
                         grace_period=min(sch.grace_period, reports), reduction_factor=sch.reduction_factor)


def _trial_row(r) -> dict[str, Any]:
    """One trial of the result grid as a row of the sweep report."""
    m = r.metrics or {}
    status = "error" if r.error else ("done" if m.get("eval_bpp") is not None else "stopped early")
    return {"trial": os.path.basename(r.path), "config": r.config, "error": str(r.error) if r.error else None,
            "status": status, "reports": m.get("training_iteration"),
            **{k: m[k] for k in m if k.startswith("val_")},  # the last report's (stopped trials too)
            **{k: m.get(k) for k in ("eval_bpp", "eval_score", "eval_psnr", "trainable", "adaptors")},
            **{k: v for k, v in m.items() if k.startswith("eval_") and k not in ("eval_bpp", "eval_score", "eval_psnr")}}


def _check_trial_fits(cfg: SweepConfig, train_cfg) -> None:
    """A trial holds ``trial_cpus`` for its driver plus its Ray Train workers; on a cluster
    that cannot fit that, Ray Train would wait forever. Fail now, in one line."""
    import ray

    from omnicodec.runtime.ray_env import check_fits, init_ray

    if not ray.is_initialized():
        init_ray()
    run = train_cfg.run
    check_fits("each sweep trial", cfg.trial_cpus + run.num_workers * run.cpus_per_worker,
               run.num_workers if run.use_gpu else 0,
               f"trial_cpus {cfg.trial_cpus:g} + {run.num_workers} workers x {run.cpus_per_worker:g} CPU")


def preflight_sweep(cfg: SweepConfig) -> None:
    """What the driver can check before Ray starts: the training config validates, its shards
    and brought networks pass the training preflight, and ``eval_data`` exists."""
    from omnicodec.data.shards import check_shards_exist
    from omnicodec.jobs.adaptor_job import AdaptorTrainConfig
    from omnicodec.jobs.runner import preflight

    preflight(AdaptorTrainConfig.from_dict(cfg.base_train(), source="sweep train config"))
    check_shards_exist(cfg.eval_data, "eval_data")


def pareto_front(trials: list[dict[str, Any]]) -> list[str]:
    """Trials no other trial beats on both rate (lower) and score (higher)."""
    front = []
    for t in trials:
        dominated = any(o["eval_bpp"] <= t["eval_bpp"] and o["eval_score"] >= t["eval_score"]
                        and (o["eval_bpp"] < t["eval_bpp"] or o["eval_score"] > t["eval_score"]) for o in trials)
        if not dominated:
            front.append(t["trial"])
    return front


def param_label(config: dict[str, Any]) -> str:
    """``lmbda=1, bottleneck_ratio=4, tasks.0.weight=1.3``: the searched keys, last part named."""
    def short(v: Any) -> str:
        return f"{v:.3g}" if isinstance(v, float) else str(v)
    return ", ".join(f"{k.split('.')[-1] if not k.split('.')[-1] == 'weight' else k}={short(v)}"
                     for k, v in sorted(config.items()))


def write_sweep_report(summary: dict[str, Any], out: str) -> None:
    import csv
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trials = [t for t in summary["trials"] if t["eval_bpp"] is not None]
    fig, ax = plt.subplots(figsize=(5.2, 3.8), dpi=110)
    ax.scatter([t["eval_bpp"] for t in trials], [t["eval_score"] for t in trials], label="trials", alpha=0.6)
    front = sorted((t for t in trials if t["trial"] in summary["pareto"]), key=lambda t: t["eval_bpp"])
    ax.plot([t["eval_bpp"] for t in front], [t["eval_score"] for t in front], "r-o", label="Pareto front")
    for t in front:  # a front point is only useful if it says which settings produced it
        ax.annotate(param_label(t["config"]), (t["eval_bpp"], t["eval_score"]), textcoords="offset points",
                    xytext=(4, 4), fontsize=7)
    ax.set_xlabel("bits per pixel (real bytes)")
    ax.set_ylabel("mean task score")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    storage.write_bytes(storage.join(out, "pareto.png"), buf.getvalue())
    keys = sorted({k for t in summary["trials"] for k in t if k != "config"})
    sbuf = io.StringIO()
    w = csv.writer(sbuf)
    w.writerow([*keys, "config"])
    for t in summary["trials"]:
        w.writerow([*(t.get(k) for k in keys), json.dumps(t["config"])])
    storage.write_text(storage.join(out, "trials.csv"), sbuf.getvalue())
    storage.write_text(storage.join(out, "sweep.json"), json.dumps(summary, indent=2, default=str))
