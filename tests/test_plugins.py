"""Plugin discovery: entry points, broken plugins, duplicates, misspelled hooks."""

from __future__ import annotations

import pytest

from trigml.errors import ConfigError, PluginError
from trigml.hookspec import hookimpl
from trigml.plugins import discover
from trigml.testing import fake_distribution, isolated_plugins

GOOD = """
from trigml.hookspec import hookimpl
from trigml.cuts import CutsBackend

@hookimpl
def trigml_register_backends(register):
    register("test.fast", CutsBackend, description="a test backend")
"""

TWIN = GOOD.replace("a test backend", "the same name again")

BROKEN = """
import a_module_that_does_not_exist
"""

TYPO = """
from trigml.hookspec import hookimpl

@hookimpl
def trigml_register_backend(register):
    pass
"""


def test_builtins_register_through_hooks(trigml_builtins):
    reg = trigml_builtins.registry
    assert reg.names("backend") == ["cpu.cuts"]
    assert {"root", "toy"} <= set(reg.names("source"))
    assert "cuts" in reg.names("algorithm") and "cuts" in reg.names("family")
    assert reg.names("executor") == ["dask", "local"]
    assert all(c.dist == "trigml" for c in reg.components())


def test_entry_point_discovery(tmp_path):
    with fake_distribution(
        tmp_path,
        "trigml-good",
        "1.2.3",
        entry_points={"good": "good_mod"},
        modules={"good_mod": GOOD},
    ):
        plugins = discover(only="good")
    comp = plugins.registry.get("backend", "test.fast")
    assert (comp.dist, comp.version) == ("trigml-good", "1.2.3")
    assert [p.name for p in plugins.loaded] == ["builtins", "good"]


def test_broken_plugin_is_reported_and_others_load(tmp_path):
    with fake_distribution(
        tmp_path,
        "trigml-mixed",
        "0.1",
        entry_points={"broken": "broken_mod", "good": "good_mod"},
        modules={"broken_mod": BROKEN, "good_mod": GOOD},
    ):
        plugins = discover(only="broken,good")
    assert ("backend", "test.fast") in plugins.registry
    (failure,) = plugins.failed
    assert failure.name == "broken" and failure.dist == "trigml-mixed"
    assert failure.version == "0.1"
    assert "a_module_that_does_not_exist" in failure.reason


def test_duplicate_names_refused_naming_both(tmp_path):
    with (
        fake_distribution(
            tmp_path,
            "trigml-twins",
            "2.0",
            entry_points={"a": "good_mod", "b": "twin_mod"},
            modules={"good_mod": GOOD, "twin_mod": TWIN},
        ),
        pytest.raises(PluginError) as err,
    ):
        discover(only="a,b")
    assert "test.fast" in str(err.value) and str(err.value).count("trigml-twins") == 2


def test_misspelled_hook_is_caught(tmp_path):
    with (
        fake_distribution(
            tmp_path,
            "trigml-typo",
            "0.0.1",
            entry_points={"typo": "typo_mod"},
            modules={"typo_mod": TYPO},
        ),
        pytest.raises(PluginError, match="trigml_register_backends"),
    ):
        discover(only="typo")


def test_env_var_limits_loading(tmp_path, monkeypatch):
    monkeypatch.setenv("TRIGML_PLUGINS", "none")
    with fake_distribution(
        tmp_path,
        "trigml-good",
        "1.0",
        entry_points={"good": "good_mod"},
        modules={"good_mod": GOOD},
    ):
        plugins = discover()
    assert ("backend", "test.fast") not in plugins.registry


def test_unknown_name_suggests_nearest(trigml_builtins):
    with pytest.raises(ConfigError) as err:
        trigml_builtins.registry.get("backend", "cpu.cut", key="lines[0].backend")
    text = str(err.value)
    assert "lines[0].backend" in text and "did you mean 'cpu.cuts'" in text
    assert "Installed: cpu.cuts" in text


class InlinePlugin:
    """A plugin defined in a test, registered without an entry point."""

    @staticmethod
    @hookimpl
    def trigml_register_backends(register):
        from trigml.cuts import CutsBackend

        register("test.inline", CutsBackend)


def test_extra_plugins_in_tests():
    plugins = isolated_plugins(("inline", InlinePlugin()))
    assert ("backend", "test.inline") in plugins.registry
