"""Mixed precision touches only the heavy transforms: names, state dicts and copies are
unchanged, likelihoods stay fp32, and the result stays close to fp32."""

from __future__ import annotations

import copy

import torch

from omnicodec.codec import build_codec
from omnicodec.precision import autocast_transforms, to_channels_last


def test_bf16_transforms_keep_fp32_likelihoods_names_and_results_close(photo):
    torch.manual_seed(0)
    ref = build_codec("mbt2018-mean-small", 3)
    fast = copy.deepcopy(ref)
    to_channels_last(autocast_transforms(fast, "bf16"))
    assert list(fast.state_dict()) == list(ref.state_dict())
    x = torch.nn.functional.interpolate(photo, size=(128, 128), mode="bilinear", align_corners=False)
    ref.eval(), fast.eval()
    with torch.no_grad():
        a = ref(x)
        b = fast(x.contiguous(memory_format=torch.channels_last))
    assert b["x_hat"].dtype == torch.float32
    assert all(v.dtype == torch.float32 for v in b["likelihoods"].values())
    assert torch.allclose(a["x_hat"], b["x_hat"], atol=0.05)
    clone = copy.deepcopy(fast)  # export deep-copies the model: the copy runs its own weights
    with torch.no_grad():
        clone.g_s[0].weight.zero_()
        assert not torch.allclose(clone(x)["x_hat"], fast(x)["x_hat"])


def test_a_bf16_training_step_updates_the_weights(photo):
    torch.manual_seed(0)
    model = to_channels_last(autocast_transforms(build_codec("mbt2018-mean-small", 3), "bf16"))
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    x = torch.nn.functional.interpolate(photo, size=(64, 64), mode="bilinear", align_corners=False)
    before = model.g_a[0].weight.detach().clone()
    out = model(x)
    bpp = sum(-torch.log2(lk).sum() for lk in out["likelihoods"].values()) / (64 * 64)
    (bpp + 0.01 * 255**2 * torch.mean((out["x_hat"] - x) ** 2)).backward()
    opt.step()
    assert model.g_a[0].weight.dtype == torch.float32 and not torch.equal(model.g_a[0].weight, before)
