"""The PyTorch model behind a project, evaluated exactly (float64) on test vectors."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from qapflow.common.errors import QapflowError
from qapflow.export.qonnx_export import read_manifest
from qapflow.train.checkpoint import load_checkpoint


def source_checkpoint(project: dict) -> Path:
    manifest = read_manifest(project["source_model"])
    path = Path(manifest["source_checkpoint"])
    if not path.exists():
        raise QapflowError(f"the PyTorch checkpoint {path} recorded in the export manifest is gone")
    return path


def pytorch_outputs(checkpoint: Path, x: np.ndarray) -> tuple[np.ndarray, float]:
    """(outputs in float64, float32 inference throughput in samples/s).

    float64 makes every fixed-point sum exact, so the result is the model's exact value;
    the float32 run is timed for the throughput comparison.
    """
    model, _, _, _ = load_checkpoint(checkpoint)
    with torch.no_grad():
        start = time.perf_counter()
        model(torch.from_numpy(x))
        rate = len(x) / max(time.perf_counter() - start, 1e-9)
        exact = model.double()(torch.from_numpy(x).double()).numpy()
    return exact, rate



def pytorch_reference(summary: dict, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(exact float64 outputs, the same as integers at the output scale, float32 samples/s)."""
    exact, rate = pytorch_outputs(source_checkpoint(summary), x)
    scaled = np.ldexp(exact, -summary["output_exp"])
    if not np.array_equal(scaled, np.round(scaled)):
        raise QapflowError("the PyTorch outputs are not on the output grid: the model is not fixed point")
    return exact, scaled.astype(np.int64), rate
