"""infra/ manifests parse, target Ray 2.60, and embed a valid omnicodec Serve config."""

from __future__ import annotations

import os

import yaml

from omnicodec.serve.config import ServeConfig
from omnicodec.serve.run import load_serve_file

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load(name: str) -> dict:
    with open(os.path.join(REPO, "infra", "k8s", name)) as f:
        return yaml.safe_load(f)


def test_kuberay_manifests_are_ray_2_60_resources():
    for name, kind in [("raycluster.yaml", "RayCluster"), ("rayjob-train.yaml", "RayJob"), ("rayservice.yaml", "RayService")]:
        doc = _load(name)
        assert doc["apiVersion"] == "ray.io/v1" and doc["kind"] == kind
        spec = doc["spec"].get("rayClusterSpec") or doc["spec"].get("rayClusterConfig") or doc["spec"]
        assert spec["rayVersion"] == "2.60.0"


def test_rayservice_embeds_a_valid_serve_config():
    serve_cfg = yaml.safe_load(_load("rayservice.yaml")["spec"]["serveConfigV2"])
    (app,) = serve_cfg["applications"]
    assert app["import_path"] == "omnicodec.serve.app:build_app"
    cfg = ServeConfig.from_dict(app["args"])
    assert set(cfg.tasks) == {"cls", "seg", "det"} and cfg.auth.token_env == "OMNICODEC_TOKEN"


def test_shipped_serve_config_binds_loopback_and_validates():
    cfg = load_serve_file(os.path.join(REPO, "serve", "omnicodec", "serve", "config.yaml"))
    assert cfg["http_options"]["host"] == "127.0.0.1"
    ServeConfig.from_dict(cfg["applications"][0]["args"])


def test_rayjob_entrypoint_is_an_omnicodec_command():
    assert _load("rayjob-train.yaml")["spec"]["entrypoint"].split()[:2] == ["omnicodec", "train"]


def test_serve_configs_pass_rays_own_schema():
    """What `serve run` / `serve deploy` and KubeRay's serveConfigV2 validate against."""
    from ray.serve.schema import ServeDeploySchema

    with open(os.path.join(REPO, "serve", "omnicodec", "serve", "config.yaml")) as f:
        local = ServeDeploySchema(**yaml.safe_load(f))
    assert local.applications[0].import_path == "omnicodec.serve.app:build_app"
    cluster = ServeDeploySchema(**yaml.safe_load(_load("rayservice.yaml")["spec"]["serveConfigV2"]))
    assert cluster.applications[0].args["tasks"].keys() == {"cls", "seg", "det"}


def test_every_adaptor_version_in_shipped_serve_configs_loads_onto_its_bundled_codec():
    """The demo endpoint must start from a fresh clone: each `zoo:` checkpoint exists, holds
    every task it is served for, and matches the bundled codec's fingerprint."""
    from omnicodec.model import OmniCodec

    local = load_serve_file(os.path.join(REPO, "serve", "omnicodec", "serve", "config.yaml"))["applications"][0]["args"]
    cluster = yaml.safe_load(_load("rayservice.yaml")["spec"]["serveConfigV2"])["applications"][0]["args"]
    for args in (local, cluster):
        for task, spec in ServeConfig.from_dict(args).tasks.items():
            for location in spec.versions.values():
                model = OmniCodec.from_checkpoint(location)  # refuses a codec mismatch
                assert task in model.tasks, f"{location} has no T-Adaptors for {task}"
