"""Simulation throughput: Project.predict (the firmware as an in-process g++ library) vs the
csim testbench (text I/O) vs PyTorch's batched CPU forward pass, in the same process.

    python benchmarks/bench_api_predict.py --samples 100000 --out build/bench_api

The model is the jet tagger's shape, 16-64-32-32-5, 6-bit weights and activations, 80% of the
weights zero, power-of-two scales (testing/mlp_cases.py); the PyTorch model is an equal float
nn.Linear/ReLU stack (its weights the dequantized ones), timed as a batched forward pass.
Every firmware output is checked equal to the integer model's before its time is counted.
Build seconds are of a cold build (a fresh cache folder): library and testbench.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx

from qapflow.testing.mlp_cases import LayerCase, MlpCase, build_case

SHAPE = (16, 64, 32, 32, 5)


def jet_shaped_case(bits: int = 6, sparsity: float = 0.8) -> MlpCase:
    widths = SHAPE[1:]
    layers = [LayerCase(w, bits, bits, sparsity=sparsity if w != widths[-1] else 0.0) for w in widths]
    return MlpCase(n_in=SHAPE[0], input_bits=bits + 2, layers=layers, seed=16)


def best_of(fn, repeats: int) -> float:
    """The fastest of `repeats` runs, in seconds: the machine is shared, noise only adds time."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def torch_stack(im):
    """The float model: each IntLayer's dequantized weights and bias, ReLU between layers."""
    import torch

    mods = []
    for i, layer in enumerate(im.layers):
        lin = torch.nn.Linear(layer.weight.shape[1], layer.weight.shape[0])
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(np.ldexp(layer.weight.astype(np.float64), layer.weight_exp)))
            lin.bias.copy_(torch.tensor(np.ldexp(layer.bias.astype(np.float64), layer.acc_exp)))
        mods.append(lin)
        if i + 1 < len(im.layers):
            mods.append(torch.nn.ReLU())
    return torch.nn.Sequential(*mods).eval()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="build/bench_api")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ["QAPFLOW_CACHE"] = tempfile.mkdtemp(prefix="cache_", dir=out)  # cold builds

    import torch

    import qapflow
    from qapflow.sim.csim import run_csim

    model = out / "jet_shaped.onnx"
    onnx.save(build_case(jet_shaped_case()), str(model))
    prj = qapflow.convert(model, backend="hls4ml", output_dir=out / "prj")
    built = prj.compile()
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1.5, (args.samples, SHAPE[0])).astype(np.float32)
    x_int = prj.int_model.input_integers(x)[0]
    want = prj.int_model.forward_int(x_int)

    lib = prj._simulator.lib  # the library call alone: integers in, integers out
    if not np.array_equal(lib.predict_int(x_int), want) or not np.array_equal(prj.predict(x, integers=True), want):
        raise SystemExit("the library's outputs differ from the integer model's")
    lib_s = best_of(lambda: lib.predict_int(x_int), args.repeats)
    predict_s = best_of(lambda: prj.predict(x), args.repeats)  # + software head (input grid) and tail

    np.save(out / "x.npy", x)
    start = time.perf_counter()
    report = run_csim(prj.path, inputs_file=out / "x.npy", n=args.samples)
    csim_wall = time.perf_counter() - start
    if report["mismatches_vs_int_model"]:
        raise SystemExit("the csim testbench's outputs differ from the integer model's")
    csim_s = report["run_seconds"]  # the testbench binary alone: text in, run, text out

    net, xt = torch_stack(prj.int_model), torch.from_numpy(x)
    with torch.no_grad():
        net(xt)  # warm-up
        torch_s = best_of(lambda: net(xt), args.repeats)

    n = args.samples
    rates = {"library_call": n / lib_s, "project_predict": n / predict_s, "csim_testbench": n / csim_s,
             "pytorch_batched_cpu": n / torch_s}
    result = {
        "shape": list(SHAPE), "samples": n, "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
        "samples_per_second": rates,
        "ratio_to_pytorch": {k: v / rates["pytorch_batched_cpu"] for k, v in rates.items()},
        "predict_over_csim_testbench": rates["project_predict"] / rates["csim_testbench"],
        "library_build_seconds_cold": built["build_seconds"],
        "csim_testbench_build_seconds_cold": report["compile_seconds"],
        "csim_command_wall_seconds": csim_wall,
    }
    (out / "bench_api_predict.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"{n} samples, 16-64-32-32-5, torch threads {result['torch_threads']}, {result['cpus']} CPUs")
    for name, rate in rates.items():
        print(f"  {name:<22} {rate:>12,.0f} samples/s  ({result['ratio_to_pytorch'][name]:.2f}x PyTorch)")
    print(f"  Project.predict / csim testbench: {result['predict_over_csim_testbench']:.1f}x")
    print(f"  cold builds: library {built['build_seconds']:.1f} s, csim testbench {report['compile_seconds']:.1f} s")
    print(f"wrote {out / 'bench_api_predict.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
