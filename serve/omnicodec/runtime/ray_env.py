"""Starting or joining Ray with safe local defaults.

A local Ray (tests, CI, the demo) must stay on loopback: with
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` set before it starts, a single-machine Ray binds
to 127.0.0.1 instead of the machine's network address. Usage stats stay off, and wandb
stays offline unless the user configured otherwise.
"""

from __future__ import annotations

import os
from typing import Any

LOCAL_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    "WANDB_MODE": "offline",
    "WANDB_SILENT": "true",
    "RAY_TRAIN_V2_ENABLED": "1",
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    "RAY_DEDUP_LOGS": "0",
    # compressai imports torch.jit.script, which warns in every worker process
    "PYTHONWARNINGS": "ignore:`torch.jit.script` is deprecated:FutureWarning",
}


def apply_local_env() -> None:
    """Set the defaults above where the user has not set them."""
    for k, v in LOCAL_ENV.items():
        os.environ.setdefault(k, v)


def use_token_if_available() -> None:
    """Ray 2.60 clusters started with ``ray start`` require a token by default
    ($RAY_AUTH_TOKEN, $RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token); switch this client to token
    mode when one exists and the user chose no mode, so joining such a cluster just works."""
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )
    except ImportError:  # other Ray versions: the environment variable alone
        if os.environ.get("RAY_AUTH_TOKEN") or os.path.exists(os.path.expanduser("~/.ray/auth_token")):
            os.environ.setdefault("RAY_AUTH_MODE", "token")
        return
    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def init_ray(address: str | None = None, num_cpus: float | None = None, **kwargs: Any):
    """Join the cluster the user asked for (``address``: ``HOST:PORT``, ``auto``, ``ray://...``;
    else ``$RAY_ADDRESS``), or start this command's own loopback-only Ray.

    Ray's ``ray.init()`` alone would join any cluster ``ray start`` left on this machine (it
    reads the temp folder's ``ray_current_cluster``), so a plain local command is explicit:
    ``address="local"``. A cluster that does not answer is one line within seconds
    (:func:`check_reachable`), not minutes of GCS retries.

    The console stays readable: worker output and Ray's own messages go to a log file
    (its path printed once), and only the progress bars reach the terminal, unless
    ``OMNICODEC_VERBOSE=1`` (``omnicodec --verbose``)."""
    apply_local_env()
    import logging

    import ray

    if ray.is_initialized():
        return ray.get_runtime_context()
    verbose = os.environ.get("OMNICODEC_VERBOSE") == "1"
    if not verbose:
        kwargs.setdefault("logging_level", logging.ERROR)
    kwargs.setdefault("log_to_driver", True)
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address and address != "local":
        check_reachable(address)
        use_token_if_available()
        ctx = ray.init(address=address, **kwargs)
    else:
        kwargs.setdefault("include_dashboard", False)
        ctx = ray.init(address="local", num_cpus=num_cpus, _node_ip_address="127.0.0.1", **kwargs)
    if not verbose and kwargs.get("log_to_driver"):
        quiet_console()
    return ctx


def check_reachable(address: str, timeout_s: float | None = None) -> None:
    """Fail in one line, naming the address, when nothing answers at a cluster's ``HOST:PORT``
    within ``timeout_s`` (``$OMNICODEC_CONNECT_TIMEOUT_S``, default 5 s); ``auto`` is left to
    Ray, which fails at once when it finds no cluster."""
    import socket

    from omnicodec.errors import OmnicodecError

    if address == "auto":
        return
    timeout_s = timeout_s or float(os.environ.get("OMNICODEC_CONNECT_TIMEOUT_S", "5"))
    hostport = address.split("://", 1)[-1].split("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise OmnicodecError(f"Ray address '{address}' is not HOST:PORT (or ray://HOST:PORT, auto)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as e:
        where = "--address" if os.environ.get("RAY_ADDRESS") != address else "RAY_ADDRESS"
        raise OmnicodecError(f"no Ray cluster answers at {address} ({where}) within {timeout_s:g} s "
                             f"({e.strerror or type(e).__name__}): start it, fix the address, or leave out "
                             "--address and RAY_ADDRESS to run on a local Ray of this command's own") from None


def quiet_console(path: str | None = None) -> str:
    """Route every worker line to a log file; keep only Ray's progress bars (``tqdm_ray``)
    on the terminal. Returns the log file's path."""
    import sys
    import time

    from ray._private import worker as ray_worker
    from ray._private.ray_logging import global_worker_stdstream_dispatcher
    from ray.experimental.tqdm_ray import RAY_TQDM_MAGIC

    from omnicodec import home

    path = path or os.path.join(home(), "logs", time.strftime("ray-%Y%m%d-%H%M%S.log"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    log = open(path, "a", buffering=1)

    def handler(data: dict) -> None:
        who = data.get("actor_name") or data.get("task_name") or ""
        for line in data.get("lines", []):
            if RAY_TQDM_MAGIC in line:
                ray_worker.process_tqdm(line)
            else:
                log.write(f"({who} pid={data.get('pid')}) {line}\n")

    global_worker_stdstream_dispatcher.remove_handler("ray_print_logs")
    global_worker_stdstream_dispatcher.add_handler("omnicodec_logs", handler)
    print(f"Ray's messages go to {path} (omnicodec --verbose shows them here)", file=sys.stderr)
    return path


def check_fits(what: str, cpus: float, gpus: float = 0.0, detail: str = "") -> None:
    """Fail in one line, before anything waits, when ``cpus``/``gpus`` for one run (or one
    sweep trial) exceed what the whole Ray cluster has. Ray would otherwise wait forever
    ("worker group startup timed out ... waiting for N workers") on a cluster that can never
    fit the request (an autoscaling cluster can grow, so it is only checked when the
    cluster does not autoscale)."""
    import ray

    from omnicodec.errors import ConfigError

    if os.environ.get("OMNICODEC_AUTOSCALING") == "1":
        return
    total = ray.cluster_resources()
    have_cpu, have_gpu = float(total.get("CPU", 0.0)), float(total.get("GPU", 0.0))
    if cpus > have_cpu + 1e-9 or gpus > have_gpu + 1e-9:
        need = f"{cpus:g} CPUs" + (f" and {gpus:g} GPUs" if gpus else "")
        have = f"{have_cpu:g} CPUs" + (f" and {have_gpu:g} GPUs" if gpus else "")
        raise ConfigError(f"{what} needs {need}{f' ({detail})' if detail else ''} but the Ray cluster has {have}: "
                          "lower run.num_workers or run.cpus_per_worker, or join a bigger cluster "
                          "(set OMNICODEC_AUTOSCALING=1 on an autoscaling cluster to skip this check)")
