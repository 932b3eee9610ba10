"""Adaptor architecture knobs; serialised into every checkpoint so weights never load
into a block of a different shape."""

from __future__ import annotations

from pydantic import Field, field_validator

from omnicodec.config import Config


class AdaptorConfig(Config):
    bottleneck_ratio: int = Field(4, ge=1, description="hidden width = stage channels // ratio")
    kernel_size: int = Field(3, ge=1, le=15, description="depthwise kernel of the spatial branch")
    mask_grid: tuple[int, int] = Field((8, 5), description="spectral mask size, resampled to any rfft2 grid")
    spectral: bool = Field(True, description="ablation: False drops the frequency branch")
    residual_scale: float = Field(1.0, description="s in F + s * adaptor(F)")
    shared_decoder: bool = Field(False, description="ablation: one adaptor on y_hat shared by all tasks")
    rate_levels: int = Field(0, ge=0, le=64, description="rate-conditioned adaptors for a variable-rate codec: "
                                                        "its number of gain levels (0: one fixed rate)")
    family: str = Field("spectral", description="adaptor block family (omnicodec.adaptors.families): "
                                                "spectral (learned mask), sfma (input-conditioned modulation)")

    @field_validator("family")
    @classmethod
    def _registered(cls, v: str) -> str:
        from omnicodec.adaptors.families import FAMILIES

        if FAMILIES and v not in FAMILIES:
            raise ValueError(f"unknown adaptor family '{v}' (known: {', '.join(sorted(FAMILIES))})")
        return v

    @field_validator("kernel_size")
    @classmethod
    def _odd(cls, v: int) -> int:
        if v % 2 == 0:
            raise ValueError("must be odd so the block keeps the spatial size")
        return v

    @field_validator("mask_grid")
    @classmethod
    def _positive(cls, v: tuple[int, int]) -> tuple[int, int]:
        if min(v) < 1:
            raise ValueError("both sides must be >= 1")
        return v

    def identity_json(self) -> str:
        """The config as it enters the S-Adaptor fingerprint. Keys added after format v1 enter
        only when they change the v1 block (``family`` other than ``spectral``), so existing
        checkpoints and the streams they made keep their fingerprints."""
        exclude = ({"family"} if self.family == "spectral" else set()) | ({"rate_levels"} if not self.rate_levels else set())
        return self.model_dump_json(exclude=exclude or None)

    def hidden(self, channels: int) -> int:
        return max(1, channels // self.bottleneck_ratio)
