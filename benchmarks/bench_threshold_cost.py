"""Hardware cost of threshold activations against shift-and-clip, on the same model.

    python benchmarks/bench_threshold_cost.py --bits 6 --sparsity 0.8 --out build/threshold_cost

A power-of-two 16-64-32-32-5 MLP (the jet tagger's shape), where shift-and-clip is exact, is
compiled to RTL twice: as qapflow chooses (shift-and-clip) and with every activation as
thresholds (--activations thresholds). Both are simulated exactly with Verilator and
synthesized with Yosys; the ratios thresholds / shift-and-clip are printed (same process).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import onnx

from qapflow.backends.rtl.backend import compile_rtl
from qapflow.intmodel.probe import probe_inputs
from qapflow.sim.report import load_int_model
from qapflow.sim.verilator import run_verilator
from qapflow.synth.yosys import run_yosys
from qapflow.testing.mlp_cases import LayerCase, MlpCase, build_case


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bits", type=int, default=6)
    ap.add_argument("--sparsity", type=float, default=0.8)
    ap.add_argument("--family", default="xc7")
    ap.add_argument("--out", default="build/threshold_cost")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    b = args.bits
    case = MlpCase(n_in=16, input_bits=16, pot_scales=True, seed=5, layers=[
        LayerCase(64, b, b, sparsity=args.sparsity), LayerCase(32, b, b, sparsity=args.sparsity),
        LayerCase(32, b, b, sparsity=args.sparsity), LayerCase(5, b, b, sparsity=args.sparsity)])
    model = out / "model.onnx"
    onnx.save(build_case(case), str(model))
    rows = {}
    for form in ("auto", "thresholds"):
        prj = out / form
        summary = compile_rtl(model, prj, activations=form)
        im = load_int_model(prj)
        np.save(out / "inputs.npy", probe_inputs(im, 2000))
        sim = run_verilator(prj, inputs_file=out / "inputs.npy", n=2000)
        res = run_yosys(prj, args.family)
        rows[form] = {"activations": summary["activations"], "comparators": summary["threshold_comparators"],
                      "exact": sim["passed"], "latency_cycles": sim["latency_cycles_measured"],
                      "LUT": res["LUT"], "FF": res["FF"], "CARRY": res["CARRY"], "DSP": res["DSP"],
                      "da4ml_estimated_luts": summary["estimated_cost_luts"]}
    shift, thr = rows["auto"], rows["thresholds"]
    result = {"bits": b, "sparsity": args.sparsity, "family": args.family, "shift_and_clip": shift,
              "thresholds": thr,
              "ratio_thresholds_over_shift": {k: round(thr[k] / max(shift[k], 1), 3)
                                              for k in ("LUT", "FF", "CARRY", "latency_cycles")}}
    (out / "threshold_cost.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0 if shift["exact"] and thr["exact"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
