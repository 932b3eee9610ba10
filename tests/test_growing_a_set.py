"""A trained set grows. Task N+1 on a deployed fleet: train only the new task's T-Adaptor beside
a trained set, with its S-Adaptor frozen, so every stream already written (and every encoder in
the field) stays valid. A set continues (``init``): a new run starts from its adaptors, e.g. with
a ``mixed`` task loss (label + distillation), refusing a set of another codec, config or tasks."""

from __future__ import annotations

import os

import pytest
import torch

from omnicodec.jobs.adaptor_job import AdaptorTrainConfig, trained_samples
from omnicodec.jobs.local import fit_local
from omnicodec.model import OmniCodec
from omnicodec.objective import TaskTerm
from omnicodec.tasks.registry import load_task_net


def _config(tmp_path, scenes: str, name: str, tasks: list[dict], **extra) -> AdaptorTrainConfig:
    return AdaptorTrainConfig.from_dict({
        "run": {"name": name, "storage": str(tmp_path / "runs"), "checkpoint_every": 2, "wandb": {"mode": "disabled"}},
        "optim": {"steps": 2, "lr": 0.01, "warmup_steps": 1, "schedule": "constant"},
        "data": {"shards": os.path.join(scenes, "train-000000.tar"), "batch_size": 2, "crop": 64,
                 "shuffle_buffer": 4, "num_workers": 0},
        "codec": {"arch": "mbt2018-mean-small", "quality": 2}, "tasks": tasks, "lmbda": 1.0, **extra,
    })


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> str:
    from omnicodec.data.scenes import build_scenes

    out = tmp_path_factory.mktemp("extend-scenes")
    build_scenes(str(out), train=8, test=2, size=128, maxcount=8, progress=False)
    return str(out)


def test_a_new_tasks_t_adaptor_trains_beside_a_frozen_set_and_the_streams_do_not_change(tmp_path, scenes, photo):
    base = fit_local("adaptors", _config(tmp_path, scenes, "base", [{"name": "cls", "loss": "distill"}]))
    assert base.error is None
    base_dir = os.path.join(base.checkpoint, "adaptors")
    cfg = _config(tmp_path, scenes, "plus-seg", [{"name": "seg", "loss": "distill"}], extend=base_dir,
                  train_s_adaptor=False)
    grown = fit_local("adaptors", cfg)
    assert grown.error is None
    before, after = OmniCodec.from_checkpoint(base_dir), OmniCodec.from_checkpoint(os.path.join(grown.checkpoint, "adaptors"))
    assert after.tasks == ["cls", "seg"] and after.s_fingerprint() == before.s_fingerprint()
    stream = before.encode(photo).to_bytes()
    assert after.encode(photo).to_bytes() == stream  # the fleet's encoders and streams stay valid
    old, new = before.adaptors.t["cls"].state_dict(), after.adaptors.t["cls"].state_dict()
    assert all(torch.equal(old[k], new[k]) for k in old)  # the deployed task is untouched
    assert any(v.abs().sum() > 0 for k, v in after.adaptors.t["seg"].state_dict().items() if k.endswith("up.weight"))
    views = after.decode(stream, tasks=["cls", "seg"])
    assert torch.equal(views["cls"], before.decode(stream, tasks=["cls"])["cls"])
    meta = after.metadata
    assert meta["extended_from"] == base_dir and meta["train_s_adaptor"] is True  # still an all-in-one curve
    assert [t["name"] for t in meta["tasks"]] == ["cls", "seg"]


def test_extending_refuses_a_task_the_set_has_and_a_trainable_s_adaptor(tmp_path, scenes):
    with pytest.raises(ValueError, match="S-Adaptor of the set being extended stays frozen"):
        _config(tmp_path, scenes, "x", [{"name": "seg", "loss": "distill"}], extend="zoo:adaptors-demo")
    cfg = _config(tmp_path, scenes, "y", [{"name": "cls", "loss": "distill"}], extend="zoo:adaptors-demo",
                  train_s_adaptor=False)
    result = fit_local("adaptors", cfg)
    assert result.error and "already has T-Adaptors for ['cls']" in result.error


def test_a_run_continues_a_trained_set_from_its_adaptors_and_records_where_it_started(tmp_path, scenes):
    base = fit_local("adaptors", _config(tmp_path, scenes, "base", [{"name": "cls", "loss": "distill"}]))
    base_dir = os.path.join(base.checkpoint, "adaptors")
    cfg = _config(tmp_path, scenes, "more", [{"name": "cls", "loss": "distill"}], init=base_dir)
    cfg.optim.lr, cfg.optim.steps = 1e-9, 1  # one step that moves nothing measurable
    more = fit_local("adaptors", cfg)
    assert more.error is None
    before, after = OmniCodec.from_checkpoint(base_dir), OmniCodec.from_checkpoint(os.path.join(more.checkpoint, "adaptors"))
    old, new = before.adaptors.state_dict(), after.adaptors.state_dict()
    assert any(v.abs().sum() > 0 for k, v in old.items() if k.endswith("up.weight"))  # the base moved off the identity
    assert all(torch.allclose(old[k], new[k], atol=1e-6) for k in old)  # and the new run started there
    assert after.metadata["init"] == base_dir and after.metadata["init_run"] == "base"
    assert after.metadata["init_samples"] == 2 * 2 and trained_samples(after.metadata) == 2 * 2 + 1 * 2


def test_continuing_refuses_another_codec_other_tasks_and_init_with_extend(tmp_path, scenes):
    base = fit_local("adaptors", _config(tmp_path, scenes, "base", [{"name": "cls", "loss": "distill"}]))
    base_dir = os.path.join(base.checkpoint, "adaptors")
    other_tasks = fit_local("adaptors", _config(tmp_path, scenes, "t", [{"name": "seg", "loss": "distill"}], init=base_dir))
    assert other_tasks.error and "has tasks ['cls'], this run ['seg']" in other_tasks.error
    other_codec = _config(tmp_path, scenes, "c", [{"name": "cls", "loss": "distill"}], init=base_dir)
    other_codec.codec.quality = 3
    result = fit_local("adaptors", other_codec)
    assert result.error and "refusing to load" in result.error
    with pytest.raises(ValueError, match="extend and init: give one"):
        _config(tmp_path, scenes, "x", [{"name": "seg", "loss": "distill"}], init=base_dir, extend=base_dir,
                train_s_adaptor=False)


def test_a_mixed_task_term_is_the_label_loss_plus_weighted_distillation(tmp_path, scenes):
    from omnicodec.data.loader import collate, iter_samples

    samples = [s for s, _ in zip(iter_samples(os.path.join(scenes, "train-000000.tar")), range(2))]
    batch = collate(samples)
    x = batch["image"]
    x_hat = (x + 0.05 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    net = load_task_net("seg")
    label, distill = (TaskTerm("seg", net, loss=kind)(x_hat, x, batch) for kind in ("label", "distill"))
    mixed = TaskTerm("seg", net, loss="mixed", distill_weight=0.5)(x_hat, x, batch)
    assert float(distill) > 0 and float(mixed) == pytest.approx(float(label + 0.5 * distill), rel=1e-5)
    with pytest.raises(ValueError, match="label-free.*not mixed"):
        _config(tmp_path, scenes, "x", [{"name": "imagenet", "loss": "mixed"}])


def test_a_wrong_init_or_extend_is_refused_before_ray_starts(tmp_path, scenes):
    from omnicodec.errors import ConfigError

    with pytest.raises(ConfigError, match=r"init: zoo:adaptors-demo has tasks \['cls', 'seg', 'det'\], this run \['seg'\]"):
        _config(tmp_path, scenes, "x", [{"name": "seg", "loss": "distill"}], init="zoo:adaptors-demo").preflight()
    with pytest.raises(ConfigError, match=r"already has T-Adaptors for \['cls'\]"):
        _config(tmp_path, scenes, "y", [{"name": "cls", "loss": "distill"}], extend="zoo:adaptors-demo",
                train_s_adaptor=False).preflight()
    assert not (tmp_path / "runs").exists()
