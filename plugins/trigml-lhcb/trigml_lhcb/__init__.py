"""trigml-lhcb: LHCb trigger algorithms and the simulation they train on.

``lhcb.topo`` is the topological trigger on 2-, 3- and 4-track secondary vertices,
``lhcb.ghost`` the ghost-track classifier, and ``lhcb.sim`` the vectorised generator
of LHCb-like events that both use by default.
"""

from __future__ import annotations

from importlib import metadata

try:
    __version__ = metadata.version("trigml-lhcb")
except metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0+unknown"

__all__ = ["__version__"]
