"""Trials per hour of the study's two executors on the same trials: the process pool and Ray.

Usage: python benchmarks/bench_executors.py DATA.h5 [--trials 8] [--jets 5000] [--epochs 5]

The same N small QAP trials (seeds 0..N-1) run through the pool, then through a local Ray head
this script starts (`ray start --head`) and stops, each in a fresh workdir so nothing is cached.
Prints trials per hour of each, their ratio (Ray / pool), the overhead per trial of each executor
(wall time x workers minus the trials' own time, over the trials), and whether both gave the
same per-trial results.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from qapflow.study.runner import run_study


def study_file(folder: Path, data: Path, trials: int, jets: int, epochs: int, workers: int) -> Path:
    base = {"max_jets": jets, "train": {"max_epochs": epochs, "patience": epochs, "batch_size": 512},
            "model": {"bits": 6, "scheme": "fixed-point"}, "prune": "ft", "iterations": 2, "fold_bn": False}
    study = {"study": "bench", "workdir": str(folder / "work"), "workers": workers,
             "data": {"file": str(data.resolve())}, "base": base,
             "sweeps": {"seeds": {"grid": {"train.seed": list(range(trials))}}}}
    path = folder / "bench.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


def timed(path: Path, **kw) -> tuple[float, dict]:
    start = time.perf_counter()
    record = run_study(path, progress=False, **kw)
    return time.perf_counter() - start, record


def ray_head(workers: int) -> tuple[str, str, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ray = shutil.which("ray", path=os.path.dirname(sys.executable)) or "ray"
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's Unix sockets live there
    subprocess.run([ray, "start", "--head", f"--port={port}", f"--num-cpus={workers}", "--include-dashboard=false",
                    "--node-ip-address=127.0.0.1", f"--temp-dir={temp}", "--disable-usage-stats"],
                   check=True, capture_output=True)
    return f"127.0.0.1:{port}", ray, temp


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data", type=Path)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--jets", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench_executors_"))
    figures = {}
    runs = {}
    for name in ("pool", "ray"):
        folder = root / name
        folder.mkdir()
        path = study_file(folder, args.data, args.trials, args.jets, args.epochs, args.workers)
        if name == "pool":
            wall, record = timed(path)
        else:
            address, ray, temp = ray_head(args.workers)
            try:
                wall, record = timed(path, ray_address=address)
            finally:
                subprocess.run([ray, "stop", "--force"], capture_output=True)
                shutil.rmtree(temp, ignore_errors=True)
        own = sum(r["seconds"] for r in record["trials"])
        runs[name] = {(r["label"]): r["summary"] for r in record["trials"]}
        figures[name] = {"wall_s": wall, "trials": len(record["trials"]), "failed": len(record["failures"]),
                         "trials_per_hour": 3600 * len(record["trials"]) / wall,
                         "overhead_s_per_trial": (wall * args.workers - own) / max(len(record["trials"]), 1),
                         "mean_trial_s": own / max(len(record["trials"]), 1)}
        print(f"{name:>4}: {figures[name]['trials']} trials in {wall:.1f} s = {figures[name]['trials_per_hour']:.0f}"
              f" trials/hour; trial {figures[name]['mean_trial_s']:.1f} s, overhead "
              f"{figures[name]['overhead_s_per_trial']:.1f} s per trial ({args.workers} workers)")
    ratio = figures["ray"]["trials_per_hour"] / figures["pool"]["trials_per_hour"]
    same = runs["ray"] == runs["pool"]
    print(f"ratio Ray / pool: {ratio:.2f} trials per hour; same per-trial results: {same}")
    print(json.dumps({"figures": figures, "ratio_ray_over_pool": ratio, "same_results": same,
                      "settings": vars(args) | {"data": str(args.data)}}, default=str))
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
