"""Jet generation throughput per worker, against Pythia event generation alone.

Usage: python benchmarks/bench_generate.py [--jets-per-class 200] [--recipe hls4ml-lhc-jets]

One process (= one worker). For each class: the whole pipeline (Pythia, FastJet
clustering, matching, mMDT grooming, 16 features) for N jets, then Pythia alone for the
same number of events with the same seed. Prints jets/s per worker and the ratio of the
pipeline's time to Pythia's.
"""

from __future__ import annotations

import argparse
import time

from qapflow.data.generate.processes import DEFAULT_RECIPE, RECIPES, GeneratorSettings
from qapflow.data.generate.pythia_jets import generate_class_jets, make_pythia
from qapflow.data.schema import CLASSES


def pythia_only(class_name: str, events: int, settings: GeneratorSettings, seed: int) -> float:
    start = time.perf_counter()
    pythia = make_pythia(class_name, settings, seed)
    done = 0
    while done < events:
        done += bool(pythia.next())
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jets-per-class", type=int, default=200)
    parser.add_argument("--recipe", choices=list(RECIPES), default=DEFAULT_RECIPE)
    args = parser.parse_args()
    settings = RECIPES[args.recipe]
    print(f"{'class':<6}{'jets/s/worker':>15}{'events':>8}{'pipeline s':>12}{'pythia s':>10}{'ratio':>8}")
    total_jets = total_time = 0.0
    for class_name in CLASSES:
        start = time.perf_counter()
        _, events = generate_class_jets(class_name, args.jets_per_class, settings, seed=1)
        pipeline = time.perf_counter() - start
        baseline = pythia_only(class_name, events, settings, seed=1)
        total_jets += args.jets_per_class
        total_time += pipeline
        print(f"{class_name:<6}{args.jets_per_class / pipeline:>15.1f}{events:>8}"
              f"{pipeline:>12.2f}{baseline:>10.2f}{pipeline / baseline:>8.2f}")
    print(f"all   {total_jets / total_time:>15.1f} jets/s per worker (balanced mix)")


if __name__ == "__main__":
    main()
