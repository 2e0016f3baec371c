"""The per-user cache of trigml-cpu: compiled kernels and ``cpu.auto`` choices.

The folder is ``$TRIGML_CACHE_DIR`` or ``~/.cache/trigml``. JSON files are written
atomically (a temporary file renamed over the old one), so a reader never sees half a
file and concurrent writers at worst lose one entry, which is recomputed.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["ENV_VAR", "cache_dir", "read_json", "update_json", "write_atomic"]

log = logging.getLogger(__name__)

ENV_VAR = "TRIGML_CACHE_DIR"


def cache_dir() -> Path:
    """The cache folder (created on first use)."""
    root = os.environ.get(ENV_VAR)
    path = Path(root) if root else Path.home() / ".cache" / "trigml"
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; an absent or unreadable file gives ``{}``."""
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable cache file %s (%s)", path, exc)
        return {}
    return doc if isinstance(doc, dict) else {}


def update_json(path: Path, key: str, value: Any) -> None:
    """Set ``key`` in the JSON object at ``path``, keeping the other entries."""
    doc = read_json(path)
    doc[key] = value
    write_atomic(path, (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode())
