"""Terminal summaries (rich tables) printed at the end of long jobs."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

console = Console()


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def print_card(card: dict[str, Any]) -> None:
    t = Table(title=f"{card['name']}  ({card.get('parameters', '?')} parameters, {card.get('wall_s', '?')} s)")
    t.add_column("evaluation set")
    keys = sorted({k for m in card["metrics"].values() for k in m if k != "rows"})
    for k in keys:
        t.add_column(k, justify="right")
    for name, m in card["metrics"].items():
        t.add_row(name, *(_fmt(m.get(k, "")) for k in keys))
    console.print(t)
    console.print(f"command: {card['command']}")


def print_train_summary(result: Any) -> None:
    t = Table(title=f"run {result.name}: {result.wall_s:.0f} s")
    t.add_column("metric")
    t.add_column("value", justify="right")
    for k, v in sorted(result.metrics.items()):
        if isinstance(v, (int, float)):
            t.add_row(k, _fmt(v))
    console.print(t)
    console.print(f"checkpoint: {result.checkpoint}")
    if result.error:
        console.print(f"[red]error: {result.error}")
