"""The adaptor-family registry (peft's ``register_peft_method`` pattern).

A family is one file in this folder whose block class is decorated with
``@register_family("name")``, plus one import line in ``adaptors/__init__.py``. A block takes
``(channels, config)``, maps ``B x C x H x W`` to the same shape for ANY H, W, and is an exact
identity at init (so untrained adaptors reproduce the frozen codec's bytes). Every registered
family is held to that contract by ``tests/test_adaptor_families.py``; ``adaptor.family`` in a
training config picks one, and checkpoints record it.
"""

from __future__ import annotations

from torch import nn

from omnicodec.errors import ConfigError

FAMILIES: dict[str, type[nn.Module]] = {}


def register_family(name: str):
    def wrap(cls: type[nn.Module]) -> type[nn.Module]:
        if name in FAMILIES and FAMILIES[name] is not cls:
            raise ConfigError(f"adaptor family '{name}' is registered twice ({FAMILIES[name].__name__}, {cls.__name__})")
        FAMILIES[name] = cls
        cls.family = name
        return cls

    return wrap


def build_adaptor(channels: int, config) -> nn.Module:
    try:
        cls = FAMILIES[config.family]
    except KeyError:
        raise ConfigError(f"unknown adaptor family '{config.family}' (known: {', '.join(sorted(FAMILIES))})") from None
    return cls(channels, config)
