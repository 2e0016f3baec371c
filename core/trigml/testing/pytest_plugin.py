"""pytest fixtures for trigml and its plugins (registered through ``pytest11``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from trigml.plugins import Plugins


@pytest.fixture
def trigml_builtins() -> Plugins:
    """A registry with the core's built-in components only; nothing is autoloaded."""
    from trigml.testing import isolated_plugins

    return isolated_plugins()


@pytest.fixture
def trigml_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private cache folder in ``TRIGML_CACHE_DIR`` for compiled or tuned models."""
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv("TRIGML_CACHE_DIR", str(cache))
    yield cache
