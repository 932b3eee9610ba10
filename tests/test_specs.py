"""Every shipped spec (jobs/omnicodec/jobs/specs/*.yaml) is a valid config as shipped: a sweep's
every trial config (each grid value applied to its training config), the training config, and
the demo's training recipe. A typo in a key or value, or a family, task or loss that does not
exist, fails here in seconds instead of minutes into a user's sweep."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import yaml

from omnicodec.config import apply_overrides
from omnicodec.jobs.adaptor_job import AdaptorTrainConfig
from omnicodec.jobs.demo import demo_train_config
from omnicodec.jobs.sweep import SweepConfig

REPO = Path(__file__).resolve().parents[1]
SPECS = sorted((REPO / "jobs" / "omnicodec" / "jobs" / "specs").glob("*.yaml"))


def _trial_overrides(cfg: SweepConfig) -> list[list[str]]:
    """One override list per trial of the grid (a sampled dimension contributes its first choice
    or its lower bound: enough to validate the key and the value's type)."""
    axes = []
    for key, dim in cfg.search.items():
        values = dim.grid or dim.choice or [next(v for v in (dim.uniform, dim.loguniform, dim.randint) if v)[0]]
        axes.append([f"{key}={json.dumps(v)}" for v in values])
    return [list(combo) for combo in itertools.product(*axes)]


@pytest.mark.parametrize("path", SPECS, ids=[p.name for p in SPECS])
def test_every_shipped_spec_validates_as_shipped(path, monkeypatch):
    monkeypatch.chdir(REPO)  # sweeps name their training YAML relative to the checkout, as the README runs them
    raw = yaml.safe_load(path.read_text())
    if "search" in raw:
        cfg = SweepConfig.from_yaml(str(path))
        trials = _trial_overrides(cfg)
        assert trials, f"{path.name}: a sweep with no trials"
        for overrides in trials:
            AdaptorTrainConfig.from_dict(apply_overrides(cfg.base_train(), overrides), source=f"{path.name} {overrides}")
    elif "lambdas" in raw:  # demo.yaml: each live point's config, built as the demo builds it
        for i, lmbda in enumerate(raw["lambdas"]):
            demo_train_config(raw, i, lmbda, ["scenes/train-000000.tar"], "runs")
    else:
        AdaptorTrainConfig.from_yaml(str(path))


def test_a_misspelled_key_in_a_spec_fails_naming_it(tmp_path, monkeypatch):
    """The check above can fail: the same validation on a spec with one key misspelled."""
    monkeypatch.chdir(REPO)
    spec = yaml.safe_load((REPO / "jobs/omnicodec/jobs/specs/curves-sfma.yaml").read_text())
    spec["train_set"] = [s.replace("adaptor.family=sfma", "adaptor.famly=sfma") for s in spec["train_set"]]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(spec))
    cfg = SweepConfig.from_yaml(str(bad))
    with pytest.raises(Exception, match="famly"):
        AdaptorTrainConfig.from_dict(apply_overrides(cfg.base_train(), _trial_overrides(cfg)[0]), source="bad")
