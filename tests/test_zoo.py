"""Bundled weights: found in the package, or (on a cluster, where `omnicodec submit` ships
code and cards but not the large weights) in another installed copy; a copy whose
fingerprint differs from its card is refused."""

from __future__ import annotations

import os
import shutil

import pytest

from omnicodec import zoo
from omnicodec.codec import load_codec
from omnicodec.errors import CheckpointError

NAME = "codec-mbt2018-mean-small-q3"  # the other weights below are q2's


@pytest.fixture
def cards_only(tmp_path, monkeypatch):
    """The package's weights folder as `omnicodec submit` uploads it: JSON cards, no weights."""
    for p in zoo.WEIGHTS_DIR.glob("codec-mbt2018-mean-small-*.json"):
        shutil.copy(p, tmp_path / p.name)
    monkeypatch.setattr(zoo, "WEIGHTS_DIR", tmp_path)
    return tmp_path


def test_weights_come_from_an_installed_copy_when_the_package_has_only_cards(cards_only, monkeypatch):
    real = os.path.dirname(os.path.abspath(zoo.__file__))
    monkeypatch.setenv("OMNICODEC_ZOO_DIR", os.path.join(real, "weights"))
    assert zoo.weights_file(NAME).parent != cards_only
    assert load_codec("mbt2018-mean-small:3").fingerprint == zoo.card(NAME)["fingerprint"]


def test_weights_that_do_not_match_their_card_are_refused(cards_only, monkeypatch, tmp_path_factory):
    real = os.path.join(os.path.dirname(os.path.abspath(zoo.__file__)), "weights")
    other = tmp_path_factory.mktemp("other-version")
    shutil.copy(os.path.join(real, "codec-mbt2018-mean-small-q2.safetensors"), other / f"{NAME}.safetensors")
    monkeypatch.setenv("OMNICODEC_ZOO_DIR", str(other))
    with pytest.raises(CheckpointError, match="refusing weights from another version"):
        load_codec("mbt2018-mean-small:3")


def test_missing_weights_say_how_to_make_them_available(cards_only, monkeypatch):
    """A job's upload has the cards, not the weights: the error says where the weights may come from
    (OMNICODEC_ZOO_DIR, an installed omnicodec), not that `omnicodec pretrain` makes them."""
    monkeypatch.delenv("OMNICODEC_ZOO_DIR", raising=False)
    monkeypatch.setattr("sys.path", [])
    with pytest.raises(CheckpointError, match=r"are not on this machine .* set OMNICODEC_ZOO_DIR .* install omnicodec"):
        zoo.weights_file(NAME)


ADAPTOR_SETS = sorted(p.name for p in zoo.WEIGHTS_DIR.glob("adaptors-*") if p.is_dir())


@pytest.mark.parametrize("name", ADAPTOR_SETS)
def test_every_bundled_adaptor_set_codes_on_its_bundled_codec(name, photo):
    """Each bundled adaptor set loads onto the bundled codec it names (both fingerprints are
    checked on load), codes an image into ONE stream and decodes every task from it; a set
    with a card states the operating point it was measured at, with intervals."""
    import json

    from omnicodec.model import OmniCodec

    model = OmniCodec.from_checkpoint(f"zoo:{name}")
    card = zoo.card(zoo.artifact_name("codec", model.codec.spec.arch,
                                      model.codec.arch.stored_quality(model.codec.spec.quality)))
    assert model.codec.fingerprint == card["fingerprint"]
    x = photo[:, :128, :128]
    out = model.decode(model.encode(x).to_bytes(), tasks=model.tasks)
    assert set(out) == set(model.tasks)
    card_file = zoo.WEIGHTS_DIR / name / "card.json"
    if card_file.exists():
        c = json.loads(card_file.read_text())
        assert c["codec"] == f"{model.codec.spec.arch} q{model.codec.spec.quality}" and c["metrics"]["bpp"] > 0
        assert all(c["metrics"]["ci"][t] for t in model.tasks)
        assert c["evaluation"]["provenance"]["shards_sha256"]
