"""The full fine-tuning baseline: a whole codec trained for ONE task (``R + lambda * L_task``),
exported as codec weights, and evaluated as one bitstream per task with every byte counted."""

from __future__ import annotations

import os
import shutil

import pytest
import torch

from omnicodec.codec import CodecSpec, load_codec
from omnicodec.errors import CheckpointError, ConfigError, OmnicodecError
from omnicodec.eval.evaluate import build_systems
from omnicodec.eval.systems import PerTaskCodecs, system_from_recipe
from omnicodec.jobs.codec_job import WEIGHTS_FILE, CodecPretrainConfig

pytestmark = pytest.mark.slow
BASE = "mbt2018-mean-small:2"  # the codec of zoo:adaptors-demo, which the baseline must share


def _config(tmp_path, scenes: str, **over) -> CodecPretrainConfig:
    cfg = {"run": {"name": "ft-cls", "storage": str(tmp_path / "runs"), "checkpoint_every": 2,
                   "wandb": {"mode": "disabled"}},
           "optim": {"steps": 2, "lr": 1e-4, "warmup_steps": 0},
           "data": {"shards": os.path.join(scenes, "train-000000.tar"), "batch_size": 2, "crop": 64,
                    "shuffle_buffer": 0},
           "arch": "mbt2018-mean-small", "quality": 2, "init_from": BASE, "lmbda": 1.0,
           "task": {"name": "cls", "loss": "distill"}, **over}
    return CodecPretrainConfig.from_dict(cfg)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> str:
    from omnicodec.data.scenes import build_scenes

    out = tmp_path_factory.mktemp("ft-scenes")
    build_scenes(str(out), train=8, test=4, size=128, maxcount=8, progress=False)
    return str(out)


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory, scenes) -> str:
    """Codec weights fully fine-tuned for cls by the codec job (2 real steps, no Ray)."""
    from omnicodec.jobs.local import fit_local

    result = fit_local("codec", _config(tmp_path_factory.mktemp("ft"), scenes), "cpu")
    assert result.error is None, result.error
    assert "L_cls" in result.metrics and result.metrics["step"] == 2  # the task term was the distortion
    return os.path.join(result.checkpoint, WEIGHTS_FILE)


def test_a_task_finetune_names_its_lambda_because_the_ladder_weighs_mse(tmp_path, scenes):
    with pytest.raises(ConfigError, match="task 'cls': give lmbda"):
        _config(tmp_path, scenes, lmbda=None)
    with pytest.raises(ConfigError, match="unknown task 'ocr'"):
        _config(tmp_path, scenes, task={"name": "ocr"})


def test_every_codec_weight_moves_and_the_export_loads_as_a_codec_of_the_same_kind(finetuned):
    base = load_codec(BASE)
    tuned = load_codec(CodecSpec(arch="mbt2018-mean-small", quality=2, checkpoint=finetuned))
    assert tuned.fingerprint != base.fingerprint
    before, after = base.model.state_dict(), tuned.model.state_dict()
    moved = {k.split(".")[0] for k, v in after.items() if v.is_floating_point() and not torch.equal(v, before[k])}
    assert {"g_a", "g_s", "h_a", "h_s"} <= moved  # analysis, synthesis and hyperprior all trained


def test_the_finetuned_baseline_sends_one_stream_per_task_and_counts_every_byte(finetuned, scenes, tmp_path):
    from omnicodec.data.loader import iter_samples

    spec = f"finetuned:cls={finetuned},seg={finetuned},det={finetuned}@ft λ=1"
    systems, tasks = build_systems([("ours", "zoo:adaptors-demo")], [spec], str(tmp_path))
    (ft,) = [s for s in systems if isinstance(s, PerTaskCodecs)]
    assert (ft.name, ft.label) == ("per-task fine-tuned", "ft λ=1")
    sample = next(iter(iter_samples(os.path.join(scenes, "test-000000.tar"))))
    out = ft.run(sample, tasks)
    one = len(ft.models["cls"].encode(sample.image[None]).to_bytes())
    assert out.bytes == 3 * one  # three tasks, three streams (here the same codec thrice)
    assert set(out.views) == {"human", *tasks}
    again = system_from_recipe(ft.recipe)  # what a Ray evaluation worker rebuilds
    assert again.run(sample, tasks).bytes == out.bytes


def test_a_weights_file_changed_after_planning_is_refused_and_a_missing_task_named(finetuned, tmp_path):
    systems, _ = build_systems([("ours", "zoo:adaptors-demo")],
                               [f"finetuned:cls={finetuned},seg={finetuned},det={finetuned}"], str(tmp_path))
    recipe = dict(systems[-1].recipe)
    moved = str(tmp_path / "codec.safetensors")
    shutil.copy(finetuned, moved)
    from omnicodec.zoo import WEIGHTS_DIR

    shutil.copy(WEIGHTS_DIR / "codec-mbt2018-mean-small-q2.safetensors", moved)  # other weights, same path
    recipe["checkpoints"] = {t: moved for t in recipe["checkpoints"]}
    with pytest.raises(CheckpointError, match=r"task cls\): codec fingerprint .* the file changed"):
        system_from_recipe(recipe)
    with pytest.raises(OmnicodecError, match=r"nothing given for task\(s\) \['det'\]"):
        build_systems([("ours", "zoo:adaptors-demo")], [f"finetuned:cls={finetuned},seg={finetuned}"], str(tmp_path))
    with pytest.raises(OmnicodecError, match="'cls' is not TASK=LOCATION"):
        build_systems([("ours", "zoo:adaptors-demo")], ["finetuned:cls"], str(tmp_path))
