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

NAME = "codec-mbt2018-mean-small-q1"


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
    assert load_codec("mbt2018-mean-small:1").fingerprint == zoo.card(NAME)["fingerprint"]


def test_weights_that_do_not_match_their_card_are_refused(cards_only, monkeypatch, tmp_path_factory):
    real = os.path.join(os.path.dirname(os.path.abspath(zoo.__file__)), "weights")
    other = tmp_path_factory.mktemp("other-version")
    shutil.copy(os.path.join(real, "codec-mbt2018-mean-small-q2.safetensors"), other / f"{NAME}.safetensors")
    monkeypatch.setenv("OMNICODEC_ZOO_DIR", str(other))
    with pytest.raises(CheckpointError, match="refusing weights from another version"):
        load_codec("mbt2018-mean-small:1")


def test_missing_weights_name_what_is_there(cards_only, monkeypatch):
    monkeypatch.delenv("OMNICODEC_ZOO_DIR", raising=False)
    monkeypatch.setattr("sys.path", [])
    with pytest.raises(CheckpointError, match="is not in"):
        zoo.weights_file(NAME)
