"""Events from ROOT files (TTree or RNTuple) and decisions into them, through uproot.

How schema names meet branch names
----------------------------------
* A flat field ``nPV`` is read from the branch ``nPV``.
* A collection field ``jets.pt`` is read from ``<prefix>_pt``, the branch counted by
  ``n<prefix>``. The prefix is the collection's own name (``jets_pt``, counter
  ``njets``) unless ``aliases`` maps the collection onto another one: ``{"jets":
  "Jet"}`` reads NanoAOD's ``Jet_pt``, ``Jet_eta`` counted by ``nJet``. uproot writes
  a jagged collection of records the same way (counter ``nX``, branches ``X_field``),
  so files from :func:`write_events` read back unchanged.
* In an RNTuple that stores a collection as records, ``<prefix>.pt`` is used when no
  ``<prefix>_pt`` exists.
* ``aliases`` may also map a single field onto any branch: ``{"tracks.pt": "trk_pt"}``
  or ``{"nPV": "PV_npvs"}``. Such a field alias wins over a collection alias.
* Asked for every column (``columns=None``), a source reads all top-level branches:
  ``X_field`` branches with a counter ``nX`` become the collection ``X`` (named through
  ``aliases`` in reverse), and counters of collections and of jagged branches are
  left out, since the lists carry their lengths.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field, field_validator

from trigml.components import Batch, ChunkRef, Sink, Source
from trigml.errors import DataError, RunFailure, TrigmlError
from trigml.io.memory import check_table, closest, events_from_columns, split_column
from trigml.registry import Params

if TYPE_CHECKING:
    import awkward as ak

__all__ = [
    "Compression",
    "RootSink",
    "RootSinkParams",
    "RootSource",
    "RootSourceParams",
    "write_events",
    "write_rntuple",
]

log = logging.getLogger(__name__)

Compression = Literal["lz4", "zstd", "none"]

_TREE_CLASSES = ("TTree", "TNtuple", "TNtupleD", "ROOT::RNTuple")
_STEP_RE = re.compile(r"^\s*(\d+(\.\d*)?|\.\d+)\s*([kmgt]?i?b)\s*$", re.IGNORECASE)
_ALIAS_HINT = (
    "map schema names onto the file's branches with the source's 'aliases' option, "
    "e.g. aliases: {'jets': 'Jet'} for a whole collection or {'jets.pt': 'Jet_pt'} "
    "for one field"
)
# Events per batch when no branch is read and the step size is a memory size.
_COUNT_ONLY_STEP = 1_000_000


class RootSourceParams(Params):
    """Parameters of the ROOT source.

    Attributes
    ----------
    files : list of str
        Files or glob patterns, read in this order; the files a pattern matches are
        read in sorted order. Relative paths are resolved against ``base_dir``.
    tree : str
        Name of the TTree or RNTuple (``dir/name`` inside a directory).
    step_size : str or int
        Batch size as a memory size (``"50 MB"``, ``"1 GiB"``) or a number of events,
        as in ``uproot.iterate``.
    aliases : dict of str to str
        Schema name → branch name (``{"nPV": "PV_npvs"}``, ``{"tracks.pt":
        "trk_pt"}``) or collection → branch prefix (``{"jets": "Jet"}``).
    entry_stop : int, optional
        Read at most this many events over all files.
    base_dir : str
        Directory that relative paths are resolved against (the configuration's
        folder); the working directory when empty.
    """

    files: list[str] = Field(min_length=1)
    tree: str = "Events"
    step_size: str | int = "50 MB"
    aliases: dict[str, str] = Field(default_factory=dict)
    entry_stop: int | None = Field(default=None, ge=0)
    base_dir: str = ""

    @field_validator("step_size")
    @classmethod
    def _check_step_size(cls, value: str | int) -> str | int:
        if isinstance(value, bool):
            raise ValueError("step_size must be a memory size or a number of events")
        if isinstance(value, int):
            if value <= 0:
                raise ValueError("step_size must be a positive number of events")
            return value
        match = _STEP_RE.match(value)
        if match is None or float(match.group(1)) <= 0:
            raise ValueError(
                f"step_size '{value}' is neither a memory size such as '50 MB' or "
                "'1 GiB' nor a number of events"
            )
        return value

    @field_validator("aliases")
    @classmethod
    def _check_aliases(cls, value: dict[str, str]) -> dict[str, str]:
        for key, branch in value.items():
            if not key or key.startswith(".") or key.endswith("."):
                raise ValueError(f"alias key '{key}' is not a schema name")
            if not branch:
                raise ValueError(f"alias '{key}' maps onto an empty branch name")
        return value


class RootSource(Source):
    """Batches of events read with uproot from TTrees or RNTuples.

    Only the branches behind the requested columns are read, file after file in the
    given order; ``Batch.start`` counts events over all files. A file whose tree holds
    no events is skipped with a warning, so a source can yield no batch at all.

    Parameters
    ----------
    params : RootSourceParams
    """

    def __init__(self, params: RootSourceParams) -> None:
        self.params = params
        self._paths: list[Path] | None = None
        self._local: threading.local | None = None

    def __getstate__(self) -> dict[str, Any]:
        # open files stay behind: a copy in another process opens its own
        state = dict(self.__dict__)
        state["_local"] = None
        return state

    def paths(self) -> list[Path]:
        """The files to read, with globs expanded.

        Raises
        ------
        DataError
            A pattern matches nothing or a named file does not exist.
        """
        if self._paths is None:
            self._paths = _expand(self.params.files, self.params.base_dir)
        return list(self._paths)

    def num_entries(self) -> int:
        """Number of events the source will yield (opens every file's metadata)."""
        total = 0
        for path in self.paths():
            rfile, tree = _open_tree(path, self.params.tree)
            try:
                total += _entries(tree, path)
            finally:
                rfile.close()
        stop = self.params.entry_stop
        return total if stop is None else min(total, stop)

    def batches(self, columns: Sequence[str] | None = None) -> Iterator[Batch]:
        """Yield batches in input order with only ``columns`` (dotted schema names).

        Raises
        ------
        DataError
            A file is missing, empty, truncated or not ROOT; the tree or a branch is
            missing; a branch does not hold numbers.
        """
        p = self.params
        wanted = _wanted(columns)
        paths = self.paths()

        start = 0
        chunk = 0
        left = p.entry_stop
        for path in paths:
            if left is not None and left <= 0:
                break
            rfile, tree = _open_tree(path, p.tree)
            try:
                where = f"{path}:{p.tree}"
                plan = _plan(tree, wanted, p.aliases, where)
                n = _entries(tree, path)
                if n == 0:
                    log.warning("%s holds no events; skipped", where)
                    continue
                stop = n if left is None else min(n, left)
                log.debug("reading %s events from %s: %s", stop, where, plan)
                reading = _read(tree, plan, stop, p.step_size, where, wanted is None)
                for events, lo, hi in reading:
                    yield Batch(
                        events=events,
                        start=start + lo,
                        origin=f"{where}[{lo}:{hi}]",
                        chunk=chunk,
                    )
                    chunk += 1
                start += stop
                if left is not None:
                    left -= stop
            finally:
                rfile.close()

    def chunks(self, columns: Sequence[str] | None = None) -> list[ChunkRef]:
        """Plan the input as entry ranges of each file, the bounds :meth:`batches` uses.

        Every file's metadata is opened once, here, to learn its number of events (so
        that each chunk knows its global ``start``) and, for a memory step size, the
        number of entries per step of the branches read.

        Raises
        ------
        DataError
            As for :meth:`batches`, for anything wrong with a file's metadata or
            branches.
        """
        p = self.params
        wanted = _wanted(columns)
        refs: list[ChunkRef] = []
        # TODO(dask-planning): files are planned one after the other in the calling
        # process (~15 ms each); a distributed run could plan them on its workers.
        start = 0
        left = p.entry_stop
        for number, path in enumerate(self.paths()):
            if left is not None and left <= 0:
                break
            if number == 0:
                # the first file stays open for the first read_chunk in this thread
                tree, plan = self._tree_for(path, wanted)
                rfile = None
            else:
                rfile, tree = _open_tree(path, p.tree)
            try:
                where = f"{path}:{p.tree}"
                if rfile is not None:
                    plan = _plan(tree, wanted, p.aliases, where)
                n = _entries(tree, path)
                if n == 0:
                    log.warning("%s holds no events; skipped", where)
                    continue
                stop = n if left is None else min(n, left)
                step = _entry_step(tree, plan, stop, p.step_size, where)
                for lo in range(0, stop, step):
                    hi = min(lo + step, stop)
                    refs.append(
                        ChunkRef(
                            index=len(refs),
                            start=start + lo,
                            n=hi - lo,
                            file=str(path),
                            entry_start=lo,
                            entry_stop=hi,
                            origin=f"{where}[{lo}:{hi}]",
                        )
                    )
                start += stop
                if left is not None:
                    left -= stop
            finally:
                if rfile is not None:
                    rfile.close()
        return refs

    def read_chunk(self, ref: ChunkRef, columns: Sequence[str] | None = None) -> Batch:
        """Read the entries of one chunk planned by :meth:`chunks`.

        The last file opened stays open (one per thread) until another file is
        needed or :meth:`close` is called, so that consecutive chunks of one file do
        not reopen it.

        Raises
        ------
        DataError
            The file has disappeared or changed since the run was planned, or its
            entries cannot be read.
        """
        wanted = _wanted(columns)
        tree, plan = self._tree_for(Path(ref.file), wanted)
        where = f"{ref.file}:{self.params.tree}"
        events = _read_range(
            tree, plan, ref.entry_start, ref.entry_stop, where, wanted is None
        )
        if len(events) != ref.n:
            raise DataError(
                f"{ref.origin}: read {len(events)} events where the run planned "
                f"{ref.n}; the file changed during the run"
            )
        return Batch(events=events, start=ref.start, origin=ref.origin, chunk=ref.index)

    def close(self) -> None:
        """Close the file :meth:`read_chunk` keeps open in this thread, if any."""
        local = self._local
        opened = getattr(local, "opened", None) if local is not None else None
        if opened is not None:
            opened[1].close()
            local.opened = None  # type: ignore[union-attr]

    def _tree_for(
        self, path: Path, wanted: list[str] | None
    ) -> tuple[Any, dict[str, str]]:
        """The tree of ``path`` and its branch plan for ``wanted``, kept per thread."""
        if self._local is None:
            self._local = threading.local()
        local = self._local
        opened = getattr(local, "opened", None)
        if opened is None or opened[0] != path:
            self.close()
            if not path.is_file():
                raise DataError(
                    f"{path}: the file has disappeared since the run was planned",
                    hint="restore the file and resume the run with --resume",
                )
            rfile, tree = _open_tree(path, self.params.tree)
            opened = (path, rfile, tree, {})
            local.opened = opened
        plans: dict[tuple[str, ...] | None, dict[str, str]] = opened[3]
        key = None if wanted is None else tuple(wanted)
        if key not in plans:
            where = f"{path}:{self.params.tree}"
            plans[key] = _plan(opened[2], wanted, self.params.aliases, where)
        return opened[2], plans[key]

    def describe(self) -> str:
        """One line naming the files, the tree and the reading options."""
        p = self.params
        files = ", ".join(p.files[:3])
        if len(p.files) > 3:
            files += f" and {len(p.files) - 3} more"
        extra = [f"tree '{p.tree}'", f"step {p.step_size}"]
        if p.aliases:
            extra.append(f"{len(p.aliases)} aliases")
        if p.entry_stop is not None:
            extra.append(f"first {p.entry_stop} events")
        return f"root: {files} ({', '.join(extra)})"


def _wanted(columns: Sequence[str] | None) -> list[str] | None:
    """Requested columns without repeats, each checked to be a valid name."""
    if columns is None:
        return None
    wanted = list(dict.fromkeys(columns))
    for name in wanted:
        split_column(name)
    return wanted


# --- finding and opening files -------------------------------------------------------


def _expand(patterns: Sequence[str], base_dir: str) -> list[Path]:
    """Expand globs in order, resolving relative paths against ``base_dir``."""
    base = Path(base_dir).expanduser() if base_dir else Path.cwd()
    out: list[Path] = []
    seen: set[Path] = set()
    for pattern in patterns:
        raw = os.path.expanduser(pattern)
        relative = not os.path.isabs(raw)
        if any(c in raw for c in "*?["):
            full = os.path.join(glob.escape(str(base)), raw) if relative else raw
            found = [Path(m) for m in sorted(glob.glob(full, recursive=True))]
            found = [m for m in found if m.is_file()]
            if not found:
                where = f" (relative to {base})" if relative else ""
                raise DataError(f"no file matches '{pattern}'{where}")
        else:
            path = base / raw if relative else Path(raw)
            _check_exists(path, pattern)
            found = [path]
        for path in found:
            if path.resolve() in seen:
                log.warning("%s is listed twice in the source's files; read once", path)
                continue
            seen.add(path.resolve())
            out.append(path)
    return out


def _check_exists(path: Path, pattern: str) -> None:
    if path.is_file():
        return
    if path.is_dir():
        raise DataError(
            f"{path}: is a directory, not a ROOT file",
            hint=f"use a glob such as '{pattern.rstrip('/')}/*.root'",
        )
    msg = f"{path}: no such file"
    if path.parent.is_dir():
        close = closest(path.name, os.listdir(path.parent))
        if close:
            msg += f"; closest in {path.parent}: {', '.join(close)}"
    else:
        msg += f" (the folder {path.parent} does not exist either)"
    raise DataError(msg)


def _check_header(path: Path) -> None:
    """Refuse empty, non-ROOT and truncated files before uproot sees them."""
    size = path.stat().st_size
    if size == 0:
        raise DataError(
            f"{path}: the file is empty (0 bytes)",
            hint="the job or copy that made it stopped early; make it again",
        )
    with path.open("rb") as fh:
        head = fh.read(20)
    if head[:4] != b"root":
        raise DataError(
            f"{path}: not a ROOT file (it begins with {head[:4]!r}, a ROOT file "
            "with b'root')"
        )
    version = int.from_bytes(head[4:8], "big")
    wide = version >= 1_000_000
    end_bytes = head[12:20] if wide else head[12:16]
    if len(end_bytes) < (8 if wide else 4):
        raise DataError(f"{path}: the file is truncated ({size} bytes, no full header)")
    end = int.from_bytes(end_bytes, "big")
    if size < end:
        raise DataError(
            f"{path}: the file is truncated: its header says {end} bytes, it has "
            f"{size}",
            hint="the job or copy that made it stopped early; make it again",
        )


def _open_tree(path: Path, name: str) -> tuple[Any, Any]:
    """Open ``path`` and return (file, tree) with clear errors for every failure."""
    import uproot

    _check_header(path)
    try:
        rfile = uproot.open(path)
    except Exception as exc:
        raise DataError(
            f"{path}: cannot be opened as a ROOT file, it may be damaged "
            f"({_short(exc)})"
        ) from exc
    try:
        tree = _lookup_tree(rfile, path, name)
    except BaseException:
        rfile.close()
        raise
    return rfile, tree


def _lookup_tree(rfile: Any, path: Path, name: str) -> Any:
    try:
        classes = rfile.classnames(recursive=True, cycle=False)
    except Exception as exc:
        raise DataError(f"{path}: cannot list its keys ({_short(exc)})") from exc
    key = name.split(";", 1)[0].strip("/")
    if key not in classes:
        trees = [k for k, c in classes.items() if c in _TREE_CLASSES]
        listed = ", ".join(f"{k} ({classes[k]})" for k in classes)
        msg = f"{path}: no tree '{name}'; the file has: {listed}"
        if not classes:
            msg = f"{path}: no tree '{name}'; the file has no keys (it may be damaged)"
        close = closest(key, trees or list(classes), n=1)
        hint = None
        if close:
            msg += f". Did you mean '{close[0]}'?"
            hint = f"set 'tree: {close[0]}' in the source's parameters"
        raise DataError(msg, hint=hint)
    if classes[key] not in _TREE_CLASSES:
        raise DataError(
            f"{path}: '{name}' is a {classes[key]}, not a TTree or an RNTuple"
        )
    try:
        return rfile[key]
    except Exception as exc:
        raise DataError(
            f"{path}: cannot read the tree '{name}', the file may be damaged "
            f"({_short(exc)})"
        ) from exc


def _entries(tree: Any, path: Path) -> int:
    try:
        return int(tree.num_entries)
    except Exception as exc:
        raise DataError(
            f"{path}: cannot read the number of events ({_short(exc)})"
        ) from exc


def _short(exc: BaseException) -> str:
    """First line of an exception's message, with its type."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


# --- which branches to read ----------------------------------------------------------


def _plan(
    tree: Any,
    columns: list[str] | None,
    aliases: Mapping[str, str],
    where: str,
) -> dict[str, str]:
    """Map each schema column (dotted) onto the branch that holds it."""
    try:
        keys = list(tree.keys())
        top = list(tree.keys(recursive=False))
    except Exception as exc:
        raise DataError(f"{where}: cannot list its branches ({_short(exc)})") from exc
    if columns is None:
        plan = _plan_everything(top, aliases)
    else:
        plan = _plan_columns(columns, keys, aliases, where)
    _check_interpretations(tree, plan, where)
    return plan


def _plan_columns(
    columns: list[str], keys: list[str], aliases: Mapping[str, str], where: str
) -> dict[str, str]:
    keyset = set(keys)
    plan: dict[str, str] = {}
    whole: set[str] = set()
    for column in columns:
        coll, fname = split_column(column)
        if fname is None:
            branch = aliases.get(coll, coll)
            if branch in keyset:
                plan[coll] = branch
                whole.add(coll)
                continue
            fields = _prefix_fields(branch, keys)
            if not fields:
                raise _missing_branch(where, column, branch, keys)
            plan.update({f"{coll}.{f}": b for f, b in fields.items()})
            continue
        if column in aliases:
            branch = aliases[column]
            if branch not in keyset:
                raise _missing_branch(where, column, branch, keys)
            plan[column] = branch
            continue
        prefix = aliases.get(coll, coll)
        options = (f"{prefix}_{fname}", f"{prefix}.{fname}")
        found = next((b for b in options if b in keyset), None)
        if found is None:
            raise _missing_branch(where, column, options[0], keys)
        plan[column] = found
    # A collection read whole already holds the fields asked for one by one.
    return {
        c: b for c, b in plan.items() if c in whole or split_column(c)[0] not in whole
    }


def _prefix_fields(prefix: str, keys: list[str]) -> dict[str, str]:
    """Fields of the collection ``prefix``: ``prefix_x`` counted by ``nprefix``."""
    if f"n{prefix}" not in keys:
        return {}
    head = f"{prefix}_"
    return {k[len(head) :]: k for k in keys if k.startswith(head) and k != head}


def _collections(keys: list[str]) -> dict[str, tuple[str, str]]:
    """Branch → (prefix, field) for ``prefix_field`` branches with a counter."""
    keyset = set(keys)
    out: dict[str, tuple[str, str]] = {}
    for key in keys:
        cuts = [i for i, c in enumerate(key) if c == "_" and 0 < i < len(key) - 1]
        for i in reversed(cuts):
            if f"n{key[:i]}" in keyset:
                out[key] = (key[:i], key[i + 1 :])
                break
    return out


def _plan_everything(top: list[str], aliases: Mapping[str, str]) -> dict[str, str]:
    by_branch = {b: name for name, b in aliases.items() if "." in name}
    by_prefix = {b: name for name, b in aliases.items() if "." not in name}
    members = _collections(top)
    counters = {f"n{prefix}" for prefix, _ in members.values()}
    plan: dict[str, str] = {}
    for key in top:
        if key in by_branch:
            plan[by_branch[key]] = key
        elif key in members:
            prefix, fname = members[key]
            plan[f"{by_prefix.get(prefix, prefix)}.{fname}"] = key
        elif key not in counters:
            plan[by_prefix.get(key, key)] = key
    return plan


def _missing_branch(where: str, column: str, branch: str, keys: list[str]) -> DataError:
    msg = f"{where}: no branch '{branch}' for the schema field '{column}'"
    close = closest(branch, keys)
    if close:
        msg += f"; closest: {', '.join(close)}"
    prefixes = sorted({p for p, _ in _collections(keys).values()})
    if "." in column and prefixes:
        msg += f" (collections in the file: {', '.join(prefixes)})"
    return DataError(msg, hint=_ALIAS_HINT)


def _check_interpretations(tree: Any, plan: Mapping[str, str], where: str) -> None:
    """Refuse TTree branches uproot cannot read as numbers, before reading them."""
    from uproot.behaviors.TTree import TTree
    from uproot.interpretation.identify import UnknownInterpretation
    from uproot.interpretation.strings import AsStrings

    if not isinstance(tree, TTree):
        return
    for column, branch in plan.items():
        try:
            interp = tree[branch].interpretation
        except Exception:  # a branch uproot cannot even describe fails at reading
            continue
        if isinstance(interp, (UnknownInterpretation, AsStrings)):
            raise _not_numeric(where, column, branch, str(interp))


def _not_numeric(where: str, column: str, branch: str, what: str) -> DataError:
    return DataError(
        f"{where}: branch '{branch}' (schema field '{column}') holds {what}, which "
        "cannot be read as numbers",
        hint=_ALIAS_HINT,
    )


# --- reading -------------------------------------------------------------------------


def _read(
    tree: Any,
    plan: dict[str, str],
    stop: int,
    step: str | int,
    where: str,
    everything: bool,
) -> Iterator[tuple[ak.Array, int, int]]:
    """Yield (events, first entry, end entry) of ``tree`` up to ``stop``.

    With ``everything`` (no columns asked for), counters are left out.
    """
    if not plan:
        yield from _count_only(stop, step)
        return
    wanted = set(plan.values())
    try:
        chunks = tree.iterate(
            filter_name=lambda name: name in wanted,
            step_size=step,
            entry_stop=stop,
            library="ak",
        )
    except Exception as exc:
        raise DataError(
            f"{where}: cannot read {sorted(wanted)} ({_short(exc)})"
        ) from exc

    lo = 0
    while True:
        try:
            arrays = next(chunks)
        except StopIteration:
            return
        except TrigmlError:
            raise
        except Exception as exc:
            raise DataError(
                f"{where}: reading entries from {lo} failed, the file may be damaged "
                f"({_short(exc)})"
            ) from exc
        hi = lo + len(arrays)
        yield _build(arrays, plan, f"{where}[{lo}:{hi}]", everything), lo, hi
        lo = hi


def _entry_step(
    tree: Any, plan: dict[str, str], stop: int, step: str | int, where: str
) -> int:
    """Entries per batch, computed as ``tree.iterate`` computes it in :func:`_read`."""
    if isinstance(step, int):
        return step
    if not plan:
        return _COUNT_ONLY_STEP
    wanted = set(plan.values())
    try:
        entries = tree.num_entries_for(
            step, filter_name=lambda name: name in wanted, entry_stop=stop
        )
    except Exception as exc:
        raise DataError(
            f"{where}: cannot size batches of {step} for {sorted(wanted)} "
            f"({_short(exc)})"
        ) from exc
    return max(1, int(entries))


def _read_range(
    tree: Any, plan: dict[str, str], lo: int, hi: int, where: str, everything: bool
) -> ak.Array:
    """Events of the entries ``[lo, hi)`` of ``tree``."""
    import awkward as ak

    origin = f"{where}[{lo}:{hi}]"
    if not plan:
        return ak.Array(ak.contents.RecordArray([], [], length=hi - lo))
    wanted = set(plan.values())
    try:
        arrays = tree.arrays(
            filter_name=lambda name: name in wanted,
            entry_start=lo,
            entry_stop=hi,
            library="ak",
            array_cache=None,  # each chunk is read once: keep nothing
        )
    except TrigmlError:
        raise
    except Exception as exc:
        raise DataError(
            f"{origin}: reading failed, the file may be damaged ({_short(exc)})"
        ) from exc
    return _build(arrays, plan, origin, everything)


def _count_only(stop: int, step: str | int) -> Iterator[tuple[ak.Array, int, int]]:
    import awkward as ak

    size = step if isinstance(step, int) else _COUNT_ONLY_STEP
    for lo in range(0, stop, size):
        hi = min(lo + size, stop)
        yield ak.Array(ak.contents.RecordArray([], [], length=hi - lo)), lo, hi


def _take(arrays: ak.Array, branch: str, origin: str) -> ak.Array:
    """The array of ``branch`` in uproot's output (nested for RNTuple subfields)."""
    if branch in arrays.fields:
        return arrays[branch]
    node = arrays
    for part in re.split(r"[./]", branch):
        if part not in node.fields:
            raise DataError(f"{origin}: uproot gave no array for the branch '{branch}'")
        node = node[part]
    return node


def _build(arrays: ak.Array, plan: dict[str, str], origin: str, drop: bool) -> ak.Array:
    import awkward as ak

    layout = arrays.layout
    if (
        all(c == b and "." not in c for c, b in plan.items())
        and isinstance(layout, ak.contents.RecordArray)
        and set(layout.fields) == set(plan)
        and all(isinstance(layout.content(c), ak.contents.NumpyArray) for c in plan)
    ):
        # flat numeric branches under their own names: uproot's record is the batch
        return arrays
    columns = {c: _take(arrays, branch, origin) for c, branch in plan.items()}
    for column, values in columns.items():
        if not _numeric(values.layout):
            raise _not_numeric(origin, column, plan[column], str(values.type.content))
    if drop:
        columns = _drop_counters(columns, plan)
    return events_from_columns(columns, origin=origin, sources=plan)


def _drop_counters(
    columns: dict[str, ak.Array], plan: Mapping[str, str]
) -> dict[str, ak.Array]:
    """Leave out the branch ``nX`` when the branch ``X`` holds lists."""
    lists = {plan[c] for c, a in columns.items() if a.layout.is_list}
    return {
        c: a
        for c, a in columns.items()
        if not (plan[c][:1] == "n" and plan[c][1:] in lists)
    }


def _numeric(layout: Any) -> bool:
    """Whether a layout holds only numbers (in lists and records)."""
    import awkward as ak

    contents = ak.contents
    if layout.parameter("__array__") in ("string", "bytestring", "char", "byte"):
        return False
    if isinstance(layout, contents.NumpyArray):
        return layout.dtype.kind in "biuf"
    if isinstance(layout, contents.EmptyArray):
        return True
    if isinstance(
        layout, (contents.ListOffsetArray, contents.ListArray, contents.RegularArray)
    ):
        return _numeric(layout.content)
    if isinstance(layout, contents.RecordArray):
        return all(_numeric(c) for c in layout.contents)
    return False


# --- writing -------------------------------------------------------------------------


def _compression(name: Compression) -> Any:
    import uproot

    if name == "lz4":
        return uproot.LZ4(4)
    if name == "zstd":
        return uproot.ZSTD(5)
    if name == "none":
        return None
    raise DataError(f"unknown compression '{name}' (choose lz4, zstd or none)")


class RootSinkParams(Params):
    """Parameters of the ROOT decisions sink.

    Attributes
    ----------
    file : str
        Output file, relative to the run's output directory.
    tree : str
        Name of the TTree.
    compression : {"lz4", "zstd", "none"}
    """

    file: str = Field(default="decisions.root", min_length=1)
    tree: str = Field(default="decisions", min_length=1)
    compression: Compression = "lz4"


class RootSink(Sink):
    """Writes decision tables as flat branches of one TTree, one entry per event.

    Parameters
    ----------
    params : RootSinkParams
    """

    def __init__(self, params: RootSinkParams) -> None:
        self.params = params
        self.path: Path | None = None
        self._file: Any = None
        self._tree: Any = None
        self._dtypes: dict[str, np.dtype] = {}

    def open(self, out_dir: Path, columns: Mapping[str, np.dtype]) -> None:
        """Create the file and a TTree with one branch per column."""
        import uproot

        dtypes = {name: np.dtype(dt) for name, dt in columns.items()}
        for name, dt in dtypes.items():
            if dt.kind not in "biuf":
                raise RunFailure(
                    f"root sink: column '{name}' has dtype {dt}; a decisions file "
                    "holds numbers and booleans only"
                )
        path = Path(out_dir) / self.params.file
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = uproot.recreate(
                path, compression=_compression(self.params.compression)
            )
            self._tree = self._file.mktree(self.params.tree, dtypes)
        except OSError as exc:
            raise RunFailure(
                f"{path}: cannot create the decisions file ({exc})"
            ) from exc
        self.path = path
        self._dtypes = dtypes

    def write(self, table: Mapping[str, np.ndarray]) -> None:
        """Append one batch of rows (equal-length columns, as opened)."""
        if self._tree is None:
            raise RunFailure("root sink: write before open or after close")
        where = f"{self.path}:{self.params.tree}"
        if check_table(table, self._dtypes, where) == 0:
            return
        arrays = {n: np.asarray(table[n], dtype=dt) for n, dt in self._dtypes.items()}
        try:
            self._tree.extend(arrays)
        except OSError as exc:
            raise RunFailure(f"{where}: writing failed ({exc})") from exc

    def close(self) -> list[Path]:
        """Close the file and return its path (an empty list if never opened)."""
        if self._file is not None:
            try:
                self._file.close()
            except OSError as exc:
                raise RunFailure(f"{self.path}: closing failed ({exc})") from exc
            self._file = None
            self._tree = None
        return [self.path] if self.path is not None else []


_NUMBERS = {
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float32",
    "float64",
}


def _writable(batch: ak.Array, where: str) -> dict[str, str]:
    """Kind of every field (``number``, ``list`` or ``collection``), checked."""
    import awkward as ak

    types = ak.types
    fields = list(ak.fields(batch))
    if not fields:
        raise DataError(f"{where}: events must be records, got {ak.type(batch)}")

    def is_number(t: Any) -> bool:
        return isinstance(t, types.NumpyType) and t.primitive in _NUMBERS

    kinds: dict[str, str] = {}
    for name in fields:
        t = batch[name].type.content
        if is_number(t):
            kinds[name] = "number"
        elif isinstance(t, types.ListType) and is_number(t.content):
            kinds[name] = "list"
        elif (
            isinstance(t, types.ListType)
            and isinstance(t.content, types.RecordType)
            and not t.content.is_tuple
            and all(is_number(c) for c in t.content.contents)
        ):
            kinds[name] = "collection"
        else:
            raise DataError(
                f"{where}: field '{name}' has type {t}; only numbers, lists of numbers "
                "and lists of records of numbers can be written"
            )
    for name, kind in kinds.items():
        taken = [f"n{name}"] if kind != "number" else []
        if kind == "collection":
            taken += [f"{name}_{f}" for f in ak.fields(batch[name])]
        clash = [b for b in taken if b in kinds]
        if clash:
            raise DataError(
                f"{where}: the branch name '{clash[0]}' needed by '{name}' is also a "
                "field of the events; rename one of them"
            )
    return kinds


def _batches(events: ak.Array | Iterable[ak.Array]) -> Iterable[ak.Array]:
    import awkward as ak

    return [events] if isinstance(events, ak.Array) else events


def write_events(
    path: str | os.PathLike[str],
    batches: ak.Array | Iterable[ak.Array],
    tree: str = "Events",
    compression: Compression = "lz4",
) -> int:
    """Write events as a TTree that :class:`RootSource` reads back unchanged.

    A flat field ``x`` becomes the branch ``x``; a collection ``c`` (lists of
    records) becomes the counter ``nc`` and one branch ``c_f`` per record field ``f``;
    a list field ``h`` becomes ``h`` counted by ``nh``.

    Parameters
    ----------
    path : str or path
        File to create (replaced if it exists).
    batches : ak.Array or iterable of ak.Array
        Records with the same fields in every batch.
    tree : str
    compression : {"lz4", "zstd", "none"}

    Returns
    -------
    int
        Number of events written.
    """
    import uproot

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    total = 0
    fields: list[str] | None = None
    with uproot.recreate(path, compression=_compression(compression)) as rfile:
        out: Any = None
        for batch in _batches(batches):
            kinds = _writable(batch, str(path))
            if fields is None:
                fields = list(kinds)
                with _writing(path):
                    out = rfile.mktree(
                        tree,
                        {name: batch[name].type.content for name in fields},
                        counter_name=lambda counted: f"n{counted}",
                        field_name=lambda outer, inner: f"{outer}_{inner}",
                    )
            elif list(kinds) != fields:
                raise DataError(
                    f"{path}: batches differ in fields: {fields} then {list(kinds)}"
                )
            if len(batch):
                with _writing(path):
                    out.extend({n: batch[n] for n in fields})
            total += len(batch)
        if fields is None:
            raise DataError(f"{path}: no batch to write, so no branch types")
    return total


def write_rntuple(
    path: str | os.PathLike[str],
    events: ak.Array | Iterable[ak.Array],
    name: str = "Events",
    *,
    layout: Literal["flat", "records"] = "flat",
    compression: Compression = "lz4",
) -> int:
    """Write events as an RNTuple that :class:`RootSource` reads back unchanged.

    Parameters
    ----------
    path : str or path
        File to create (replaced if it exists).
    events : ak.Array or iterable of ak.Array
        Records with the same fields in every batch.
    name : str
        Name of the RNTuple.
    layout : {"flat", "records"}
        ``flat`` writes the same fields as :func:`write_events` writes branches
        (``nc``, ``c_f``); ``records`` keeps each collection as one field of records
        (``c.f``).
    compression : {"lz4", "zstd", "none"}

    Returns
    -------
    int
        Number of events written.
    """
    import uproot

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    total = 0
    started = False
    with uproot.recreate(path, compression=_compression(compression)) as rfile:
        for batch in _batches(events):
            kinds = _writable(batch, str(path))
            if layout == "flat":
                data: Any = _flat_fields(batch, kinds)
            else:
                data = batch
            with _writing(path):
                if not started:
                    rfile[name] = data
                    started = True
                elif len(batch):
                    rfile[name].extend(data)
            total += len(batch)
        if not started:
            raise DataError(f"{path}: no batch to write, so no field types")
    return total


def _flat_fields(batch: ak.Array, kinds: Mapping[str, str]) -> dict[str, Any]:
    import awkward as ak

    out: dict[str, Any] = {}
    for name, kind in kinds.items():
        values = batch[name]
        if kind == "number":
            out[name] = values
            continue
        out[f"n{name}"] = ak.to_numpy(ak.num(values, axis=1)).astype(np.int32)
        if kind == "list":
            out[name] = values
        else:
            out.update({f"{name}_{f}": values[f] for f in ak.fields(values)})
    return out


@contextmanager
def _writing(path: Path) -> Iterator[None]:
    """Turn uproot's errors while writing ``path`` into a DataError."""
    try:
        yield
    except TrigmlError:
        raise
    except Exception as exc:
        raise DataError(f"{path}: writing failed ({_short(exc)})") from exc
