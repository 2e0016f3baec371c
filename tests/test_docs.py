"""Documentation stays in step with the code: every hook is documented."""

from __future__ import annotations

import inspect
from pathlib import Path

from trigml import hookspec

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_every_hook_is_documented():
    text = (DOCS / "hooks.md").read_text()
    for name in hookspec.HOOK_NAMES:
        assert f"### `{name}`" in text, f"docs/hooks.md has no section for {name}"
        doc = inspect.getdoc(getattr(hookspec, name))
        assert doc and "Called once" in doc and "register" in doc


def test_documented_hooks_exist():
    text = (DOCS / "hooks.md").read_text()
    documented = {
        line.split("`")[1] for line in text.splitlines() if line.startswith("### `")
    }
    assert documented == set(hookspec.HOOK_NAMES)


def test_cli_reference_is_fresh():
    from trigml.clidoc import default_path, render

    assert default_path().read_text() == render(), (
        "docs/cli.md is stale; regenerate it with: python -m trigml.clidoc"
    )
