"""Shared fixtures. Everything here is real: CompressAI models, real photos from
scikit-image, real files on disk; one local loopback Ray per session for the Ray tests."""

from __future__ import annotations

import os
import shutil
import subprocess

for _k, _v in {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0", "WANDB_MODE": "offline",
               "WANDB_SILENT": "true", "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1"}.items():
    os.environ.setdefault(_k, _v)

import numpy as np
import pytest
import torch
from PIL import Image

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def photo() -> torch.Tensor:
    """A real photo (scikit-image's astronaut), 200 x 300: not a multiple of 64."""
    import skimage.data

    from omnicodec.images import to_tensor

    return to_tensor(Image.fromarray(skimage.data.astronaut()[100:300, 150:450]))


@pytest.fixture(scope="session")
def photos() -> list[torch.Tensor]:
    """Several real photos at awkward sizes."""
    import skimage.data

    from omnicodec.images import to_tensor

    return [
        to_tensor(Image.fromarray(skimage.data.coffee()[:130, :77])),
        to_tensor(Image.fromarray(skimage.data.chelsea()[50:250, 100:290])),
        to_tensor(Image.fromarray(skimage.data.rocket()[:64, :64])),
    ]


@pytest.fixture(scope="session")
def codec_files(tmp_path_factory) -> dict[str, str]:
    """CompressAI checkpoints on disk, written the two ways people write them:
    ``torch.save(model.state_dict())`` and CompressAI's training example's
    ``{"epoch": ..., "state_dict": ...}``. Seeded random weights: the coding path does
    not care whether weights are trained, and nothing is downloaded."""
    from omnicodec.codec import build_codec

    out = {}
    root = tmp_path_factory.mktemp("codecs")
    for arch, quality, style in [("mbt2018-mean", 1, "bare"), ("bmshj2018-hyperprior", 1, "training"),
                                 ("cheng2020-anchor-small", 1, "bare"), ("mbt2018-mean-small", 3, "training")]:
        torch.manual_seed(0)
        model = build_codec(arch, quality)
        path = root / f"{arch}.pth.tar"
        state = model.state_dict()
        torch.save(state if style == "bare" else {"epoch": 3, "state_dict": state, "loss": torch.tensor(1.0)}, path)
        out[arch] = str(path)
    return out


@pytest.fixture(scope="session")
def small_codec(codec_files):
    from omnicodec.codec import load_codec

    return load_codec("mbt2018-mean-small", checkpoint=codec_files["mbt2018-mean-small"])


@pytest.fixture(scope="session")
def trained_codec():
    """The bundled codec trained here (mbt2018-mean-small, quality 3): real latents."""
    from omnicodec.codec import load_codec

    return load_codec("mbt2018-mean-small:3")


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray for the whole session, bound to 127.0.0.1."""
    from omnicodec.runtime.ray_env import init_ray

    ctx = init_ray(num_cpus=2)
    import ray

    yield ctx
    ray.shutdown()


@pytest.fixture(scope="session")
def wait_healthy():
    """``wait_healthy(client, timeout_s)``: poll ``/healthz`` until the Serve app answers."""
    from omnicodec.serve.client import wait_healthy as wait

    return wait


@pytest.fixture(scope="session")
def browser():
    """``browser(url, screenshot=None) -> DOM``: the page as headless Chromium renders it, after
    its scripts ran (Debian's ``chromium``; scripts/setup.sh installs it where apt works).
    Skips the test, saying so, where no Chromium is installed."""
    exe = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
    if exe is None:
        pytest.skip("no chromium binary on PATH (scripts/setup.sh installs Debian's 'chromium' where apt works)")
    args = [exe, "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run", "--hide-scrollbars",
            "--allow-file-access-from-files", "--virtual-time-budget=15000", "--window-size=1280,1600"]

    def render(url: str, screenshot: str | None = None) -> str:
        if screenshot:
            subprocess.run([*args, f"--screenshot={screenshot}", url], capture_output=True, timeout=120, check=True)
        return subprocess.run([*args, "--dump-dom", url], capture_output=True, text=True, timeout=120,
                              check=True).stdout

    return render


def random_image(h: int, w: int, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.random((1, 3, h, w), dtype=np.float32))


@pytest.fixture(scope="session")
def free_port():
    """``free_port()``: a TCP port nothing listens on at 127.0.0.1 (for servers and Ray heads)."""
    import socket

    def pick() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    return pick


@pytest.fixture
def throwaway(tmp_path, monkeypatch):
    """``throwaway(registry, name, source)``: a registry member added the way a user adds one,
    as one new file (``source``, written into tmp_path and imported) plus one registry line
    (the import, whose decorator registers it, or, for a lazy registry, an ``add`` of
    ``"module:attr"``); the member and the module are forgotten after the test."""
    import importlib
    import sys
    import textwrap

    monkeypatch.syspath_prepend(str(tmp_path))
    added = []

    def add(registry, name: str, source: str, lazy_attr: str | None = None):
        module = f"throwaway_{name.replace('-', '_')}"
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
        added.append((registry, name, module))
        if lazy_attr:
            registry.add(name, f"{module}:{lazy_attr}")
            return registry.get(name)
        return importlib.import_module(module)

    yield add
    for registry, name, module in added:
        registry.remove(name)
        sys.modules.pop(module, None)
