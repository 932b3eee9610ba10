"""One registry shape for every extension point (peft's and CompressAI's pattern).

Codec architectures, adaptor families, task kinds, tasks, training jobs, evaluation
systems, data converters and CLI subcommands are each a :class:`Registry`: members are
added with ``@REGISTRY.register("name")`` (or ``REGISTRY.add(name, obj)`` for plain data),
looked up with ``get(name)``, whose error lists the known names, and listed with
``names()``. A new member is one file plus one registry line (an import of that file, or
an ``add``), and each registry has one contract test parametrized over its members.

A registry built with ``lazy=True`` also takes ``"module:attr"`` strings, imported on first
``get``: for members whose import is heavy (Ray, torch) where listing the names must stay
instant (``omnicodec --help``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from omnicodec.errors import OmnicodecError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named members of one extension point, in registration order.

    ``kind`` names the extension point in messages ("unknown task kind 'x' (known: ...)");
    ``error`` is the exception type ``get`` and a clashing ``register`` raise; ``hint`` is
    appended to the list of known names; ``attr``, if set, is the attribute of a registered
    class that receives its registered name (task kinds read ``self.name``)."""

    def __init__(self, kind: str, *, error: type[OmnicodecError] = OmnicodecError, hint: str = "",
                 attr: str | None = None, lazy: bool = False):
        self.kind, self.error, self.hint, self.attr, self.lazy = kind, error, hint, attr, lazy
        self._members: dict[str, Any] = {}

    def register(self, name: str | None = None, *, replace: bool = False) -> Callable[[T], T]:
        """Decorator adding the decorated class or function under ``name`` (default: its
        ``__name__``). Registering another object under a taken name is refused unless
        ``replace``; registering the same object again is a no-op."""

        def wrap(obj: T) -> T:
            return self.add(name or obj.__name__, obj, replace=replace)

        return wrap

    def add(self, name: str, obj: T | str, *, replace: bool = False) -> T:
        """Add ``obj`` under ``name`` (the non-decorator form, for data and lazy members)."""
        old = self._members.get(name)
        if old is not None and old is not obj and not replace:
            raise self.error(f"{self.kind} '{name}' is registered twice ({_label(old)}, {_label(obj)})")
        if isinstance(obj, str) and not self.lazy:
            raise TypeError(f"{self.kind} '{name}': a 'module:attr' member needs Registry(..., lazy=True)")
        if self.attr and not isinstance(obj, str):
            setattr(obj, self.attr, name)
        self._members[name] = obj
        return obj

    def remove(self, name: str) -> None:
        """Forget ``name`` (tests that register a throwaway member clean up with this)."""
        self._members.pop(name, None)

    def get(self, name: str) -> T:
        """The member called ``name``; an unknown name raises ``error`` listing the known ones."""
        try:
            obj = self._members[name]
        except (KeyError, TypeError):
            raise self.error(f"unknown {self.kind} '{name}' (known: {', '.join(self._members)}{self.hint})") from None
        if isinstance(obj, str):
            module, _, attr = obj.partition(":")
            obj = getattr(importlib.import_module(module), attr)
            self._members[name] = obj
        return obj

    def names(self) -> list[str]:
        return list(self._members)

    def items(self) -> list[tuple[str, T]]:
        return [(name, self.get(name)) for name in self._members]

    def __contains__(self, name: object) -> bool:
        return name in self._members

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._members))

    def __len__(self) -> int:
        return len(self._members)

    def __getitem__(self, name: str) -> T:
        if name not in self._members:
            raise KeyError(name)
        return self.get(name)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._members)})"


def _label(obj: Any) -> str:
    return obj if isinstance(obj, str) else getattr(obj, "__name__", type(obj).__name__)
