"""``omnicodec serve CONFIG``: start (or join) Ray, deploy the app, serve until Ctrl-C.

CONFIG is Ray Serve's own config format (``http_options`` + ``applications``), so the
same file works with ``serve run CONFIG`` and ``serve deploy CONFIG``.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

import yaml

from omnicodec import storage
from omnicodec.config import apply_overrides
from omnicodec.errors import ConfigError

DEFAULT_HTTP = {"host": "127.0.0.1", "port": 8000}


def load_serve_file(location: str, overrides: list[str] | None = None) -> dict[str, Any]:
    try:
        data = yaml.safe_load(storage.read_text(location)) or {}
    except FileNotFoundError:
        raise ConfigError(f"{location}: no such serve config") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{location}: not valid YAML: {e}") from None
    apps = data.get("applications")
    if not isinstance(apps, list) or not apps:
        raise ConfigError(f"{location}: expected 'applications' (a list), as `serve run` reads it")
    http = [o.removeprefix("http_options.") for o in overrides or [] if o.startswith("http_options.")]
    args = [o for o in overrides or [] if not o.startswith("http_options.")]
    data["http_options"] = apply_overrides({**DEFAULT_HTTP, **(data.get("http_options") or {})}, http)
    apps[0]["args"] = apply_overrides(apps[0].get("args") or {}, args)
    return data


def config_for_adaptors(location: str, overrides: list[str] | None = None) -> dict[str, Any]:
    """The serve config for the common case: one checkpoint, all its tasks, version v1."""
    from omnicodec.adaptors.checkpoint import read_config, resolve

    path = resolve(location)
    tasks = read_config(path)["tasks"]
    data = {"applications": [{"name": "omnicodec", "route_prefix": "/", "import_path": "omnicodec.serve.app:build_app",
                              "args": {"tasks": {t: {"versions": {"v1": path}} for t in tasks}}}]}
    http = [o.removeprefix("http_options.") for o in overrides or [] if o.startswith("http_options.")]
    args = [o for o in overrides or [] if not o.startswith("http_options.")]
    data["http_options"] = apply_overrides(dict(DEFAULT_HTTP), http)
    data["applications"][0]["args"] = apply_overrides(data["applications"][0]["args"], args)
    return data


def deploy(config: dict[str, Any]) -> str:
    """Start Serve with the config's HTTP options and run every application in it."""
    from ray import serve

    from omnicodec.serve.app import build_app
    from omnicodec.serve.config import ServeConfig

    http = config["http_options"]
    serve.start(http_options=http)
    for app in config["applications"]:
        args = ServeConfig.from_dict(app.get("args") or {}, source=f"application {app.get('name', 'omnicodec')}: args")
        serve.run(build_app(args), name=app.get("name", "omnicodec"),
                  route_prefix=app.get("route_prefix", "/"), blocking=False)
    return f"http://{http['host']}:{http['port']}"


def serve_forever(config: dict[str, Any], address: str | None = None) -> None:
    """Start (or join, ``address``) Ray, deploy ``config`` (``load_serve_file`` or
    ``config_for_adaptors``) and serve until Ctrl-C or SIGTERM; Serve is shut down after."""
    from ray import serve

    from omnicodec.runtime.ray_env import init_ray

    init_ray(address)
    url = deploy(config)
    print(f"omnicodec serving at {url}  (docs: {url}/docs, health: {url}/healthz); Ctrl-C stops")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        serve.shutdown()
