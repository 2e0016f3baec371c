"""Cache of compiled emulations, keyed by a hash of weights and configuration.

A compile costs seconds, so every compiled library lives in a folder named by the
sha256 of everything it depends on (model files, firmware configuration, compiler and
library versions). A second export or load of the same model finds the folder and
compiles nothing. Folders are built in place under a file lock, so that two processes
(parallel tests, two menu lines) never build the same entry twice.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["DONE_FILE", "cache_key", "cache_root", "cached_build"]

log = logging.getLogger(__name__)

ENV_VAR = "TRIGML_FPGA_CACHE"
DONE_FILE = "entry.json"


def cache_root(configured: str | os.PathLike[str] | None = None) -> Path:
    """The cache folder.

    Taken from, in order: the backend's ``cache_dir`` parameter, the
    ``TRIGML_FPGA_CACHE`` environment variable, ``$XDG_CACHE_HOME/trigml/fpga``,
    ``~/.cache/trigml/fpga``.
    """
    if configured:
        return Path(configured).expanduser()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "trigml" / "fpga"


def cache_key(parts: Mapping[str, Any]) -> str:
    """A short sha256 of ``parts`` written as canonical JSON."""
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def cached_build(
    root: Path,
    kind: str,
    key: str,
    build: Callable[[Path], Mapping[str, Any]],
) -> tuple[Path, dict[str, Any], bool]:
    """Return a cache entry, building it first when it does not exist.

    Parameters
    ----------
    root : Path
        Cache folder (:func:`cache_root`).
    kind : str
        Sub-folder per kind of entry (``hls4ml``, ``conifer-lib``).
    key : str
        The entry's :func:`cache_key`.
    build : callable
        ``build(folder) -> metadata``: fills the empty ``folder`` and returns what
        to remember about it (JSON-serialisable).

    Returns
    -------
    folder : Path
    metadata : dict
        What ``build`` returned when the entry was made.
    hit : bool
        Whether the entry existed already.
    """
    folder = root / kind / key
    done = folder / DONE_FILE
    if done.is_file():
        return folder, json.loads(done.read_text()), True
    with _locked(root / kind / f"{key}.lock"):
        if done.is_file():
            return folder, json.loads(done.read_text()), True
        if folder.exists():
            log.info("removing the unfinished cache entry %s", folder)
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        try:
            meta = dict(build(folder))
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        done.write_text(json.dumps(meta, indent=1, default=str) + "\n")
    return folder, meta, False
