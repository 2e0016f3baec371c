"""Event schemas and their column-wise validation.

An :class:`EventSchema` declares the flat per-event fields and the jagged collections
an algorithm reads, each field with dtype, unit, allowed range and description. A
whole batch is validated at once, column by column; events with non-finite or
out-of-range values are either rejected (counted with a reason) or make the run fail,
as the policy says.
"""

from __future__ import annotations

from typing import Literal

import awkward as ak
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from trigml.errors import DataError

__all__ = [
    "CollectionSpec",
    "EventSchema",
    "FieldSpec",
    "Policy",
    "Validated",
    "validate_batch",
]

Dtype = Literal[
    "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool"
]
Policy = Literal["reject", "fail"]


class FieldSpec(BaseModel):
    """One field: dtype, unit, allowed range and meaning."""

    model_config = ConfigDict(extra="forbid")

    dtype: Dtype = "float32"
    unit: str = ""
    min: float | None = None
    max: float | None = None
    description: str = ""


class CollectionSpec(BaseModel):
    """A jagged collection (tracks, jets, muons, vertices) and its fields."""

    model_config = ConfigDict(extra="forbid")

    fields: dict[str, FieldSpec]
    description: str = ""


class EventSchema(BaseModel):
    """The fields an algorithm reads from each event.

    Attributes
    ----------
    name : str
        Name of the schema, usually the algorithm's.
    fields : dict of str to FieldSpec
        Flat per-event fields (``nPV``, ``true_pt``).
    collections : dict of str to CollectionSpec
        Jagged collections; their fields are addressed as ``collection.field``.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = ""
    fields: dict[str, FieldSpec] = Field(default_factory=dict)
    collections: dict[str, CollectionSpec] = Field(default_factory=dict)

    def columns(self) -> list[str]:
        """Dotted names of every field, flat first."""
        names = list(self.fields)
        for cname, coll in self.collections.items():
            names += [f"{cname}.{f}" for f in coll.fields]
        return names

    def specs(self) -> dict[str, FieldSpec]:
        """Every field spec by dotted name."""
        out = dict(self.fields)
        for cname, coll in self.collections.items():
            out.update({f"{cname}.{f}": s for f, s in coll.fields.items()})
        return out

    def merge(self, other: EventSchema) -> EventSchema:
        """The union of two schemas; a field declared twice must agree on dtype."""
        fields = dict(self.fields)
        for name, spec in other.fields.items():
            _check_same(name, fields.get(name), spec)
            fields[name] = spec
        colls = {
            k: CollectionSpec(fields=dict(v.fields))
            for k, v in self.collections.items()
        }
        for cname, coll in other.collections.items():
            target = colls.setdefault(cname, CollectionSpec(fields={}))
            for name, spec in coll.fields.items():
                _check_same(f"{cname}.{name}", target.fields.get(name), spec)
                target.fields[name] = spec
        return EventSchema(
            name="+".join(n for n in (self.name, other.name) if n),
            fields=fields,
            collections=colls,
        )


def _check_same(name: str, old: FieldSpec | None, new: FieldSpec) -> None:
    if old is not None and old.dtype != new.dtype:
        raise DataError(
            f"field '{name}' is declared as {old.dtype} and as {new.dtype} by two lines"
        )


class Validated(BaseModel):
    """Outcome of validating one batch.

    Attributes
    ----------
    keep : ndarray of bool, shape (n_events,)
        Events that passed.
    reasons : dict of str to int
        Rejected-event counts by reason (``non-finite tracks.pt``); an event failing
        several checks is counted once, under the first.
    reason_index : ndarray of int16, shape (n_events,)
        0 for kept events, otherwise 1 + the position of the reason in ``reason_names``.
    reason_names : list of str
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    keep: np.ndarray
    reasons: dict[str, int]
    reason_index: np.ndarray
    reason_names: list[str]


_KINDS = {
    "float32": "f",
    "float64": "f",
    "int8": "iu",
    "int16": "iu",
    "int32": "iu",
    "int64": "iu",
    "uint8": "iu",
    "bool": "b",
}


def column_values(
    events: ak.Array, dotted: str
) -> tuple[np.ndarray, np.ndarray | None] | None:
    """A field's values as numpy, without copying, for the common layouts.

    Parameters
    ----------
    events : ak.Array
        One record per event.
    dotted : str
        ``field`` for a flat field or ``collection.field`` for a jagged one.

    Returns
    -------
    (values, counts) or None
        The flat values and, for a jagged field, the number of values per event;
        None when the layout is not a plain record of numpy or list-offset arrays
        (the caller then goes through awkward's own functions).
    """
    layout = events.layout
    counts = None
    offsets = None
    for depth, part in enumerate(dotted.split(".")):
        if not isinstance(layout, ak.contents.RecordArray) or part not in layout.fields:
            return None
        layout = layout.content(part)
        if depth == 0 and "." in dotted:
            if not isinstance(layout, ak.contents.ListOffsetArray):
                return None
            offsets = np.asarray(layout.offsets)
            counts = np.diff(offsets)
            layout = layout.content
    if not isinstance(layout, ak.contents.NumpyArray) or layout.parameters:
        return None
    values = np.asarray(layout.data)
    if values.ndim != 1:
        return None
    if offsets is not None:
        values = values[offsets[0] : offsets[-1]]
    return values, counts


def _leaf(events: ak.Array, dotted: str, origin: str) -> ak.Array:
    node = events
    for part in dotted.split("."):
        if part not in ak.fields(node):
            have = ", ".join(ak.fields(node)) or "none"
            raise DataError(
                f"{origin}: missing field '{dotted}' (has: {have})",
                hint="map your branch names onto the schema with the source's "
                "'aliases' option",
            )
        node = node[part]
    return node


def _as_flat_numpy(
    column: ak.Array, dotted: str, spec: FieldSpec, origin: str
) -> tuple[np.ndarray, ak.Array | None]:
    """Flatten a field to numpy, with the per-event counts of a jagged field."""
    layout_type = ak.type(column)
    depth = column.ndim
    expected = 2 if "." in dotted else 1
    if depth != expected:
        shape = "one value per event" if expected == 1 else "a list per event"
        raise DataError(
            f"{origin}: field '{dotted}' has type {layout_type}, the schema expects "
            f"{shape} of {spec.dtype}",
            hint="fix the branch type, or map another branch onto it with 'aliases'",
        )
    counts = ak.num(column, axis=1) if depth == 2 else None
    flat = ak.flatten(column, axis=None) if depth == 2 else column
    try:
        values = ak.to_numpy(flat)
    except Exception as exc:
        raise DataError(
            f"{origin}: field '{dotted}' of type {layout_type} cannot be read as "
            f"{spec.dtype}: {exc}"
        ) from None
    if not _dtype_ok(values, spec):
        raise DataError(
            f"{origin}: field '{dotted}' has dtype {values.dtype}, "
            f"schema says {spec.dtype}",
            hint="fix the branch type, or map another branch onto it",
        )
    return values, counts


def validate_batch(
    events: ak.Array,
    schema: EventSchema,
    *,
    policy: Policy = "reject",
    origin: str = "",
) -> Validated:
    """Check every field of ``schema`` in ``events`` once, column-wise.

    Parameters
    ----------
    events : ak.Array
        One record per event.
    schema : EventSchema
    policy : {"reject", "fail"}
        What a non-finite or out-of-range value does: reject its event (counted) or
        raise :class:`DataError`.
    origin : str
        File and entry range, for messages.

    Raises
    ------
    DataError
        A field is missing or has an incompatible dtype, or a bad value is found with
        ``policy="fail"``.
    """
    n = len(events)
    reason_index = np.zeros(n, dtype=np.int16)
    names: list[str] = []
    for dotted, spec in schema.specs().items():
        fast = column_values(events, dotted)
        if fast is not None and _dtype_ok(fast[0], spec):
            values, counts = fast
        else:
            column = _leaf(events, dotted, origin)
            values, raw_counts = _as_flat_numpy(column, dotted, spec, origin)
            counts = None if raw_counts is None else ak.to_numpy(raw_counts)
        checks: list[tuple[str, np.ndarray]] = []
        if values.dtype.kind == "f":
            checks.append((f"non-finite {dotted}", ~np.isfinite(values)))
        if spec.min is not None or spec.max is not None:
            lo = -np.inf if spec.min is None else spec.min
            hi = np.inf if spec.max is None else spec.max
            with np.errstate(invalid="ignore"):
                out = (values < lo) | (values > hi)
            checks.append((f"out of range {dotted} [{lo}, {hi}]", out))
        for reason, bad in checks:
            if not bad.any():
                continue
            per_event = _per_event(bad, counts)
            if policy == "fail":
                first = int(np.flatnonzero(per_event)[0])
                raise DataError(
                    f"{origin}: {reason} in event {first} of the batch "
                    f"({int(per_event.sum())} events affected)",
                    hint="set 'validation: reject' in the run config to count and skip "
                    "such events",
                )
            fresh = per_event & (reason_index == 0)
            if fresh.any():
                names.append(reason)
                reason_index[fresh] = len(names)
    keep = reason_index == 0
    counts_by_reason = {
        r: int(np.count_nonzero(reason_index == i + 1)) for i, r in enumerate(names)
    }
    return Validated(
        keep=keep,
        reasons=counts_by_reason,
        reason_index=reason_index,
        reason_names=names,
    )


def _dtype_ok(values: np.ndarray, spec: FieldSpec) -> bool:
    kinds = _KINDS[spec.dtype]
    return values.dtype.kind in kinds or (kinds == "f" and values.dtype.kind in "iub")


def _per_event(bad: np.ndarray, counts: np.ndarray | None) -> np.ndarray:
    if counts is None:
        return np.asarray(bad, dtype=bool)
    c = counts.astype(np.int64)
    event_of = np.repeat(np.arange(len(c)), c)
    out = np.zeros(len(c), dtype=bool)
    out[event_of[bad]] = True
    return out
