"""The compatible coding reproduces the frozen codec exactly: with untrained adaptors and
``coding="compressai"`` our payload is CompressAI's own ``compress()`` output, and
``--human`` decoding is its ``decompress()``. (The default, portable coding differs from it
by design: see tests/test_portable_streams.py.)"""

from __future__ import annotations

import pytest
import torch

from omnicodec.bitstream import Bitstream
from omnicodec.cli import main
from omnicodec.codec import build_codec, load_codec, load_codec_state_dict
from omnicodec.images import load_image, pad_to_grid, save_image
from omnicodec.model import HUMAN, OmniCodec

ARCHS = ["mbt2018-mean", "bmshj2018-hyperprior", "cheng2020-anchor-small"]


def compressai_reference(arch: str, path: str, x: torch.Tensor):
    """CompressAI alone, as a user would call it on the same checkpoint and image."""
    model = build_codec(arch, 1)
    model.load_state_dict(load_codec_state_dict(path))
    model.eval()
    model.update()  # the checkpoint's own tables where it has them, as omnicodec loads it
    padded, _ = pad_to_grid(x)
    with torch.no_grad():
        out = model.compress(padded)
        x_hat = model.decompress(out["strings"], out["shape"])["x_hat"]
    return [s[0] for s in out["strings"]], x_hat[..., : x.shape[-2], : x.shape[-1]]


@pytest.mark.parametrize("arch", ARCHS)
def test_untrained_adaptors_give_compressai_bytes_and_human_decode(arch, codec_files, photo):
    codec = load_codec(arch, checkpoint=codec_files[arch])
    model = OmniCodec(codec, ["cls", "seg"])
    model.coding = "compressai"
    stream = model.encode(photo)
    strings, x_hat = compressai_reference(arch, codec_files[arch], photo)
    assert stream.strings == strings
    decoded = model.decode(stream.to_bytes(), tasks=["cls"], human=True)
    assert torch.equal(decoded[HUMAN], x_hat)
    assert torch.equal(decoded["cls"], x_hat)  # identity T-Adaptors too


@pytest.mark.parametrize("arch", ["mbt2018-mean", "bmshj2018-hyperprior"])
def test_cli_with_plain_state_dict_file_matches_compressai(arch, codec_files, photo, tmp_path):
    img = tmp_path / "photo.png"
    save_image(photo, str(img))
    x = load_image(str(img))
    ckpt = tmp_path / "adaptors"
    OmniCodec(load_codec(arch, checkpoint=codec_files[arch]), ["cls"]).save(str(ckpt))
    out = tmp_path / "photo.omc"
    assert main(["encode", str(img), "-o", str(out), "--codec", arch, "--codec-checkpoint", codec_files[arch],
                 "--adaptors", str(ckpt), "--coding", "compressai"]) == 0
    strings, x_hat = compressai_reference(arch, codec_files[arch], x)
    assert Bitstream.from_bytes(out.read_bytes()).strings == strings
    human = tmp_path / "human.png"
    assert main(["decode", str(out), "--human", "-o", str(human), "--codec", arch,
                 "--codec-checkpoint", codec_files[arch]]) == 0
    assert torch.equal(load_image(str(human)), load_image_like(x_hat, tmp_path))


def load_image_like(x: torch.Tensor, tmp_path) -> torch.Tensor:
    """The 8-bit PNG CompressAI's reconstruction becomes when saved the same way."""
    p = tmp_path / "ref.png"
    save_image(x, str(p))
    return load_image(str(p))


def test_training_checkpoint_and_bare_state_dict_fingerprint_alike(codec_files, tmp_path):
    state = load_codec_state_dict(codec_files["bmshj2018-hyperprior"])  # {"state_dict": ...} format
    bare = tmp_path / "bare.pt"
    torch.save(state, bare)
    a = load_codec("bmshj2018-hyperprior", checkpoint=codec_files["bmshj2018-hyperprior"])
    b = load_codec("bmshj2018-hyperprior", checkpoint=str(bare))
    assert a.fingerprint == b.fingerprint


def _bundled_codecs() -> list[tuple[str, int]]:
    from omnicodec import zoo

    return sorted((c["arch"], int(c["quality"])) for c in zoo.available() if c.get("kind") == "codec")


@pytest.mark.parametrize("arch,quality", _bundled_codecs())
def test_every_bundled_codec_loads_to_its_card_fingerprint_and_codes_like_compressai(arch, quality, photo):
    """fp16-stored parameters load to exactly the fp32 values that were measured and
    fingerprinted, and the payload is CompressAI's own compress() of the same model."""
    from omnicodec import zoo
    from omnicodec.codec.registry import get_architecture

    codec = load_codec(f"{arch}:{quality}")
    stored = get_architecture(arch).stored_quality(quality)  # a variable-rate codec: one artifact for every rate
    assert codec.fingerprint == zoo.card(zoo.artifact_name("codec", arch, stored))["fingerprint"]
    reference = get_architecture(arch).build(quality)  # a variable-rate codec: at quality's level
    reference.load_state_dict(zoo.load_codec_weights(arch, stored))
    reference.eval()
    reference.update()  # the bundled tables, as stored
    padded, _ = pad_to_grid(photo)
    with torch.no_grad():
        strings = [s[0] for s in reference.compress(padded)["strings"]]
    model = OmniCodec(codec, ["cls"])
    model.coding = "compressai"
    assert model.encode(photo).strings == strings
