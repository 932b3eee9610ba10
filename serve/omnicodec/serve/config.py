"""What a deployment serves: tasks, adaptor versions, scaling, limits, auth."""

from __future__ import annotations

import os

from pydantic import Field, model_validator

from omnicodec.config import Config
from omnicodec.sizes import MAX_PIXELS


class AutoscalingSpec(Config):
    min_replicas: int = Field(1, ge=0)
    max_replicas: int = Field(2, ge=1)
    target_ongoing_requests: float = Field(2.0, gt=0)
    upscale_delay_s: float = Field(2.0, ge=0)
    downscale_delay_s: float = Field(30.0, ge=0)
    metrics_interval_s: float = Field(1.0, gt=0)
    look_back_period_s: float = Field(5.0, gt=0)

    def to_ray(self) -> dict:
        return self.to_dict()


class TaskServeSpec(Config):
    """One task deployment: g_s + the task's T-Adaptors (per version) + its frozen network."""

    versions: dict[str, str] = Field(..., description="version id -> adaptor checkpoint (path, URL or zoo:NAME)")
    default: str | None = None
    num_cpus: float = Field(0.25, gt=0)
    num_gpus: float = Field(0.0, ge=0)
    max_ongoing_requests: int = Field(4, ge=1)
    max_batch_size: int = Field(4, ge=1)
    batch_wait_timeout_s: float = Field(0.01, ge=0)
    autoscaling: AutoscalingSpec = Field(default_factory=AutoscalingSpec)

    @model_validator(mode="after")
    def _default(self) -> TaskServeSpec:
        if not self.versions:
            raise ValueError("versions: at least one version is needed")
        if self.default is None:
            self.default = next(iter(self.versions))
        elif self.default not in self.versions:
            raise ValueError(f"default '{self.default}' is not among versions {list(self.versions)}")
        return self


class AuthSpec(Config):
    token: str | None = Field(None, description="bearer token; prefer token_env in real deployments")
    token_env: str | None = Field("OMNICODEC_TOKEN", description="environment variable holding the token")

    def resolved(self) -> str | None:
        return self.token or (os.environ.get(self.token_env) if self.token_env else None) or None


class RouterSpec(Config):
    num_cpus: float = Field(0.25, gt=0)
    max_ongoing_requests: int = Field(16, ge=1)
    decode_batch_size: int = Field(8, ge=1, description="concurrent requests entropy-decoded in one call")
    decode_batch_wait_s: float = Field(0.002, ge=0, description="how long a decode waits for company")
    autoscaling: AutoscalingSpec = Field(default_factory=lambda: AutoscalingSpec(max_replicas=1))


class ServeConfig(Config):
    tasks: dict[str, TaskServeSpec]
    encoder: str | None = Field(None, description="checkpoint whose S-Adaptor serves /v1/encode (default: first task's default)")
    auth: AuthSpec = Field(default_factory=AuthSpec)
    max_request_bytes: int = Field(4 << 20, ge=64)
    max_image_pixels: int = Field(MAX_PIXELS, ge=1, description="images and streams over this many pixels get 413, "
                                  "checked from their header before any decoding")
    request_timeout_s: float = Field(30.0, gt=0)
    top_k: int = Field(5, ge=1)
    router: RouterSpec = Field(default_factory=RouterSpec)

    @model_validator(mode="after")
    def _some_task(self) -> ServeConfig:
        if not self.tasks:
            raise ValueError("tasks: serve at least one task")
        return self

    def encoder_checkpoint(self) -> str:
        if self.encoder:
            return self.encoder
        first = next(iter(self.tasks.values()))
        return first.versions[first.default]
