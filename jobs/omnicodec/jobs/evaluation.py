"""Evaluation as Ray work over shards.

``ray_predictor`` plugs into ``omnicodec.eval.evaluate.run_evaluation``: every (system,
shard) pair is one unit of work for a pool of ``EvalWorker`` actors, one per slot of
``cpus_per_worker`` CPUs on the cluster. An actor rebuilds a system from its recipe (never
a pickled model) and keeps the last few it built, and the task networks, between units;
the driver only merges records, so a dozen systems over thousands of images scale with the
cluster while the scoring, bootstrap and report stay where they are on one machine.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

import ray

from omnicodec.errors import OmnicodecError
from omnicodec.eval.predict import Chunk, OnDone, Predictor

READY_TIMEOUT_S = 60.0


@ray.remote
class EvalWorker:
    """Codes and scores chunks; caches rebuilt systems (by recipe) and task networks."""

    def __init__(self, threads: int, task_definitions: list[dict[str, Any]], keep: int = 3):
        import torch

        from omnicodec.tasks.registry import register_task, task_from_definition

        torch.set_num_threads(max(1, threads))
        for d in task_definitions:  # user tasks the driver knows from an adaptor checkpoint
            register_task(task_from_definition(d))
        self.systems: OrderedDict[str, Any] = OrderedDict()
        self.keep = keep

    def ready(self) -> bool:
        return True

    def _system(self, recipe: dict[str, Any]):
        from omnicodec.eval.systems import system_from_recipe

        key = json.dumps(recipe, sort_keys=True)
        if key not in self.systems:
            self.systems[key] = system_from_recipe(recipe)
            while len(self.systems) > self.keep:
                self.systems.popitem(last=False)
        self.systems.move_to_end(key)
        return self.systems[key]

    def predict(self, where: tuple[int, int], recipe: dict[str, Any], chunk: Chunk,
                tasks: list[str]) -> tuple[tuple[int, int], list[dict[str, Any]]]:
        from omnicodec.data.loader import iter_samples
        from omnicodec.eval.predict import predict_images

        samples = []
        for s in iter_samples(chunk.shard):
            if len(samples) == chunk.count:
                break
            samples.append(s)
        return where, predict_images(self._system(recipe), samples, tasks)


def _start_pool(n: int, cpus_per_worker: float, definitions: list[dict[str, Any]],
                timeout_s: float = READY_TIMEOUT_S) -> list[Any]:
    """Up to ``n`` actors; those the cluster cannot place within ``timeout_s`` (CPUs held by
    other work) are dropped rather than waited on forever. None placed is an error."""
    pool = [EvalWorker.options(num_cpus=cpus_per_worker).remote(max(1, int(cpus_per_worker)), definitions)
            for _ in range(n)]
    refs = {a.ready.remote(): a for a in pool}
    ready, pending = ray.wait(list(refs), num_returns=len(refs), timeout=timeout_s)
    for ref in pending:
        ray.kill(refs[ref])
    if not ready:
        raise OmnicodecError(f"no evaluation worker started within {timeout_s:.0f} s: each needs {cpus_per_worker:g} "
                             f"CPU and the cluster has {ray.available_resources().get('CPU', 0):g} free")
    return [refs[r] for r in ready]


def ray_predictor(cpus_per_worker: float = 1.0, workers: int | None = None) -> Predictor:
    """A predictor that runs every (system, shard) as Ray work on ``workers`` actors
    (default: as many as the cluster's CPUs allow at ``cpus_per_worker`` each)."""

    def predict(systems, chunks: list[Chunk], samples, tasks: list[str], bar,
                on_done: OnDone | None = None) -> list[list[dict[str, Any]]]:
        from omnicodec.tasks.registry import BUNDLED, get_task

        missing = [f"{s.name} {s.label}".strip() for s in systems if s.recipe is None]
        if missing:
            raise OmnicodecError(f"cannot evaluate on Ray workers: {', '.join(missing)} were built from objects, "
                                 "not from a checkpoint location (build them with source=... or evaluate in-process)")
        n = workers or max(1, int(ray.cluster_resources().get("CPU", 1) // cpus_per_worker))
        definitions = [get_task(t).to_dict() for t in tasks if t not in BUNDLED]
        pool = _start_pool(n, cpus_per_worker, definitions)
        # system-major order: consecutive units of one actor tend to reuse the system it built
        todo = [((i, j), s.recipe, c) for i, s in enumerate(systems) for j, c in enumerate(chunks)]
        out: list[list[list[dict[str, Any]] | None]] = [[None] * len(chunks) for _ in systems]
        running: dict[Any, int] = {}
        try:
            while todo or running:
                for k in range(len(pool)):
                    if todo and k not in running.values():
                        where, recipe, chunk = todo.pop(0)
                        running[pool[k].predict.remote(where, recipe, chunk, tasks)] = k
                done, _ = ray.wait(list(running), num_returns=1)
                (i, j), records = ray.get(done[0])
                del running[done[0]]
                out[i][j] = records
                if on_done is not None and all(r is not None for r in out[i]):
                    on_done(i, [r for chunk in out[i] for r in chunk])  # type: ignore[union-attr]
                bar.set_description(f"{systems[i].name} {systems[i].label}".strip())
                bar.update(len(records))
        finally:
            for actor in pool:
                ray.kill(actor)
        return [[r for chunk in per_system for r in chunk] for per_system in out]  # type: ignore[union-attr]

    return predict
