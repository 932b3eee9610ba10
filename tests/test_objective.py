"""The method's objective, without Ray: L = R + lambda * sum_t w_t L_t [+ mu * 255^2 * MSE_human];
and the codec's own rate-distortion loss (L = R + lambda * 255^2 * MSE), each returning its parts."""

from __future__ import annotations

import pytest
import torch

from omnicodec.model import HUMAN, OmniCodec
from omnicodec.objective import MultiTaskObjective, RateDistortionLoss, TaskTerm, bpp_from_likelihoods, floats
from omnicodec.tasks.registry import load_task_net


@pytest.fixture(scope="module")
def setup(trained_codec, photo):
    torch.manual_seed(0)
    model = OmniCodec(trained_codec, ["cls", "seg"])
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.01)
    x = torch.nn.functional.interpolate(photo, size=(128, 128), mode="bilinear", align_corners=False)
    nets = {t: load_task_net(t) for t in ("cls", "seg")}
    return model, x, nets


def test_the_loss_is_rate_plus_lambda_times_the_weighted_task_terms(setup):
    model, x, nets = setup
    obj = MultiTaskObjective([TaskTerm("cls", nets["cls"], 2.0, "distill"), TaskTerm("seg", nets["seg"], 0.5, "distill")],
                             lmbda=3.0)
    parts = obj(model, x)
    p = floats(parts)
    assert list(p) == ["bpp", "L_cls", "L_seg", "loss"]
    assert p["loss"] == pytest.approx(p["bpp"] + 3.0 * (2.0 * p["L_cls"] + 0.5 * p["L_seg"]), rel=1e-5)
    assert p["bpp"] > 0 and p["L_cls"] > 0 and p["L_seg"] > 0 and parts["loss"].requires_grad


def test_gradients_reach_the_adaptors_only(setup):
    model, x, nets = setup
    obj = MultiTaskObjective([TaskTerm("cls", nets["cls"], 1.0, "distill")], lmbda=1.0)
    model.zero_grad(set_to_none=True)
    obj(model, x)["loss"].backward()
    assert all(p.grad is not None for p in model.adaptors.s.parameters())
    assert all(p.grad is not None for p in model.adaptors.t["cls"].parameters())
    assert all(p.grad is None for p in model.adaptors.t["seg"].parameters())  # not in this objective
    assert all(not p.requires_grad for p in model.codec.model.parameters())
    assert all(not p.requires_grad for p in nets["cls"].parameters())


def test_the_human_term_adds_its_weighted_distortion(setup):
    model, x, nets = setup
    terms = [TaskTerm("cls", nets["cls"], 1.0, "distill")]
    torch.manual_seed(1)
    without = MultiTaskObjective(terms, lmbda=1.0)
    base = without(model, x)["loss"]
    with_human = MultiTaskObjective(terms, lmbda=1.0, human_weight=0.01)
    torch.manual_seed(1)  # the same quantisation noise
    parts = with_human(model, x)
    total = parts["loss"]
    torch.manual_seed(1)
    human = model(x, [], human=True)["x_hat"][HUMAN]
    mse = torch.mean((human - x) ** 2)
    assert float((total - base).detach()) == pytest.approx(float(0.01 * 255**2 * mse.detach()), rel=1e-3)
    assert float(parts["human_psnr"]) == pytest.approx(float(-10 * torch.log10(mse.detach())), rel=1e-4)


@pytest.fixture(scope="module")
def codec_out(trained_codec, photo):
    """A whole CompressAI codec's training output (x_hat, likelihoods) on two crops."""
    x = torch.cat([photo[..., :128, :128], photo[..., 64:192, 128:256]])
    torch.manual_seed(0)
    return trained_codec.model(x), x


def test_the_codec_rd_loss_returns_its_parts_and_equals_compressais(codec_out):
    from compressai.losses import RateDistortionLoss as CompressAIRateDistortionLoss

    out, x = codec_out
    parts = RateDistortionLoss(0.0067)(out, x)
    assert list(parts) == ["loss", "bpp", "mse", "psnr"]
    bpp = -sum(torch.log2(lk).sum() for lk in out["likelihoods"].values()) / (2 * 128 * 128)
    mse = torch.mean((out["x_hat"] - x) ** 2)
    assert torch.equal(parts["bpp"], bpp) and torch.equal(parts["mse"], mse)
    assert torch.equal(parts["loss"], bpp + 0.0067 * (255**2 * mse))  # the pretraining job's numbers, bit for bit
    assert torch.equal(parts["psnr"], -10 * torch.log10(mse))
    theirs = CompressAIRateDistortionLoss(0.0067)(out, x)
    assert float(parts["bpp"]) == pytest.approx(float(theirs["bpp_loss"]), rel=1e-5)
    assert float(parts["loss"]) == pytest.approx(float(theirs["loss"]), rel=1e-5)


def test_the_codec_rd_loss_with_a_task_weighs_the_tasks_term_on_the_clamped_view(codec_out):
    out, x = codec_out
    term = TaskTerm("cls", load_task_net("cls"), 1.0, "distill")
    parts = RateDistortionLoss(2.0, term)(out, x)
    assert list(parts) == ["loss", "bpp", "mse", "psnr", "L_cls"]
    assert torch.equal(parts["L_cls"], term(out["x_hat"].clamp(0, 1), x, {}))
    assert torch.equal(parts["loss"], parts["bpp"] + 2.0 * parts["L_cls"])


def test_per_image_lambdas_weigh_each_image_by_its_own(codec_out):
    out, x = codec_out
    lambdas = torch.tensor([0.001, 0.05])
    parts = RateDistortionLoss(0.0067)(out, x, lambdas=lambdas)
    one = [RateDistortionLoss(float(lambdas[b]))({"x_hat": out["x_hat"][b : b + 1],
                                                  "likelihoods": {k: v[b : b + 1] for k, v in out["likelihoods"].items()}},
                                                 x[b : b + 1]) for b in range(2)]
    assert float(parts["loss"]) == pytest.approx(sum(float(o["loss"]) for o in one) / 2, rel=1e-5)
    assert float(parts["bpp"]) == pytest.approx(sum(float(o["bpp"]) for o in one) / 2, rel=1e-5)
    per_image = bpp_from_likelihoods(out["likelihoods"], 128 * 128, per_image=True)
    assert per_image.shape == (2,) and float(per_image.mean()) == pytest.approx(float(parts["bpp"]), rel=1e-6)
