"""Adaptor blocks and sets: identity at init, any size, named, adapter-only checkpoints."""

from __future__ import annotations

import pytest
import torch

from omnicodec.adaptors import AdaptorConfig, SpectralAdaptor, load_adaptors
from omnicodec.codec import load_codec
from omnicodec.errors import CheckpointError, ConfigError, FingerprintMismatch, OmnicodecError
from omnicodec.model import OmniCodec


@pytest.mark.parametrize("size", [(8, 8), (13, 7), (31, 64)])
def test_untrained_adaptor_is_exact_identity_at_any_size(size):
    block = SpectralAdaptor(32, AdaptorConfig())
    x = torch.randn(2, 32, *size)
    assert torch.equal(block(x), x)


def test_trained_adaptor_works_at_any_size_and_reaches_every_branch():
    block = SpectralAdaptor(16, AdaptorConfig(bottleneck_ratio=2, mask_grid=(4, 3)))
    x = torch.randn(1, 16, 20, 12, requires_grad=True)
    block(x).pow(2).sum().backward()
    assert block.up.weight.grad.abs().sum() > 0  # only `up` sees gradient at step 0 (LoRA-style)
    torch.nn.init.normal_(block.up.weight, std=0.1)
    for size in [(20, 12), (9, 33)]:
        y = block(torch.randn(1, 16, *size))
        assert y.shape == (1, 16, *size)
    block.zero_grad()
    block(torch.randn(1, 16, 20, 12)).pow(2).sum().backward()
    for name in ("down.weight", "dw.weight", "mask", "up.weight"):
        assert dict(block.named_parameters())[name].grad.abs().sum() > 0, name


def test_spectral_branch_can_be_switched_off():
    block = SpectralAdaptor(16, AdaptorConfig(spectral=False))
    assert not block.has_branch and "mask" not in dict(block.named_parameters())
    x = torch.randn(1, 16, 9, 7)
    assert torch.equal(block(x), x)


def test_adaptor_config_rejects_bad_values_naming_the_key():
    with pytest.raises(ConfigError, match="kernel_size"):
        AdaptorConfig.from_dict({"kernel_size": 4})
    with pytest.raises(ConfigError, match="unknown key 'bottleneck'"):
        AdaptorConfig.from_dict({"bottleneck": 4})


def test_checkpoint_holds_adaptor_weights_only_and_round_trips(small_codec, photo, tmp_path):
    torch.manual_seed(1)
    model = OmniCodec(small_codec, ["cls", "seg"], AdaptorConfig(bottleneck_ratio=8))
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.01)
    model.save(str(tmp_path / "ck"), metadata={"note": "test"})
    ckpt = load_adaptors(str(tmp_path / "ck"))
    assert all(k.startswith(("s.", "t.")) for k in ckpt.state)
    assert ckpt.codec["fingerprint"] == small_codec.fingerprint
    assert ckpt.tasks == ["cls", "seg"] and ckpt.adaptor.bottleneck_ratio == 8
    loaded = OmniCodec.from_checkpoint(str(tmp_path / "ck"), small_codec)
    data = model.encode(photo).to_bytes()
    assert loaded.encode(photo).to_bytes() == data
    assert torch.equal(loaded.decode(data, ["seg"])["seg"], model.decode(data, ["seg"])["seg"])
    assert (tmp_path / "ck" / "adaptors.safetensors").stat().st_size < 200_000


def test_loading_adaptors_onto_a_different_codec_is_refused(small_codec, codec_files, tmp_path):
    OmniCodec(small_codec, ["cls"]).save(str(tmp_path / "ck"))
    other = load_codec("mbt2018-mean", checkpoint=codec_files["mbt2018-mean"])
    with pytest.raises(FingerprintMismatch, match="refusing to load"):
        OmniCodec.from_checkpoint(str(tmp_path / "ck"), other)


def test_corrupt_checkpoint_files_give_clear_errors(small_codec, tmp_path):
    OmniCodec(small_codec, ["cls"]).save(str(tmp_path / "ck"))
    (tmp_path / "ck" / "adaptors.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="unreadable safetensors"):
        load_adaptors(str(tmp_path / "ck"))
    with pytest.raises(CheckpointError, match="not an adaptor checkpoint"):
        load_adaptors(str(tmp_path / "nothing"))


def test_task_names_are_validated(small_codec):
    with pytest.raises(OmnicodecError, match="task name"):
        OmniCodec(small_codec, ["Bad.Name"])
    with pytest.raises(OmnicodecError, match="duplicate"):
        OmniCodec(small_codec, ["cls", "cls"])


def test_inference_mask_cache_follows_weight_changes():
    """Coding caches the resampled spectral mask per size; a weight change (an optimizer
    step, a loaded checkpoint) must never serve a stale mask."""
    from omnicodec.adaptors import AdaptorConfig
    from omnicodec.adaptors.spectral import SpectralAdaptor

    torch.manual_seed(0)
    a, b = SpectralAdaptor(8, AdaptorConfig()), SpectralAdaptor(8, AdaptorConfig())
    for p in list(a.parameters()) + list(b.parameters()):
        torch.nn.init.normal_(p, std=0.1)
    x = torch.randn(1, 8, 24, 40)
    with torch.no_grad():
        first = a(x)
        assert torch.equal(a(x), first)  # served from the cache
        a.load_state_dict(b.state_dict())
        assert torch.equal(a(x), b(x))
        a.mask.add_(0.5)
        fresh = SpectralAdaptor(8, AdaptorConfig())
        fresh.load_state_dict(a.state_dict())
        assert torch.equal(a(x), fresh(x))
    assert torch.allclose(a(x), fresh(x))  # and with autograd on
