"""Coding placement as a parameter: the transforms run on the model's device, entropy coding
on the CPU in fp32, so a stream decodes to the same latent on every machine. Run here on the
CPU (and on CUDA when a GPU is present); batch encode/decode equal the one-image paths."""

from __future__ import annotations

import pytest
import torch

from omnicodec.codec import load_codec
from omnicodec.model import OmniCodec

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = OmniCodec(load_codec("mbt2018-mean-small:2"), ["cls", "seg"])
    for p in m.adaptors.parameters():
        torch.nn.init.normal_(p, std=0.02)
    return m.eval()


@pytest.mark.parametrize("device", DEVICES)
def test_a_placed_model_makes_streams_that_decode_identically_on_the_cpu(model, photos, device):
    cpu_streams = [model.encode(x).to_bytes() for x in photos[:2]]
    placed = OmniCodec(model.codec, model.tasks, adaptors=model.adaptors).place(device)
    assert placed.device.type == device
    assert all(p.device.type == "cpu" for n, p in placed.codec.model.named_parameters() if n.startswith("h_"))
    placed_streams = [placed.encode(x.to(device)).to_bytes() for x in photos[:2]]
    if device == "cpu":
        assert placed_streams == cpu_streams
    for data in placed_streams:  # whoever encoded it, every machine decodes the same latent
        _, y_gpu = placed.decode_latent(data)
        _, y_cpu = model.cpu().decode_latent(data)
        assert torch.equal(y_gpu, y_cpu)
    views = placed.decode(placed_streams[0], tasks=["cls"])
    assert views["cls"].device.type == device
    model.cpu()


def test_batch_encode_and_decode_equal_the_one_image_paths(model, photos):
    imgs = [x[0] if x.dim() == 4 else x for x in photos]
    same = [imgs[1], imgs[1].flip(-1), imgs[0]]  # two sizes: grouped, order kept
    batch = model.encode_batch(same)
    for x, stream in zip(same, batch):
        single = model.encode(x)
        assert (stream.height, stream.width) == tuple(x.shape[-2:])
        assert abs(len(stream.to_bytes()) - len(single.to_bytes())) <= 0.02 * len(single.to_bytes()) + 4
    data = [s.to_bytes() for s in batch]
    decoded = model.decode_batch(data, tasks=["cls", "seg"], human=True)
    for d, out in zip(data, decoded):
        one = model.decode(d, tasks=["cls", "seg"], human=True)
        for name in one:
            torch.testing.assert_close(out[name], one[name], atol=2e-5, rtol=0)


def test_entropy_models_off_the_cpu_are_refused_with_the_fix_named(model):
    if not torch.cuda.is_available():
        pytest.skip("needs a second device to misplace the entropy models")
    wrong = OmniCodec(model.codec, model.tasks, adaptors=model.adaptors).to("cuda")
    with pytest.raises(Exception, match="model.place"):
        wrong.encode(torch.rand(3, 64, 64))
    model.cpu()


def test_streams_decode_to_the_same_latents_in_any_batch(model, photos):
    """The router decodes concurrent requests together: the latents must not depend on the
    company a stream is decoded in (the hyper-synthesis runs per image on both sides)."""
    from omnicodec.errors import StreamMismatch

    imgs = [x[0] if x.dim() == 4 else x for x in photos]
    data = [model.encode(x).to_bytes() for x in (imgs[1], imgs[0], imgs[1].flip(-1))]
    together = model.decode_latents(data + model.encode_batch([imgs[0], imgs[0].flip(-2)]))
    alone = [model.decode_latent(d)[1] for d in data] + [model.decode_latent(s)[1] for s in
                                                         model.encode_batch([imgs[0], imgs[0].flip(-2)])]
    assert len(together) == 5
    for (_, y), y_one in zip(together, alone):
        assert torch.equal(y, y_one) and y.shape[0] == 1
    other = OmniCodec(load_codec("mbt2018-mean-small:3"), ["cls"]).encode(imgs[0]).to_bytes()
    with pytest.raises(StreamMismatch, match="codec fingerprint mismatch"):
        model.decode_latents([data[0], other])
