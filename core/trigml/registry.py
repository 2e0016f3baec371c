"""Named components that configurations refer to.

Plugins register algorithms, model families, backends, sources, sinks, metrics and demos
under the names users type in configs (``lhcb.topo``, ``cpu.onnxruntime``, ``root``).
Each component is a factory plus a pydantic model of its parameters; a config can only
reach code through this table, never through an import path.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from trigml.errors import ConfigError, PluginError

__all__ = [
    "KINDS",
    "Component",
    "ComponentKind",
    "NoParams",
    "Params",
    "Registry",
    "suggest",
]

ComponentKind = Literal[
    "algorithm", "family", "backend", "source", "sink", "executor", "metric", "demo"
]
KINDS: tuple[ComponentKind, ...] = (
    "algorithm",
    "family",
    "backend",
    "source",
    "sink",
    "executor",
    "metric",
    "demo",
)
_KIND_WORDS = {
    "algorithm": "algorithm",
    "family": "model family",
    "backend": "backend",
    "source": "source",
    "sink": "sink",
    "executor": "executor",
    "metric": "metric",
    "demo": "demo",
}


class Params(BaseModel):
    """Base of every component's parameter model: unknown keys are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParams(Params):
    """Parameters of a component that takes none."""


@dataclass(frozen=True)
class Component:
    """One registered component.

    Attributes
    ----------
    kind : str
        One of :data:`KINDS`.
    name : str
        The name configs use.
    factory : callable
        Called with the validated parameters to build the component.
    params : type of Params
        Pydantic model validating the component's parameters.
    description : str
        One line shown by ``trigml plugins``.
    dist : str
        Distribution that registered it (``trigml`` for built-ins).
    version : str
        Version of that distribution.
    """

    kind: ComponentKind
    name: str
    factory: Callable[..., Any]
    params: type[Params]
    description: str = ""
    dist: str = "trigml"
    version: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def build(self, raw: Mapping[str, Any] | None = None, *, key: str = "") -> Any:
        """Validate ``raw`` parameters and build the component.

        Parameters
        ----------
        raw : mapping, optional
            Parameters as read from a config.
        key : str
            Dotted config key of the parameters, used in error messages.
        """
        params = self.validate(raw, key=key)
        return self.factory(params)

    def validate(self, raw: Mapping[str, Any] | None, *, key: str = "") -> Params:
        """Return the parameters validated by :attr:`params`."""
        try:
            return self.params.model_validate(dict(raw or {}))
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            dotted = ".".join(p for p in (key, loc) if p)
            raise ConfigError(
                f"{_KIND_WORDS[self.kind]} '{self.name}': {err['msg']}",
                key=dotted or None,
                hint=_param_hint(self.params),
            ) from None


def _param_hint(model: type[Params]) -> str:
    names = ", ".join(model.model_fields) or "none"
    return f"valid parameters: {names}"


def suggest(name: str, choices: list[str]) -> str | None:
    """Return the valid name closest to ``name``, or None when nothing is close."""
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return close[0] if close else None


class Registry:
    """Components by kind and name, filled by the ``trigml_register_*`` hooks."""

    def __init__(self) -> None:
        self._table: dict[str, dict[str, Component]] = {k: {} for k in KINDS}

    def add(self, component: Component) -> None:
        """Register ``component``; a name already taken raises :class:`PluginError`."""
        table = self._table[component.kind]
        old = table.get(component.name)
        if old is not None:
            raise PluginError(
                f"{_KIND_WORDS[component.kind]} name '{component.name}' is claimed by "
                f"both {old.dist} {old.version} and "
                f"{component.dist} {component.version}".rstrip(),
                hint="uninstall one of them, or limit loading with TRIGML_PLUGINS",
            )
        table[component.name] = component

    def names(self, kind: ComponentKind) -> list[str]:
        """Sorted names registered for ``kind``."""
        return sorted(self._table[kind])

    def components(self, kind: ComponentKind | None = None) -> list[Component]:
        """All components, or those of one kind, sorted by kind then name."""
        kinds = [kind] if kind else list(KINDS)
        return [self._table[k][n] for k in kinds for n in sorted(self._table[k])]

    def __contains__(self, item: tuple[ComponentKind, str]) -> bool:
        kind, name = item
        return name in self._table[kind]

    def get(self, kind: ComponentKind, name: str, *, key: str = "") -> Component:
        """Look a component up, with a did-you-mean error for an unknown name."""
        table = self._table[kind]
        if name in table:
            return table[name]
        word = _KIND_WORDS[kind]
        installed = ", ".join(sorted(table)) or "none"
        close = suggest(name, list(table))
        msg = f"unknown {word} '{name}'"
        if close:
            msg += f"; did you mean '{close}'?"
        msg += f" Installed: {installed}"
        raise ConfigError(msg, key=key or None, hint=_install_hint(name))

    def build(
        self,
        kind: ComponentKind,
        name: str,
        params: Mapping[str, Any] | None = None,
        *,
        key: str = "",
    ) -> Any:
        """Look up and build a component from config parameters."""
        return self.get(kind, name, key=key).build(params, key=key)


def _install_hint(name: str) -> str | None:
    prefix = name.split(".", 1)[0]
    if "." not in name or not prefix.isidentifier():
        return "run 'trigml plugins' to list what is installed"
    return (
        f"run 'trigml plugins' to list what is installed; 'pip install trigml-{prefix}'"
    )
