"""Hook implementations: what this plugin adds to trigml."""

from __future__ import annotations

from typing import Any

from trigml.hookspec import hookimpl


@hookimpl
def trigml_register_algorithms(register: Any) -> None:
    from trigml_example.leading import LeadingObject, LeadingObjectParams

    register(
        "example.leading",
        LeadingObject,
        LeadingObjectParams,
        "leading-object pT and multiplicity per event",
    )


@hookimpl
def trigml_register_backends(register: Any) -> None:
    from trigml_example.leading import ThresholdBackend

    register(
        "example.threshold", ThresholdBackend, description="first feature as score"
    )
