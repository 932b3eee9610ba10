"""The method's objective, without Ray: L = R + lambda * sum_t w_t L_t [+ mu * 255^2 * MSE_human]."""

from __future__ import annotations

import pytest
import torch

from omnicodec.model import HUMAN, OmniCodec
from omnicodec.objective import MultiTaskObjective, TaskTerm
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
    loss = obj(model, x)
    p = obj.parts
    assert p["loss"] == pytest.approx(p["bpp"] + 3.0 * (2.0 * p["L_cls"] + 0.5 * p["L_seg"]), rel=1e-5)
    assert p["bpp"] > 0 and p["L_cls"] > 0 and p["L_seg"] > 0 and float(loss.detach()) == pytest.approx(p["loss"])


def test_gradients_reach_the_adaptors_only(setup):
    model, x, nets = setup
    obj = MultiTaskObjective([TaskTerm("cls", nets["cls"], 1.0, "distill")], lmbda=1.0)
    model.zero_grad(set_to_none=True)
    obj(model, x).backward()
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
    base = without(model, x)
    with_human = MultiTaskObjective(terms, lmbda=1.0, human_weight=0.01)
    torch.manual_seed(1)  # the same quantisation noise
    total = with_human(model, x)
    torch.manual_seed(1)
    human = model(x, [], human=True)["x_hat"][HUMAN]
    mse = torch.mean((human - x) ** 2)
    assert float((total - base).detach()) == pytest.approx(float(0.01 * 255**2 * mse.detach()), rel=1e-3)
    assert "human_psnr" in with_human.parts
