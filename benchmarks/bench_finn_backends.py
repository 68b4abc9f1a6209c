"""One model on all three backends, side by side: hls4ml, RTL (da4ml) and FINN at two foldings.

    python benchmarks/bench_finn_backends.py MODEL.onnx --data JETS.h5 --n 5000 --out build/backends

Each project is compiled, simulated exactly on the same N samples (hls4ml: C simulation; RTL:
Verilator; FINN: python mode and Verilator of its RTL) and, where the tools exist here,
synthesized (Yosys for RTL and FINN; hls4ml needs Vitis). Prints the table (exactness, cycles
per inference, latency, LUT/FF/DSP/BRAM and their source) and the ratios of each FINN folding
to the RTL project measured in the same process; writes OUT/backends.csv and .json.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from qapflow.backends.finn.build import FinnOptions, compile_finn
from qapflow.backends.hls4ml.backend import CompileOptions, compile_hls4ml
from qapflow.backends.rtl.backend import compile_rtl
from qapflow.common.atomic import write_json
from qapflow.compare.backends import BACKEND_COLUMNS, backends_table, write_table
from qapflow.sim.csim import run_csim
from qapflow.sim.finn_sim import run_finn_csim
from qapflow.sim.verilator import run_verilator
from qapflow.synth.finn_resources import finn_resources
from qapflow.synth.yosys import run_yosys


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--data", required=True)
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--part", default="xcu250-figd2104-2L-e")
    ap.add_argument("--family", default="xcup")
    ap.add_argument("--fps", default="0,20000000", help="FINN target fps per folding (0: FINN's default)")
    ap.add_argument("--out", default="build/backends")
    args = ap.parse_args(argv)
    out = Path(args.out)
    projects = {"hls4ml": out / "hls4ml", "rtl": out / "rtl"}
    compile_hls4ml(args.model, projects["hls4ml"], CompileOptions(part=args.part))
    run_csim(projects["hls4ml"], args.data, args.n)
    compile_rtl(args.model, projects["rtl"], part=args.part)
    run_verilator(projects["rtl"], args.data, args.n)
    run_yosys(projects["rtl"], args.family)
    for fps in (int(v) for v in args.fps.split(",")):
        name = f"finn_fps{fps}" if fps else "finn_default_folding"
        projects[name] = out / name
        compile_finn(args.model, projects[name], FinnOptions(target_fps=fps or None, part=args.part))
        run_finn_csim(projects[name], args.data, args.n, python_samples=min(args.n, 2000))
        finn_resources(projects[name], args.family)
    rows = backends_table(projects)
    write_table(rows, out / "backends.csv")
    write_json(out / "backends.json", rows)
    shown = ("backend", "exact", "samples", "cycles_per_inference", "latency_cycles", "LUT", "FF", "DSP", "BRAM",
             "finn_estimate_LUT", "finn_estimate_DSP", "finn_estimate_BRAM_18K")
    print(" | ".join(shown))
    for row in rows:
        print(" | ".join(str(row[c]) for c in shown))
        print(f"    resources: {row['resources_source']}")
    rtl = next(r for r in rows if r["backend"] == "rtl")
    for row in rows:
        if row["backend"].startswith("finn"):
            print(f"{row['backend']} / rtl: cycles per inference x{row['cycles_per_inference'] / rtl['cycles_per_inference']:.0f}, "
                  f"latency x{row['latency_cycles'] / rtl['latency_cycles']:.1f}, "
                  f"Yosys LUT x{row['LUT'] / rtl['LUT']:.2f}, FF x{row['FF'] / rtl['FF']:.2f} "
                  "(FINN's Yosys counts are partial: see its resources.json)")
    assert set(BACKEND_COLUMNS) >= set(shown)
    return 0 if all(r["exact"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
