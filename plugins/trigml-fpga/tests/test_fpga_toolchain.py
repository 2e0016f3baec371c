"""What the user is told when g++, a header or the Xilinx tools are missing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from trigml.errors import TrigmlError
from trigml_fpga import synthesis, toolchain
from trigml_fpga.toolchain import CompileJob, ToolchainError, VivadoRequired


@pytest.fixture(autouse=True)
def _fresh_lookups() -> Iterator[None]:
    for fn in (toolchain.compiler, toolchain.ap_include, toolchain.json_include):
        fn.cache_clear()
    yield
    for fn in (toolchain.compiler, toolchain.ap_include, toolchain.json_include):
        fn.cache_clear()


def test_missing_compiler_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CXX", "no-such-g++")
    with pytest.raises(ToolchainError) as info:
        toolchain.compiler()
    text = str(info.value)
    assert "no-such-g++" in text and "apt-get install g++" in text
    assert isinstance(info.value, TrigmlError)


def test_headers_are_found_without_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XILINX_AP_INCLUDE", raising=False)
    assert (toolchain.ap_include() / "ap_fixed.h").is_file()
    assert (toolchain.json_include() / "nlohmann" / "json.hpp").is_file()
    assert (toolchain.conifer_include() / "conifer.h").is_file()


def test_missing_headers_say_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XILINX_AP_INCLUDE", raising=False)
    monkeypatch.setenv("CPLUS_INCLUDE_PATH", "")
    monkeypatch.setattr(toolchain, "_package_dir", lambda name: None)
    with pytest.raises(ToolchainError, match="pip install hls4ml"):
        toolchain.ap_include()
    with pytest.raises(ToolchainError, match="pip install nlohmann-json"):
        toolchain.json_include()


def test_ap_include_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "ap_fixed.h").write_text("// stand-in\n")
    monkeypatch.setenv("XILINX_AP_INCLUDE", str(tmp_path))
    assert toolchain.ap_include() == tmp_path


def test_conifer_environment_is_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XILINX_AP_INCLUDE", raising=False)
    monkeypatch.setenv("CPLUS_INCLUDE_PATH", "/somewhere")
    import os

    with toolchain.conifer_environment():
        assert os.environ["XILINX_AP_INCLUDE"].endswith("ap_types")
        assert os.environ["CPLUS_INCLUDE_PATH"].endswith("/somewhere")
    assert "XILINX_AP_INCLUDE" not in os.environ
    assert os.environ["CPLUS_INCLUDE_PATH"] == "/somewhere"


def test_compile_errors_quote_the_compiler(tmp_path: Path) -> None:
    source = tmp_path / "broken.cpp"
    source.write_text("int main( { return 0; }\n")
    with pytest.raises(ToolchainError) as info:
        toolchain.compile_library(
            [CompileJob(source, "-O0")], tmp_path / "x.so", includes=[], cwd=tmp_path
        )
    assert "broken.cpp" in str(info.value) and "compile.log" in str(info.value)
    assert not (tmp_path / "x.so").exists()


def test_synthesis_without_vivado_says_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "hls").mkdir()
    (tmp_path / "hls" / "build_prj.tcl").write_text("# project\n")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(VivadoRequired) as info:
        synthesis.synthesise(tmp_path)
    text = str(info.value)
    assert "vitis-run" in text and "do not need them" in text and "settings64" in text
    with pytest.raises(VivadoRequired, match="no HLS project"):
        synthesis.synthesise(tmp_path / "hls")
