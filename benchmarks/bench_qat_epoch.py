"""One QAT training epoch against one plain float epoch of the same network and data.

Usage: python benchmarks/bench_qat_epoch.py [DATA.h5] [--jets 100000] [--batch-size 1024 4096]

Both epochs go through the project's trainer (qapflow.train.trainer.train, max_epochs=1),
in this process, on the same tensors; the float model is the 32-bit spec (plain torch
layers). Each is timed --repeats times and the best is kept. Prints the QAT/float ratios.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from qapflow.nn.model import build_model
from qapflow.nn.spec import ModelSpec
from qapflow.train.masks import PruneMasks
from qapflow.train.trainer import TrainConfig, train


def load_tensors(path: str | None, n: int) -> dict[str, torch.Tensor]:
    if path:
        from qapflow.data.sources import load_jets
        from qapflow.data.splits import Standardizer

        arrays = load_jets(path).subset(slice(0, n))
        x = Standardizer.fit(arrays.features).transform(arrays.features)
        y = arrays.class_index
    else:  # no file: standard-normal features, random labels (timing only)
        rng = np.random.default_rng(0)
        x = rng.normal(size=(n, 16)).astype(np.float32)
        y = rng.integers(0, 5, n)
    x, y = torch.from_numpy(x), torch.from_numpy(y).long()
    cut = int(0.8 * n)
    return {"x_train": x[:cut], "y_train": y[:cut], "x_val": x[cut:], "y_val": y[cut:]}


def epoch_seconds(spec: ModelSpec, data, batch_size: int, repeats: int) -> float:
    best = float("inf")
    for r in range(repeats):
        torch.manual_seed(r)
        model = build_model(spec)
        cfg = TrainConfig(max_epochs=1, batch_size=batch_size, seed=r)
        start = time.perf_counter()
        train(model, PruneMasks.ones_like(model), data, cfg, progress=False)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data", nargs="?")
    parser.add_argument("--jets", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, nargs="+", default=[1024, 4096])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data = load_tensors(args.data, args.jets)
    print(f"train {len(data['x_train'])} jets, threads {torch.get_num_threads()}")
    print(f"{'batch':>6}  {'model':<26}{'epoch s':>9}{'ratio':>8}")
    for batch in args.batch_size:
        base = epoch_seconds(ModelSpec(bits=32), data, batch, args.repeats)
        print(f"{batch:>6}  {'float 32-bit (baseline)':<26}{base:>9.3f}{1.0:>8.2f}")
        for label, spec in (("6-bit fixed-point", ModelSpec(bits=6)),
                            ("6-bit scaled-int", ModelSpec(bits=6, scheme="scaled-int", input_bits=None)),
                            ("4-bit fixed-point", ModelSpec(bits=4))):
            t = epoch_seconds(spec, data, batch, args.repeats)
            print(f"{batch:>6}  {label:<26}{t:>9.3f}{t / base:>8.2f}")


if __name__ == "__main__":
    main()
