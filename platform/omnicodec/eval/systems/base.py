"""What every evaluation system shares: the ``System`` shape, the registry of system kinds,
and how ``--baseline KIND:...`` specs and recipes find their kind.

A system kind is one file in this folder: its ``System`` subclass and a ``SystemKind``
decorated with ``@SYSTEMS.register("name")`` that parses its own ``--baseline name:...``
spec (``usage`` for ``--help``, ``short`` for errors; a kind without ``usage`` is no
baseline) and rebuilds its systems from their ``recipe`` (plain JSON), so evaluation
workers never receive a pickled model. Files import torch and the codec inside functions:
``omnicodec eval --help`` lists the kinds from this registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from omnicodec.errors import OmnicodecError
from omnicodec.registry import Registry

if TYPE_CHECKING:
    import torch

    from omnicodec.data.samples import Sample


@dataclass
class Decoded:
    bytes: int
    views: dict[str, torch.Tensor]  # task name (or HUMAN) -> image the task sees
    bpp_estimate: float | None = None
    extra: dict = field(default_factory=dict)


class System:
    name: str = ""
    label: str = ""
    recipe: dict | None = None  # None: this system cannot be rebuilt elsewhere (built from an object)

    def run(self, sample: Sample, tasks: list[str]) -> Decoded:
        raise NotImplementedError


@dataclass
class Context:
    """What a baseline spec is read against: the tested adaptors' tasks, architecture and
    quality, how a run name or path is located (``locate``), and the rate levels a
    rate-conditioned set is evaluated at (a rate-conditioned baseline set follows them)."""

    tasks: list[str]
    arch: str | None
    quality: int | None
    locate: Callable[[str], str]
    rate_levels: list[float] | None = None


class SystemKind:
    usage: ClassVar[str] = ""  # `--baseline` help, e.g. "jpeg:Q1,Q2,..."; "" = not a baseline
    short: ClassVar[str] = ""  # the form error messages name, e.g. "jpeg:Q,..."
    recipes: ClassVar[tuple[str, ...]] = ()  # the recipe kinds this kind's systems write

    @staticmethod
    def parse(spec: str, rest: str, ctx: Context) -> list[System]:
        """The systems of ``--baseline spec`` (``rest``: what follows ``KIND:``)."""
        raise NotImplementedError

    @staticmethod
    def from_recipe(recipe: dict[str, Any]) -> System:
        raise NotImplementedError


SYSTEMS: Registry[type[SystemKind]] = Registry("evaluation system")


def baselines() -> list[str]:
    return [n for n in SYSTEMS if SYSTEMS.get(n).usage]


def baseline_help() -> str:
    """Every baseline kind's ``usage``, for ``omnicodec eval --help``."""
    return "  ".join(SYSTEMS.get(n).usage for n in baselines()) + "  (repeatable)"


def build_baselines(specs: list[str], ctx: Context) -> list[System]:
    """The systems of ``--baseline`` specs, each parsed by the kind it names."""
    systems: list[System] = []
    for spec in specs:
        kind, _, rest = spec.partition(":")
        if kind not in baselines():
            shorts = [SYSTEMS.get(n).short for n in baselines()]
            raise OmnicodecError(f"--baseline {spec}: expected {', '.join(shorts[:-1])} or {shorts[-1]}")
        systems.extend(SYSTEMS.get(kind).parse(spec, rest, ctx))
    _name_frozen_ladders(systems, ctx.arch)
    return systems


def _name_frozen_ladders(systems: list[System], arch: str | None) -> None:
    """Frozen codecs of one architecture are THE frozen codec; with ladders of several (a
    variable-rate codec beside the fixed-rate one) the adaptors' own codec keeps that name and
    every other is a curve of its own named by architecture, never one curve mixing both."""
    frozen = [s for s in systems if (s.recipe or {}).get("kind") == "frozen"]
    if len({s.recipe["arch"] for s in frozen}) > 1:
        for s in frozen:
            if s.recipe["arch"] != arch:
                s.name = f"frozen {s.recipe['arch']}"


def system_from_recipe(recipe: dict) -> System:
    """Rebuild a system in a worker process from its recipe."""
    for name in SYSTEMS:
        if recipe.get("kind") in SYSTEMS.get(name).recipes:
            return SYSTEMS.get(name).from_recipe(recipe)
    raise ValueError(f"unknown system recipe {recipe}")


def per_task_sources(spec: str, rest: str, tasks: list[str], locate) -> tuple[dict[str, str], str]:
    """``TASK=WHERE,...[@LABEL]`` -> ({task: located WHERE}, label); every task needs one."""
    body, _, label = rest.partition("@")
    sources = {}
    for item in body.split(","):
        task, _, where = item.partition("=")
        if not task or not where:
            raise OmnicodecError(f"--baseline {spec}: '{item}' is not TASK=LOCATION")
        sources[task] = locate(where)
    missing = set(tasks) - set(sources)
    if missing:
        raise OmnicodecError(f"--baseline {spec}: nothing given for task(s) {sorted(missing)}")
    return {t: sources[t] for t in tasks}, label or body
