"""Reading events and writing decisions: ROOT files through uproot, and memory.

:class:`RootSource` reads TTrees and RNTuples in batches, mapping NanoAOD-style
branches (``nJet``, ``Jet_pt``) onto jagged collections; :class:`RootSink` writes
decision tables; :func:`write_events` and :func:`write_rntuple` write event files that
the source reads back unchanged. :class:`MemorySource` and :class:`MemorySink` do the
same with arrays in memory.
"""

from __future__ import annotations

from trigml.io.memory import (
    MemorySink,
    MemorySource,
    MemorySourceParams,
    events_from_columns,
    select_columns,
)
from trigml.io.root import (
    RootSink,
    RootSinkParams,
    RootSource,
    RootSourceParams,
    write_events,
    write_rntuple,
)

__all__ = [
    "MemorySink",
    "MemorySource",
    "MemorySourceParams",
    "RootSink",
    "RootSinkParams",
    "RootSource",
    "RootSourceParams",
    "events_from_columns",
    "select_columns",
    "write_events",
    "write_rntuple",
]
