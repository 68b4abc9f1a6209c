"""Hardware-aware QAP against today's QAP: the smallest verified design within a point of the
float model's accuracy, against the 6-bit 80%-sparse QAP design, both synthesized with Yosys and
simulated exactly (RTL in Verilator, hls4ml C simulation), from a finished hardware study:

    qapflow run flows/hardware_search.yaml
    python benchmarks/hardware_aware.py runs/hardware_search

Prints both designs and the ratios (reference / smallest) of LUTs, FFs and latency, and the
issue's goals (at most 3,000 LUTs, at least 5x fewer LUTs, at least as fast, no DSPs, exact).
"""

from __future__ import annotations

import argparse

from qapflow.report.hardware import write_hardware_report

GOAL_LUTS = 3000
GOAL_RATIO = 5.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workdir")
    args = parser.parse_args()
    import json
    from pathlib import Path

    write_hardware_report(args.workdir)
    summary = json.loads((Path(args.workdir) / "report" / "hardware_report.json").read_text())
    ref, small = summary["reference"], summary["smallest_within_margin"]
    print(f"float model accuracy {summary['float_accuracy']:.2%}; within 1 point: >= "
          f"{summary['float_accuracy'] - summary['margin']:.2%}; {summary['verified_designs']} verified designs, "
          f"all exact: {summary['all_exact']}")
    print(f"{'design':>22} {'sparsity':>8} {'accuracy':>8} {'LUT':>7} {'FF':>6} {'DSP':>3} {'cycles':>6}  label")
    for name, r in (("6-bit QAP (reference)", ref), ("smallest within 1 pt", small)):
        if r:
            print(f"{name:>22} {r['sparsity']:8.1%} {r['accuracy']:8.2%} {r['LUT']:7,} {r['FF']:6,} {r['DSP']:3} "
                  f"{r['latency_cycles']:6}  {r['label']}")
    if not (ref and small):
        raise SystemExit("no design within 1 point of float, or no reference: nothing to compare")
    ratios = summary["ratios"]
    print(f"ratios reference / smallest: LUT {ratios['LUT']:.2f}x, FF {ratios['FF']:.2f}x, "
          f"latency {ratios['latency']:.2f}x")
    goals = {f"at most {GOAL_LUTS:,} LUTs": small["LUT"] <= GOAL_LUTS,
             f"at least {GOAL_RATIO:g}x fewer LUTs": ratios["LUT"] >= GOAL_RATIO,
             "at least as fast": small["latency_cycles"] <= ref["latency_cycles"],
             "no DSPs": small["DSP"] == 0, "exact in both simulations": summary["all_exact"]}
    for goal, met in goals.items():
        print(f"  {'met' if met else 'NOT met'}: {goal}")


if __name__ == "__main__":
    main()
