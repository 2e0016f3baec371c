"""Running the Xilinx tools on an exported HLS project, for users who have them.

Nothing else in trigml-fpga needs Vivado or Vitis: the emulation, the consistency
report and the estimates all run with g++. Synthesis does, and this module says so
plainly when the tools are not on the PATH.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from trigml.errors import RunFailure
from trigml_fpga.toolchain import VivadoRequired

__all__ = ["HLS_TOOLS", "find_hls_tool", "synthesise"]

#: HLS executables, newest first: the unified Vitis CLI, Vitis HLS, Vivado HLS.
HLS_TOOLS = ("vitis-run", "vitis_hls", "vivado_hls")

_SCRIPTS = ("build_prj.tcl", "build_hls.tcl")


def find_hls_tool() -> str | None:
    """Name of the first HLS tool on the PATH, or None."""
    return next((tool for tool in HLS_TOOLS if shutil.which(tool)), None)


def synthesise(
    export_dir: Path,
    *,
    csim: bool = True,
    synth: bool = True,
    cosim: bool = False,
    vsynth: bool = False,
) -> Path:
    """Run C simulation and HLS synthesis of an exported project.

    Parameters
    ----------
    export_dir : Path
        A folder written by ``trigml export`` with an ``fpga.*`` backend.
    csim, synth, cosim, vsynth : bool
        Steps to run: C simulation, C synthesis, C/RTL co-simulation, Vivado logic
        synthesis.

    Returns
    -------
    Path
        The log of the run.

    Raises
    ------
    VivadoRequired
        No HLS tool is on the PATH, or the folder holds no HLS project.
    """
    project = Path(export_dir) / "hls"
    script = next((s for s in _SCRIPTS if (project / s).is_file()), None)
    if script is None:
        raise VivadoRequired(f"{export_dir}: no HLS project (hls/build_*.tcl) to build")
    tool = find_hls_tool()
    if tool is None:
        raise VivadoRequired(
            "synthesis needs the AMD/Xilinx HLS tools, and none of "
            f"{', '.join(HLS_TOOLS)} is on the PATH; the emulated scores, the "
            "consistency report and the estimates in report.json do not need them",
            hint="source the Vitis settings script (settings64.sh) and run again, or "
            f"copy {project} to a machine with Vitis",
        )
    options = {"reset": 1, "csim": csim, "synth": synth, "cosim": cosim}
    options["vsynth"] = vsynth
    if script == "build_prj.tcl":
        options.update(validation=0, export=0, fifo_opt=0)
    lines = "".join(f"    {k} {int(v)}\n" for k, v in options.items())
    (project / "build_opt.tcl").write_text(f"array set opt {{\n{lines}}}\n")
    if tool == "vitis-run":
        cmd = [tool, "--mode", "hls", "--tcl", script]
    else:
        cmd = [tool, "-f", script]
    log_path = project / "synthesis.log"
    with log_path.open("w") as log_file:
        code = subprocess.run(
            cmd, cwd=project, stdout=log_file, stderr=subprocess.STDOUT
        ).returncode
    if code:
        raise RunFailure(
            f"{tool} failed on {project} (exit code {code})",
            hint=f"see {log_path}",
        )
    return log_path
