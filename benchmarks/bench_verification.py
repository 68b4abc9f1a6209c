"""Verification builds and simulation speed: build seconds and peak memory per backend, samples/s,
and the ratio to PyTorch's batched CPU forward pass of the same network, in the same process.

    python benchmarks/bench_verification.py                       # the four models, new builds
    python benchmarks/bench_verification.py --flags legacy        # the builds as they were
    python benchmarks/bench_verification.py --models jet6 --yosys # one model, Yosys too

Models (built here with qapflow.testing.mlp_cases): `jet6` the 16-64-32-32-5 jet shape, 6-bit,
80% of the weights zero; `jet16` the same at 16 bits, 40% zero (its sums pass float32's 2**24: taken in
float64, software.dense_output); a model qapflow refuses is a row saying why; `mlp1` and `mlp2` a
784-64-64-64-10 MLP with 1-bit and 2-bit weights and activations, batch norm, float scales (the
shape of FINN's TFC networks; the 2-bit weights drawn wide enough that about half are non-zero).
Every build is cold (a fresh cache folder) and runs in a child process, so its peak memory is
that process's children's (resource.getrusage). `--flags legacy` builds the sparse kernels
unrolled at -O1 (g++) and Verilator's old options, each bounded by --legacy-timeout; a build
cut off is reported with the time it had taken and the size estimate of kernel_tables.
Every simulated output is checked equal to the integer model's before its time is counted.
Writes OUT/bench_verification[_legacy].json (default benchmarks/results/).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import onnx

from qapflow.testing.mlp_cases import LayerCase, MlpCase, build_case

MODELS = ("jet6", "jet16", "mlp1", "mlp2")


def model_proto(name: str) -> onnx.ModelProto:
    if name.startswith("jet"):
        bits, sparsity = (6, 0.8) if name == "jet6" else (16, 0.4)
        widths = (64, 32, 32, 5)
        layers = [LayerCase(w, bits, bits, sparsity=sparsity if w != 5 else 0.0) for w in widths]
        return build_case(MlpCase(n_in=16, input_bits=bits + 2, layers=layers, seed=16))
    bits = int(name[3:])
    layers = [LayerCase(w, bits, bits, batch_norm=w != 10) for w in (64, 64, 64, 10)]
    model = build_case(MlpCase(n_in=784, input_bits=8, layers=layers, pot_scales=False, seed=784))
    for init in model.graph.initializer:  # N(0, 1/n_in) weights would round to 0 at 2 bits
        if init.name.startswith("w"):
            w = onnx.numpy_helper.to_array(init)
            init.CopyFrom(onnx.numpy_helper.from_array((w * np.sqrt(w.shape[1]) * 0.7).astype(np.float32), init.name))
    return model


# one build in a child process: its own peak memory, a cold cache, the legacy switches
CHILD = textwrap.dedent("""
    import json, os, resource, sys, time
    import qapflow
    kind, path, legacy = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
    if legacy:
        from qapflow.sim import csim, gxx_library, verilator
        gxx_library.FLAGS = ("-O1",) + tuple(f for f in gxx_library.FLAGS if f not in ("-O2",))
        csim.FLAGS = ("-O1", "-std=c++14")
        if hasattr(verilator, "LEGACY_OPTIONS"):
            verilator.BUILD_OPTIONS = verilator.LEGACY_OPTIONS
    prj = qapflow.load_project(path)
    start = time.perf_counter()
    if kind == "csim":
        from qapflow.sim.csim import build_testbench
        build_testbench(prj.path, prj.summary)
    else:
        prj.compile()
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds,
                      "peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
""")


def child_build(kind: str, prj: Path, cache: Path, legacy: bool, timeout: float) -> dict:
    env = {**os.environ, "QAPFLOW_CACHE": str(cache)}
    if legacy:
        env["QAPFLOW_GXX_KERNELS"] = "unrolled"
        env["QAPFLOW_ALLOW_LONG_BUILD"] = "1"
    start = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-c", CHILD, kind, str(prj), "1" if legacy else "0"], env=env,
                              capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"seconds": None, "cut_off_after_s": time.perf_counter() - start}
    if done.returncode:
        return {"seconds": None, "error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def best_rate(fn, n: int, repeats: int) -> float:
    """Samples per second of the fastest of `repeats` runs (noise on a shared machine only adds)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return n / min(times)


def torch_rate(im, x: np.ndarray, repeats: int) -> float:
    """PyTorch's batched CPU forward of the same network: its Linear layers with the integer
    model's weights, ReLU between (the cost does not depend on the values)."""
    import torch

    mods = []
    for i, layer in enumerate(im.layers):
        lin = torch.nn.Linear(layer.weight.shape[1], layer.weight.shape[0])
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(layer.weight, dtype=torch.float32))
        mods += [lin] + ([torch.nn.ReLU()] if i + 1 < len(im.layers) else [])
    net, xt = torch.nn.Sequential(*mods).eval(), torch.from_numpy(x)
    with torch.no_grad():
        net(xt)
        return best_rate(lambda: net(xt), len(x), repeats)


def simulate(prj, x: np.ndarray, repeats: int) -> float:
    """In-process samples/s of the project's simulator, its outputs checked exact first."""
    x_int = prj.int_model.input_integers(x)[0]
    want = prj.int_model.forward_int(x_int)
    if not np.array_equal(prj._simulator.predict_int(x_int), want):
        raise SystemExit(f"{prj.path}: the simulation's outputs differ from the integer model's")
    return best_rate(lambda: prj._simulator.predict_int(x_int), len(x), repeats)


def bench_model(name: str, args, out: Path, cache_root: Path) -> dict:
    import qapflow
    from qapflow.sim.kernel_tables import STATEMENT, estimated_seconds

    model = out / f"{name}.onnx"
    onnx.save(model_proto(name), str(model))
    row: dict = {"model": name}
    rng = np.random.default_rng(0)
    backends = ["hls4ml"] + (["rtl"] if name.startswith("jet") or args.rtl_all else []) + (["finn"] if args.finn else [])
    for backend in backends:
        start = time.perf_counter()
        prj = qapflow.convert(model, backend=backend, output_dir=out / f"{name}_{backend}")
        row[f"{backend}_convert_s"] = time.perf_counter() - start
        n_in = prj.int_model.layers[0].weight.shape[1]
        x = rng.normal(0, 1.5, (args.samples, n_in)).astype(np.float32)
        if "torch_samples_per_s" not in row:
            row["torch_samples_per_s"] = torch_rate(prj.int_model, x, args.repeats)
            row["nonzero_weights"] = int(sum(np.count_nonzero(layer.weight) for layer in prj.int_model.layers))
        kinds = ["library", "csim"] if backend == "hls4ml" else ["simulator"]
        for kind in kinds:
            cache = Path(tempfile.mkdtemp(prefix=f"{name}_{kind}_", dir=cache_root))
            built = child_build(kind, prj.path, cache, args.flags == "legacy", args.legacy_timeout)
            key = f"{backend}_{kind}"
            row[f"{key}_build_s"], row[f"{key}_build_peak_mb"] = built.get("seconds"), built.get("peak_mb")
            if built.get("seconds") is None:
                row[f"{key}_build_note"] = built
        if backend == "hls4ml":
            code_gen = (prj.path / "firmware" / "nnet_utils" / "nnet_code_gen.h").read_text()
            statements = len(STATEMENT.findall(code_gen))
            row["unrolled_statements"], row["unrolled_estimate_s"] = statements, estimated_seconds(statements)
        key = f"{backend}_{kinds[0]}"
        if row[f"{key}_build_s"] is not None:
            os.environ["QAPFLOW_CACHE"] = str(next(cache_root.glob(f"{name}_{kinds[0]}_*")))
            if args.flags == "legacy":
                os.environ["QAPFLOW_GXX_KERNELS"] = "unrolled"
            prj.compile()  # the child's build, from its cache
            rate = simulate(prj, x, args.repeats)
            row[f"{backend}_samples_per_s"] = rate
            row[f"{backend}_ratio_to_torch"] = rate / row["torch_samples_per_s"]
        if args.yosys and backend == "rtl":
            start = time.perf_counter()
            prj.synth(tool="yosys")
            row["rtl_yosys_s"] = time.perf_counter() - start
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, of {', '.join(MODELS)}")
    ap.add_argument("--flags", choices=("new", "legacy"), default="new")
    ap.add_argument("--samples", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--legacy-timeout", type=float, default=400.0, help="seconds a legacy build may take")
    ap.add_argument("--rtl-all", action="store_true", help="the rtl backend for the 784 MLPs too (slow da4ml)")
    ap.add_argument("--finn", action="store_true", help="FINN's RTL chain too")
    ap.add_argument("--yosys", action="store_true", help="Yosys synthesis of the rtl projects")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = ap.parse_args(argv)
    results = Path(args.out)
    work = Path(tempfile.mkdtemp(prefix="bench_verification_"))
    rows = []
    from qapflow.common.errors import QapflowError

    for name in args.models.split(","):
        try:
            rows.append(bench_model(name, args, work, work))
        except QapflowError as exc:  # a model qapflow refuses is a row of the table, not the end of it
            rows.append({"model": name, "refused": str(exc)})
        print(json.dumps(rows[-1]), flush=True)
    import torch

    header = ["model", "g++ lib s", "lib MB", "csim s", "verilator s", "vl MB", "g++ samples/s", "x torch",
              "verilator samples/s", "x torch", "torch samples/s"]
    print(f"\nflags: {args.flags}; {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}")
    print(" | ".join(header))

    def fmt(value, spec=",.1f"):
        return "-" if value is None else format(value, spec)

    for r in rows:
        print(" | ".join([r["model"], fmt(r.get("hls4ml_library_build_s")), fmt(r.get("hls4ml_library_build_peak_mb"), ",.0f"),
                          fmt(r.get("hls4ml_csim_build_s")), fmt(r.get("rtl_simulator_build_s")),
                          fmt(r.get("rtl_simulator_build_peak_mb"), ",.0f"), fmt(r.get("hls4ml_samples_per_s"), ",.0f"),
                          fmt(r.get("hls4ml_ratio_to_torch"), ".3f"), fmt(r.get("rtl_samples_per_s"), ",.0f"),
                          fmt(r.get("rtl_ratio_to_torch"), ".3f"), fmt(r.get("torch_samples_per_s"), ",.0f")]))
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"bench_verification{'_legacy' if args.flags == 'legacy' else ''}.json"
    path.write_text(json.dumps({"flags": args.flags, "cpus": os.cpu_count(), "samples": args.samples,
                                "torch_threads": torch.get_num_threads(), "rows": rows}, indent=2) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
