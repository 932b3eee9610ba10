"""Multi-task adaptor training: the platform's main job.

The objective itself lives in the core (``omnicodec.objective``, testable without Ray);
this job orchestrates it. One step::

    parts = objective(model, x, batch)         # R + lambda * sum_t w_t L_t [+ human term], and its parts
    parts["loss"].backward(); clip; AdamW step; LR schedule step

DDP wraps the OmniCodec, whose only parameters are the adaptors; the frozen task networks
live in the objective, outside DDP.

Rank 0 exports an adaptor-only checkpoint (``adaptors/`` in every Ray checkpoint) that
``omnicodec eval``, ``encode``, ``decode`` and Serve load directly.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, Literal

import torch
from pydantic import Field, field_validator, model_validator

from omnicodec import storage
from omnicodec.adaptors import AdaptorConfig
from omnicodec.adaptors.sets import check_task_names
from omnicodec.codec import CodecSpec, load_codec
from omnicodec.config import Config
from omnicodec.data.loader import LoaderConfig, make_loader
from omnicodec.jobs.runner import Job
from omnicodec.jobs.specs import ADAPTOR_PATH_KEYS, OptimSpec, RunSpec
from omnicodec.model import OmniCodec
from omnicodec.objective import MultiTaskObjective, TaskTerm, floats, rate_scale
from omnicodec.tasks.registry import TaskInfo, get_task, load_task_net, register_task, task_from_definition

ADAPTORS_DIR = "adaptors"


class TaskSpec(Config):
    """A bundled task by name, or your own: ``{name, kind, network: {builder, weights, ...}}``."""

    name: str
    weight: float = Field(1.0, ge=0)
    loss: Literal["label", "distill", "mixed"] = Field(
        "label", description="label: the network's own loss on the shards' labels; distill: label-free, match "
                             "its features on the original; mixed: label + distill_weight x distill")
    distill_weight: float = Field(1.0, ge=0, description="loss: mixed: the distillation term's weight")
    kind: str | None = Field(None, description="task kind of a network you bring (any registered kind: "
                                                "omnicodec.tasks.kinds)")
    network: dict[str, Any] | None = Field(None, description="your frozen network (omnicodec.tasks.byo.NetworkSpec)")
    labelled: bool = Field(False, description="your network's classes match the shards' labels (else: label-free metrics)")
    num_classes: int | None = Field(None, ge=1)
    classes: list[str] | None = None

    @model_validator(mode="after")
    def _known(self) -> TaskSpec:
        """Bundled names must exist and a definition must build a task; validating registers
        nothing (``register`` does, in each process that runs the job). Errors are ConfigErrors
        naming the key."""
        if self.network is None and self.kind is not None:
            raise ValueError(f"task '{self.name}': kind needs a network (builder, weights, ...)")
        info = self.info()  # a bundled name must exist; a definition must make a task
        if self.loss in ("label", "mixed") and not info.labelled:
            raise ValueError(f"task '{self.name}' is label-free (its classes are not the shards' labels): "
                             f"use loss: distill, not {self.loss}")
        return self

    def info(self) -> TaskInfo:
        """The bundled task of this name, or the task this definition makes (unregistered)."""
        return get_task(self.name) if self.network is None else task_from_definition(self.model_dump())

    def register(self) -> None:
        """Make a task defined here known to this process (``get_task``, ``load_task_net``)."""
        if self.network is not None:
            register_task(self.info())

    def definition(self) -> dict[str, Any] | None:
        return self.info().to_dict() if self.network is not None else None


class ValidationSpec(Config):
    """A small held-out batch scored at every report: what schedulers (ASHA) stop trials on."""

    shards: str | list[str] = Field(..., description="held-out shards, never the training shards")
    images: int = Field(8, ge=1, le=256, description="the first N samples (equal sizes), scored at every report")


class AdaptorTrainConfig(Config):
    path_keys = ADAPTOR_PATH_KEYS

    run: RunSpec = Field(default_factory=lambda: RunSpec(name="adaptors"))
    optim: OptimSpec = Field(default_factory=lambda: OptimSpec(steps=500, lr=1e-3, warmup_steps=20))
    data: LoaderConfig
    codec: CodecSpec = Field(default_factory=CodecSpec)
    adaptor: AdaptorConfig = Field(default_factory=AdaptorConfig)
    tasks: list[TaskSpec]
    lmbda: float = Field(1.0, gt=0, description="L = R + lmbda * sum_t w_t L_t")
    human_weight: float = Field(0.0, ge=0, description="mu: adds mu * 255^2 * MSE of the frozen decoder's "
                                                       "view, so people watching the same stream lose less")
    train_s_adaptor: bool = Field(True, description="False: decoder-only ablation (one bitstream = the codec's)")
    train_t_adaptors: bool = Field(True, description="False: encoder-only ablation")
    validation: ValidationSpec | None = Field(None, description="report val_* (objective parts on held-out "
                                                                "images) at every checkpoint")
    extend: str | None = Field(None, description="task N+1: a trained adaptor set (run, checkpoint or zoo:NAME) "
                                                 "whose codec, S-Adaptor and T-Adaptors are kept frozen; only the "
                                                 "T-Adaptors of `tasks` are trained, so the streams do not change")
    init: str | None = Field(None, description="warm start: a trained set (run, checkpoint or zoo:NAME) of the same "
                                               "codec, adaptor config and tasks whose adaptors this run starts from "
                                               "(fresh optimizer and schedule): try a new loss or more steps on a "
                                               "set without training it again from the identity")

    @field_validator("extend", "init")
    @classmethod
    def _local_set_made_absolute(cls, v: str | None) -> str | None:
        """A local folder is made absolute here, in the driver (Ray workers run elsewhere); a run
        name, ``zoo:NAME`` or a URL is kept as given."""
        if v and not storage.is_url(v) and not v.startswith("zoo:") and os.path.exists(os.path.expanduser(v)):
            return os.path.abspath(os.path.expanduser(v))
        return v

    @model_validator(mode="after")
    def _tasks(self) -> AdaptorTrainConfig:
        if not self.tasks:
            raise ValueError("tasks: at least one task is needed")
        check_task_names([t.name for t in self.tasks])
        if not (self.train_s_adaptor or self.train_t_adaptors):
            raise ValueError("train_s_adaptor and train_t_adaptors cannot both be false")
        if self.extend and self.init:
            raise ValueError("extend and init: give one (extend adds tasks to a set; init continues a set)")
        if self.extend and (self.train_s_adaptor or not self.train_t_adaptors):
            raise ValueError("extend: the S-Adaptor of the set being extended stays frozen (its streams must not "
                             "change): set train_s_adaptor: false (and train_t_adaptors: true)")
        return self

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]

    def register_tasks(self) -> None:
        """The tasks this config defines, made known to this process (driver and every worker)."""
        for t in self.tasks:
            t.register()

    def preflight(self) -> None:
        """Run in the driver before Ray starts (``runner.preflight``): each network a task brings
        is built and run once at its configured layers, and the set ``extend`` or ``init`` names
        is loaded and checked against this run, so their errors are one line now, not two
        worker tracebacks a minute later with a run folder left behind."""
        from omnicodec.tasks.byo import check_network

        self.register_tasks()
        for t in self.tasks:
            if t.network is not None:
                check_network(t.name, self.data.crop or 64)
        if self.extend:
            _extended(self)
        if self.init:
            _warm_started(OmniCodec(load_codec(self.codec), self.task_names, self.adaptor), self)


def _validation_batch(spec: ValidationSpec, crop: int | None) -> dict[str, Any]:
    """The first ``spec.images`` held-out samples, each cut (with its labels) to the training
    crop, or else to the largest multiple of 64 pixels the codec codes without padding, at a
    seeded position: the same batch at every report and in every trial."""
    import random

    from omnicodec.data.loader import collate, iter_samples, random_crop
    from omnicodec.errors import DataError

    samples = []
    for s in iter_samples(spec.shards):
        side = crop or max(64, min(s.image.shape[-2:]) // 64 * 64)
        s = random_crop(s, side, random.Random(len(samples)))
        if samples and s.image.shape != samples[0].image.shape:
            raise DataError(f"validation: sample '{s.key}' in {s.url} is {tuple(s.image.shape[1:])}, the first is "
                            f"{tuple(samples[0].image.shape[1:])}: validation images must share one size")
        samples.append(s)
        if len(samples) == spec.images:
            break
    return collate(samples)


def _extended(cfg: AdaptorTrainConfig) -> tuple[OmniCodec, dict[str, Any]]:
    """The set ``cfg.extend`` names, with fresh T-Adaptors for ``cfg.tasks`` beside its own: same
    codec, same adaptor config, same S-Adaptor (so the same streams and S-fingerprint)."""
    from omnicodec.adaptors.checkpoint import resolve
    from omnicodec.errors import ConfigError

    base = OmniCodec.from_checkpoint(resolve(cfg.extend, cfg.run.storage))
    clash = [t for t in cfg.task_names if t in base.tasks]
    if clash:
        raise ConfigError(f"extend: {cfg.extend} already has T-Adaptors for {clash}; give only new tasks")
    model = OmniCodec(base.codec, [*base.tasks, *cfg.task_names], base.adaptors.config)
    missing, unexpected = model.adaptors.load_state_dict(base.adaptors.state_dict(), strict=False)
    assert not unexpected and all(k.startswith(tuple(f"t.{t}." for t in cfg.task_names)) for k in missing)
    return model, dict(getattr(base, "metadata", {}) or {})


def _warm_started(model: OmniCodec, cfg: AdaptorTrainConfig) -> dict[str, Any]:
    """Load the adaptors of the set ``cfg.init`` names into ``model`` (this run's fresh set):
    the codec must be the same (by fingerprint; ``from_checkpoint`` refuses another), and so
    must the adaptor config and the tasks, or the weights would not mean the same thing. A
    resumed run's own checkpoint replaces these weights afterwards. Returns what to record."""
    from omnicodec.adaptors.checkpoint import resolve
    from omnicodec.errors import ConfigError, FingerprintMismatch

    try:
        base = OmniCodec.from_checkpoint(resolve(cfg.init, cfg.run.storage), codec=model.codec)
    except FingerprintMismatch as e:  # a config error of this run: one line, no run folder left behind
        raise ConfigError(f"init: {e} (set codec: to the set's codec to continue it)") from e
    if base.adaptors.config.identity_json() != model.adaptors.config.identity_json():
        raise ConfigError(f"init: {cfg.init} has adaptor config {base.adaptors.config.identity_json()}, this run "
                          f"{model.adaptors.config.identity_json()}: set adaptor: to the set's to continue it")
    if sorted(base.tasks) != sorted(model.tasks):
        raise ConfigError(f"init: {cfg.init} has tasks {base.tasks}, this run {model.tasks}: continue a set with its "
                          f"own tasks (extend adds new ones)")
    model.adaptors.load_state_dict(base.adaptors.state_dict())
    meta = dict(getattr(base, "metadata", {}) or {})
    return {"init": cfg.init, "init_run": meta.get("run"), "init_samples": trained_samples(meta)}


def trained_samples(meta: dict[str, Any]) -> int | None:
    """Training samples (steps x batch x workers) that went into a set, its warm starts'
    included: what a cost comparison counts. None where its card does not say."""
    try:
        cfg = meta["config"]
        own = cfg["optim"]["steps"] * cfg["data"]["batch_size"] * cfg["run"]["num_workers"]
    except (KeyError, TypeError):
        return None
    return own + (meta.get("init_samples") or 0)


class AdaptorTrainJob(Job):
    config_class = AdaptorTrainConfig
    config: AdaptorTrainConfig

    def setup(self) -> None:
        cfg = self.config
        cfg.register_tasks()
        self.device = self.worker_device()
        if cfg.extend:
            model, self.base_metadata = _extended(cfg)
        else:
            model, self.base_metadata = OmniCodec(load_codec(cfg.codec), cfg.task_names, cfg.adaptor), {}
        self.init_metadata = _warm_started(model, cfg) if cfg.init else {}
        model.adaptors.s.requires_grad_(cfg.train_s_adaptor)
        for name, stack in model.adaptors.t.items():
            stack.requires_grad_(cfg.train_t_adaptors and name in cfg.task_names)
        self.objective = MultiTaskObjective(
            [TaskTerm(t.name, load_task_net(t.name).to(self.device), t.weight, t.loss, t.distill_weight)
             for t in cfg.tasks],
            cfg.lmbda, cfg.human_weight)
        # DDP wraps OmniCodec, whose only parameters are the adaptors: the frozen codec is a
        # plain attribute and the task networks live outside it.
        self.model = self.prepare(model.to(self.device))
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.make_optimizer(self.params, cfg.optim)

    def batches(self, segment: int) -> Iterator[Any]:
        return make_loader(self.config.data, self.rank, self.world_size, segment)

    def validate(self) -> dict[str, float]:
        """The objective's parts (bpp, each task's loss, the total) on the held-out images,
        without gradients and with a fixed seed, so reports of one run, and of the trials of
        a sweep, are comparable: ``val_loss``, ``val_bpp``, ``val_L_<task>``."""
        spec = self.config.validation
        if spec is None:
            return {}
        if getattr(self, "_val_batch", None) is None:
            self._val_batch = _validation_batch(spec, self.config.data.crop)
        model = self.unwrapped()
        was = model.training
        model.eval()
        try:
            with torch.no_grad(), torch.random.fork_rng():
                torch.manual_seed(0)
                parts = self.objective(model, self._val_batch["image"].to(self.device), self._val_batch)
        finally:
            model.train(was)
        return {f"val_{k}": v for k, v in floats(parts).items()}

    def train_step(self, batch: dict[str, Any], step: int) -> dict[str, float]:
        x = batch["image"].to(self.device)
        rate: dict[str, Any] = {}
        if self.config.adaptor.rate_levels:  # one set for every rate: a position per batch
            codec = self.unwrapped().codec.model
            position = float(torch.rand(()) * (codec.levels - 1))
            rate = {"position": position, "lmbda_scale": rate_scale(codec, position)}
        parts = self.objective(self.model, x, batch, **rate)
        self.optimizer.zero_grad(set_to_none=True)
        parts["loss"].backward()
        norm = self.clip_and_step(self.params, self.config.optim)
        return {**floats(parts), "grad_norm": norm, **({"rate_position": rate["position"]} if rate else {})}

    def export(self, directory: str) -> None:
        cfg = self.config
        base = self.base_metadata
        self.unwrapped().to("cpu").save(os.path.join(directory, ADAPTORS_DIR), metadata={
            **base, "run": cfg.run.name, "lmbda": base.get("lmbda", cfg.lmbda),
            "human_weight": base.get("human_weight", cfg.human_weight),
            "tasks": [*base.get("tasks", []), *(t.to_dict() for t in cfg.tasks)],
            "task_definitions": [*base.get("task_definitions", []), *(d for d in (t.definition() for t in cfg.tasks) if d)],
            **({"extended_from": cfg.extend, "extension_lmbda": cfg.lmbda} if cfg.extend else {}),
            **self.init_metadata,
            # an extended set keeps how its S-Adaptor was trained (eval names curves by it)
            "train_s_adaptor": base.get("train_s_adaptor", cfg.train_s_adaptor),
            "train_t_adaptors": base.get("train_t_adaptors", cfg.train_t_adaptors),
            "config": cfg.to_dict(),
        })
        self.unwrapped().to(self.device)
