"""Plugin discovery: entry points of the group ``trigml`` become a filled registry.

Each entry point is loaded on its own; one that fails to import is recorded with its
distribution, version and the reason, and the others still load. Hook implementations
whose names match no specification are refused. ``TRIGML_PLUGINS`` limits what loads:
a comma-separated list of entry-point or distribution names, or ``none`` for built-ins
only.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Any

import pluggy

from trigml import hookspec
from trigml.errors import PluginError
from trigml.registry import Component, NoParams, Params, Registry

__all__ = [
    "ENTRY_POINT_GROUP",
    "ENV_VAR",
    "LoadFailure",
    "PluginInfo",
    "Plugins",
    "discover",
    "get_plugins",
]

ENTRY_POINT_GROUP = "trigml"
ENV_VAR = "TRIGML_PLUGINS"


@dataclass(frozen=True)
class PluginInfo:
    """A loaded plugin: its entry-point name and the distribution that ships it."""

    name: str
    dist: str
    version: str


@dataclass(frozen=True)
class LoadFailure:
    """A plugin that could not be loaded, and why."""

    name: str
    dist: str
    version: str
    reason: str

    def __str__(self) -> str:
        return (
            f"plugin '{self.name}' ({self.dist} {self.version}) failed: {self.reason}"
        )


@dataclass
class Plugins:
    """The result of discovery: the registry and what loaded or failed."""

    registry: Registry
    loaded: list[PluginInfo] = field(default_factory=list)
    failed: list[LoadFailure] = field(default_factory=list)
    manager: pluggy.PluginManager | None = None


def _new_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspec.PROJECT)
    pm.add_hookspecs(hookspec)
    return pm


def _allowed(spec: str | None) -> set[str] | None:
    if spec is None:
        return None
    names = {s.strip() for s in spec.split(",") if s.strip()}
    return set() if names <= {"none"} else names


def _entry_points() -> Iterable[metadata.EntryPoint]:
    return metadata.entry_points(group=ENTRY_POINT_GROUP)


def _check_pending(pm: pluggy.PluginManager, plugin: object, name: str) -> None:
    """Refuse hook implementations named ``trigml_*`` that match no specification."""
    known = set(hookspec.HOOK_NAMES)
    for attr in dir(plugin):
        if attr.startswith("trigml_") and attr not in known:
            close = [k for k in known if _similar(attr, k)]
            fix = f"; did you mean '{close[0]}'?" if close else ""
            raise PluginError(
                f"plugin '{name}' defines unknown hook '{attr}'{fix}",
                hint="valid hooks: " + ", ".join(sorted(known)),
            )
    pm.check_pending()


def _similar(a: str, b: str) -> bool:
    import difflib

    return difflib.SequenceMatcher(None, a, b).ratio() > 0.8


def _collect(
    pm: pluggy.PluginManager, plugin: object, info: PluginInfo, registry: Registry
) -> None:
    """Call each registration hook of one plugin with a callback bound to it."""
    for hook_name, kind in hookspec.HOOK_NAMES.items():
        impl = getattr(plugin, hook_name, None)
        if impl is None:
            continue

        def register(
            name: str,
            factory: Callable[..., Any],
            params: type[Params] = NoParams,
            description: str = "",
            *,
            _kind: Any = kind,
            **extra: Any,
        ) -> None:
            registry.add(
                Component(
                    kind=_kind,
                    name=name,
                    factory=factory,
                    params=params,
                    description=description,
                    dist=info.dist,
                    version=info.version,
                    extra=extra,
                )
            )

        impl(register=register)


def discover(
    *,
    entry_points: bool = True,
    only: str | None = None,
    extra: Iterable[tuple[str, ModuleType | object]] = (),
) -> Plugins:
    """Build the registry from built-ins, entry points and explicit plugins.

    Parameters
    ----------
    entry_points : bool
        Load plugins from the ``trigml`` entry-point group. Tests turn this off.
    only : str, optional
        Same syntax as ``TRIGML_PLUGINS``; defaults to that variable.
    extra : iterable of (name, plugin)
        Further plugin objects or modules to register, for tests.

    Returns
    -------
    Plugins
        The registry, the loaded plugins and the failures. Duplicate component names
        and misspelled hooks raise :class:`PluginError`; import failures do not.
    """
    from trigml import builtins

    pm = _new_manager()
    registry = Registry()
    result = Plugins(registry=registry, manager=pm)
    version = _version("trigml")

    def add(name: str, plugin: object, info: PluginInfo) -> None:
        pm.register(plugin, name=name)
        _check_pending(pm, plugin, name)
        _collect(pm, plugin, info, registry)
        result.loaded.append(info)

    add("trigml.builtins", builtins, PluginInfo("builtins", "trigml", version))

    allowed = _allowed(only if only is not None else os.environ.get(ENV_VAR))
    if entry_points:
        for ep in sorted(_entry_points(), key=lambda e: e.name):
            dist = ep.dist.name if ep.dist else "unknown"
            dist_version = ep.dist.version if ep.dist else ""
            if allowed is not None and not ({ep.name, dist} & allowed):
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken plugin must not stop discovery
                result.failed.append(
                    LoadFailure(
                        ep.name, dist, dist_version, f"{type(exc).__name__}: {exc}"
                    )
                )
                continue
            add(ep.name, plugin, PluginInfo(ep.name, dist, dist_version))

    for name, plugin in extra:
        add(name, plugin, PluginInfo(name, "test", ""))
    return result


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "0+unknown"


_CACHE: dict[str, Plugins] = {}


def get_plugins() -> Plugins:
    """The process-wide discovery result, computed once per ``TRIGML_PLUGINS`` value."""
    key = os.environ.get(ENV_VAR, "*")
    if key not in _CACHE:
        _CACHE[key] = discover()
    return _CACHE[key]
