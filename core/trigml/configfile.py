"""Reading YAML configurations safely, with the line of every key.

Errors about a configuration name the file, the line, the dotted key and a fix. The
loader composes the YAML node tree with ``yaml.SafeLoader`` (no object construction
from tags) and records where each mapping key and sequence item starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from trigml.errors import ConfigError
from trigml.registry import suggest

__all__ = ["ConfigFile", "dotted", "load_config", "read_yaml"]

M = TypeVar("M", bound=BaseModel)
Loc = tuple[str | int, ...]


def dotted(loc: Loc) -> str:
    """``("lines", 0, "backend")`` → ``lines[0].backend``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class ConfigFile:
    """A parsed YAML document and the line of each of its keys.

    Attributes
    ----------
    path : Path
    data : object
        The plain Python value (dicts, lists, scalars).
    lines : dict of tuple to int
        1-based line of each key path.
    """

    def __init__(self, path: Path, data: Any, lines: dict[Loc, int]) -> None:
        self.path = path
        self.data = data
        self.lines = lines

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def line_of(self, loc: Loc) -> int | None:
        """Line of ``loc`` or of its closest enclosing key."""
        loc = tuple(loc)
        while loc:
            if loc in self.lines:
                return self.lines[loc]
            loc = loc[:-1]
        return self.lines.get((), None)

    def error(self, message: str, loc: Loc, hint: str | None = None) -> ConfigError:
        """A :class:`ConfigError` pointing at ``loc`` in this file."""
        return ConfigError(
            message,
            file=str(self.path),
            line=self.line_of(loc),
            key=dotted(loc) or None,
            hint=hint,
        )


_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


def _walk(node: yaml.Node, loc: Loc, lines: dict[Loc, int]) -> Any:
    lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.CollectionNode) and node.tag not in _PLAIN_TAGS:
        raise yaml.constructor.ConstructorError(
            None, None, f"tag {node.tag} is not allowed", node.start_mark
        )
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            child = (*loc, key)
            lines[child] = key_node.start_mark.line + 1
            out[key] = _walk(value_node, child, lines)
            lines[child] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_walk(item, (*loc, i), lines) for i, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def read_yaml(path: str | Path) -> ConfigFile:
    """Parse a YAML file safely, keeping the line of every key.

    Raises
    ------
    ConfigError
        The file is missing, unreadable, not valid YAML, or not a mapping.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"configuration file not found: {p}")
    text = p.read_text(encoding="utf-8", errors="replace")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(
            f"malformed YAML: {problem}",
            file=str(p),
            line=line,
            hint="check indentation and that every 'key: value' has a space after ':'",
        ) from None
    if node is None:
        raise ConfigError("the configuration is empty", file=str(p))
    lines: dict[Loc, int] = {}
    try:
        data = _walk(node, (), lines)
    except yaml.YAMLError as exc:
        raise ConfigError(f"unsupported YAML: {exc}", file=str(p)) from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"expected a mapping of keys at the top, got {type(data).__name__}",
            file=str(p),
            line=1,
        )
    return ConfigFile(p, data, lines)


def load_config(path: str | Path, model: type[M]) -> tuple[M, ConfigFile]:
    """Read a YAML file and validate it with ``model``.

    Returns
    -------
    (config, file)
        The validated config and the parsed file (for line lookups later).

    Raises
    ------
    ConfigError
        With file, line, dotted key and, for an unknown key, the nearest valid one.
    """
    cfg = read_yaml(path)
    try:
        return model.model_validate(cfg.data), cfg
    except ValidationError as exc:
        raise _explain(exc, cfg, model) from None


def _explain(
    exc: ValidationError, cfg: ConfigFile, model: type[BaseModel]
) -> ConfigError:
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    err = errors[0]
    loc: Loc = tuple(p for p in err["loc"] if not _is_union_tag(p))
    kind = err["type"]
    if kind == "extra_forbidden" and loc:
        valid = _valid_keys(model, loc[:-1])
        close = suggest(str(loc[-1]), valid)
        msg = f"unknown key '{loc[-1]}'"
        if close:
            msg += f"; did you mean '{close}'?"
        return cfg.error(msg, loc, hint="valid keys here: " + ", ".join(valid))
    if kind == "missing":
        return cfg.error("required key is missing", loc)
    value = err.get("input")
    shown = repr(value) if not isinstance(value, dict | list) else type(value).__name__
    more = (
        f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
    )
    return cfg.error(f"{err['msg']}, got {shown}{more}", loc)


def _is_union_tag(part: Any) -> bool:
    # pydantic adds the member type name of a union to the location: drop it
    return isinstance(part, str) and (
        part.startswith(("function-", "str", "float", "int")) or "[" in part
    )


def _valid_keys(model: type[BaseModel], loc: Loc) -> list[str]:
    """Field names of the sub-model found by following ``loc`` from ``model``."""
    import typing

    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = current.model_fields.get(str(part))
        if field is None:
            return []
        current = field.annotation
        for _ in range(3):
            args = [
                a
                for a in typing.get_args(current)
                if isinstance(a, type) and issubclass(a, BaseModel)
            ]
            if args:
                current = args[0]
                break
            inner = typing.get_args(current)
            if not inner:
                break
            current = inner[0]
    if isinstance(current, type) and issubclass(current, BaseModel):
        return sorted(current.model_fields)
    return []
