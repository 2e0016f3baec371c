"""JSON Schemas of trigml's files, generated from the pydantic models.

The files in ``schemas/`` give editors completion and checking for configurations and
let other tools read model cards and reports. They are committed and a test fails when
they no longer match the models; ``trigml schema`` regenerates them.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from trigml.schema import (
    EventSchema,
    ExportConfig,
    ModelCard,
    RunConfig,
    RunReport,
    TrainConfig,
)

__all__ = ["MODELS", "check_schemas", "default_schema_dir", "render", "write_schemas"]

MODELS: dict[str, type[BaseModel]] = {
    "train-config": TrainConfig,
    "run-config": RunConfig,
    "export-config": ExportConfig,
    "model-card": ModelCard,
    "event-schema": EventSchema,
    "run-report": RunReport,
}


def default_schema_dir() -> Path:
    """``schemas/`` at the root of the source tree (two levels above the package)."""
    return Path(__file__).resolve().parents[2] / "schemas"


def render(model: type[BaseModel], name: str) -> str:
    """The JSON Schema text of one model, stable across runs."""
    doc = model.model_json_schema()
    doc["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    doc["$id"] = f"trigml/{name}.schema.json"
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def write_schemas(folder: Path) -> list[Path]:
    """Write every schema into ``folder``; return the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, model in MODELS.items():
        path = folder / f"{name}.schema.json"
        path.write_text(render(model, name))
        paths.append(path)
    return paths


def check_schemas(folder: Path) -> list[str]:
    """Names of the schema files in ``folder`` that are missing or stale."""
    stale = []
    for name, model in MODELS.items():
        path = folder / f"{name}.schema.json"
        if not path.is_file() or path.read_text() != render(model, name):
            stale.append(path.name)
    return stale
