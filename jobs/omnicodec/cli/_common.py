"""What every subcommand module shares: the help layout, the default home and ``add_command``."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from omnicodec import home

HOME = home()


def formatter(prog: str) -> argparse.HelpFormatter:
    """Keeps the examples' line breaks in ``--help`` (they are the part people copy)."""
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=36)


def shipped_help() -> str:
    """The shipped specs' names, for ``--help`` (a file of that name in your folder wins)."""
    from omnicodec.jobs.shipped import SPECS_DIR, shipped_specs

    return f"shipped specs, by name ({SPECS_DIR}):\n  " + ", ".join(shipped_specs())


def add_command(parent: argparse._SubParsersAction, name: str, help: str, description: str,
                func: Callable[[argparse.Namespace], int | None]) -> argparse.ArgumentParser:
    """One subcommand (or action of a command group) whose handler is ``func``."""
    sp = parent.add_parser(name, help=help, description=description, formatter_class=formatter)
    sp.set_defaults(func=func)
    return sp


def add_group(parent: argparse._SubParsersAction, name: str, help: str, description: str,
              dest: str, metavar: str) -> argparse._SubParsersAction:
    """A command that only groups actions (``omnicodec data scenes``): returns their subparsers."""
    group = parent.add_parser(name, help=help, description=description, formatter_class=formatter)
    return group.add_subparsers(dest=dest, metavar=metavar, required=True)
