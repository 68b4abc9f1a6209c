"""One random MLP through the whole path, every representation compared on every row:
qonnx execution (exact sums) == IntModel == hls4ml csim (g++) == RTL simulation (Verilator)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import onnx

from qapflow.backends.hls4ml.backend import compile_hls4ml
from qapflow.backends.rtl.backend import compile_rtl
from qapflow.intmodel.probe import probe_inputs
from qapflow.sim.csim import run_csim
from qapflow.sim.report import load_int_model
from qapflow.sim.verilator import run_verilator
from qapflow.testing.mlp_cases import build_case, random_case
from qapflow.testing.sweep_rows import case_row


def run_case(seed: int, work: Path, n: int = 500, max_width: int = 64, keep: bool = False) -> dict:
    """Build, compile (both backends), simulate and compare one random case; a result row."""
    case = random_case(seed, max_width)
    folder = Path(work) / f"case_{seed:04d}"
    folder.mkdir(parents=True, exist_ok=True)
    model = folder / "model.onnx"
    onnx.save(build_case(case), str(model))
    row = {"seed": seed, "depth": len(case.layers), "widths": [l.width for l in case.layers],
           "input_bits": case.input_bits, "weight_bits": [l.weight_bits for l in case.layers],
           "act_bits": [l.act_bits for l in case.layers], "sparsity": [l.sparsity for l in case.layers],
           "batch_norm": [l.batch_norm for l in case.layers], "pot_scales": case.pot_scales,
           "matmul": case.matmul, "softmax": case.softmax, "zero_point": case.zero_point,
           "formats": {"quantized_bias": case.quantized_bias, "one_bit_as_quant": case.one_bit_as_quant,
                       "multithreshold": case.multithreshold, "input_relu": case.input_relu,
                       "computed_bit_widths": case.computed_bit_widths, "quant_domain": case.quant_domain}}
    with case_row(row, folder, keep):
        hls = compile_hls4ml(model, folder / "hls", probe=0)
        im = load_int_model(folder / "hls")
        x = probe_inputs(im, n, seed=seed)
        np.save(folder / "inputs.npy", x)
        check_start = time.time()
        c = run_csim(folder / "hls", inputs_file=folder / "inputs.npy", n=n)
        rtl = compile_rtl(model, folder / "rtl", probe=0)
        v = run_verilator(folder / "rtl", inputs_file=folder / "inputs.npy", n=n)
        same = np.array_equal(np.load(folder / "hls" / "outputs_int.npy"), np.load(folder / "rtl" / "outputs_int.npy"))
        row.update({
            "activations": hls["activations"], "comparators": hls["threshold_comparators"],
            "rtl_latency_cycles": v["latency_cycles_measured"],
            "qonnx_vs_int_model": c["qonnx"]["quantizer_mismatches"] + c["qonnx"]["output_mismatching_samples"],
            "hls4ml_vs_int_model": c["mismatches_vs_int_model"], "rtl_vs_int_model": v["mismatches_vs_int_model"],
            "hls4ml_equals_rtl": bool(same),
            "float32_graph_quantizer_differences": c["qonnx"]["float32_graph"]["quantizer_mismatching_samples"],
            "sim_seconds": time.time() - check_start,
            "qonnx_check_seconds": c["qonnx"]["seconds"] + v["qonnx"]["seconds"],
        })
        row["passed"] = bool(c["passed"] and v["passed"] and same and rtl["activations"] == hls["activations"])
    return row
