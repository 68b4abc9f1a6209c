"""One random conv/pool/residual/concat network through the rtl backend, compared on every row:
qonnx execution (exact sums) == IntGraph == da4ml's traced logic == Verilator's simulation of
the project's Verilog; and through hls4ml (io_parallel, io_stream): IntGraph == qonnx == the g++
C simulation of the project. The graph counterpart of testing/sweep.py (dense chains)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

from qapflow.backends.rtl.graph_trace import comb_logic
from qapflow.backends.hls4ml.backend import CompileOptions, compile_hls4ml
from qapflow.backends.rtl.backend import compile_rtl
from qapflow.common.errors import QapflowError
from qapflow.intmodel.graph_probe import graph_probe_inputs
from qapflow.sim.csim import run_csim
from qapflow.sim.report import load_int_model
from qapflow.sim.verilator import run_verilator
from qapflow.testing.graph_cases import build_conv_case, random_conv_case
from qapflow.testing.sweep_rows import case_row


# what hls4ml's layers cannot build and the backend refuses by name (graph_layers.py)
HLS4ML_LIMITS = ("hls4ml's streaming pooling", "hls4ml's pooling has none")


def hls4ml_fields(model: Path, folder: Path, x_file: Path, n: int, io: str) -> dict:
    """Compile for hls4ml and run qapflow's g++ csim; a refusal of a named hls4ml limit is a
    row of its own (the clear error is the right answer), any other error fails the case."""
    key = f"hls4ml_{io}"
    try:
        compile_hls4ml(model, folder / key, CompileOptions(io=io), probe=0)
    except QapflowError as exc:
        if any(limit in str(exc) for limit in HLS4ML_LIMITS):
            return {f"{key}_refused": str(exc)}
        raise
    r = run_csim(folder / key, inputs_file=x_file, n=n)
    return {f"{key}_vs_int_graph": r["mismatches_vs_int_model"],
            f"{key}_vs_qonnx": r["qonnx"]["quantizer_mismatches"] + r["qonnx"]["output_mismatching_samples"],
            f"{key}_passed": bool(r["passed"])}


def run_graph_case(seed: int, work: Path, n: int = 1000, simulate: bool = True, keep: bool = False,
                   hls4ml: tuple[str, ...] = ()) -> dict:
    """Build, compile (rtl), check and simulate one random conv case; a result row.
    simulate=False: da4ml's evaluation of the traced logic stands in for Verilator.
    hls4ml: the io types ("parallel", "stream") to compile and C-simulate the case in too."""
    case = random_conv_case(seed)
    folder = Path(work) / f"graph_{seed:04d}"
    folder.mkdir(parents=True, exist_ok=True)
    model = folder / "model.onnx"
    onnx.save(build_conv_case(case), str(model))
    row = {"seed": seed, "dims": case.dims, "size": case.size, "channels": case.channels, "pot": case.pot,
           "blocks": [kind for kind, _ in case.blocks], "zero_point": case.zero_point,
           "bipolar_input": case.bipolar_input, "channels_last": case.channels_last}
    with case_row(row, folder, keep):
        summary = compile_rtl(model, folder / "rtl", probe=n)
        gm = load_int_model(folder / "rtl")
        x = graph_probe_inputs(gm.graph, n, seed)
        q, _ = gm.input_integers(x)
        traced = comb_logic(gm.graph).predict(q.astype(np.float64))
        row.update({"ops": [op.kind for op in gm.graph.ops], "estimated_cost_luts": summary["estimated_cost_luts"],
                    "qonnx_vs_int_graph": summary["int_model_vs_qonnx"]["quantizer_mismatches"]
                    + summary["int_model_vs_qonnx"]["output_mismatching_samples"],
                    "traced_logic_vs_int_graph": int(np.count_nonzero((traced != gm.forward_int(q)).any(axis=1)))})
        row["passed"] = row["qonnx_vs_int_graph"] == 0 and row["traced_logic_vs_int_graph"] == 0
        np.save(folder / "inputs.npy", x)
        for io in hls4ml:
            row.update(hls4ml_fields(model, folder, folder / "inputs.npy", n, io))
            row["passed"] = row["passed"] and row.get(f"hls4ml_{io}_passed", f"hls4ml_{io}_refused" in row)
        if simulate:
            v = run_verilator(folder / "rtl", inputs_file=folder / "inputs.npy", n=n)
            row.update({"verilator_vs_int_graph": v["mismatches_vs_int_model"],
                        "verilator_vs_qonnx": v["qonnx"]["quantizer_mismatches"] + v["qonnx"]["output_mismatching_samples"],
                        "latency_cycles": v["latency_cycles_measured"], "build_seconds": v["build_seconds"]})
            row["passed"] = row["passed"] and v["passed"]
    return row
