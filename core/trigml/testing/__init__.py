"""Helpers for testing trigml and its plugins.

A pytest plugin (loaded automatically when trigml is installed) provides fixtures; the
functions here build plugin managers that never load installed plugins, fake installed
distributions with entry points, tiny ROOT files, and the conformance checks that every
algorithm and backend plugin runs against its own components.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from trigml.plugins import Plugins, discover

__all__ = [
    "check_algorithm",
    "check_backend",
    "fake_distribution",
    "isolated_plugins",
    "tiny_root_file",
]


def isolated_plugins(*plugins: tuple[str, object]) -> Plugins:
    """Built-ins plus the given ``(name, plugin)`` pairs; no entry points are loaded."""
    return discover(entry_points=False, extra=plugins)


@contextmanager
def fake_distribution(
    root: Path,
    name: str,
    version: str,
    *,
    entry_points: Mapping[str, str],
    modules: Mapping[str, str],
) -> Iterator[Path]:
    """Install a fake distribution with ``trigml`` entry points on ``sys.path``.

    Parameters
    ----------
    root : Path
        Empty folder that becomes a ``sys.path`` entry.
    name, version : str
        Distribution name and version.
    entry_points : mapping
        Entry-point name → ``module`` (or ``module:attr``) in the ``trigml`` group.
    modules : mapping
        Module name → source code, written as ``<module>.py`` files.
    """
    root.mkdir(parents=True, exist_ok=True)
    dist = root / f"{name.replace('-', '_')}-{version}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    )
    lines = ["[trigml]", *(f"{k} = {v}" for k, v in entry_points.items())]
    (dist / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for module, code in modules.items():
        (root / f"{module}.py").write_text(textwrap.dedent(code))
    sys.path.insert(0, str(root))
    try:
        yield root
    finally:
        sys.path.remove(str(root))
        for module in modules:
            sys.modules.pop(module, None)


def tiny_root_file(
    path: Path, events: ak.Array | Iterable[ak.Array], **kw: Any
) -> Path:
    """Write ``events`` (one array or several batches) to a small ROOT TTree."""
    from trigml.io.root import write_events

    batches = [events] if isinstance(events, ak.Array) else list(events)
    write_events(path, batches, **kw)
    return path


def check_algorithm(algorithm: Any, events: ak.Array) -> None:
    """Conformance checks every algorithm must pass on a sample of its events.

    The schema's columns exist in the events; candidates have a float32 feature
    matrix with one column per name and event indices within the batch; building them
    twice gives the same result; decisions have one entry per event.
    """
    schema = algorithm.event_schema()
    from trigml.schema.events import validate_batch

    validate_batch(events, schema, policy="reject", origin="conformance")
    cands = algorithm.candidates(events)
    assert cands.features.dtype == np.float32, "features must be float32"
    assert cands.features.ndim == 2, "features must be a 2D matrix"
    assert cands.features.shape[1] == len(cands.names), "one column per feature name"
    assert len(cands.event_index) == len(cands.features), (
        "one event index per candidate"
    )
    if len(cands):
        assert cands.event_index.min() >= 0 and cands.event_index.max() < len(events)
        assert np.all(np.diff(cands.event_index) >= 0), "candidates in event order"
    again = algorithm.candidates(events)
    np.testing.assert_array_equal(cands.features, again.features)
    scores = np.zeros(len(cands), dtype=np.float32)
    fired = algorithm.decide(scores, cands, len(events), 0.5)
    assert fired.shape == (len(events),) and fired.dtype == bool
    assert not fired.any(), "no candidate passes a threshold above every score"


def check_backend(
    backend: Any,
    artifact: Any,
    features: np.ndarray,
    reference: np.ndarray,
    *,
    atol: float = 1e-5,
) -> None:
    """Conformance checks every backend must pass on an artifact it can read.

    Scores agree with the float reference within ``atol`` for batches of 1, a few and
    all rows; a matrix with the wrong number of features and one with NaN are refused
    with a :class:`trigml.TrigmlError` naming the model.
    """
    from trigml.errors import TrigmlError

    scorer = backend.load(artifact)
    full = np.asarray(scorer.predict(features))
    np.testing.assert_allclose(full, reference, atol=atol, rtol=0)
    for size in (1, 7):
        part = np.asarray(scorer.predict(features[:size]))
        np.testing.assert_allclose(part, reference[:size], atol=atol, rtol=0)
    wrong = np.zeros((3, features.shape[1] + 1), dtype=np.float32)
    try:
        scorer.predict(wrong)
    except TrigmlError as exc:
        assert artifact.card.name in str(exc), "error must name the model"
    else:
        raise AssertionError("a wrong feature count must be refused")
    bad = features[:3].copy()
    bad[0, 0] = np.nan
    try:
        scorer.predict(bad)
    except TrigmlError as exc:
        assert artifact.card.name in str(exc), "error must name the model"
    else:
        raise AssertionError("NaN inputs must be refused")
