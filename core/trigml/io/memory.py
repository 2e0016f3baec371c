"""Events held in memory: a source that slices an awkward array into batches, and a
sink that gathers decision tables into numpy arrays.

Both serve tests and programs that embed trigml. The helpers :func:`events_from_columns`
and :func:`select_columns` convert between dotted column names (``tracks.pt``) and
awkward records; the ROOT source builds its batches with them too.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
from pydantic import Field

from trigml.components import Batch, Sink, Source
from trigml.errors import DataError, RunFailure
from trigml.registry import Params

__all__ = [
    "MemorySink",
    "MemorySource",
    "MemorySourceParams",
    "check_table",
    "closest",
    "events_from_columns",
    "select_columns",
    "split_column",
    "zip_collection",
]

log = logging.getLogger(__name__)


def split_column(name: str) -> tuple[str, str | None]:
    """Split a dotted column name into (collection, field).

    ``"tracks.pt"`` gives ``("tracks", "pt")``; a flat name such as ``"nPV"`` gives
    ``("nPV", None)``. Only the first dot separates.
    """
    head, dot, tail = name.partition(".")
    if not head or (dot and not tail):
        raise DataError(
            f"'{name}' is not a valid column name (expected 'x' or 'coll.x')"
        )
    return (head, tail) if dot else (head, None)


def closest(name: str, choices: Sequence[str], n: int = 3) -> list[str]:
    """Up to ``n`` names of ``choices`` closest to ``name``, ignoring case."""
    by_lower: dict[str, str] = {}
    for choice in choices:
        by_lower.setdefault(choice.lower(), choice)
    found = difflib.get_close_matches(name.lower(), list(by_lower), n=n, cutoff=0.5)
    return [by_lower[f] for f in found]


def zip_collection(
    fields: Mapping[str, ak.Array],
    *,
    name: str,
    origin: str = "",
    sources: Mapping[str, str] | None = None,
) -> ak.Array:
    """Zip jagged fields with the same number of entries per event into records.

    Fields that share their offsets (the usual case: branches with one counter) are
    joined without copying; others are broadcast by :func:`ak.zip`.

    Parameters
    ----------
    fields : mapping of str to ak.Array
        Field name to a jagged array (one list per event).
    name : str
        Name of the collection, for messages.
    origin : str
        Where the arrays came from, for messages.
    sources : mapping of str to str, optional
        Field name to the branch it was read from, for messages.

    Raises
    ------
    DataError
        A field has one value per event rather than a list, or the fields disagree on
        the number of entries in some event.
    """
    where = f"{origin}: " if origin else ""
    layouts = {f: ak.to_layout(a) for f, a in fields.items()}
    for fname, layout in layouts.items():
        if not layout.is_list:
            raise DataError(
                f"{where}collection field '{name}.{fname}'{_from(fname, sources)} has "
                f"one value per event ({ak.type(fields[fname])}), not a list per event",
                hint="a collection field needs a jagged branch; map a flat branch as a "
                "flat field instead",
            )

    fast = _zip_shared_offsets(list(layouts), list(layouts.values()))
    if fast is not None:
        return fast
    try:
        return ak.zip(dict(fields), depth_limit=2)
    except ValueError:
        raise DataError(
            f"{where}the fields of collection '{name}' do not have the same number of "
            f"entries per event: {_first_mismatch(fields, sources)}",
            hint="map every field of a collection onto branches with the same counter",
        ) from None


def _zip_shared_offsets(names: list[str], layouts: list[Any]) -> ak.Array | None:
    """Join list layouts with equal offsets into a list of records, or return None."""
    contents = ak.contents
    if not all(isinstance(x, contents.ListOffsetArray) for x in layouts):
        return None
    offsets = layouts[0].offsets
    for other in layouts[1:]:
        if other.offsets is not offsets and not np.array_equal(
            np.asarray(other.offsets.data), np.asarray(offsets.data)
        ):
            return None
    stop = int(offsets[-1]) if len(offsets) else 0
    record = contents.RecordArray(
        [x.content[:stop] for x in layouts], names, length=stop
    )
    return ak.Array(contents.ListOffsetArray(offsets, record))


def _from(field: str, sources: Mapping[str, str] | None) -> str:
    if sources and field in sources:
        return f" (branch '{sources[field]}')"
    return ""


def _first_mismatch(
    fields: Mapping[str, ak.Array], sources: Mapping[str, str] | None
) -> str:
    counts = {f: ak.to_numpy(ak.num(a, axis=1)) for f, a in fields.items()}
    names = list(counts)
    ref = counts[names[0]]
    for fname in names[1:]:
        other = counts[fname]
        if len(other) != len(ref):
            return f"{names[0]} has {len(ref)} events, {fname} has {len(other)}"
        bad = np.flatnonzero(other != ref)
        if len(bad):
            i = int(bad[0])
            return (
                f"event {i} has {int(ref[i])} '{names[0]}'{_from(names[0], sources)} "
                f"and {int(other[i])} '{fname}'{_from(fname, sources)}"
            )
    return "unknown difference"


def events_from_columns(
    columns: Mapping[str, Any],
    *,
    origin: str = "",
    sources: Mapping[str, str] | None = None,
) -> ak.Array:
    """Build one record per event from columns named with dotted names.

    Parameters
    ----------
    columns : mapping of str to array-like
        ``"nPV"`` → a flat array (one value per event); ``"tracks.pt"`` → a jagged
        array (one list per event), zipped with the other ``tracks.*`` columns into the
        collection ``tracks``; a plain name may also hold a whole collection already
        (an array of lists of records).
    origin : str
        Where the columns came from, for messages.
    sources : mapping of str to str, optional
        Column name to the branch it was read from, for messages.

    Returns
    -------
    ak.Array
        Records with the flat fields and collections in order of first appearance.

    Raises
    ------
    DataError
        Columns of different lengths, a collection given both whole and by field, or
        collection fields that disagree on their number of entries per event.
    """
    where = f"{origin}: " if origin else ""
    top: dict[str, Any] = {}
    grouped: dict[str, dict[str, ak.Array]] = {}
    for name, values in columns.items():
        coll, fname = split_column(name)
        array = values if isinstance(values, ak.Array) else ak.Array(values)
        if fname is None:
            if coll in grouped:
                raise DataError(f"{where}'{coll}' is given whole and by field")
            top[coll] = array
        else:
            if coll in top and coll not in grouped:
                raise DataError(f"{where}'{coll}' is given whole and by field")
            grouped.setdefault(coll, {})[fname] = array
            top[coll] = None

    for coll, fields in grouped.items():
        coll_sources = None
        if sources:
            coll_sources = {
                f: sources[f"{coll}.{f}"] for f in fields if f"{coll}.{f}" in sources
            }
        top[coll] = zip_collection(
            fields, name=coll, origin=origin, sources=coll_sources
        )

    lengths = {k: len(v) for k, v in top.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{k}: {n}" for k, n in lengths.items())
        raise DataError(f"{where}columns have different numbers of events ({listed})")
    length = next(iter(lengths.values()), 0)
    layouts = [ak.to_layout(v) for v in top.values()]
    return ak.Array(ak.contents.RecordArray(layouts, list(top), length=length))


def select_columns(
    events: ak.Array, columns: Sequence[str] | None, *, origin: str = ""
) -> ak.Array:
    """Keep only ``columns`` (dotted names) of ``events``, without copying data.

    A plain name keeps a flat field or a whole collection; ``coll.x`` keeps the field
    ``x`` of the collection ``coll``. None keeps everything.

    Raises
    ------
    DataError
        A column does not exist; the message names the closest existing ones.
    """
    if columns is None:
        return events
    where = f"{origin}: " if origin else ""
    top = list(ak.fields(events))
    whole: dict[str, None] = {}
    parts: dict[str, list[str]] = {}
    for name in columns:
        coll, fname = split_column(name)
        if coll not in top:
            raise _missing(where, name, top)
        if fname is None:
            whole[coll] = None
            continue
        inner = list(ak.fields(events[coll]))
        if fname not in inner:
            raise _missing(where, name, [f"{coll}.{f}" for f in inner])
        if fname not in parts.setdefault(coll, []):
            parts[coll].append(fname)

    out: dict[str, ak.Array] = {}
    for coll in top:
        if coll in whole:
            out[coll] = events[coll]
        elif coll in parts:
            out[coll] = events[coll][parts[coll]]
    if not out:
        return ak.Array(ak.contents.RecordArray([], [], length=len(events)))
    return ak.zip(out, depth_limit=1)


def _missing(where: str, name: str, have: Sequence[str]) -> DataError:
    close = closest(name, have)
    msg = f"{where}no field '{name}'"
    if close:
        msg += f"; closest: {', '.join(close)}"
    return DataError(
        msg,
        hint="map your branch names onto the schema with the source's 'aliases' option",
    )


class MemorySourceParams(Params):
    """Parameters of a source over events handed over in Python.

    Attributes
    ----------
    batch_size : int
        Events per batch.
    """

    batch_size: int = Field(default=100_000, gt=0)


class MemorySource(Source):
    """Batches sliced from events already in memory.

    Parameters
    ----------
    events : ak.Array or mapping of str to array-like
        One record per event, or columns by dotted name (see
        :func:`events_from_columns`).
    batch_size : int
        Events per batch.
    origin : str
        Name of the events in messages and batch origins.
    """

    def __init__(
        self,
        events: ak.Array | Mapping[str, Any],
        batch_size: int = 100_000,
        *,
        origin: str = "memory",
    ) -> None:
        if batch_size <= 0:
            raise DataError(f"{origin}: batch_size must be positive, got {batch_size}")
        if not isinstance(events, ak.Array):
            events = events_from_columns(events, origin=origin)
        if not ak.fields(events):
            raise DataError(
                f"{origin}: events must be records with named fields, "
                f"got {ak.type(events)}"
            )
        self.events = events
        self.batch_size = batch_size
        self.origin = origin

    def batches(self, columns: Sequence[str] | None = None) -> Iterator[Batch]:
        """Yield consecutive slices of ``batch_size`` events with only ``columns``."""
        events = select_columns(self.events, columns, origin=self.origin)
        n = len(events)
        for chunk, start in enumerate(range(0, n, self.batch_size)):
            stop = min(start + self.batch_size, n)
            yield Batch(
                events=events[start:stop],
                start=start,
                origin=f"{self.origin}[{start}:{stop}]",
                chunk=chunk,
            )

    def num_entries(self) -> int:
        """Number of events the source yields."""
        return len(self.events)

    def describe(self) -> str:
        """One line for reports."""
        return (
            f"memory: {len(self.events)} events in batches of {self.batch_size} "
            f"({self.origin})"
        )


def check_table(
    table: Mapping[str, np.ndarray], dtypes: Mapping[str, np.dtype], where: str
) -> int:
    """Check that a decision table has the opened columns with equal lengths.

    Returns
    -------
    int
        Number of rows.

    Raises
    ------
    RunFailure
        Columns missing or unexpected, or of different lengths.
    """
    if set(table) != set(dtypes):
        missing = sorted(set(dtypes) - set(table))
        extra = sorted(set(table) - set(dtypes))
        raise RunFailure(
            f"{where}: the table does not match the columns the sink was opened with "
            f"(missing: {missing or 'none'}, unexpected: {extra or 'none'})"
        )
    lengths = {k: len(v) for k, v in table.items()}
    if len(set(lengths.values())) > 1:
        raise RunFailure(f"{where}: columns of different lengths {lengths}")
    return next(iter(lengths.values()), 0)


class MemorySink(Sink):
    """Collects decision tables in memory; :attr:`table` holds them joined.

    ``close`` writes no file and returns an empty list.
    """

    def __init__(self) -> None:
        self._dtypes: dict[str, np.dtype] = {}
        self._parts: dict[str, list[np.ndarray]] = {}
        self._table: dict[str, np.ndarray] | None = None
        self.closed = False

    def open(self, out_dir: Path, columns: Mapping[str, np.dtype]) -> None:
        """Start collecting ``columns`` (``out_dir`` is not used)."""
        self._dtypes = {k: np.dtype(v) for k, v in columns.items()}
        self._parts = {k: [] for k in self._dtypes}
        self._table = None
        self.closed = False

    def write(self, table: Mapping[str, np.ndarray]) -> None:
        """Append one batch of rows."""
        if self.closed:
            raise RunFailure("memory sink: write after close")
        check_table(table, self._dtypes, "memory sink")
        for name, dtype in self._dtypes.items():
            self._parts[name].append(np.asarray(table[name], dtype=dtype))
        self._table = None

    def close(self) -> list[Path]:
        """Stop collecting; the rows stay available in :attr:`table`."""
        self.closed = True
        return []

    @property
    def table(self) -> dict[str, np.ndarray]:
        """Every row written so far, one numpy array per column."""
        if self._table is None:
            self._table = {
                name: (
                    np.concatenate(parts)
                    if parts
                    else np.zeros(0, dtype=self._dtypes[name])
                )
                for name, parts in self._parts.items()
            }
        return self._table
