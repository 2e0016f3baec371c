"""Configuration-driven assembly: validated configs become components, by name only.

Every component is looked up in the registry and built with its own parameter model, so
a configuration can never reach code outside what plugins registered. Errors point at
the file, line and dotted key that caused them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trigml.artifact import Artifact, load_artifact
from trigml.components import Algorithm, Backend, Source
from trigml.configfile import ConfigFile, Loc, dotted, load_config
from trigml.errors import ConfigError, TrigmlError
from trigml.registry import ComponentKind, Registry
from trigml.runtime import Executor, Line, Menu
from trigml.schema.config import ComponentRef, ExportConfig, RunConfig, TrainConfig

__all__ = [
    "assemble_run",
    "build",
    "load_export_config",
    "load_run_config",
    "load_train_config",
    "resolve_path",
]


def build(
    registry: Registry,
    kind: ComponentKind,
    ref: ComponentRef,
    cfg: ConfigFile | None,
    loc: Loc,
) -> Any:
    """Build ``ref`` from the registry; errors carry the file, line and key."""
    params = dict(ref.params)
    try:
        component = registry.get(kind, ref.type, key=dotted(loc))
        if "base_dir" in component.params.model_fields and "base_dir" not in params:
            params["base_dir"] = str(cfg.base_dir) if cfg else ""
        built = component.build(params, key=dotted((*loc, "params")))
    except ConfigError as exc:
        if cfg is None:
            raise
        raise ConfigError(
            exc.message.split(": ", 1)[1] if exc.key else exc.message,
            file=str(cfg.path),
            line=cfg.line_of(_param_loc(loc, exc.key)),
            key=exc.key,
            hint=exc.hint,
        ) from None
    if hasattr(built, "name"):
        built.name = ref.type
    return built


def _param_loc(loc: Loc, key: str | None) -> Loc:
    """Location in the file of a parameter error (parameters sit beside ``type``)."""
    if not key:
        return loc
    tail = key.rsplit(".params.", 1)
    if len(tail) == 2:
        return (*loc, *tail[1].split("."))
    return loc


def resolve_path(value: str, cfg: ConfigFile | None) -> Path:
    """A path from a config, relative to the config file's folder."""
    p = Path(value).expanduser()
    if not p.is_absolute() and cfg is not None:
        p = cfg.base_dir / p
    return p


def load_train_config(path: str | Path) -> tuple[TrainConfig, ConfigFile]:
    """Read and validate a training config."""
    return load_config(path, TrainConfig)


def load_run_config(path: str | Path) -> tuple[RunConfig, ConfigFile]:
    """Read and validate a run (menu) config."""
    return load_config(path, RunConfig)


def load_export_config(path: str | Path) -> tuple[ExportConfig, ConfigFile]:
    """Read and validate an export config."""
    return load_config(path, ExportConfig)


def assemble_run(
    config: RunConfig,
    registry: Registry,
    cfg: ConfigFile | None = None,
    *,
    executor: str | None = None,
) -> tuple[Menu, Executor]:
    """Turn a validated run config into a :class:`Menu` and its executor.

    Parameters
    ----------
    config : RunConfig
    registry : Registry
    cfg : ConfigFile, optional
        The parsed file, for relative paths and error locations.
    executor : str, optional
        Executor name overriding the config's (``--executor`` on the command line).
    """
    source: Source = build(registry, "source", config.source, cfg, ("source",))
    lines = []
    names: set[str] = set()
    for i, line_cfg in enumerate(config.lines):
        loc: Loc = ("lines", i)
        if line_cfg.name in names:
            raise _err(cfg, f"duplicate line name '{line_cfg.name}'", (*loc, "name"))
        names.add(line_cfg.name)
        artifact = _load_model(line_cfg.model, cfg, (*loc, "model"))
        algo_ref = line_cfg.algorithm or ComponentRef(
            type=artifact.card.algorithm, params=artifact.card.algorithm_params
        )
        algorithm: Algorithm = build(
            registry, "algorithm", algo_ref, cfg, (*loc, "algorithm")
        )
        backend: Backend = build(
            registry, "backend", line_cfg.backend, cfg, (*loc, "backend")
        )
        _check_format(backend, artifact, cfg, (*loc, "backend"))
        threshold, wp_name = _threshold(artifact, line_cfg.working_point, cfg, loc)
        lines.append(
            Line(
                name=line_cfg.name,
                algorithm=algorithm,
                artifact=artifact,
                backend=backend,
                threshold=threshold,
                working_point=wp_name,
            )
        )
    sinks = [
        build(registry, "sink", ref, cfg, ("sinks", i))
        for i, ref in enumerate(config.sinks)
    ]
    exec_ref = config.executor
    if executor and executor != config.executor.type:
        exec_ref = ComponentRef(type=executor)
    runner: Executor = build(registry, "executor", exec_ref, cfg, ("executor",))
    menu = Menu(
        source=source,
        lines=lines,
        sinks=sinks,
        policy=config.validation,
        input_rate_hz=config.input_rate_hz,
        signal_field=config.signal_field,
        config_file=str(cfg.path) if cfg else "",
    )
    return menu, runner


def _err(
    cfg: ConfigFile | None, message: str, loc: Loc, hint: str | None = None
) -> ConfigError:
    if cfg is None:
        return ConfigError(message, key=dotted(loc), hint=hint)
    return cfg.error(message, loc, hint)


def _load_model(value: str, cfg: ConfigFile | None, loc: Loc) -> Artifact:
    path = resolve_path(value, cfg)
    try:
        return load_artifact(path)
    except TrigmlError as exc:
        where = f"{cfg.path}:{cfg.line_of(loc)}: " if cfg else ""
        exc.message = f"{where}{dotted(loc)}: {exc.message}"
        exc.args = (exc.message,)
        raise


def _check_format(
    backend: Backend, artifact: Artifact, cfg: ConfigFile | None, loc: Loc
) -> None:
    have = set(artifact.card.formats)
    if not have & set(backend.formats()):
        raise _err(
            cfg,
            f"backend '{backend.name}' reads {list(backend.formats())}, model "
            f"'{artifact.card.name}' has {sorted(have)}",
            loc,
            hint="choose a backend that reads one of the model's formats",
        )


def _threshold(
    artifact: Artifact, wp: str | float, cfg: ConfigFile | None, loc: Loc
) -> tuple[float, str]:
    if isinstance(wp, int | float):
        return float(wp), ""
    try:
        return artifact.card.working_point(wp).threshold, wp
    except KeyError as exc:
        raise _err(cfg, str(exc.args[0]), (*loc, "working_point")) from None
