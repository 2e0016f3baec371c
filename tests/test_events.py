"""Column-wise validation of event batches against an event schema."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from trigml.errors import DataError
from trigml.schema.events import CollectionSpec, EventSchema, FieldSpec, validate_batch

SCHEMA = EventSchema(
    name="t",
    fields={"nPV": FieldSpec(dtype="int32", min=0, max=100)},
    collections={"tracks": CollectionSpec(fields={"pt": FieldSpec(unit="GeV", min=0)})},
)


def events(pt, npv):
    return ak.zip(
        {
            "nPV": np.asarray(npv, dtype=np.int32),
            "tracks": ak.zip({"pt": ak.Array(pt)}),
        },
        depth_limit=1,
    )


def test_clean_batch_keeps_everything():
    result = validate_batch(events([[1.0, 2.0], [], [3.0]], [1, 2, 3]), SCHEMA)
    assert result.keep.all() and result.reasons == {}


def test_bad_values_reject_their_events_once():
    batch = events([[1.0, np.nan], [-1.0], [3.0], [np.inf, -2.0]], [1, 200, 3, 4])
    result = validate_batch(batch, SCHEMA)
    assert result.keep.tolist() == [False, False, True, False]
    assert sum(result.reasons.values()) == 3
    assert result.reasons["non-finite tracks.pt"] == 2
    # event 1 is both out of range in nPV and pt: counted once, under the first check
    assert result.reason_index[1] != 0


def test_fail_policy_names_the_event():
    batch = events([[1.0], [np.nan]], [1, 2])
    with pytest.raises(DataError, match=r"non-finite tracks.pt in event 1"):
        validate_batch(batch, SCHEMA, policy="fail", origin="f.root")


def test_missing_field_names_what_exists():
    batch = ak.zip({"nPV": np.ones(2, dtype=np.int32)})
    with pytest.raises(DataError, match=r"missing field 'tracks.pt' \(has: nPV\)"):
        validate_batch(batch, SCHEMA)


def test_wrong_dtype_is_refused():
    batch = events([[1.0], [2.0]], [1, 2])
    batch = ak.with_field(batch, np.array([1.5, 2.5]), "nPV")
    with pytest.raises(DataError, match=r"nPV.*float64.*int32"):
        validate_batch(batch, SCHEMA)


def test_merge_refuses_conflicting_dtypes():
    other = EventSchema(fields={"nPV": FieldSpec(dtype="float32")})
    with pytest.raises(DataError, match="declared as int32 and as float32"):
        SCHEMA.merge(other)
    merged = SCHEMA.merge(EventSchema(fields={"mu": FieldSpec()}))
    assert merged.columns() == ["nPV", "mu", "tracks.pt"]
