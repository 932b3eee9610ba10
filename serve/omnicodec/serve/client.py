"""The edge client: encode locally with the server's S-Adaptor, send only the bytes.

``OmnicodecClient.encoder()`` fetches ``/v1/encoder`` once (the codec's identity and the
S-Adaptor weights as safetensors), checks both fingerprints against the codec available
locally, and caches the encoder under ``$OMNICODEC_HOME/edge/<s-fingerprint>``.
"""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Any

import httpx
import torch

from omnicodec import home, storage
from omnicodec.errors import CheckpointError, OmnicodecError
from omnicodec.images import load_image
from omnicodec.model import OmniCodec

HOME = home()


def wait_healthy(http: httpx.Client | str, timeout_s: float = 180) -> None:
    """Poll ``/healthz`` (no auth) until the Serve app answers 200: replicas load their
    models before they answer, so a fresh deployment takes seconds to minutes."""
    import time

    client = httpx.Client(base_url=http, timeout=5) if isinstance(http, str) else http
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            if client.get("/healthz").status_code == 200:
                return
        except (httpx.HTTPError, ServerUnreachable):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{client.base_url} did not become healthy within {timeout_s:.0f} s")


class ServerError(OmnicodecError):
    def __init__(self, status: int, body: Any):
        self.status, self.body = status, body
        msg = body.get("error", {}).get("message") if isinstance(body, dict) else str(body)
        super().__init__(f"HTTP {status}: {msg}")


class ServerUnreachable(OmnicodecError):
    """Nothing answers at the client's URL (one line, not httpx's traceback)."""


class _Http(httpx.Client):
    """httpx, with a refused or unreachable server as one ``ServerUnreachable`` line."""

    def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        try:
            return super().send(request, **kwargs)
        except httpx.ConnectError as e:
            why = "connection refused" if "refused" in str(e).lower() else str(e) or type(e).__name__
            raise ServerUnreachable(f"no omnicodec server at {str(self.base_url).rstrip('/')} ({why}); start one with "
                                    "`omnicodec serve --adaptors RUN` or `omnicodec serve serve/omnicodec/serve/config.yaml`") from None


class OmnicodecClient:
    def __init__(self, url: str = "http://127.0.0.1:8000", token: str | None = None, timeout: float = 60.0):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = _Http(base_url=url.rstrip("/"), headers=headers, timeout=timeout)
        self._encoder: OmniCodec | None = None

    def _json(self, r: httpx.Response) -> Any:
        try:
            body = r.json()
        except ValueError:
            body = r.text
        if r.status_code != 200:
            raise ServerError(r.status_code, body)
        return body

    def health(self) -> dict:
        return self._json(self.http.get("/healthz"))

    def tasks(self) -> dict:
        return self._json(self.http.get("/v1/tasks"))

    def analyze_bytes(self, data: bytes, tasks: str = "cls", seg_format: str = "png") -> dict:
        return self._json(self.http.post("/v1/analyze", params={"tasks": tasks, "seg_format": seg_format},
                                         content=data, headers={"Content-Type": "application/octet-stream"}))

    def encoder(self) -> OmniCodec:
        if self._encoder is None:
            self._encoder = fetch_encoder(self)
        return self._encoder

    def encode(self, image: torch.Tensor, lmbda: float | None = None) -> bytes:
        """The bitstream of ``image``; a variable-rate encoder codes at ``lmbda`` (the stream
        records the rate: the server needs nothing else)."""
        encoder = self.encoder()
        return encoder.encode(image, encoder.rate_position(lmbda=lmbda)).to_bytes()

    def analyze(self, image: torch.Tensor, tasks: str = "cls", seg_format: str = "png",
                lmbda: float | None = None) -> dict:
        """Encode at the edge, send only the bitstream."""
        return self.analyze_bytes(self.encode(image, lmbda), tasks, seg_format)


def fetch_encoder(client: OmnicodecClient) -> OmniCodec:
    from safetensors.torch import load

    from omnicodec.adaptors import AdaptorCheckpoint, AdaptorConfig
    from omnicodec.codec import CodecSpec, load_codec

    pkg = client._json(client.http.get("/v1/encoder"))
    cache = os.path.join(HOME, "edge", pkg["s_fingerprint"][:16])
    if storage.exists(os.path.join(cache, "adaptors.json")):
        return OmniCodec.from_checkpoint(cache)
    data = base64.b64decode(pkg["s_weights_safetensors_b64"])
    if hashlib.sha256(data).hexdigest() != pkg["sha256"]:
        raise CheckpointError("encoder package: sha256 mismatch (corrupted in transit)")
    codec = load_codec(CodecSpec.from_dict({k: v for k, v in pkg["codec"].items() if k != "fingerprint"}))
    if codec.fingerprint != pkg["codec"]["fingerprint"]:
        raise CheckpointError("the server's codec differs from the codec available here")
    ckpt = AdaptorCheckpoint(adaptor=AdaptorConfig.from_dict(pkg["adaptor"]), tasks=[],
                             codec=pkg["codec"], s_fingerprint=pkg["s_fingerprint"], state=load(data))
    model = OmniCodec.from_checkpoint(ckpt, codec)  # verifies the S fingerprint
    model.save(cache, metadata={"source": str(client.http.base_url)})
    return model


def check_served(client: OmnicodecClient, tasks: str) -> None:
    """Ask the server which tasks (and versions) it serves before downloading the encoder
    and encoding: an unknown task is a one-line error, at the cost of one small request."""
    from omnicodec.errors import ConfigError

    served = client.tasks()["tasks"]
    for item in (t.strip() for t in tasks.split(",") if t.strip()):
        name, _, version = item.partition("@")
        if name not in served:
            raise ConfigError(f"--tasks {item}: the server at {client.http.base_url} does not serve '{name}' "
                              f"(it serves: {', '.join(served)})")
        versions = served[name].get("versions") or {}
        if version and versions and version not in versions:
            raise ConfigError(f"--tasks {item}: '{name}' has no version '{version}' (versions: {', '.join(versions)})")


def analyze_file(path: str, url: str = "http://127.0.0.1:8000", tasks: str = "cls", token: str | None = None,
                 timeout: float = 60.0, lmbda: float | None = None) -> dict:
    """``omnicodec client analyze``: the server's answers for an image file (encoded here, only
    the bitstream sent) or an existing ``.omc`` bitstream; unknown tasks are refused first."""
    client = OmnicodecClient(url, token, timeout)
    check_served(client, tasks)
    if path.endswith(".omc"):
        data = storage.read_bytes(path)
    else:
        data = client.encode(load_image(path), lmbda)
    return client.analyze_bytes(data, tasks)
