"""One random conv/pool/residual/concat network through the rtl backend, compared on every row:
qonnx execution (exact sums) == IntGraph == da4ml's traced logic == Verilator's simulation of
the project's Verilog. The graph counterpart of testing/sweep.py (dense chains, both backends)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

from qapflow.backends.rtl.graph_trace import comb_logic
from qapflow.backends.rtl.backend import compile_rtl
from qapflow.intmodel.graph_probe import graph_probe_inputs
from qapflow.sim.report import load_int_model
from qapflow.sim.verilator import run_verilator
from qapflow.testing.graph_cases import build_conv_case, random_conv_case
from qapflow.testing.sweep_rows import case_row


def run_graph_case(seed: int, work: Path, n: int = 1000, simulate: bool = True, keep: bool = False) -> dict:
    """Build, compile (rtl), check and simulate one random conv case; a result row.
    simulate=False: da4ml's evaluation of the traced logic stands in for Verilator."""
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
        if simulate:
            np.save(folder / "inputs.npy", x)
            v = run_verilator(folder / "rtl", inputs_file=folder / "inputs.npy", n=n)
            row.update({"verilator_vs_int_graph": v["mismatches_vs_int_model"],
                        "verilator_vs_qonnx": v["qonnx"]["quantizer_mismatches"] + v["qonnx"]["output_mismatching_samples"],
                        "latency_cycles": v["latency_cycles_measured"], "build_seconds": v["build_seconds"]})
            row["passed"] = row["passed"] and v["passed"]
    return row
