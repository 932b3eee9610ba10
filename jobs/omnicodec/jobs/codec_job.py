"""Training every weight of a codec: for human viewing (rate + lambda * 255^2 * MSE), or
fully fine-tuned for ONE machine task (rate + lambda * L_task).

CompressAI's recipe on the platform's machinery: the main loss trains every weight, the
auxiliary loss trains the entropy bottleneck's quantiles, and ``update(force=True)``
builds the CDF tables before the weights are exported. ``init_from`` fine-tunes from an
existing codec (a bundled ``arch:quality`` or a checkpoint), the usual way to get
further points of a rate ladder cheaply. The loss is the core's ``RateDistortionLoss``
(``omnicodec.objective``, testable without Ray); this job orchestrates it.

``task`` set: the distortion is that task's term of the adaptor objective (the frozen
network's label loss, or distillation against it on the original) on the reconstruction.
This is the *full fine-tuning* baseline of the method: one whole codec per task (every
weight, 100 % of the parameters, one bitstream per task), against which a shared
S-Adaptor and per-task T-Adaptors (about 2 % of the parameters) are measured.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import torch
from pydantic import Field, field_validator, model_validator

from omnicodec import storage
from omnicodec.codec import build_codec, load_codec_state_dict
from omnicodec.codec.gain import is_variable_rate, sample_positions
from omnicodec.codec.gain import load_into as load_gained
from omnicodec.config import Config
from omnicodec.data.loader import LoaderConfig, make_loader
from omnicodec.jobs.adaptor_job import TaskSpec
from omnicodec.jobs.runner import Job
from omnicodec.jobs.specs import RUN_PATH_KEYS, OptimSpec, RunSpec
from omnicodec.objective import RateDistortionLoss, TaskTerm, floats

# CompressAI's MSE ladder (quality 1..6); the bundled small codecs use the same lambdas.
LAMBDA_LADDER = {1: 0.0018, 2: 0.0035, 3: 0.0067, 4: 0.0130, 5: 0.0250, 6: 0.0483}
WEIGHTS_FILE = "codec.safetensors"


class CodecPretrainConfig(Config):
    path_keys = (*RUN_PATH_KEYS, "task.network.weights")

    run: RunSpec = Field(default_factory=lambda: RunSpec(name="codec", checkpoint_every=200))
    optim: OptimSpec = Field(default_factory=lambda: OptimSpec(steps=6000, lr=3e-4, warmup_steps=100))
    data: LoaderConfig
    arch: str = "mbt2018-mean-small"
    quality: int = 3
    lmbda: float | None = Field(None, gt=0, description="default: CompressAI's ladder value for the quality")
    aux_lr: float = Field(1e-3, gt=0)
    init_from: str | None = Field(None, description="codec checkpoint (path/URL) or bundled ARCH:QUALITY")
    fp16_storage: bool = Field(False, description="store the exported parameters as fp16 (rounded before "
                                                  "evaluation and fingerprinting, so nothing changes on load)")
    task: TaskSpec | None = Field(None, description="full fine-tuning for one machine task: L = R + lmbda * L_task "
                                                    "(the task's frozen network on x_hat) instead of 255^2 * MSE")

    @field_validator("init_from")
    @classmethod
    def _absolute_path(cls, v: str | None) -> str | None:
        """A local path is made absolute here, in the driver: Ray workers run in another folder."""
        if v and not storage.is_url(v) and os.path.exists(os.path.expanduser(v)):
            return os.path.abspath(os.path.expanduser(v))
        return v

    @model_validator(mode="after")
    def _crop_fits_the_hyperprior(self) -> CodecPretrainConfig:
        if self.data.crop is not None and self.data.crop % 64:
            raise ValueError(f"data.crop={self.data.crop}: hyperprior codecs downsample by 64, "
                             "so training crops must be a multiple of 64")
        return self

    @model_validator(mode="after")
    def _task_needs_lambda(self) -> CodecPretrainConfig:
        if self.task is not None and self.lmbda is None:
            raise ValueError(f"task '{self.task.name}': give lmbda (the ladder's values weigh 255^2 * MSE, "
                             "not a task loss)")
        return self

    def lambda_value(self) -> float:
        return self.lmbda if self.lmbda is not None else LAMBDA_LADDER[self.quality]


class CodecPretrainJob(Job):
    config_class = CodecPretrainConfig
    config: CodecPretrainConfig

    def setup(self) -> None:
        cfg = self.config
        self.device = self.worker_device()
        codec = build_codec(cfg.arch, cfg.quality)
        if cfg.init_from and is_variable_rate(codec):
            load_gained(codec, _initial_state(cfg.init_from))  # a fixed-rate start lacks the gains
        elif cfg.init_from:
            codec.load_state_dict(_initial_state(cfg.init_from))
        from omnicodec.precision import autocast_transforms, to_channels_last

        autocast_transforms(codec, cfg.run.precision)
        if cfg.run.channels_last:
            to_channels_last(codec)
        main = [p for n, p in codec.named_parameters() if not n.endswith(".quantiles")]
        aux = [p for n, p in codec.named_parameters() if n.endswith(".quantiles")]
        self.model = self.prepare(codec.to(self.device), parallel_strategy_kwargs={"find_unused_parameters": True})
        self.make_optimizer(main, cfg.optim)
        self.main_params = main
        self.aux_optimizer = torch.optim.Adam(aux, lr=cfg.aux_lr)
        task_term = None
        if cfg.task is not None:
            from omnicodec.tasks.registry import load_task_net

            cfg.task.register()
            task_term = TaskTerm(cfg.task.name, load_task_net(cfg.task.name).to(self.device), 1.0, cfg.task.loss,
                                 cfg.task.distill_weight)
        self.loss = RateDistortionLoss(cfg.lambda_value(), task_term)

    def batches(self, segment: int) -> Iterator[Any]:
        return make_loader(self.config.data, self.rank, self.world_size, segment)

    def train_step(self, batch: dict[str, Any], step: int) -> dict[str, float]:
        x = batch["image"].to(self.device)
        if self.config.run.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        codec = self.unwrapped()
        if is_variable_rate(codec) and self.loss.task is None:  # one level per image, its own lambda
            positions = sample_positions(codec, x.shape[0], x.device)
            parts = self.loss(self.model(x, positions), x, batch, lambdas=codec.lambdas[positions.long()])
        else:
            parts = self.loss(self.model(x), x, batch)
        self.optimizer.zero_grad(set_to_none=True)
        parts["loss"].backward()
        grad_norm = self.clip_and_step(self.main_params, self.config.optim)
        self.aux_optimizer.zero_grad(set_to_none=True)
        aux = self.unwrapped().aux_loss()
        aux.backward()
        self.aux_optimizer.step()
        logged = floats(parts)
        return {**{k: logged[k] for k in ("loss", "bpp", "mse", "psnr")}, "aux": float(aux), "grad_norm": grad_norm,
                **{k: v for k, v in logged.items() if k.startswith("L_")}}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "aux_optimizer": self.aux_optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.aux_optimizer.load_state_dict(state["aux_optimizer"])

    def export(self, directory: str) -> None:
        import copy

        from safetensors.torch import save_file

        codec = copy.deepcopy(self.unwrapped()).cpu()
        codec.update(force=True)
        save_file({k: v.contiguous() for k, v in codec.state_dict().items()}, os.path.join(directory, WEIGHTS_FILE))


def _initial_state(ref: str) -> dict[str, torch.Tensor]:
    if "/" in ref or ref.endswith((".pt", ".pth", ".tar", ".safetensors")):
        return load_codec_state_dict(ref)
    from omnicodec.codec import CodecSpec
    from omnicodec.zoo import load_codec_weights

    spec = CodecSpec.parse(ref)
    return load_codec_weights(spec.arch, spec.quality)
