"""Randomized sweep: any conv / pool / residual / concat network to exact RTL.

    python benchmarks/bench_any_graph.py --cases 200 --out build/graph_sweep [--no-simulate]
        [--hls4ml parallel,stream]

Each case (1D or 2D, 1-3 blocks of convolutions with stride, padding, dilation and groups, max and
average pooling, residual adds, concats, global pooling; power-of-two or float scales; zero points,
bipolar or channels-last inputs; testing/graph_cases.py) is compiled for the rtl backend and
compared on every row: qonnx (exact sums) == IntGraph == da4ml's traced logic == Verilator;
with --hls4ml, also compiled for hls4ml (io_parallel and/or io_stream) and C-simulated with g++.
Rows go to OUT/rows.jsonl as they finish (a killed sweep resumes); the summary prints the count,
the failures and the time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from qapflow.testing.graph_sweep import run_graph_case
from qapflow.testing.sweep_rows import resumable_rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=200)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--samples", type=int, default=1000, help="inputs per case")
    ap.add_argument("--no-simulate", action="store_true", help="da4ml's evaluation in place of Verilator")
    ap.add_argument("--hls4ml", default="", help="comma-separated hls4ml io types to run too: parallel,stream")
    ap.add_argument("--out", default="build/graph_sweep")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seeds = range(args.first_seed, args.first_seed + args.cases)
    start = time.time()
    hls4ml = tuple(io for io in args.hls4ml.split(",") if io)
    rows = resumable_rows(out, seeds, lambda seed: run_graph_case(seed, out / "work", args.samples,
                                                                  simulate=not args.no_simulate, hls4ml=hls4ml),
                          "graph cases")
    failures = [r for r in rows if not r["passed"]]
    ops = {}
    for r in rows:
        for kind in r.get("ops", []):
            ops[kind] = ops.get(kind, 0) + 1
    summary = {
        "cases": len(rows), "failures": len(failures), "failed_seeds": [r["seed"] for r in failures],
        "errors": {r["seed"]: r.get("error") for r in failures if r.get("error")},
        "simulated_in_verilator": sum(1 for r in rows if "verilator_vs_int_graph" in r),
        **{f"hls4ml_{io}": {"simulated": sum(1 for r in rows if f"hls4ml_{io}_passed" in r),
                            "exact": sum(1 for r in rows if r.get(f"hls4ml_{io}_passed")),
                            "refused_by_name": sum(1 for r in rows if f"hls4ml_{io}_refused" in r)} for io in hls4ml},
        "ops": ops,
        "seconds_total_in_cases": round(sum(r["seconds"] for r in rows), 1),
        "wall_seconds_this_run": round(time.time() - start, 1),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
