"""Calibrate the hardware cost model (synth/cost_model.py) against Yosys on trained jet taggers.

Trains a set of QAP runs of different widths, bit widths and input precisions (each FT-pruned in
a few iterations, so one run gives models of several sparsities), puts every chosen iteration
through the RTL path with `qapflow compare` (export, da4ml Verilog, Verilator against the
IntModel, Yosys synth_xilinx), and fits LUT and FF against da4ml's figures. Prints per model
the estimate against Yosys and the error, the median and worst error in the fit and in
leave-one-out (each model predicted by a fit without it), and the cost model's time per model
against Yosys' time. Every step is cached in OUT: a rerun redoes only what is missing.

    python benchmarks/calibrate_cost_model.py runs/paper_reduced/data/jets.h5 runs/cost_calibration [--write]

--write puts the fit into src/qapflow/synth/cost_calibration.json (the package's calibration).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

# name: (model settings, the iterations to synthesize; None: all). Widths from 16-8-8 to the
# paper's 64-32-32, 3 to 8 bits, inputs of 6 to 16 bits: a span of about 300 to 20,000 LUTs.
# FT to 95%: iterations 2, 4, 7, 8, 9 are 20, 40, 70, 80, 90% of the weights pruned; past 90% the
# low-bit models collapse to constant outputs (0 LUTs), which are left out of the fit
RUNS = {
    "w64_b6_in16": ({"widths": [64, 32, 32], "bits": 6}, [7, 8, 9]),
    "w32_b4_in8": ({"widths": [32, 16, 16], "bits": 4, "input_bits": 8, "input_int": 4}, [2, 4, 7, 9]),
    "w16_b3_in6": ({"widths": [16, 8, 8], "bits": 3, "input_bits": 6, "input_int": 3}, [0, 2, 4, 7]),
    "w24_mixed_in10": ({"widths": [24, 12, 12], "bits": [5, 4, 4, 6], "input_bits": 10, "input_int": 5,
                        "act_bits": 5}, [2, 4, 7, 9]),
    "w48_b3_in8": ({"widths": [48, 24, 24], "bits": 3, "input_bits": 8, "input_int": 4, "act_bits": 4}, [2, 4, 7, 8]),
    "w16_b8_in12": ({"widths": [16, 16, 16], "bits": 8, "input_bits": 12, "input_int": 5, "act_bits": 6},
                    [0, 2, 4, 7, 9]),
}


def run_one(name: str, data: str, out: str, jets: int, epochs: int) -> list[dict]:
    import torch

    from qapflow.compare.compare import compare_run
    from qapflow.intmodel.model import IntModel
    from qapflow.nn.spec import ModelSpec
    from qapflow.synth.cost_model import logic_figures
    from qapflow.train.config import RunConfig
    from qapflow.train.run import run_qap
    from qapflow.train.trainer import TrainConfig

    torch.set_num_threads(1)
    settings, iterations = RUNS[name]
    run_dir, cmp_dir = Path(out) / name / "run", Path(out) / name / "compare"
    cfg = RunConfig(data=data, model=ModelSpec(**settings), prune="ft", target_sparsity=0.95,
                    max_jets=jets, train=TrainConfig(max_epochs=epochs, patience=3, batch_size=512), fold_epochs=2)
    run_qap(cfg, run_dir, resume=(run_dir / "config.json").exists(), progress=False)
    start = time.time()
    summary = compare_run(run_dir, cmp_dir, "rtl", iterations=iterations, n=2000, progress=False)
    rows = []
    for row in summary["rows"]:
        prj = cmp_dir / f"iter_{row['iteration']:03d}" / "prj_rtl"
        figures = logic_figures(IntModel.load(prj / "int_model.json"))
        resources = json.loads((prj / "resources.json").read_text())
        rows.append({"model": f"{name}/iter_{row['iteration']:03d}", "sparsity": row["sparsity"],
                     "accuracy": row["accuracy"], "LUT": row["LUT"], "FF": row["FF"], "DSP": row["DSP"],
                     "latency_measured": row["latency_cycles"], "mismatches": row["sim_mismatches"],
                     "yosys_seconds": resources["seconds"], "cost_model_seconds": figures["seconds"],
                     **{k: figures[k] for k in ("da4ml_cost", "register_bits", "pipeline_stages", "adder_depth")}})
    print(f"{name}: {len(rows)} models in {time.time() - start:.0f} s", flush=True)
    return rows


def leave_one_out(rows: list[dict], family: str) -> tuple[list[float], list[float]]:
    from qapflow.synth.cost_model import fit_calibration, apply_calibration

    lut_err, ff_err = [], []
    for i, row in enumerate(rows):
        cal = fit_calibration(rows[:i] + rows[i + 1:], family)
        est = apply_calibration({**row, "layers": []}, cal)
        lut_err.append(abs(est["LUT"] - row["LUT"]) / row["LUT"] * 100)
        ff_err.append(abs(est["FF"] - row["FF"]) / row["FF"] * 100)
    return lut_err, ff_err


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data")
    parser.add_argument("out")
    parser.add_argument("--jets", type=int, default=20_000, help="jets per training (first N of the file)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--family", default="xc7")
    parser.add_argument("--write", action="store_true", help="write the package's cost_calibration.json")
    args = parser.parse_args()

    from qapflow.common.atomic import write_json
    from qapflow.synth.cost_model import CALIBRATION_FILE, apply_calibration, fit_calibration

    with ProcessPoolExecutor(args.workers) as pool:
        futures = [pool.submit(run_one, name, args.data, args.out, args.jets, args.epochs) for name in RUNS]
        rows = [row for f in futures for row in f.result()]
    bad = [r["model"] for r in rows if r["mismatches"]]
    if bad:
        raise SystemExit(f"simulation mismatches in {bad}: not calibrating on inexact designs")
    write_json(Path(args.out) / "calibration_rows.json", rows)
    constant = [r["model"] for r in rows if r["LUT"] == 0]
    if constant:  # a network pruned to constant outputs is no design to calibrate on
        print(f"left out (constant outputs, 0 LUTs): {', '.join(constant)}")
    rows = [r for r in rows if r["LUT"] > 0]
    cal = fit_calibration(rows, args.family)
    lut_loo, ff_loo = leave_one_out(rows, args.family)
    cal["lut"]["leave_one_out_error_percent"] = {"median": float(np.median(lut_loo)), "worst": float(max(lut_loo))}
    cal["ff"]["leave_one_out_error_percent"] = {"median": float(np.median(ff_loo)), "worst": float(max(ff_loo))}
    stages_equal = sum(r["pipeline_stages"] == r["latency_measured"] for r in rows)
    cal["latency"] = {"rule": "cycles = da4ml pipeline stages", "models_equal_to_measured": stages_equal}
    cal["source"] = f"benchmarks/calibrate_cost_model.py on {len(rows)} trained models, Yosys synth_xilinx"
    print(f"{'model':28} {'sparsity':>8} {'Yosys LUT':>9} {'est':>7} {'err%':>6} {'Yosys FF':>8} {'est':>6} "
          f"{'err%':>6} {'cycles':>6} {'est':>4}")
    for r in rows:
        est = apply_calibration({**r, "layers": []}, cal)
        print(f"{r['model']:28} {r['sparsity']:8.1%} {r['LUT']:9d} {est['LUT']:7d} "
              f"{abs(est['LUT'] - r['LUT']) / r['LUT'] * 100:6.1f} {r['FF']:8d} {est['FF']:6d} "
              f"{abs(est['FF'] - r['FF']) / r['FF'] * 100:6.1f} {r['latency_measured']:6} {est['latency_cycles']:4}")
    print(f"\nLUT: fit median {cal['lut']['error_percent']['median']:.1f}% worst "
          f"{cal['lut']['error_percent']['worst']:.1f}%; leave-one-out median {np.median(lut_loo):.1f}% worst "
          f"{max(lut_loo):.1f}%")
    print(f"FF:  fit median {cal['ff']['error_percent']['median']:.1f}% worst "
          f"{cal['ff']['error_percent']['worst']:.1f}%; leave-one-out median {np.median(ff_loo):.1f}% worst "
          f"{max(ff_loo):.1f}%")
    print(f"latency: da4ml stages equal Verilator's measured cycles on {stages_equal} of {len(rows)} models")
    model_s = np.mean([r["cost_model_seconds"] for r in rows])
    yosys_s = np.mean([r["yosys_seconds"] for r in rows])
    print(f"time per model: cost model {model_s:.3f} s, Yosys {yosys_s:.1f} s (ratio {yosys_s / model_s:,.0f})")
    out = Path(args.out)
    write_json(out / "calibration.json", cal)
    if args.write:
        shutil.copyfile(out / "calibration.json", CALIBRATION_FILE)
        print(f"wrote {CALIBRATION_FILE}")


if __name__ == "__main__":
    main()
