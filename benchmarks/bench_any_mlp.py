"""Randomized sweep: any quantized MLP to exact firmware, on both backends.

    python benchmarks/bench_any_mlp.py --cases 200 --out build/sweep

Each case (depth 1-4, widths 1-64, bits 1-16 per tensor, sparsity 0-99%, power-of-two and
float scales, with and without BN, Gemm or MatMul+Add, zero points, bipolar tensors, Softmax,
Flatten; and other tools' formats: quantized biases, 1-bit Quant nodes, MultiThreshold
activations, a Relu before the input quantizer, old or empty domains, computed bit widths) is compiled for hls4ml and RTL and simulated on probe inputs (saturation, rounding
ties); on every row qonnx (exact sums) == IntModel == hls4ml csim == RTL simulation.
Rows go to OUT/rows.jsonl as they finish (a killed sweep resumes); the summary prints the
count, the failures and the time, and the firmware path's time as a ratio of the integer
model's own qonnx check, measured in the same process.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from qapflow.testing.sweep import run_case
from qapflow.testing.sweep_rows import resumable_rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=200)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--samples", type=int, default=500, help="inputs per case")
    ap.add_argument("--max-width", type=int, default=64)
    ap.add_argument("--out", default="build/sweep")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seeds = range(args.first_seed, args.first_seed + args.cases)
    start = time.time()
    rows = resumable_rows(out, seeds, lambda seed: run_case(seed, out / "work", args.samples, args.max_width), "cases")
    failures = [r for r in rows if not r["passed"]]
    kinds = {}
    for r in rows:
        for a in r.get("activations", []):
            kinds[a] = kinds.get(a, 0) + 1
    sim = sum(r.get("sim_seconds", 0) for r in rows)
    total = sum(r["seconds"] for r in rows)
    summary = {
        "cases": len(rows), "failures": len(failures), "failed_seeds": [r["seed"] for r in failures],
        "errors": {r["seed"]: r.get("error") for r in failures if r.get("error")},
        "layers_by_activation": kinds,
        "cases_with_float32_graph_differences": sum(1 for r in rows if r.get("float32_graph_quantizer_differences")),
        "seconds_total_in_cases": round(total, 1), "wall_seconds_this_run": round(time.time() - start, 1),
        "simulation_share_of_case_time": round(sim / max(total, 1e-9), 3),
        "simulation_seconds_per_qonnx_check_second": round(
            sim / max(sum(r.get("qonnx_check_seconds", 0) for r in rows), 1e-9), 2),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
