"""Simulation inputs: jets from a data file (standardised by the model's scaler), or any
array file in the model's input shape (.npy, .npz, .h5), mapped to the firmware's integers."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qapflow.common.errors import DataFormatError, QapflowError
from qapflow.common.hashing import file_digest
from qapflow.data.sources import load_jets
from qapflow.data.scalers import scaled_inputs
from qapflow.data.splits import paper_split

INPUT_KEYS = ("inputs", "x", "features", "data")


@dataclass
class SimInputs:
    x: np.ndarray  # float32, the model's input shape
    labels: np.ndarray | None
    source: dict  # what was simulated: file, split, rows


def same_file(a, b) -> bool:
    """Whether two paths name the same data: the same file, or files with the same digest."""
    a, b = Path(a), Path(b)
    if not (a.exists() and b.exists()):
        return False
    if os.path.samefile(a, b):
        return True
    return a.is_file() and b.is_file() and a.stat().st_size == b.stat().st_size and file_digest(a) == file_digest(b)


def jets_inputs(data_file, n: int, scaler: dict | None, data_info: dict | None, split: str = "test") -> SimInputs:
    """The first n jets of the test split when `data_file` is the file the model was trained on
    (compared by file identity or digest, not by path string), else the file's first n jets."""
    arrays = load_jets(data_file)
    index = np.arange(len(arrays))
    info = data_info or {}
    trained_on = info.get("file")
    used = "all rows (split=all)" if split != "test" else "first rows (not the model's training file)"
    if split == "test" and trained_on and same_file(trained_on, data_file):
        total = info.get("max_jets") or len(arrays)
        index = paper_split(min(total, len(arrays)), info.get("split_seed") or 0).test
        used = "test split of the model's training file"
    index = index[:n]
    if scaler:  # the inputs the model was trained on (features, constituents or images), scaled as then
        x = scaled_inputs(arrays, scaler, index, data_file)
    else:
        x = arrays.features[index].astype(np.float32)
    return SimInputs(np.asarray(x, np.float32), arrays.class_index[index],
                     {"file": str(data_file), "split": used, "rows": int(len(index)),
                      "standardised": scaler is not None})


def array_inputs(path, n: int, input_shape: list[int]) -> SimInputs:
    """Inputs from .npy, .npz or .h5 (float32, already preprocessed), checked against the shape."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "file not found")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            x = np.load(path, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                key = next((k for k in INPUT_KEYS if k in z.files), z.files[0] if z.files else None)
                if key is None:
                    raise DataFormatError(path, "the .npz holds no arrays")
                x = z[key]
        elif suffix in (".h5", ".hdf5"):
            import h5py

            with h5py.File(path, "r") as f:
                key = next((k for k in INPUT_KEYS if k in f), None)
                if key is None:
                    raise DataFormatError(path, f"no dataset named one of {list(INPUT_KEYS)}")
                x = f[key][...]
        else:
            raise DataFormatError(path, "inputs must be .npy, .npz or .h5")
    except (OSError, ValueError) as exc:
        raise DataFormatError(path, f"cannot be read: {exc}") from exc
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating) and not np.issubdtype(x.dtype, np.integer):
        raise DataFormatError(path, f"inputs of type {x.dtype}; expected numbers (float32)")
    per_sample = int(np.prod(input_shape))
    if x.ndim == 0 or len(x) == 0 or x[0].size != per_sample:
        raise DataFormatError(path, f"inputs of shape {list(x.shape)}: the model takes {input_shape} "
                                    f"({per_sample} values) per sample")
    x = x[:n]
    with np.errstate(over="ignore"):  # numbers beyond float32 become inf: named below
        x32 = x.astype(np.float32)
    check_finite_rows(path, x.reshape(len(x), -1), x32.reshape(len(x), -1))
    return SimInputs(x32.reshape(-1, *input_shape), None, {"file": str(path), "split": "as given",
                                                             "rows": int(len(x32))})


def check_finite_rows(path, given: np.ndarray, x32: np.ndarray, shown: int = 3) -> None:
    """NaN or inf inputs (also numbers too large for float32) named by row and column (the
    value's index within its sample): the firmware has no such values, and they would surface
    later as outputs off the model's grid."""
    bad = ~np.isfinite(x32)
    if bad.any():
        places = [f"row {r}, column {c} ({given[r, c]})" for r, c in np.argwhere(bad)[:shown]]
        more = f" and {int(bad.sum()) - shown} more" if bad.sum() > shown else ""
        raise DataFormatError(path, f"{int(bad.sum())} input values are not finite float32 numbers (NaN, inf "
                                    f"or beyond float32's range): {'; '.join(places)}{more}")


def simulation_inputs(summary: dict, n: int, data_file=None, inputs_file=None, split: str = "test") -> SimInputs:
    if n < 1:
        raise QapflowError(f"--n must be at least 1, got {n}")
    if (data_file is None) == (inputs_file is None):
        raise QapflowError("give exactly one of --data JETS.h5 or --inputs FILE")
    shape = summary.get("input_shape") or [summary["layer_widths"][0][1]]
    if inputs_file is not None:
        return array_inputs(inputs_file, n, shape)
    if int(np.prod(shape)) != 16 and summary.get("scaler") is None:
        raise QapflowError(f"the model takes {shape} inputs, not the 16 jet features; use --inputs FILE")
    return jets_inputs(data_file, n, summary.get("scaler"), summary.get("data"), split)
