"""The README.md written into every FPGA export folder."""

from __future__ import annotations

from typing import Any

__all__ = ["export_readme"]


def _agreement_lines(consistency: dict[str, Any]) -> list[str]:
    lines = []
    for wp in consistency["working_points"]:
        mark = "meets" if wp["meets_target"] else "MISSES"
        lines.append(
            f"- `{wp['name']}` (score ≥ {wp['threshold']:.6g}): agreement "
            f"{wp['agreement']:.5f}, {wp['n_flips']} of {consistency['n_events']} "
            f"events flip; {mark} the target {consistency['target_agreement']}"
        )
    if "top_class_agreement" in consistency:
        lines.append(f"- top class: agreement {consistency['top_class_agreement']:.5f}")
    return lines or ["- no working point to compare decisions at"]


def _inputs_section(report: dict[str, Any]) -> list[str]:
    lines = [
        "The firmware reads the features in the order of `features` in report.json, "
        "after the standardisation of the model card, `x' = (x - offset) / scale`.",
    ]
    shifts = report.get("input_shifts")
    if shifts and any(shifts.values()):
        lines += [
            "",
            "Each feature then enters divided by a power of two, `x' / 2**shift` "
            "(the same bits read with the binary point moved, free in firmware), so "
            "that its cut values fill the integer range of the input type:",
            "",
            "| feature | shift |",
            "| --- | --- |",
            *(f"| {name} | {shift} |" for name, shift in shifts.items()),
        ]
    cut = [wp for wp in report.get("firmware_cuts", []) if wp]
    if cut:
        lines += [
            "",
            f"The firmware outputs the {cut[0]['quantity']}; a working point on the "
            "probability `p ≥ t` is the cut "
            f"`{cut[0]['quantity']} ≥ logit(t)`, rounded up to the output grid:",
            "",
            "| working point | t | logit(t) | cut on the "
            f"{cut[0]['output_type']} grid |",
            "| --- | --- | --- | --- |",
            *(
                f"| {c['name']} | {c['threshold']:.6g} | {c['logit']:.6g} | "
                f"{c['grid_value']:.6g} |"
                for c in cut
            ),
        ]
    return lines


def export_readme(report: dict[str, Any]) -> str:
    """Markdown explaining the folder, how to synthesise it and what was checked."""
    backend = report["backend"]
    is_nn = backend == "fpga.hls4ml"
    script = "build_prj.tcl" if is_nn else "build_hls.tcl"
    steps = (
        "csim, synth, cosim, validation, export, vsynth"
        if is_nn
        else "csim, synth, cosim, export, vsynth"
    )
    est = report["estimates"]
    fw = report["firmware"]
    consistency = report["consistency"]
    lines = [
        f"# FPGA export of model `{report['model']}` ({backend})",
        "",
        f"Precision `{fw['precision']}`, clock {fw['clock_period_ns']} ns, part "
        f"`{fw['part']}`. "
        "Everything here was produced without Vivado: the firmware C++ was compiled "
        "with g++ and run on the held-out events of the model.",
        "",
        "## Files",
        "",
        "- `hls/`: the complete HLS project (C++ firmware, weights or trees, Tcl "
        "scripts, test bench with input vectors and the emulated outputs in "
        "`hls/tb_data/`).",
        "- `report.json`: settings, consistency with the float model, estimates, "
        "precision scan.",
        "- `emulated_scores.npz`: float and firmware scores of the held-out events "
        "(`float_scores`, `firmware_scores`, `firmware_outputs`, `labels`).",
        "- `*.png`: firmware against float scores; the precision scan when run.",
        "",
        "## Synthesis (needs AMD/Xilinx Vitis HLS)",
        "",
        "```sh",
        "cd hls",
        f"# choose the steps ({steps}) in build_opt.tcl, then",
        f"vitis-run --mode hls --tcl {script}   # Vitis 2024.2 and newer",
        f"vitis_hls -f {script}                 # older Vitis HLS",
        "```",
        "",
        "or from Python: `trigml_fpga.synthesis.synthesise(EXPORT_FOLDER)`. The C "
        "simulation (`csim`) runs the test bench on `tb_data/tb_input_features.dat` "
        "and must reproduce `tb_data/tb_output_predictions.dat`, the outputs of the "
        "emulation, bit by bit.",
        "",
        "## Inputs and outputs",
        "",
        *_inputs_section(report),
        "",
        "## Agreement with the float model",
        "",
        f"On {consistency['n_events']} held-out events:",
        "",
        *_agreement_lines(consistency),
        "",
        "## Estimates (not from synthesis)",
        "",
        f"{est['kind']}:",
        "",
    ]
    for key in (
        "latency_cycles_estimate",
        "latency_ns_estimate",
        "initiation_interval_cycles",
        "dsp_estimate",
        "dsp_fraction_of_part",
        "lut_estimate",
        "ff_estimate",
        "multiplications",
        "parameters",
        "parameter_bits",
        "n_trees",
        "max_depth",
    ):
        if est.get(key) is not None:
            lines.append(f"- {key.replace('_', ' ')}: {est[key]}")
    if est.get("method"):
        lines += ["", f"Method: {est['method']}"]
    scan = report.get("scan")
    if scan and scan.get("trials"):
        lines += [
            "",
            "## Precision scan",
            "",
            f"Narrowest type with agreement ≥ {scan['target_agreement']}: "
            f"`{scan['best']}`"
            if scan["best"]
            else "No type tried reached the target.",
        ]
    return "\n".join(lines) + "\n"
