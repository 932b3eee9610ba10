"""Every registered adaptor family keeps one contract: exact identity at init (so untrained
adaptors give the frozen codec's bytes), any feature-map size, gradients to every parameter,
and a checkpoint that records the family and reloads to the same outputs."""

from __future__ import annotations

import pytest
import torch

from omnicodec.adaptors import FAMILIES, AdaptorConfig, build_adaptor
from omnicodec.codec import load_codec
from omnicodec.model import OmniCodec

FAMILY_NAMES = sorted(FAMILIES)


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_an_untrained_block_is_an_exact_identity_at_any_size(family):
    block = build_adaptor(16, AdaptorConfig(family=family))
    for shape in [(1, 16, 17, 23), (2, 16, 32, 48), (1, 16, 1, 1)]:
        x = torch.randn(shape)
        assert torch.equal(block(x), x)


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_gradients_reach_every_parameter(family):
    torch.manual_seed(0)
    block = build_adaptor(16, AdaptorConfig(family=family))
    torch.nn.init.normal_(block.up.weight, std=0.1)  # past the zero init, as after one step
    block(torch.randn(2, 16, 20, 28)).square().mean().backward()
    dead = [n for n, p in block.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert dead == []


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_untrained_adaptors_of_every_family_give_the_frozen_codecs_bytes(family, photo):
    codec = load_codec("mbt2018-mean-small:2")
    frozen = OmniCodec(codec, with_adaptors=False).encode(photo).strings
    adapted = OmniCodec(codec, ["cls"], AdaptorConfig(family=family)).encode(photo).strings
    assert adapted == frozen


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_a_checkpoint_records_its_family_and_reloads_the_same_outputs(family, tmp_path, photo):
    torch.manual_seed(0)
    model = OmniCodec(load_codec("mbt2018-mean-small:2"), ["cls"], AdaptorConfig(family=family))
    for p in model.adaptors.parameters():
        torch.nn.init.normal_(p, std=0.02)
    model.save(str(tmp_path / "a"))
    again = OmniCodec.from_checkpoint(str(tmp_path / "a"))
    assert again.adaptors.config.family == family
    data = model.encode(photo).to_bytes()
    assert again.encode(photo).to_bytes() == data
    torch.testing.assert_close(again.decode(data, ["cls"])["cls"], model.decode(data, ["cls"])["cls"])


def test_an_unknown_family_is_refused_naming_the_known_ones():
    from omnicodec.errors import ConfigError

    with pytest.raises(ConfigError, match=r"unknown adaptor family 'lora'.*known: .*spectral"):
        AdaptorConfig.from_dict({"family": "lora"})


def test_checkpoints_made_before_families_existed_keep_their_fingerprints():
    """The bundled adaptors predate ``adaptor.family``: they load (the S-Adaptor fingerprint
    is re-derived and checked on load) and stay the default family."""
    model = OmniCodec.from_checkpoint("zoo:adaptors-demo")
    assert model.adaptors.config.family == "spectral"


def test_a_family_is_one_file_plus_one_registry_line_and_keeps_the_contract(throwaway, tmp_path, photo):
    """The acceptance of the registry: a throwaway family from one new file (imported: its
    decorator is the registry line) is accepted by config parsing and passes the contract."""
    from omnicodec.adaptors import FAMILIES

    throwaway(FAMILIES, "gated", '''
        from torch import nn

        from omnicodec.adaptors.families import FAMILIES, ResidualBottleneck


        @FAMILIES.register("gated")
        class Gated(ResidualBottleneck):
            """A 1x1 convolution as the frequency branch: the smallest family there is."""

            def build_branch(self, hidden, config):
                self.gate = nn.Conv2d(hidden, hidden, 1)

            def branch(self, h):
                return self.gate(h)
        ''')
    assert AdaptorConfig.from_dict({"family": "gated"}).family == "gated"
    test_an_untrained_block_is_an_exact_identity_at_any_size("gated")
    test_gradients_reach_every_parameter("gated")
    test_untrained_adaptors_of_every_family_give_the_frozen_codecs_bytes("gated", photo)
    test_a_checkpoint_records_its_family_and_reloads_the_same_outputs("gated", tmp_path, photo)
