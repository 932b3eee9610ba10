"""One codec for every rate (gain units) and one adaptor set for every rate (rate-conditioned
adaptors): the rate is chosen at encode time, the stream records it, decoding needs nothing else."""

from __future__ import annotations

import math

import pytest
import torch

from omnicodec.adaptors import FAMILIES, AdaptorConfig
from omnicodec.adaptors.rate import interpolate_levels
from omnicodec.bitstream import Bitstream
from omnicodec.codec import get_architecture
from omnicodec.codec.fingerprint import codec_fingerprint
from omnicodec.codec.gain import GainedMeanScaleHyperprior, load_into, position_for_lambda, quantize_position
from omnicodec.codec.registry import CodecSpec, FrozenCodec, freeze
from omnicodec.errors import BitstreamError, OmnicodecError
from omnicodec.model import HUMAN, OmniCodec

ARCH = "mbt2018-mean-photo-vr"


@pytest.fixture(scope="module")
def vr_codec() -> FrozenCodec:
    """A gained codec on the bundled small codec's transforms (trained weights: real rates)."""
    from omnicodec.zoo import load_codec_weights

    torch.manual_seed(0)
    model = GainedMeanScaleHyperprior(64, 96)
    load_into(model, load_codec_weights("mbt2018-mean-small", 3))
    model.update(force=True)
    freeze(model)
    return FrozenCodec(model, get_architecture(ARCH), CodecSpec(arch=ARCH, quality=5), codec_fingerprint(model, ARCH))


def test_gains_interpolate_geometrically_between_trained_levels():
    m = GainedMeanScaleHyperprior(8, 12, lambdas=(0.001, 0.004, 0.016))
    with torch.no_grad():
        m.log_gain.copy_(torch.randn(3, 12))
    y = torch.ones(2, 12, 1, 1)
    g1, g2 = m.gain(y, 1.0), m.gain(y, 2.0)
    assert torch.allclose(m.gain(y, 1.5), (g1 * g2).sqrt(), rtol=1e-5)
    per_image = m.gain(y, torch.tensor([1.0, 2.0]))
    assert torch.allclose(per_image[0], g1[0]) and torch.allclose(per_image[1], g2[1])
    assert float(m.lambda_at(1.5)) == pytest.approx(0.008)


def test_position_for_lambda_inverts_lambda_at_and_refuses_outside_the_trained_range():
    m = GainedMeanScaleHyperprior(8, 12)
    lambdas = m.lambdas.tolist()
    for lmbda in (lambdas[0], 0.003, 0.0067, lambdas[-1]):
        p = position_for_lambda(lambdas, lmbda)
        assert p == quantize_position(p)
        assert math.log(float(m.lambda_at(p))) == pytest.approx(math.log(lmbda), abs=0.01)
    with pytest.raises(ValueError, match="outside this codec's trained range"):
        position_for_lambda(lambdas, 1.0)


def test_the_container_records_the_rate_and_fixed_rate_streams_do_not_change():
    args = (b"\1" * 8, bytes(8), 64, 64, 0, 0, (1, 1), [b"y", b"z"])
    fixed = Bitstream(*args, entropy_check=7)
    assert fixed.to_bytes()[5] & 0x04 == 0
    s = Bitstream(*args, entropy_check=7, rate_position=3.25)
    data = s.to_bytes()
    assert len(data) == len(fixed.to_bytes()) + 2 and data[5] & 0x04
    assert Bitstream.from_bytes(data).rate_position == 3.25
    with pytest.raises(BitstreamError, match="rate position"):
        Bitstream(*args, entropy_check=7, rate_position=0.3)


def test_one_codec_codes_at_every_rate_and_decodes_with_nothing_but_the_stream(vr_codec, photo):
    model = OmniCodec(vr_codec, with_adaptors=False)
    sizes = []
    for position in (0.0, 2.5, 5.0, 7.0):
        stream = model.encode(photo, position=position)
        assert stream.rate_position == position
        data = stream.to_bytes()
        sizes.append(len(data))
        decoded = model.decode(data, human=True)[HUMAN]  # no rate given: the stream says it
        expected = model(photo_padded(photo), tasks=[], human=True, noise=False, position=position)["x_hat"][HUMAN]
        assert torch.allclose(decoded, expected[..., : photo.shape[-2], : photo.shape[-1]], atol=1e-5)
    assert sizes == sorted(sizes) and sizes[-1] > 4 * sizes[0]
    assert model.encode(photo).rate_position == 4.0  # quality 5: level 4
    by_lambda = model.encode(photo, position=model.rate_position(lmbda=0.0061))
    assert by_lambda.rate_position == pytest.approx(4.0, abs=1 / 256)


def photo_padded(photo):
    from omnicodec.images import pad_to_grid

    return pad_to_grid(photo if photo.dim() == 4 else photo[None])[0]


def test_mixed_rates_in_one_decode_batch_equal_one_by_one(vr_codec, photo):
    model = OmniCodec(vr_codec, ["cls"], AdaptorConfig(rate_levels=8))
    with torch.no_grad():
        for p in model.adaptors.parameters():
            p.add_(0.01 * torch.randn_like(p))
    streams = [model.encode(photo, position=p).to_bytes() for p in (1.0, 6.5, 3.0)]
    batch = model.decode_batch(streams, tasks=["cls"], human=True)
    for data, got in zip(streams, batch):
        alone = model.decode(data, tasks=["cls"], human=True)
        for k in ("cls", HUMAN):
            assert torch.allclose(got[k], alone[k], atol=1e-5)


def test_streams_and_codecs_must_agree_on_having_a_rate(vr_codec, small_codec, photo):
    vr, fixed = OmniCodec(vr_codec, with_adaptors=False), OmniCodec(small_codec, with_adaptors=False)
    with pytest.raises(OmnicodecError, match="codes at one rate"):
        fixed.encode(photo, position=1.0)
    with pytest.raises(OmnicodecError, match="outside"):
        vr.rate_position(lmbda=5.0)
    stream = vr.encode(photo, position=2.0)
    stripped = Bitstream(**{**stream.__dict__, "rate_position": None})
    with pytest.raises(BitstreamError, match="record their rate position"):
        vr.decode(stripped.to_bytes(), human=True)


@pytest.mark.parametrize("family", FAMILIES.names())
def test_rate_conditioned_adaptors_are_an_identity_at_init_for_every_family(vr_codec, photo, family):
    plain = OmniCodec(vr_codec, with_adaptors=False)
    model = OmniCodec(vr_codec, ["seg"], AdaptorConfig(family=family, rate_levels=8))
    for position in (0.0, 4.5):
        assert model.encode(photo, position=position).strings == plain.encode(photo, position=position).strings


def test_rate_conditioned_training_reaches_the_rate_tables_and_per_image_rates(vr_codec):
    torch.manual_seed(0)
    model = OmniCodec(vr_codec, ["seg"], AdaptorConfig(rate_levels=8))
    with torch.no_grad():  # leave the init's identity so the modulation has a gradient
        for p in model.adaptors.parameters():
            p.add_(0.01 * torch.randn_like(p))
    x = torch.rand(2, 3, 64, 64)
    out = model(x, tasks=["seg"], position=torch.tensor([0.5, 6.0]))
    (out["bpp"] + out["x_hat"]["seg"].mean()).backward()
    s0 = model.adaptors.s[0]
    assert s0.input_scale.grad[0].abs().sum() > 0 and s0.input_scale.grad[6].abs().sum() > 0
    assert s0.input_scale.grad[3].abs().sum() == 0  # no image was coded near level 3


def test_rate_conditioned_adaptors_need_a_variable_rate_codec_with_as_many_levels(vr_codec, small_codec):
    with pytest.raises(OmnicodecError, match="need a variable-rate codec"):
        OmniCodec(small_codec, ["seg"], AdaptorConfig(rate_levels=8))
    with pytest.raises(OmnicodecError, match="need a variable-rate codec with 4 levels"):
        OmniCodec(vr_codec, ["seg"], AdaptorConfig(rate_levels=4))


def test_rate_conditioning_enters_the_s_fingerprint_and_a_fixed_config_keeps_its_own(vr_codec, tmp_path):
    assert "rate_levels" not in AdaptorConfig().identity_json()
    fixed = OmniCodec(vr_codec, ["seg"])
    conditioned = OmniCodec(vr_codec, ["seg"], AdaptorConfig(rate_levels=8))
    assert fixed.s_fingerprint() != conditioned.s_fingerprint()
    path = conditioned.save(str(tmp_path / "set"))
    again = OmniCodec.from_checkpoint(path, codec=vr_codec)
    assert again.adaptors.config.rate_levels == 8 and again.s_fingerprint() == conditioned.s_fingerprint()


def test_interpolate_levels_is_linear_and_clamps():
    table = torch.tensor([[0.0], [1.0], [3.0]])
    got = interpolate_levels(table, torch.tensor([-1.0, 0.5, 1.5, 9.0]), 4).flatten().tolist()
    assert got == [0.0, 0.5, 2.0, 3.0]


def test_the_cli_picks_the_rate_at_encode_time_and_decodes_from_the_stream_alone(vr_codec, photo, tmp_path, capsys):
    from safetensors.torch import save_file

    from omnicodec.cli import main
    from omnicodec.images import save_image

    ckpt = tmp_path / "vr.safetensors"
    save_file({k: v.contiguous() for k, v in vr_codec.model.state_dict().items()}, str(ckpt))
    save_image(photo, str(tmp_path / "a.png"))
    codec = ["--codec", ARCH, "--codec-checkpoint", str(ckpt)]
    sizes = {}
    for lmbda in ("0.0005", "0.03"):
        out = tmp_path / f"a-{lmbda}.omc"
        assert main(["encode", str(tmp_path / "a.png"), "-o", str(out), *codec, "--lmbda", lmbda]) == 0
        sizes[lmbda] = out.stat().st_size
        assert main(["decode", str(out), "--human", "-o", str(tmp_path / f"dec-{lmbda}.png"), *codec]) == 0
    assert sizes["0.03"] > 2 * sizes["0.0005"]
    assert "rate position" in capsys.readouterr().out
    assert main(["encode", str(tmp_path / "a.png"), "-o", str(tmp_path / "x.omc"), *codec, "--lmbda", "9"]) == 2
    assert "outside this codec's trained range" in capsys.readouterr().err


def test_one_set_is_trained_over_the_curve_with_the_codecs_own_lambda_ratio(vr_codec):
    from omnicodec.objective import MultiTaskObjective, TaskTerm, rate_scale
    from omnicodec.tasks.registry import load_task_net

    model = vr_codec.model
    assert rate_scale(model, model.position) == pytest.approx(1.0)
    assert rate_scale(model, 0.0) == pytest.approx(model.lambdas[0].item() / model.lambdas[4].item())
    torch.manual_seed(0)
    omni = OmniCodec(vr_codec, ["seg"], AdaptorConfig(rate_levels=8))
    objective = MultiTaskObjective([TaskTerm("seg", load_task_net("seg"), 1.0, "distill")], lmbda=2.0)
    x = torch.rand(1, 3, 64, 64)
    low, high = (objective(omni, x, position=p, lmbda_scale=rate_scale(model, p)) for p in (0.0, 7.0))
    assert high["bpp"] > 3 * low["bpp"]
    for parts, p in ((low, 0.0), (high, 7.0)):
        expected = parts["bpp"] + 2.0 * rate_scale(model, p) * parts["L_seg"]
        assert torch.allclose(parts["loss"], expected)


def test_the_adaptor_job_trains_one_rate_conditioned_set_that_decodes_every_rate(vr_codec, tmp_path, photo):
    """``omnicodec train`` with ``adaptor.rate_levels``: a position sampled per batch, the
    checkpoint records the conditioning, and the set codes at any rate afterwards."""
    from safetensors.torch import save_file

    from omnicodec.data.scenes import build_scenes
    from omnicodec.jobs.adaptor_job import AdaptorTrainConfig
    from omnicodec.jobs.local import fit_local

    ckpt = tmp_path / "vr.safetensors"
    save_file({k: v.contiguous() for k, v in vr_codec.model.state_dict().items()}, str(ckpt))
    build_scenes(str(tmp_path / "scenes"), train=8, test=2, size=128, maxcount=8, progress=False)
    cfg = AdaptorTrainConfig.from_dict({
        "run": {"name": "vr", "storage": str(tmp_path / "runs"), "checkpoint_every": 3, "wandb": {"mode": "disabled"}},
        "optim": {"steps": 3, "lr": 0.002, "warmup_steps": 1},
        "data": {"shards": str(tmp_path / "scenes" / "train-000000.tar"), "batch_size": 2, "crop": 64,
                 "shuffle_buffer": 4, "num_workers": 0},
        "codec": {"arch": ARCH, "checkpoint": str(ckpt)},
        "adaptor": {"rate_levels": 8},
        "tasks": [{"name": "seg", "loss": "distill"}], "lmbda": 1.0,
    })
    result = fit_local("adaptors", cfg)
    assert result.error is None and 0 <= result.metrics["rate_position"] <= 7
    import os

    model = OmniCodec.from_checkpoint(os.path.join(result.checkpoint, "adaptors"))
    assert model.adaptors.config.rate_levels == 8 and model.variable_rate
    streams = [model.encode(photo, position=p) for p in (0.5, 6.0)]
    assert len(streams[1].to_bytes()) > 2 * len(streams[0].to_bytes())
    assert all(v["seg"].shape[-2:] == photo.shape[-2:] for v in model.decode_batch(streams, tasks=["seg"]))

    # a Serve task replica answers streams of mixed rates like the library (the header carries the rate)
    from omnicodec.serve.core import TaskWorker

    worker = TaskWorker("seg", os.path.join(result.checkpoint, "adaptors"))
    streams = [worker.model.encode(photo, position=p) for p in (0.5, 6.0, 3.0)]
    items = [(y, {"height": st.height, "width": st.width, "rate_position": st.rate_position})
             for st, y in worker.model.decode_latents(streams)]
    expected = [worker.predict(d["seg"]) for d in worker.model.decode_batch(streams, tasks=["seg"])]
    assert worker.run_batch(items) == expected

    # eval: the one set is a curve of its own, a point per trained level, rates rising
    from omnicodec.eval.evaluate import evaluate_checkpoints

    report = evaluate_checkpoints(str(tmp_path / "scenes" / "test-000000.tar"), None, str(tmp_path / "runs"),
                                  adaptors=[os.path.join(result.checkpoint, "adaptors")], baselines=["jpeg:40"],
                                  limit=2, resamples=20)
    ours = [p for p in report["points"] if p["system"] == "all-in-one"]
    assert [p["label"].rsplit("p=", 1)[1] for p in ours] == [str(i) for i in range(8)]
    assert ours[-1]["bpp"] > 3 * ours[0]["bpp"]

    # at chosen levels (between two levels is a rate too); a second frozen ladder of another codec
    # is a curve of its own, the set's own codec stays "frozen codec"
    report = evaluate_checkpoints(str(tmp_path / "scenes" / "test-000000.tar"), None, str(tmp_path / "runs"),
                                  adaptors=[os.path.join(result.checkpoint, "adaptors")], rate_levels=[1, 4.5],
                                  baselines=[f"frozen:{ARCH}:1", "frozen:mbt2018-mean-small:2"], limit=2, resamples=0)
    assert {(p["system"], p["label"].rsplit(" ", 1)[-1]) for p in report["points"]} >= {
        ("all-in-one", "p=0"), ("all-in-one", "p=3.5"), ("frozen codec", "q1"), ("frozen mbt2018-mean-small", "q2")}
    with pytest.raises(OmnicodecError, match=r"rate level\(s\) 9 outside the set's trained levels 1-8"):
        evaluate_checkpoints(str(tmp_path / "scenes" / "test-000000.tar"), None, str(tmp_path / "runs"),
                             adaptors=[os.path.join(result.checkpoint, "adaptors")], rate_levels=[9], limit=1)


def test_the_human_rd_benchmark_codes_a_variable_rate_codec_at_every_level(monkeypatch):
    from omnicodec import zoo
    from omnicodec.eval import rd

    cards = [{"kind": "codec", "arch": ARCH, "quality": 5, "lambda": [0.001, 0.002, 0.004]},
             {"kind": "codec", "arch": "mbt2018-mean-photo", "quality": 3, "lambda": 0.0067},
             {"kind": "codec", "arch": "mbt2018-mean-photo", "quality": 2, "lambda": 0.0035}]
    monkeypatch.setattr(zoo, "available", lambda: cards)
    assert rd.default_codecs() == ["mbt2018-mean-photo:2,3", f"{ARCH}:1,2,3"]
