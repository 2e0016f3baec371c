"""Registration of the CMS sources, algorithms and the EMTF lookup-table backend."""

from __future__ import annotations

from typing import Any

from trigml.hookspec import hookimpl

__all__ = [
    "trigml_register_algorithms",
    "trigml_register_backends",
    "trigml_register_sources",
]


@hookimpl
def trigml_register_sources(register: Any) -> None:
    from trigml_cms.btag_sim import BtagSimParams, BtagSimSource
    from trigml_cms.emtf_sim import EmtfSimParams, EmtfSimSource
    from trigml_cms.menu_sim import MenuSimParams, MenuSimSource

    register(
        "cms.emtf_sim",
        EmtfSimSource,
        params=EmtfSimParams,
        description="CMS endcap muon tracks (flat q/pT, or zero-bias-like falling pT)",
    )
    register(
        "cms.btag_sim",
        BtagSimSource,
        params=BtagSimParams,
        description="jets with B/D decays, tracks with impact parameters and SVs",
    )
    register(
        "cms.menu_sim",
        MenuSimSource,
        params=MenuSimParams,
        description="a zero-bias-like endcap muon and a QCD-like jet per event",
    )


@hookimpl
def trigml_register_algorithms(register: Any) -> None:
    from trigml_cms.deepcsv import DeepCsvAlgorithm, DeepCsvParams
    from trigml_cms.emtf import EmtfAlgorithm, EmtfParams

    register(
        "cms.emtf",
        EmtfAlgorithm,
        params=EmtfParams,
        description="L1 endcap muon 1/pT regression for one mode, LUT-ready features",
    )
    register(
        "cms.deepcsv",
        DeepCsvAlgorithm,
        params=DeepCsvParams,
        description="DeepCSV b-tagging from 66 jet, track and vertex inputs",
    )


@hookimpl
def trigml_register_backends(register: Any) -> None:
    from trigml_cms.lut_backend import EmtfLutBackend, EmtfLutParams

    register(
        "cms.emtf_lut",
        EmtfLutBackend,
        params=EmtfLutParams,
        description="EMTF pT lookup table: fill from a cms.emtf BDT, run by lookup",
    )
