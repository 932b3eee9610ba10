"""The Serve application: an HTTP router (FastAPI ingress) and one deployment per task.

    POST /v1/analyze?tasks=cls,seg@v2,det   body: an omnicodec bitstream
        router: parse + entropy-decode ONCE -> y_hat
                -> concurrently, per task: DeploymentHandle(task, multiplexed version)
                   -> g_s + T-Adaptors[task] + frozen network   (autoscaled, batched)
    POST /v1/encode          image in, bitstream out (server-side S-Adaptor)
    POST /v1/analyze-image   encode on the server, then analyze
    GET  /v1/tasks           tasks, versions, codec fingerprint
    GET  /v1/encoder         the S-Adaptor package for edge encoders (safetensors)
    GET  /v1/stats           this router replica's counters (decodes, requests, errors)
    GET  /healthz            liveness (no auth)

``build_app(args)`` is the import path Ray's ``serve run`` / ``serve deploy`` use.
"""


import asyncio
import logging
import threading
from typing import Any

import torch
from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from ray import serve

from omnicodec import __version__
from omnicodec.bitstream import Bitstream
from omnicodec.images import group_positions
from omnicodec.serve.cancel import to_thread_cancellable
from omnicodec.serve.config import ServeConfig
from omnicodec.serve.core import ApiError, RouterCore, TaskWorker, check_token, one_line
from omnicodec.serve.openapi import mount_docs

log = logging.getLogger("ray.serve")
MAX_VERSIONS_PER_REPLICA = 3  # adaptor versions a task replica keeps loaded (LRU)
BINARY_BODY = {"requestBody": {"required": True, "content": {"application/octet-stream": {
    "schema": {"type": "string", "format": "binary"}}}}}



def _analyze_openapi() -> dict:
    """/v1/analyze's OpenAPI: the request is raw bytes; each task's answer follows its kind's
    schema (``TaskKind.response_schema``), so a new kind documents itself."""
    from omnicodec.tasks.kinds import KINDS

    per_kind = [{"title": f"kind {name}", **kind.response_schema} for name, kind in sorted(KINDS.items())]
    answer = {"type": "object", "properties": {
        "stream": {"type": "object"}, "latent_decodes": {"type": "integer"},
        "tasks": {"type": "object", "additionalProperties": {"anyOf": per_kind}}}}
    return {**BINARY_BODY, "responses": {"200": {"description": "one answer per requested task",
                                                 "content": {"application/json": {"schema": answer}}}}}


api = FastAPI(title="omnicodec", version=__version__, docs_url=None,
              description="One bitstream, many machines: decode the latent once, fan out to task deployments.")


mount_docs(api)  # /docs and /openapi.json (3.0.3, which the bundled Swagger UI reads)


TASK_RETRIES = 2  # per task call, when its replica died mid-request


@serve.deployment
class TaskDeployment:
    """g_s + one task's T-Adaptors (any of its versions, multiplexed) + the frozen network."""

    def __init__(self, task: str, versions: dict[str, str], default: str, top_k: int, max_batch_size: int,
                 batch_wait_timeout_s: float):
        torch.set_num_threads(1)
        self.task, self.versions, self.default, self.top_k = task, versions, default, top_k
        self.device = "cuda" if torch.cuda.is_available() else "cpu"  # Ray exposes a GPU only if num_gpus > 0
        self.predict_batch.set_max_batch_size(max_batch_size)
        self.predict_batch.set_batch_wait_timeout_s(batch_wait_timeout_s)

    @serve.multiplexed(max_num_models_per_replica=MAX_VERSIONS_PER_REPLICA)
    async def get_worker(self, version: str) -> TaskWorker:
        return await asyncio.to_thread(TaskWorker, self.task, self.versions[version], self.top_k, self.device)

    async def predict(self, y_hat: torch.Tensor, header: dict[str, Any], seg_format: str = "png") -> dict[str, Any]:
        """A cancelled call (the router timed out and cancelled it) calls its work off: the batch
        it is in stops at its next layer once every request of its group is called off."""
        version = serve.get_multiplexed_model_id() or self.default
        called_off = threading.Event()
        try:
            return await self.predict_batch(version, y_hat, header, seg_format, called_off)
        except asyncio.CancelledError:
            called_off.set()
            raise

    @serve.batch(max_batch_size=4, batch_wait_timeout_s=0.01)
    async def predict_batch(self, versions: list[str], y_hats: list[torch.Tensor], headers: list[dict],
                            formats: list[str], called_off: list[threading.Event]) -> list[dict[str, Any] | None]:
        out: list[Any] = [None] * len(versions)
        for (version, fmt), idx in group_positions(zip(versions, formats)).items():
            worker = await self.get_worker(version)
            answers = await asyncio.to_thread(worker.run_batch, [(y_hats[i], headers[i]) for i in idx], fmt,
                                              [called_off[i] for i in idx])
            for i, a in zip(idx, answers):
                out[i] = None if a is None else {**a, "batch_size": len(versions)}  # None: nobody waits for it
        return out


TASKS_HELP = "e.g. cls,seg@v2,det (default: every served task, each at its default version)"


@serve.deployment
@serve.ingress(api)
class Router:
    def __init__(self, config: ServeConfig, handles: dict[str, Any]):
        torch.set_num_threads(1)
        self.config = config  # validated once, by build_app
        self.core = RouterCore(config)
        self.handles = handles
        self._decode_batch.set_max_batch_size(self.config.router.decode_batch_size)
        self._decode_batch.set_batch_wait_timeout_s(self.config.router.decode_batch_wait_s)

    async def _call(self, task: str, version: str, y_hat: torch.Tensor, header: dict, fmt: str) -> dict:
        """One task's answer. A task replica that dies with this request in flight (a lost node,
        an OOM kill) is retried on another or on its replacement: inference is idempotent, so
        the client never sees the failure (``task_retries`` in /v1/stats counts them)."""
        from ray.exceptions import ActorUnavailableError, RayActorError

        for attempt in range(TASK_RETRIES + 1):
            response = self.handles[task].options(multiplexed_model_id=version).predict.remote(y_hat, header, fmt)
            try:
                return await response
            except asyncio.CancelledError:  # timed out here: stop the replica's work too
                response.cancel()
                raise
            except (RayActorError, ActorUnavailableError):
                if attempt == TASK_RETRIES:
                    raise
                self.core.stats["task_retries"] += 1
        raise AssertionError("unreachable")

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.002)
    async def _decode_batch(self, streams: list[Bitstream]) -> list[torch.Tensor]:
        """Concurrent requests' entropy decoding, batched (one decoder call per latent shape)
        and off the event loop, so the router keeps accepting requests while it decodes."""
        return await asyncio.to_thread(self.core.decode_streams, streams)

    async def _body(self, request: Request) -> bytes:
        limit = self.config.max_request_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise ApiError(413, "too_large", f"request body of {declared} bytes exceeds {limit}")
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise ApiError(413, "too_large", f"request body exceeds {limit} bytes")
        if not body:
            raise ApiError(400, "empty_body", "the request body is empty")
        return body

    async def _handle(self, request: Request, work, needs_body: bool = True, auth: bool = True) -> Response:
        stats = self.core.stats
        stats["requests"] += 1
        try:
            if auth:
                check_token(self.core.token, request.headers.get("authorization"))
            body = await self._body(request) if needs_body else b""
            result = await asyncio.wait_for(work(body), timeout=self.config.request_timeout_s)
            stats["status_200"] += 1
            if isinstance(result, bytes):
                return Response(result, media_type="application/octet-stream")
            return JSONResponse(result)
        except ApiError as e:
            stats[f"status_{e.status}"] += 1
            return JSONResponse(e.body(), status_code=e.status)
        except asyncio.TimeoutError:
            stats["status_504"] += 1
            return JSONResponse(ApiError(504, "timeout", f"no answer within {self.config.request_timeout_s} s").body(),
                                status_code=504)
        except Exception as e:  # a bug or a dead replica: answer in one line, log the traceback, keep serving
            stats["status_500"] += 1
            log.exception("%s %s failed", request.method, request.url.path)
            return JSONResponse(ApiError(500, "internal", one_line(e)).body(), status_code=500)

    @api.post("/v1/analyze", openapi_extra=_analyze_openapi(),
              summary="Analyze one bitstream: decode the latent once, run each requested task")
    async def analyze(self, request: Request, tasks: str | None = Query(None, description=TASKS_HELP),
                      seg_format: str = Query("png", description="png (base64) or rle")) -> Response:
        return await self._handle(request, lambda body: self.core.analyze(body, self._tasks(tasks), self._call,
                                                                          seg_format, self._decode_batch))

    def _tasks(self, tasks: str | None) -> str:
        """No ``tasks=``: every served task (a default of cls answered 404 where cls is not served)."""
        return ",".join(self.core.versions) if tasks is None else tasks

    @api.post("/v1/encode", openapi_extra=BINARY_BODY, summary="Encode an image (PNG/JPEG bytes) into a bitstream")
    async def encode(self, request: Request) -> Response:
        async def work(body: bytes) -> bytes:
            return await to_thread_cancellable(self.core.encode_image, body)
        return await self._handle(request, work)

    @api.post("/v1/analyze-image", openapi_extra=BINARY_BODY, summary="Encode on the server, then analyze")
    async def analyze_image(self, request: Request, tasks: str | None = Query(None, description=TASKS_HELP),
                            seg_format: str = Query("png")) -> Response:
        async def work(body: bytes) -> dict:
            self.core.parse_tasks(self._tasks(tasks))  # fail fast before spending an encode
            data = await to_thread_cancellable(self.core.encode_image, body, True)
            return await self.core.analyze(data, self._tasks(tasks), self._call, seg_format)
        return await self._handle(request, work)

    @api.get("/v1/tasks", summary="Served tasks, adaptor versions and the codec fingerprint")
    async def tasks(self, request: Request) -> Response:
        async def work(_: bytes) -> dict:
            return self.core.describe()
        return await self._handle(request, work, needs_body=False)

    @api.get("/v1/encoder", summary="The S-Adaptor package an edge device encodes with")
    async def encoder(self, request: Request) -> Response:
        async def work(_: bytes) -> dict:
            return self.core.encoder_package()
        return await self._handle(request, work, needs_body=False)

    @api.get("/v1/stats", summary="Counters of this router replica")
    async def stats(self, request: Request) -> Response:
        async def work(_: bytes) -> dict:
            return dict(self.core.stats)
        return await self._handle(request, work, needs_body=False)

    @api.get("/healthz", summary="Liveness; no auth")
    async def healthz(self) -> dict[str, str]:
        return {"status": "ok"}


def build_app(args: dict[str, Any] | ServeConfig) -> serve.Application:
    """The application for a config's ``args`` (see serve/omnicodec/serve/config.yaml), or
    for a ``ServeConfig`` already validated: the config is validated here, once, and the
    validated object is what the router replicas receive."""
    cfg = args if isinstance(args, ServeConfig) else ServeConfig.from_dict(dict(args), source="serve config args")
    handles = {}
    for task, spec in cfg.tasks.items():
        handles[task] = TaskDeployment.options(
            name=f"task-{task}",
            ray_actor_options={"num_cpus": spec.num_cpus, "num_gpus": spec.num_gpus},
            max_ongoing_requests=spec.max_ongoing_requests,
            autoscaling_config=spec.autoscaling.to_ray(),
        ).bind(task, spec.versions, spec.default, cfg.top_k, spec.max_batch_size, spec.batch_wait_timeout_s)
    return Router.options(
        name="router",
        ray_actor_options={"num_cpus": cfg.router.num_cpus},
        max_ongoing_requests=cfg.router.max_ongoing_requests,
        autoscaling_config=cfg.router.autoscaling.to_ray(),
    ).bind(cfg, handles)
