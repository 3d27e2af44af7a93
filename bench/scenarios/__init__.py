"""The scenario registry.

A scenario is a module in this package that decorates its entry point with ``@register``. Modules
are imported without Django being set up (``python -m bench`` lists them before touching any
database), so Django imports belong inside the scenario's functions.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field


def row_count(text: str) -> int:
    """argparse type for a row count: 1000000, 1_000_000, 1,000,000, 50k or 1M."""
    cleaned = text.strip().lower().replace("_", "").replace(",", "")
    multiplier = 1
    if cleaned.endswith("k"):
        cleaned, multiplier = cleaned[:-1], 1_000
    elif cleaned.endswith("m"):
        cleaned, multiplier = cleaned[:-1], 1_000_000
    try:
        value = round(float(cleaned) * multiplier)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a count: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be zero or more")
    return value


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    pass


@dataclass
class Scenario:
    name: str
    help: str
    run: Callable[[argparse.Namespace], None]
    # With a default size the runner offers --size N (args.size); None: the scenario has no size.
    default_size: int | None = None
    # Adds the scenario's own options to its argparse sub-parser (besides --size and --repeat).
    add_arguments: Callable[[argparse.ArgumentParser], None] = field(default=_no_arguments)


REGISTRY: dict[str, Scenario] = {}


def register(
    name: str,
    help: str,
    *,
    default_size: int | None = None,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
):
    """Decorator: register ``run(args)`` as scenario ``name``."""

    def decorator(run: Callable[[argparse.Namespace], None]):
        if name in REGISTRY:
            raise ValueError(f"bench scenario {name!r} registered twice")
        REGISTRY[name] = Scenario(name, help, run, default_size, add_arguments or _no_arguments)
        return run

    return decorator


def load_all() -> dict[str, Scenario]:
    """Import every module of this package (each registers its scenarios); return the registry."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    return REGISTRY
