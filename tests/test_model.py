"""The adapted model: frozen codec, which gradients go where, any image size, real bpp."""

from __future__ import annotations

import torch

from omnicodec.bitstream import Bitstream
from omnicodec.cli import main
from omnicodec.images import save_image
from omnicodec.model import HUMAN, OmniCodec


def test_only_adaptor_parameters_require_grad(small_codec):
    model = OmniCodec(small_codec, ["cls", "seg", "det"])
    assert all(not p.requires_grad for p in small_codec.model.parameters())
    assert small_codec.model.entropy_bottleneck.quantiles.requires_grad is False
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert names and all(n.startswith("adaptors.") for n in names)
    assert sum(p.numel() for p in model.parameters()) == model.adaptors.num_parameters()


def test_trainable_fraction_with_three_tasks_is_under_three_percent(small_codec):
    rep = OmniCodec(small_codec, ["cls", "seg", "det"]).parameter_report()
    assert rep["fraction_of_codec"] < 0.03
    assert rep["trainable"] == rep["s_adaptor"] + sum(rep["t_adaptors"].values())


def _step(model: OmniCodec, x: torch.Tensor, loss_fn, params=None, steps: int = 3) -> None:
    """A few Adam steps on ``params`` (zero-initialised up-projections need more than one
    step before a rounded latent moves)."""
    opt = torch.optim.Adam(list(params if params is not None else model.parameters()), lr=0.05)
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(model(x, tasks=model.tasks)).backward()
        opt.step()


def test_t_adaptor_step_changes_only_that_tasks_decode(small_codec, photo):
    torch.manual_seed(0)
    model = OmniCodec(small_codec, ["cls", "seg"])
    stream = model.encode(photo).to_bytes()
    before = model.decode(stream, tasks=["cls", "seg"])
    x = torch.nn.functional.pad(photo, (0, 20, 0, 56))[..., :128, :128]
    _step(model, x, lambda out: (out["x_hat"]["cls"] - 0.5).pow(2).mean(), model.adaptors.t["cls"].parameters())
    assert model.encode(photo).to_bytes() == stream  # the S-Adaptor is untouched: same bitstream
    after = model.decode(stream, tasks=["cls", "seg"])
    assert not torch.equal(after["cls"], before["cls"])
    assert torch.equal(after["seg"], before["seg"])


def test_s_adaptor_step_changes_the_bitstream(trained_codec, photo):
    torch.manual_seed(0)
    model = OmniCodec(trained_codec, ["cls"])
    stream = model.encode(photo)
    x = photo[..., :128, :128]
    _step(model, x, lambda out: out["bpp"] + (out["x_hat"]["cls"] - x).pow(2).mean(), model.adaptors.s.parameters())
    new = model.encode(photo)
    assert new.strings != stream.strings
    assert new.adaptor_fp != stream.adaptor_fp


def test_round_trip_on_real_photos_of_any_size(trained_codec, photos, tmp_path):
    from omnicodec.images import psnr

    model = OmniCodec(trained_codec, ["cls", "det"])
    for x in photos:
        data = model.encode(x).to_bytes()
        header = Bitstream.from_bytes(data)
        assert (header.height, header.width) == tuple(x.shape[-2:])
        out = model.decode(data, tasks=["cls", "det"], human=True)
        for name in ("cls", "det", HUMAN):
            assert out[name].shape == x.shape
            assert 0 <= float(out[name].min()) and float(out[name].max()) <= 1
        assert psnr(out[HUMAN], x) > 22  # the bundled codec really reconstructs the photo


def test_cli_bpp_comes_from_the_files_real_size(small_codec, codec_files, photo, tmp_path, capsys):
    img = tmp_path / "p.png"
    save_image(photo, str(img))
    out = tmp_path / "p.omc"
    assert main(["encode", str(img), "-o", str(out), "--codec", "mbt2018-mean-small:3",
                 "--codec-checkpoint", codec_files["mbt2018-mean-small"]]) == 0
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    import json

    info = json.loads(capsys.readouterr().out)
    size = out.stat().st_size
    assert info["total_bytes"] == size
    assert abs(info["bpp"] - 8 * size / (200 * 300)) < 1e-6


def test_decode_refuses_other_codecs_stream(small_codec, codec_files, photo):
    from omnicodec.codec import load_codec
    from omnicodec.errors import BitstreamError

    other = OmniCodec(load_codec("mbt2018-mean", checkpoint=codec_files["mbt2018-mean"]), with_adaptors=False)
    data = OmniCodec(small_codec, with_adaptors=False).encode(photo).to_bytes()
    try:
        other.decode(data, human=True)
    except BitstreamError as e:
        assert "codec fingerprint mismatch" in str(e)
    else:
        raise AssertionError("decoded another codec's stream")


def test_t_adaptors_refuse_stream_from_another_s_adaptor(small_codec, photo):
    import pytest

    from omnicodec.errors import BitstreamError

    plain = OmniCodec(small_codec, with_adaptors=False).encode(photo).to_bytes()
    model = OmniCodec(small_codec, ["cls"])
    assert HUMAN in model.decode(plain, human=True)  # humans can always read it
    with pytest.raises(BitstreamError, match="S-Adaptor fingerprint mismatch"):
        model.decode(plain, tasks=["cls"])


def test_forward_bpp_estimate_tracks_real_bytes(trained_codec, photo):
    model = OmniCodec(trained_codec, with_adaptors=False)
    real = 8 * len(model.encode(photo).to_bytes()) / (200 * 300)
    est = model.estimate_bpp(photo)
    assert abs(real - est) / real < 0.15  # header and coder overhead only


def test_per_group_runs_each_shape_once_and_scatters_back_in_order():
    from omnicodec.images import group_positions, per_group

    shapes = [(3, 64, 64), (3, 96, 128), (3, 64, 64), (3, 70, 130), (3, 96, 128), (3, 64, 64)]
    assert group_positions(shapes) == {(3, 64, 64): [0, 2, 5], (3, 96, 128): [1, 4], (3, 70, 130): [3]}
    calls = []

    def run(shape, idx):
        calls.append((shape, idx))
        return [f"{i}:{shape[-1]}" for i in idx]

    assert per_group(shapes, run) == ["0:64", "1:128", "2:64", "3:130", "4:128", "5:64"]
    assert [c[0] for c in calls] == [(3, 64, 64), (3, 96, 128), (3, 70, 130)]  # first-seen order, once each
    assert per_group([], run) == []


def test_batched_reconstruction_serve_runs_equals_per_stream_decode(trained_codec):
    """Serve's task replicas call ``reconstruct_batch`` on the latents their router decoded:
    a stream alone in its shape gets exactly what ``decode`` gives; streams sharing a shape get
    exactly what ``decode_batch`` gives (one g_s pass for the group)."""
    torch.manual_seed(0)
    model = OmniCodec(trained_codec, ["cls", "seg"])
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.01)
    images = [torch.rand(3, h, w) for h, w in [(64, 64), (96, 128), (70, 130), (200, 64), (64, 64)]]
    streams = model.encode_batch(images)
    decoded = model.decode_latents(streams)
    latents, sizes = [y for _, y in decoded], [(s.height, s.width) for s, _ in decoded]
    served = model.reconstruct_batch(latents, sizes, ["cls"], human=True)
    for i in (1, 2, 3):  # alone in their shape
        alone = model.decode(streams[i], tasks=["cls"], human=True)
        assert set(served[i]) == {"cls", HUMAN}
        assert all(torch.equal(served[i][k], alone[k]) for k in alone)
        assert served[i]["cls"].shape == (1, 3, *images[i].shape[1:])
    batched = model.decode_batch(streams, tasks=["cls"], human=True)
    assert all(torch.equal(a[k], b[k]) for a, b in zip(served, batched) for k in a)
    for i in (0, 4):  # shared a g_s pass: equal to one-by-one decoding up to float summation order
        alone = model.decode(streams[i], tasks=["cls"])
        assert torch.allclose(served[i]["cls"], alone["cls"], atol=1e-5)
