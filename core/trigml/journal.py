"""The on-disk record of a run in progress, so that an interrupted run can be finished.

A run with a journal keeps, in ``<out>/parts/``, a header naming what is being run
(``run.json``), one file per finished chunk with everything its
:class:`~trigml.runtime.BatchResult` holds (``chunk-000123.npz``), and an append-only
log of finished and failed chunks (``journal.jsonl``). A chunk file is written to a
temporary name and renamed, and only then logged, so a kill at any moment leaves
either a complete, logged chunk or nothing that counts. ``trigml run --resume`` checks
that the header matches the menu, keeps every logged chunk whose file reads back
intact, computes the others, and merges both in input order, so its outputs equal
those of a run that was never interrupted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel

from trigml.errors import RunFailure, UsageError

if TYPE_CHECKING:
    from trigml.components import ChunkRef
    from trigml.runtime import BatchResult, ChunkFailure, Menu

__all__ = ["JOURNAL_VERSION", "PARTS_DIR", "RunJournal", "fingerprint"]

log = logging.getLogger(__name__)

#: Folder of the journal inside a run's output folder.
PARTS_DIR = "parts"
#: Version of the journal's layout, checked when resuming.
JOURNAL_VERSION = 1

_HEADER = "run.json"
_LOG = "journal.jsonl"
_META = "__meta__"
# Chunk files written in the background before the run waits for the oldest.
_MAX_PENDING = 2
# Testing hook: the process kills itself (SIGKILL) once this many chunks are logged.
_KILL_ENV = "TRIGML_TEST_KILL_AFTER_CHUNKS"


def fingerprint(menu: Menu, chunks: Sequence[ChunkRef] | None) -> dict[str, Any]:
    """What a run's outputs depend on, to refuse resuming a different run.

    The source and its chunk plan (files, entry ranges), the columns read, each
    line's algorithm, model files (sha256), backend and threshold, the validation
    policy and the trigml version. The executor is left out: a run may be resumed
    on another executor, since every executor gives the same decisions.
    """
    from trigml import __version__

    lines = []
    for line in menu.lines:
        params = getattr(line.algorithm, "params", None)
        describe = getattr(line.backend, "describe", None)
        lines.append(
            {
                "name": line.name,
                "algorithm": line.algorithm.name,
                "algorithm_params": _digest(
                    params.model_dump(mode="json")
                    if isinstance(params, BaseModel)
                    else None
                ),
                "model": line.artifact.card.name,
                "model_files": _digest(line.artifact.card.files),
                "backend": line.backend.name,
                "backend_settings": _digest(dict(describe()) if describe else None),
                "threshold": line.threshold,
            }
        )
    plan = None
    if chunks is not None:
        plan = _digest(
            [
                (c.index, c.start, c.n, c.file, c.entry_start, c.entry_stop)
                for c in chunks
            ]
        )
    return {
        "trigml_version": __version__,
        "source": menu.source.describe(),
        "columns": menu.columns(),
        "chunks": plan,
        "n_chunks": None if chunks is None else len(chunks),
        "lines": lines,
        "validation": menu.policy,
        "signal_field": menu.signal_field,
    }


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class RunJournal:
    """Chunk results of one run kept in ``<out_dir>/parts``.

    Parameters
    ----------
    out_dir : Path
        The run's output folder.
    resume : bool
        Continue the journal found there (True) or start a new one (False).
    """

    def __init__(self, out_dir: Path, *, resume: bool = False) -> None:
        self.dir = Path(out_dir) / PARTS_DIR
        self.resume = resume
        self._log_fd: int | None = None
        self._writer: ThreadPoolExecutor | None = None
        self._pending: deque[Future[None]] = deque()
        self._logged = 0
        kill = os.environ.get(_KILL_ENV, "")
        self._kill_after = int(kill) if kill.isdigit() else None

    @staticmethod
    def found(out_dir: Path) -> bool:
        """Whether ``out_dir`` holds the journal of a run."""
        return (Path(out_dir) / PARTS_DIR / _HEADER).is_file()

    # -- starting -----------------------------------------------------------------

    def begin(self, menu: Menu, chunks: Sequence[ChunkRef] | None) -> list[int]:
        """Start or continue the journal; return the chunks already done.

        Raises
        ------
        UsageError
            Resuming, and the journal is missing, of another version, or was written
            for a different menu, model or input.
        """
        header = {"version": JOURNAL_VERSION, "run": fingerprint(menu, chunks)}
        if self.resume:
            done = self._continue(header)
        else:
            if self.dir.exists():
                shutil.rmtree(self.dir)
            self.dir.mkdir(parents=True)
            _write_atomic(self.dir / _HEADER, json.dumps(header, indent=1).encode())
            done = []
        self._log_fd = os.open(
            self.dir / _LOG, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644
        )
        size = os.fstat(self._log_fd).st_size
        if size and os.pread(self._log_fd, 1, size - 1) != b"\n":
            # end a line cut short by a kill, so that the next one stands alone
            os.write(self._log_fd, b"\n")
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="trigml-journal")
        if done:
            log.info("resuming: %d chunk(s) done by an earlier attempt", len(done))
        return done

    def _continue(self, header: dict[str, Any]) -> list[int]:
        path = self.dir / _HEADER
        if not path.is_file():
            raise UsageError(
                f"nothing to resume in {self.dir.parent}: no {PARTS_DIR}/{_HEADER}",
                hint="run without --resume to start the run",
            )
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise UsageError(f"{path}: unreadable journal header ({exc})") from exc
        if old.get("version") != JOURNAL_VERSION:
            raise UsageError(
                f"{path}: journal version {old.get('version')}, this trigml writes "
                f"{JOURNAL_VERSION}; the run cannot be resumed",
                hint="start it again with --overwrite",
            )
        changed = _changes(old.get("run", {}), header["run"])
        if changed:
            raise UsageError(
                f"cannot resume the run in {self.dir.parent}: its "
                f"{', '.join(changed)} changed since it started",
                hint="resume with the same config, models and input files, or start "
                "again with --overwrite",
            )
        return self._verified_done()

    def _verified_done(self) -> list[int]:
        """Logged chunks whose file reads back intact."""
        logged: dict[int, dict[str, Any]] = {}
        try:
            text = (self.dir / _LOG).read_text()
        except FileNotFoundError:
            text = ""
        for number, row in enumerate(text.splitlines(), 1):
            try:
                entry = json.loads(row)
            except ValueError:
                # a line cut short by a kill in mid-write: its chunk is redone
                log.warning("%s line %d is incomplete; ignored", _LOG, number)
                continue
            if entry.get("status") == "done":
                logged[int(entry["chunk"])] = entry
        done = []
        for chunk, entry in sorted(logged.items()):
            problem = self._check_part(chunk, entry)
            if problem:
                log.warning("chunk %d is done again: %s", chunk, problem)
            else:
                done.append(chunk)
        return done

    def _check_part(self, chunk: int, entry: dict[str, Any]) -> str:
        path = self._part(chunk)
        start, n = int(entry["start"]), int(entry["n"])
        try:
            with np.load(path, allow_pickle=False) as npz:
                meta = json.loads(bytes(npz[_META]).decode())
                if (meta["chunk"], meta["start"], meta["n"]) != (chunk, start, n):
                    return f"{path.name} does not hold the logged chunk"
                # reading every column checks the zip's CRC of each
                short = [c for c in npz.files if c != _META and len(npz[c]) != n]
        except Exception as exc:
            return f"{path.name} cannot be read ({type(exc).__name__}: {exc})"
        if short:
            return f"{path.name}: columns {short} do not hold {n} rows"
        return ""

    # -- recording ----------------------------------------------------------------

    def record(self, result: BatchResult) -> None:
        """Keep a finished chunk: its file is written in the background, then logged.

        Raises
        ------
        RunFailure
            An earlier chunk file could not be written.
        """
        if self._writer is None:
            raise RunFailure("the run journal is not open (call begin first)")
        while len(self._pending) >= _MAX_PENDING:
            self._pending.popleft().result()
        self._pending.append(self._writer.submit(self._write_part, result))

    def record_failure(self, failure: ChunkFailure) -> None:
        """Log a chunk that failed on every attempt (it runs again on resume)."""
        self._append(
            {
                "chunk": failure.chunk,
                "status": "failed",
                "start": failure.start,
                "n": failure.n,
                "origin": failure.origin,
                "reasons": failure.reasons,
            }
        )

    def _write_part(self, result: BatchResult) -> None:
        meta = {
            "chunk": result.chunk,
            "start": result.start,
            "n": result.n,
            "origin": result.origin,
            "reasons": result.reasons,
            "reason_names": result.reason_names,
            "n_candidates": result.n_candidates,
            "seconds": result.seconds,
            "retries": result.retries,
            "columns": list(result.table),
        }
        # the event numbers are start, start + 1, ...: rebuilt when read back
        arrays = {k: v for k, v in result.table.items() if k != "event"}
        arrays[_META] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        path = self._part(result.chunk)
        try:
            with _atomic(path) as fh:
                np.savez(fh, allow_pickle=False, **arrays)
        except OSError as exc:
            raise RunFailure(
                f"{path}: cannot write the chunk's results ({exc})"
            ) from exc
        self._append(
            {
                "chunk": result.chunk,
                "status": "done",
                "start": result.start,
                "n": result.n,
            }
        )

    def _append(self, entry: dict[str, Any]) -> None:
        if self._log_fd is None:
            raise RunFailure("the run journal is not open (call begin first)")
        # one write() of one short line: appended whole or, if killed, cut short
        os.write(self._log_fd, (json.dumps(entry) + "\n").encode())
        if entry["status"] == "done":
            self._logged += 1
            if self._kill_after is not None and self._logged >= self._kill_after:
                os.kill(os.getpid(), signal.SIGKILL)

    # -- reading back -------------------------------------------------------------

    def load(self, chunk: int) -> BatchResult:
        """The result of a chunk done by an earlier attempt.

        Raises
        ------
        RunFailure
            Its file, checked when the run resumed, no longer reads back.
        """
        from trigml.runtime import BatchResult

        path = self._part(chunk)
        try:
            with np.load(path, allow_pickle=False) as npz:
                meta = json.loads(bytes(npz[_META]).decode())
                start, n = meta["start"], meta["n"]
                table = {
                    name: np.arange(start, start + n, dtype=np.int64)
                    if name == "event"
                    else npz[name]
                    for name in meta["columns"]
                }
        except Exception as exc:
            raise RunFailure(
                f"{path}: the results of chunk {chunk} no longer read back ({exc})",
                hint="resume again: the chunk will be computed anew",
            ) from exc
        return BatchResult(
            chunk=meta["chunk"],
            start=meta["start"],
            n=meta["n"],
            table=table,
            reasons=meta["reasons"],
            reason_names=meta["reason_names"],
            n_candidates=meta["n_candidates"],
            seconds=meta["seconds"],
            origin=meta["origin"],
            retries=meta["retries"],
        )

    def _part(self, chunk: int) -> Path:
        return self.dir / f"chunk-{chunk:06d}.npz"

    # -- ending -------------------------------------------------------------------

    def close(self) -> None:
        """Wait for the chunk files still being written and close the log.

        Raises
        ------
        RunFailure
            A chunk file could not be written.
        """
        try:
            while self._pending:
                self._pending.popleft().result()
        finally:
            if self._writer is not None:
                self._writer.shutdown(wait=True)
                self._writer = None
            if self._log_fd is not None:
                os.close(self._log_fd)
                self._log_fd = None

    def discard(self) -> None:
        """Remove the journal once the run's outputs are written."""
        self.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def _changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    names = {
        "trigml_version": "trigml version",
        "source": "source",
        "columns": "columns read",
        "chunks": "input files or their sizes",
        "n_chunks": "input files or their sizes",
        "lines": "lines, models or backends",
        "validation": "validation policy",
        "signal_field": "signal field",
    }
    found = [names.get(k, k) for k in new if old.get(k) != new.get(k)]
    return list(dict.fromkeys(found))


class _atomic:
    """A file written under a temporary name and renamed into place on success."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")

    def __enter__(self) -> Any:
        self.fh = self.tmp.open("wb")
        return self.fh

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        self.fh.close()
        if kind is None:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


def _write_atomic(path: Path, data: bytes) -> None:
    with _atomic(path) as fh:
        fh.write(data)
