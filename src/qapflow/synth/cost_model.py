"""A fast hardware cost model of the RTL path: LUTs, FFs and latency from the integer model.

da4ml traces the IntModel exactly as the RTL backend compiles it and reports its own cost of
the adder graphs (about one unit per LUT-level adder bit) and their adder depth; its pipeliner
splits the graph into the stages the Verilog will have. Those figures are turned into Yosys
synth_xilinx counts by a linear calibration fitted on real syntheses
(`benchmarks/calibrate_cost_model.py` writes `cost_calibration.json` beside this file, with
its median and worst error on the models it was fitted on):

    LUT ~ lut_per_cost * da4ml cost + lut_offset
    FF  ~ ff_per_bit * (pipeline register bits) + ff_offset
    latency (cycles) = da4ml's pipeline stages, as Verilator measures them (from input valid to output valid)

No synthesis, no Verilog: well under a second for the jet tagger (`benchmarks/calibrate_cost_model.py`
prints the time per model).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from qapflow.common.errors import QapflowError
from qapflow.intmodel.model import IntModel

CALIBRATION_FILE = Path(__file__).with_name("cost_calibration.json")
LATENCY_CUTOFF = 5.0  # the RTL backend's adder depth per pipeline stage (compile_rtl's default)


def _width(kifs) -> int:
    k, i, f = (np.asarray(v) for v in kifs)
    return int(np.maximum(k + i + f, 0).sum())


def logic_figures(im: IntModel) -> dict:
    """da4ml's own figures of the whole network and of each layer traced alone."""
    from da4ml.trace import FixedVariableArray, comb_trace
    from da4ml.trace.pipeline import to_pipeline

    from qapflow.backends.rtl.backend import input_array, trace_int_model, trace_layer

    start = time.perf_counter()
    comb = trace_int_model(im)
    pipe = to_pipeline(comb, LATENCY_CUTOFF, verbose=False)
    stages = len(pipe.solutions)
    # registers: every stage's inputs (the first stage's are the input register) and the outputs
    register_bits = sum(_width(sol.inp_kifs) for sol in pipe.solutions) + _width(comb.out_kifs)
    layers, x = [], input_array(im)
    for index, layer in enumerate(im.layers):
        inp = x
        out = trace_layer(inp, layer)
        part = comb_trace(inp, out)
        layers.append({"layer": index, "da4ml_cost": float(part.cost), "adder_depth": float(part.latency[1]),
                       "nonzero_weights": int(np.count_nonzero(layer.weight)), "input_bits": _width(part.inp_kifs),
                       "output_bits": _width(part.out_kifs)})
        k, i, f = part.out_kifs
        x = FixedVariableArray.from_kif(k, i, f)
    return {
        "da4ml_cost": float(comb.cost),
        "adder_depth": float(comb.latency[1]),
        "pipeline_stages": stages,
        "register_bits": register_bits,
        "layers": layers,
        "seconds": time.perf_counter() - start,
    }


def load_calibration(path=None) -> dict:
    path = Path(path) if path else CALIBRATION_FILE
    if not path.exists():
        raise QapflowError(f"{path}: no cost-model calibration; run benchmarks/calibrate_cost_model.py --write")
    return json.loads(path.read_text())


def apply_calibration(figures: dict, calibration: dict) -> dict:
    lut, ff = calibration["lut"], calibration["ff"]
    luts = max(0.0, lut["per_cost"] * figures["da4ml_cost"] + lut["offset"])
    # the total split in proportion to each layer's cost traced alone (da4ml shares a little
    # logic across layers when it traces the whole network, so the layer costs do not sum to it)
    layer_total = sum(layer["da4ml_cost"] for layer in figures["layers"])
    share = luts / layer_total if layer_total else 0.0
    return {
        "LUT": round(luts),
        "FF": round(ff["per_bit"] * figures["register_bits"] + ff["offset"]),
        "DSP": 0,
        "latency_cycles": figures["pipeline_stages"],
        "layers": [{**layer, "LUT": round(share * layer["da4ml_cost"])} for layer in figures["layers"]],
        # the error on models the fit has not seen (leave-one-out), where the calibration has it
        "error": {"LUT": lut.get("leave_one_out_error_percent", lut["error_percent"]),
                  "FF": ff.get("leave_one_out_error_percent", ff["error_percent"]),
                  "fitted_on": calibration["models"], "family": calibration["family"]},
        "figures": {k: v for k, v in figures.items() if k != "layers"},
    }


def estimate(im: IntModel, calibration: dict | None = None) -> dict:
    """LUT, FF, DSP (none: adder graphs) and latency estimates of the RTL project of `im`."""
    return apply_calibration(logic_figures(im), calibration or load_calibration())


def estimate_model_file(model_path, calibration: dict | None = None) -> dict:
    """The estimate for a QONNX file, through the same front end as the backends."""
    from qapflow.backends.frontend import prepare

    return estimate(prepare(Path(model_path), None, None, 200, "auto").im, calibration)


def fit_calibration(rows: list[dict], family: str) -> dict:
    """Least squares in relative error (each row weighted by 1 / its measured value) for LUT and FF;
    rows hold da4ml_cost, register_bits, LUT and FF of real syntheses."""
    def fit(x, y):
        x, y = np.asarray(x, float), np.asarray(y, float)
        a = np.stack([x, np.ones_like(x)], axis=1) / y[:, None]
        slope, offset = np.linalg.lstsq(a, np.ones_like(y), rcond=None)[0]
        errors = np.abs(slope * x + offset - y) / y * 100.0
        return float(slope), float(offset), errors

    lut_slope, lut_offset, lut_err = fit([r["da4ml_cost"] for r in rows], [r["LUT"] for r in rows])
    ff_slope, ff_offset, ff_err = fit([r["register_bits"] for r in rows], [r["FF"] for r in rows])
    return {
        "family": family,
        "models": len(rows),
        "lut": {"per_cost": lut_slope, "offset": lut_offset,
                "error_percent": {"median": float(np.median(lut_err)), "worst": float(lut_err.max())}},
        "ff": {"per_bit": ff_slope, "offset": ff_offset,
               "error_percent": {"median": float(np.median(ff_err)), "worst": float(ff_err.max())}},
    }
