"""The PyTorch model behind a qapflow export, evaluated exactly (float64) on test vectors.

Only models qapflow trained have one (the export manifest names the checkpoint); every
model, qapflow-made or not, is also compared with qonnx's execution of its graph.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from qapflow.common.errors import QapflowError
from qapflow.export.qonnx_export import manifest_path
from qapflow.train.checkpoint import load_checkpoint


class PyTorchUnavailable(QapflowError):
    """There is no PyTorch model to compare with, or its outputs are not on an integer grid."""


def source_checkpoint(project: dict) -> Path:
    manifest = manifest_path(project["source_model"])
    if not manifest.exists():
        raise PyTorchUnavailable("the model has no qapflow export manifest (not trained by qapflow)")
    recorded = json.loads(manifest.read_text()).get("source_checkpoint")
    if not recorded:
        raise PyTorchUnavailable(f"{manifest.name} names no PyTorch checkpoint")
    path = Path(recorded)
    if not path.exists():
        raise PyTorchUnavailable(f"the PyTorch checkpoint {path} recorded in {manifest.name} is gone")
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
    checkpoint = source_checkpoint(summary)
    float_scales = PyTorchUnavailable("float scales: PyTorch's float64 outputs are not integers on a grid "
                                      "(the qonnx comparison covers this model)")
    if not summary.get("output_exact", True):
        raise float_scales
    exact, rate = pytorch_outputs(checkpoint, np.asarray(x, np.float32).reshape(len(x), -1))
    scaled = np.ldexp(exact, -summary["output_exp"])
    if not np.array_equal(scaled, np.round(scaled)):
        # thresholds stand for float scales, or for a fixed-point layer forced into thresholds
        # (--activations thresholds, the FINN backend): only the fixed-point case is on the grid
        if any(a == "thresholds" for a in summary.get("activations", [])):
            raise float_scales
        raise QapflowError("the PyTorch outputs are not on the output grid of this fixed-point model")
    return exact, scaled.astype(np.int64), rate


def graph_pytorch_reference(summary: dict, x: np.ndarray, graph) -> tuple[np.ndarray, np.ndarray, float]:
    """pytorch_reference for an integer graph: PyTorch's exact outputs as the output tensor's
    integers, where its grid makes them integers (power-of-two scales, no float bias, no
    average left undivided); else the qonnx comparison covers the model."""
    from qapflow.intmodel.graph import Accumulator

    checkpoint = source_checkpoint(summary)
    wiring = ("Reshape", "Flatten", "Identity", "Squeeze", "Unsqueeze")
    if graph.ends is not None and any(n.op_type not in wiring for n in graph.ends.tail.graph.node):
        raise PyTorchUnavailable("software after the firmware (the graph's tail): PyTorch gives its outputs, "
                                 "not the output tensor's integers")
    out = graph.tensors[graph.output]
    grid = out.grid
    if isinstance(grid, Accumulator) and (grid.bias is not None or grid.divisor != 1):
        raise PyTorchUnavailable("a float bias or an undivided average in the output grid: PyTorch's float64 "
                                 "outputs are not integers on it (the qonnx comparison covers this model)")
    exact, rate = pytorch_outputs(checkpoint, np.asarray(x, np.float32).reshape(len(x), *graph.ends.input_shape))
    exact = exact.reshape(len(x), *out.shape)
    shape = (1, -1) + (1,) * (len(out.shape) - 1)
    if isinstance(grid, Accumulator):
        ints = exact / np.asarray(grid.scale, np.float64).reshape(shape)
    else:
        units = exact / grid.scale - np.asarray(grid.offset, np.float64).reshape(shape if np.ndim(grid.offset) else ())
        ints = units / grid.mult
    if not np.array_equal(ints, np.round(ints)):
        raise PyTorchUnavailable("float scales: PyTorch's float64 outputs are not integers on the output grid "
                                 "(the qonnx comparison covers this model)")
    return exact.reshape(len(x), -1), ints.reshape(len(x), -1).astype(np.int64), rate
