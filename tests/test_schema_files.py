"""The committed JSON Schemas match the pydantic models."""

from __future__ import annotations

from trigml.jsonschema import check_schemas, default_schema_dir


def test_committed_schemas_are_fresh():
    stale = check_schemas(default_schema_dir())
    assert not stale, f"stale schemas {stale}; regenerate them with: trigml schema"
