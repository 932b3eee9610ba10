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


def _entrypoint_argv(entrypoint: str) -> list[str]:
    """The argv omnicodec receives when KubeRay's submitter runs ``entrypoint`` through
    ``bash -c`` (brace expansion, quoting and all)."""
    import subprocess

    assert entrypoint.split()[0] == "omnicodec"
    rest = entrypoint.split(None, 1)[1]
    out = subprocess.run(["bash", "-c", 'p() { for a in "$@"; do printf "%s\\0" "$a"; done; }; p ' + rest],
                         capture_output=True, check=True).stdout.decode()
    return out.split("\0")[:-1]


def test_rayjob_entrypoint_survives_bash_and_trains_what_its_name_says():
    from omnicodec.cli import build_parser
    from omnicodec.jobs.adaptor_job import AdaptorTrainConfig

    spec = _load("rayjob-train.yaml")["spec"]
    argv = _entrypoint_argv(spec["entrypoint"])
    args = build_parser().parse_args(argv)  # exits 2 on 128 stray arguments
    assert args.command == "train"
    cfg = AdaptorTrainConfig.from_yaml(os.path.join(REPO, args.config), args.set)
    assert cfg.data.shards == "s3://BUCKET/omnicodec/scenes/train-{000000..000127}.tar"
    assert cfg.run.name.endswith(f"-l{cfg.lmbda:g}")
    assert cfg.run.wandb.mode == "online"
    workers = spec["rayClusterSpec"]["workerGroupSpecs"]
    pods = sum(g["replicas"] for g in workers)
    cpus_per_pod = float(workers[0]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"])
    assert cfg.run.num_workers == pods and cfg.run.cpus_per_worker == cpus_per_pod  # one worker per pod


def _containers(cluster_spec: dict) -> list[dict]:
    groups = [cluster_spec["headGroupSpec"], *cluster_spec.get("workerGroupSpecs", [])]
    return [c for g in groups for c in g["template"]["spec"]["containers"]]


def test_every_cluster_has_token_auth_and_every_pod_has_storage_credentials():
    for name in ("raycluster.yaml", "rayjob-train.yaml", "rayservice.yaml"):
        spec = _load(name)["spec"]
        cluster = spec.get("rayClusterSpec") or spec.get("rayClusterConfig") or spec
        assert cluster.get("authOptions", {}).get("mode") == "token", name
        if name == "rayservice.yaml":
            continue
        for c in _containers(cluster):
            env = {e["name"] for e in c.get("env", [])}
            assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= env, (name, c["name"])


def test_the_image_builds_cpu_and_gpu_variants_and_installs_cloud_storage():
    text = open(os.path.join(REPO, "infra", "docker", "Dockerfile")).read()
    assert "ARG BASE=" in text and "FROM ${BASE}" in text and '".[s3,gcs]"' in text
    import tomllib

    with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
        extras = tomllib.load(f)["project"]["optional-dependencies"]
    assert any(d.startswith("s3fs") for d in extras["s3"]) and any(d.startswith("gcsfs") for d in extras["gcs"])


# ------------------------------------------------------- KubeRay CRD schemas (v1.7.0)
def _crd_schema(kind: str) -> dict:
    import gzip
    import json

    with gzip.open(os.path.join(REPO, "infra", "k8s", "crds", f"ray.io_v1_{kind}.schema.json.gz")) as f:
        return json.load(f)


def unknown_fields(doc, schema: dict, path: str = "") -> list[str]:
    """Fields the API server would prune: keys absent from a structural schema's properties
    (unless it preserves unknown fields or declares additionalProperties)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    if isinstance(doc, dict):
        props, extra = schema.get("properties"), schema.get("additionalProperties")
        out = []
        for k, v in doc.items():
            if props is not None and k in props:
                out += unknown_fields(v, props[k], f"{path}.{k}")
            elif isinstance(extra, dict):
                out += unknown_fields(v, extra, f"{path}.{k}")
            elif props is not None and path != "" and not (path == ".metadata" or path.endswith(".metadata")):
                out.append(f"{path}.{k}")
        return out
    if isinstance(doc, list) and isinstance(schema.get("items"), dict):
        return [e for i, item in enumerate(doc) for e in unknown_fields(item, schema["items"], f"{path}[{i}]")]
    return []


def check_manifest(doc: dict) -> list[str]:
    import jsonschema

    schema = _crd_schema(doc["kind"])
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
              for e in jsonschema.Draft7Validator(schema).iter_errors(doc)]
    return errors + [f"{f}: unknown field (KubeRay v1.7 would prune it)" for f in unknown_fields(doc, schema)]


def test_every_manifest_passes_kuberays_own_crd_schema():
    for name in ("raycluster.yaml", "rayjob-train.yaml", "rayservice.yaml"):
        assert check_manifest(_load(name)) == [], name


def test_the_crd_check_catches_a_typo_and_a_wrong_type():
    doc = _load("raycluster.yaml")
    doc["spec"]["workerGroupSpecs"][0]["replica"] = 2  # typo for `replicas`
    doc["spec"]["workerGroupSpecs"][0]["minReplicas"] = "two"
    problems = check_manifest(doc)
    assert any("workerGroupSpecs[0].replica: unknown field" in p for p in problems), problems
    assert any("minReplicas" in p and "integer" in p for p in problems), problems
