"""The ``trigml`` command line.

Errors trigml raises on purpose are printed as one message, without a traceback, and
exit with 2 for usage or configuration problems and 1 for failures of the work itself;
``--debug`` shows the traceback. Only this module writes to the console.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trigml.errors import TrigmlError, UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from trigml.journal import RunJournal
    from trigml.plugins import Plugins

__all__ = ["main"]

log = logging.getLogger("trigml")

EPILOG = """\
examples:
  trigml plugins                       list installed components
  trigml validate examples/core/menu.yaml
  trigml train examples/core/train_cuts.yaml --overwrite
  trigml run examples/core/menu.yaml --out out/ --overwrite
  trigml run examples/core/menu.yaml --out out/ --executor dask --resume
  trigml export out/model --backend cpu.onnxruntime --out out/export
  trigml demo                          the full chain on a built-in simulation
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trigml",
        description="Machine learning for real-time event selection: train, deploy on\n"
        "CPU or emulated FPGA firmware, and measure efficiency, rate and latency.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more output"
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--version", action="store_true", help="print the version")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("plugins", help="list plugins and the components they register")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("validate", help="check a train, run or export config")
    p.add_argument("config", type=Path)

    p = sub.add_parser("train", help="train a model from a training config")
    p.add_argument("config", type=Path)
    p.add_argument("--out", type=Path, help="artifact directory (overrides 'output')")
    p.add_argument(
        "--overwrite", action="store_true", help="replace an existing output"
    )

    p = sub.add_parser("run", help="run a trigger menu and write reports and plots")
    p.add_argument("config", type=Path)
    p.add_argument("--out", type=Path, default=Path("trigml-out"), help="output folder")
    p.add_argument(
        "--overwrite", action="store_true", help="replace an existing output"
    )
    p.add_argument("--executor", help="executor overriding the config's: local or dask")
    p.add_argument(
        "--resume",
        action="store_true",
        help="finish an interrupted run in --out: only the chunks it had not done run",
    )

    p = sub.add_parser(
        "export", help="export a model to a backend with a consistency report"
    )
    p.add_argument("model", type=Path, nargs="?", help="model artifact directory")
    p.add_argument(
        "--backend", help="backend name, such as cpu.onnxruntime or fpga.hls4ml"
    )
    p.add_argument("--config", type=Path, help="export config (model, backend, params)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="backend parameter, repeatable (value parsed as YAML)",
    )
    p.add_argument(
        "--scan-precision",
        action="store_true",
        help="find the narrowest fixed-point type keeping agreement (FPGA backends)",
    )
    p.add_argument("--out", type=Path, help="export folder (default MODEL-BACKEND)")
    p.add_argument(
        "--overwrite", action="store_true", help="replace an existing output"
    )

    p = sub.add_parser("generate", help="write events from a registered source to ROOT")
    p.add_argument("source", help="source name, such as toy or lhcb.sim")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="source parameter, repeatable",
    )
    p.add_argument("--out", type=Path, required=True, help="ROOT file to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing file")

    p = sub.add_parser("schema", help="write the JSON Schemas of trigml's files")
    p.add_argument("--dir", type=Path, default=None, help="folder (default: schemas/)")
    p.add_argument("--check", action="store_true", help="fail if the files are stale")

    p = sub.add_parser("demo", help="run the demo an installed plugin provides")
    p.add_argument("name", nargs="?", default="default")
    p.add_argument("--out", type=Path, default=Path("demo-output"))
    p.add_argument(
        "--overwrite", action="store_true", help="replace an existing output"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``trigml`` command; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.version:
        from trigml import __version__

        print(f"trigml {__version__}")
        return 0
    if args.command is None:
        parser.print_help()
        return 2
    console = _console(args)
    try:
        handler = globals()[f"_cmd_{args.command}"]
        return int(handler(args, console) or 0)
    except TrigmlError as exc:
        if args.debug:
            console.print_exception()
        console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
        return exc.exit_code
    except KeyboardInterrupt:
        console.print("[bold red]interrupted[/]")
        return 130
    except Exception as exc:
        if args.debug:
            console.print_exception()
        else:
            console.print(
                f"[bold red]internal error:[/] {type(exc).__name__}: {exc}\n"
                "  rerun with --debug for the traceback",
                highlight=False,
            )
        return 1


def _console(args: argparse.Namespace) -> Console:
    from rich.console import Console
    from rich.logging import RichHandler

    console = Console(stderr=False, quiet=args.quiet, soft_wrap=True)
    level = logging.ERROR if args.quiet else logging.WARNING
    if args.verbose == 1:
        level = logging.INFO
    elif args.verbose > 1:
        level = logging.DEBUG
    err = Console(stderr=True)
    root = logging.getLogger()
    root.handlers[:] = [RichHandler(console=err, show_path=False, show_time=False)]
    root.setLevel(level)
    return console


def _plugins() -> Plugins:
    from trigml.plugins import get_plugins

    return get_plugins()


# -- commands ------------------------------------------------------------------------


def _cmd_plugins(args: argparse.Namespace, console: Console) -> int:
    plugins = _plugins()
    doc: dict[str, Any] = {
        "plugins": [
            {"name": p.name, "dist": p.dist, "version": p.version}
            for p in plugins.loaded
        ],
        "failed": [
            {"name": f.name, "dist": f.dist, "version": f.version, "reason": f.reason}
            for f in plugins.failed
        ],
        "components": [
            {
                "kind": c.kind,
                "name": c.name,
                "dist": c.dist,
                "version": c.version,
                "description": c.description,
                "params": sorted(c.params.model_fields),
            }
            for c in plugins.registry.components()
        ],
    }
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    from rich.table import Table

    table = Table(title="trigml components")
    for col in ("kind", "name", "from", "description"):
        table.add_column(col)
    for c in doc["components"]:
        table.add_row(
            c["kind"], c["name"], f"{c['dist']} {c['version']}", c["description"]
        )
    console.print(table)
    for f in plugins.failed:
        console.print(f"[yellow]warning:[/] {f}", highlight=False)
    return 0


def _detect_kind(path: Path) -> str:
    from trigml.configfile import read_yaml

    cfg = read_yaml(path)
    kind = cfg.data.get("kind")
    if kind in ("train", "run", "export"):
        return str(kind)
    if "lines" in cfg.data:
        return "run"
    if "family" in cfg.data:
        return "train"
    if "backend" in cfg.data:
        return "export"
    raise UsageError(
        f"{path}: cannot tell which kind of config this is",
        hint="add 'kind: train', 'kind: run' or 'kind: export' at the top",
    )


def _cmd_validate(args: argparse.Namespace, console: Console) -> int:
    from trigml import assemble

    kind = _detect_kind(args.config)
    registry = _plugins().registry
    if kind == "run":
        config, cfg = assemble.load_run_config(args.config)
        menu, _ = assemble.assemble_run(config, registry, cfg)
        what = f"{len(menu.lines)} line(s)"
    elif kind == "train":
        tconfig, cfg = assemble.load_train_config(args.config)
        assemble.build(registry, "algorithm", tconfig.algorithm, cfg, ("algorithm",))
        assemble.build(registry, "family", tconfig.family, cfg, ("family",))
        if tconfig.source is not None:
            assemble.build(registry, "source", tconfig.source, cfg, ("source",))
        what = f"{tconfig.algorithm.type} with {tconfig.family.type}"
    else:
        econfig, cfg = assemble.load_export_config(args.config)
        assemble.build(registry, "backend", econfig.backend, cfg, ("backend",))
        from trigml.artifact import load_artifact

        load_artifact(assemble.resolve_path(econfig.model, cfg))
        what = f"to {econfig.backend.type}"
    console.print(f"[green]ok[/]: {args.config} is a valid {kind} config ({what})")
    return 0


def _cmd_train(args: argparse.Namespace, console: Console) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from trigml import assemble
    from trigml.train import train_model

    config, cfg = assemble.load_train_config(args.config)
    registry = _plugins().registry
    what = f"training {config.algorithm.type} with {config.family.type}"
    columns = [TextColumn(what), BarColumn(), MofNCompleteColumn()]
    with Progress(*columns, console=console, transient=True, disable=args.quiet) as bar:
        task = bar.add_task(what, total=None)

        def progress(stage: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        artifact = train_model(
            config,
            registry,
            cfg,
            overwrite=args.overwrite,
            output=args.out,
            progress=progress,
        )
    _print_card(console, artifact)
    return 0


def _print_card(console: Console, artifact: Any) -> None:
    from rich.table import Table

    card = artifact.card
    console.print(
        f"[green]trained[/] {card.name} ({card.algorithm}, {card.family}, "
        f"{len(card.features)} features) → {artifact.path}"
    )
    if card.working_points:
        table = Table(title="working points (validation sample)")
        for col in ("name", "threshold", "signal eff.", "background eff.", "rate"):
            table.add_column(col, justify="right")
        for wp in card.working_points:
            table.add_row(
                wp.name,
                f"{wp.threshold:.4g}",
                _pct(wp.signal_efficiency),
                _pct(wp.background_efficiency),
                f"{wp.rate_hz / 1e3:.1f} kHz" if wp.rate_hz is not None else "",
            )
        console.print(table)


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.2f}%"


def _cmd_run(args: argparse.Namespace, console: Console) -> int:
    from rich.progress import (
        BarColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    from trigml import assemble
    from trigml.reporting import write_run_outputs
    from trigml.runtime import run_menu

    config, cfg = assemble.load_run_config(args.config)
    plugins = _plugins()
    menu, executor = assemble.assemble_run(
        config, plugins.registry, cfg, executor=args.executor
    )
    journal = _journal(args, console)
    if journal is None:
        return 0
    versions = {p.dist: p.version for p in plugins.loaded}
    columns = [
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,} events"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=console, transient=True, disable=args.quiet) as bar:
        task = bar.add_task(f"running {len(menu.lines)} line(s)", total=None, rate="")

        def advance(n: int) -> None:
            bar.advance(task, n)
            t = bar.tasks[0]
            if t.elapsed:
                bar.update(task, rate=f"{t.completed / t.elapsed / 1e3:,.0f} kHz")

        report, accounting = run_menu(
            menu,
            executor,
            args.out,
            progress=advance,
            plugins=versions,
            journal=journal,
        )
    write_run_outputs(report, accounting, args.out, plots=config.plots)
    journal.discard()
    _print_report(console, report, args.out)
    return 0


def _journal(args: argparse.Namespace, console: Console) -> RunJournal | None:
    """The journal of this run: a new one, or that of the run to resume.

    Returns None when ``--resume`` finds the run in ``--out`` already finished.
    """
    from trigml.journal import RunJournal
    from trigml.train import prepare_output

    out: Path = args.out
    if not args.resume:
        prepare_output(out, overwrite=args.overwrite)
        return RunJournal(out)
    if args.overwrite:
        raise UsageError("--resume and --overwrite exclude each other")
    if RunJournal.found(out):
        return RunJournal(out, resume=True)
    if (out / "report.json").is_file():
        console.print(f"nothing to resume: the run in {out}/ has finished")
        return None
    prepare_output(out, overwrite=False)
    log.info("no interrupted run in %s; starting one", out)
    return RunJournal(out)


def _print_report(console: Console, report: Any, out: Path) -> None:
    from rich.table import Table

    table = Table(title=f"{report.n_input:,} events, {report.n_decided:,} decided")
    for col in (
        "line",
        "backend",
        "accepted",
        "efficiency",
        "rate",
        "events/s",
        "p99 µs",
    ):
        table.add_column(col, justify="right")
    for line in report.lines:
        table.add_row(
            line.name,
            line.backend,
            f"{line.n_accepted:,}",
            _pct(line.metrics.get("signal_efficiency", line.efficiency)),
            f"{line.rate_hz / 1e3:.2f} kHz" if line.rate_hz is not None else "",
            f"{line.timing.events_per_second:,.0f}",
            f"{line.timing.latency_p99_us:.2f}",
        )
    console.print(table)
    for reason, count in report.rejected.items():
        console.print(
            f"[yellow]rejected[/] {count:,} events: {reason}", highlight=False
        )
    for chunk in report.retried_chunks:
        console.print(
            f"[yellow]retried[/] chunk {chunk.chunk} ({chunk.origin}) "
            f"worked at attempt {chunk.attempts}; before: {chunk.reasons[-1]}",
            highlight=False,
        )
    if report.resumed_chunks:
        console.print(
            f"resumed: {report.resumed_chunks} of {report.n_batches} chunks came from "
            "the interrupted run"
        )
    console.print(f"outputs in {out}/")


def _parse_sets(pairs: list[str]) -> dict[str, Any]:
    import yaml

    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise UsageError(f"--set expects KEY=VALUE, got '{pair}'")
        key, value = pair.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)
    return out


def _cmd_export(args: argparse.Namespace, console: Console) -> int:
    from trigml import assemble
    from trigml.artifact import load_artifact
    from trigml.schema.config import ComponentRef
    from trigml.train import prepare_output

    registry = _plugins().registry
    cfg = None
    params: dict[str, Any] = {}
    if args.config is not None:
        econfig, cfg = assemble.load_export_config(args.config)
        model_path = assemble.resolve_path(econfig.model, cfg)
        backend_name = args.backend or econfig.backend.type
        params.update(econfig.backend.params)
        out = args.out or assemble.resolve_path(econfig.output, cfg)
    else:
        if args.model is None or args.backend is None:
            raise UsageError("export needs MODEL and --backend, or --config")
        model_path, backend_name = args.model, args.backend
        out = args.out or Path(f"{args.model}-{backend_name}")
    params.update(_parse_sets(args.set))
    if args.scan_precision:
        params["scan_precision"] = True
    ref = ComponentRef(type=backend_name, params=params)
    backend = assemble.build(registry, "backend", ref, cfg, ("backend",))
    artifact = load_artifact(model_path)
    prepare_output(out, overwrite=args.overwrite)
    with console.status(f"exporting {artifact.card.name} to {backend_name}"):
        result = backend.export(artifact, out)
    _print_consistency(console, result.report)
    console.print(f"export written to {result.directory}/")
    return 0


def _print_consistency(console: Console, report: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(
        title=f"deployed vs float model on {report.get('n', 0):,} held-out rows"
    )
    for col in (
        "working point",
        "threshold",
        "agreement",
        "flips",
        "sig. eff. float → deployed",
    ):
        table.add_column(col, justify="right")
    for wp in report.get("working_points", []):
        effs = ""
        if "signal_efficiency_float" in wp:
            effs = (
                f"{_pct(wp['signal_efficiency_float'])} → "
                f"{_pct(wp['signal_efficiency_deployed'])}"
            )
        table.add_row(
            wp["name"],
            f"{wp['threshold']:.4g}",
            f"{100 * wp['agreement']:.3f}%",
            str(wp["flips_to_pass"] + wp["flips_to_fail"]),
            effs,
        )
    console.print(table)
    if "max_abs_difference" in report:
        console.print(f"max |score difference|: {report['max_abs_difference']:.3g}")


def _cmd_generate(args: argparse.Namespace, console: Console) -> int:
    from trigml.io.root import write_events
    from trigml.schema.config import ComponentRef

    if args.out.exists() and not args.overwrite:
        raise UsageError(f"{args.out} exists", hint="pass --overwrite to replace it")
    from trigml import assemble

    registry = _plugins().registry
    ref = ComponentRef(type=args.source, params=_parse_sets(args.set))
    source = assemble.build(registry, "source", ref, None, ("source",))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with console.status(f"generating {source.describe()}"):
        n = write_events(args.out, (b.events for b in source.batches()))
    console.print(f"wrote {n:,} events to {args.out}")
    return 0


def _cmd_schema(args: argparse.Namespace, console: Console) -> int:
    from trigml.jsonschema import check_schemas, default_schema_dir, write_schemas

    folder = args.dir or default_schema_dir()
    if args.check:
        stale = check_schemas(folder)
        if stale:
            raise UsageError(
                f"stale JSON Schemas in {folder}: {', '.join(stale)}",
                hint="regenerate them with 'trigml schema'",
            )
        console.print(f"[green]ok[/]: schemas in {folder} are up to date")
        return 0
    written = write_schemas(folder)
    console.print(f"wrote {len(written)} schemas to {folder}")
    return 0


def _cmd_demo(args: argparse.Namespace, console: Console) -> int:
    registry = _plugins().registry
    if ("demo", args.name) not in registry:
        names = registry.names("demo")
        if not names:
            raise UsageError(
                "no demo is installed",
                hint="install the LHCb plugin: pip install -e plugins/trigml-lhcb",
            )
        registry.get("demo", args.name)
    from trigml.train import prepare_output

    prepare_output(args.out, overwrite=args.overwrite)
    demo = registry.build("demo", args.name)
    return int(demo(args.out, console))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
