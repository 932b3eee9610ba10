"""Human-view quality of a codec from real bitstreams: bpp (bytes on disk), PSNR, MS-SSIM."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from pytorch_msssim import ms_ssim

from omnicodec.codec import FrozenCodec
from omnicodec.data.loader import iter_samples
from omnicodec.images import psnr
from omnicodec.model import HUMAN, OmniCodec


def msssim(a: torch.Tensor, b: torch.Tensor) -> float:
    """MS-SSIM on [0, 1] images. Its 5 scales need sides > 160 px, so smaller images are
    edge-padded (identically for both) before scoring."""
    h, w = a.shape[-2:]
    pad = (0, max(0, 161 - w), 0, max(0, 161 - h))
    if any(pad):
        a, b = (torch.nn.functional.pad(t.float(), pad, mode="replicate") for t in (a, b))
    return float(ms_ssim(a.float(), b.float(), data_range=1.0, size_average=True))


@torch.no_grad()
def evaluate_codec(codec: FrozenCodec | OmniCodec, shards: str, limit: int | None = None) -> dict[str, Any]:
    """Encode each image once (real bytes, header included) and decode the human view."""
    model = codec if isinstance(codec, OmniCodec) else OmniCodec(codec, with_adaptors=False)
    rows = []
    for i, s in enumerate(iter_samples(shards)):
        if limit is not None and i >= limit:
            break
        x = s.image[None]
        data = model.encode(x).to_bytes()
        x_hat = model.decode(data, human=True)[HUMAN]
        rows.append({"key": s.key, "bytes": len(data), "bpp": 8 * len(data) / (x.shape[-2] * x.shape[-1]),
                     "bpp_estimate": model.estimate_bpp(x), "psnr": psnr(x_hat, x), "ms_ssim": msssim(x_hat, x)})
    summary = {k: float(np.mean([r[k] for r in rows])) for k in ("bpp", "bpp_estimate", "psnr", "ms_ssim")}
    return {"images": len(rows), **summary, "rows": rows}
