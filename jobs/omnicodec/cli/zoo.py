"""``omnicodec zoo``: the bundled codecs, task networks and adaptor sets with their measured quality."""

from __future__ import annotations

import argparse

from omnicodec.cli._common import add_command


def register(sub: argparse._SubParsersAction) -> None:
    add_command(sub, "zoo", "list the bundled codecs and task networks with their measured quality",
                "example: omnicodec zoo", _zoo)


def _zoo(a: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    from omnicodec import zoo

    t = Table(title=f"bundled artifacts ({zoo.WEIGHTS_DIR})")
    for col in ("name", "params", "measured on", "quality"):
        t.add_column(col)
    for card in zoo.available():
        for where, m in card.get("metrics", {}).items():
            shown = ", ".join(f"{k}={v:.4g}" for k, v in m.items() if isinstance(v, float))
            t.add_row(card["name"], str(card.get("parameters", "")), where, shown)
    Console().print(t)
