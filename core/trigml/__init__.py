"""trigml: machine learning for real-time event selection and online calibration.

The core holds validated schemas, the plugin contract, configuration-driven assembly, a
streaming runtime, metrics and the command line. Algorithms, model families and
inference backends come from plugins found through the ``trigml`` entry-point group.
"""

from __future__ import annotations

from importlib import metadata

from trigml.errors import (
    ConfigError,
    DataError,
    ModelError,
    PluginError,
    RunFailure,
    TrigmlError,
    UsageError,
)

try:
    __version__ = metadata.version("trigml")
except metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "ConfigError",
    "DataError",
    "ModelError",
    "PluginError",
    "RunFailure",
    "TrigmlError",
    "UsageError",
    "__version__",
]
