"""The steps behind ``trigml train``, ``export`` and ``run``, callable from Python.

The command line and the demos call these functions, so a job driven from a script
goes through exactly the same path as one typed at the terminal.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from trigml import assemble
from trigml.artifact import Artifact, load_artifact
from trigml.components import ExportResult
from trigml.registry import Registry
from trigml.reporting import write_run_outputs
from trigml.runtime import run_menu
from trigml.schema.report import RunReport
from trigml.train import prepare_output, train_model

__all__ = ["export_from_file", "run_from_file", "train_from_file"]


def train_from_file(
    path: Path,
    registry: Registry,
    *,
    overwrite: bool = False,
    output: Path | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> Artifact:
    """Train the model a training config describes; return the verified artifact."""
    config, cfg = assemble.load_train_config(path)
    return train_model(
        config, registry, cfg, overwrite=overwrite, output=output, progress=progress
    )


def export_from_file(
    path: Path, registry: Registry, *, overwrite: bool = False
) -> ExportResult:
    """Export a model as an export config says, with its consistency report."""
    config, cfg = assemble.load_export_config(path)
    backend = assemble.build(registry, "backend", config.backend, cfg, ("backend",))
    artifact = load_artifact(assemble.resolve_path(config.model, cfg))
    out = assemble.resolve_path(config.output, cfg)
    prepare_output(out, overwrite=overwrite)
    result: ExportResult = backend.export(artifact, out)
    return result


def run_from_file(
    path: Path,
    registry: Registry,
    out: Path,
    *,
    overwrite: bool = False,
    executor: str | None = None,
    progress: Callable[[int], None] | None = None,
    plugins: dict[str, str] | None = None,
) -> RunReport:
    """Run a menu into ``out``: decisions, ``report.json`` and plots."""
    config, cfg = assemble.load_run_config(path)
    menu, runner = assemble.assemble_run(config, registry, cfg, executor=executor)
    prepare_output(out, overwrite=overwrite)
    report, accounting = run_menu(menu, runner, out, progress=progress, plugins=plugins)
    write_run_outputs(report, accounting, out, plots=config.plots)
    return report
