"""Read and write the canonical jet HDF5 file (see `schema`)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from qapflow.common.atomic import atomic_path
from qapflow.common.errors import DataFormatError
from qapflow.data.schema import CLASSES, FEATURE_NAMES, JetArrays, validate

FORMAT_TAG = "qapflow-jets-v1"


def write_jets(path, arrays: JetArrays) -> None:
    """Write features, labels and `arrays.attrs` to `path` atomically."""
    validate(arrays, path)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            ds = f.create_dataset("features", data=arrays.features, compression="gzip")
            ds.attrs["names"] = np.array(FEATURE_NAMES, dtype=h5py.string_dtype())
            ds = f.create_dataset("labels", data=arrays.labels, compression="gzip")
            ds.attrs["classes"] = np.array(CLASSES, dtype=h5py.string_dtype())
            f.attrs["format"] = FORMAT_TAG
            for key, value in arrays.attrs.items():
                f.attrs[key] = value


def _decoded(values) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def read_jets(path) -> JetArrays:
    """Read a canonical jet file; any defect raises one DataFormatError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "file not found")
    try:
        with h5py.File(path, "r") as f:
            for name in ("features", "labels"):
                if name not in f:
                    raise DataFormatError(
                        path, f"no '{name}' dataset (found {sorted(f.keys())}); not a qapflow jet file"
                    )
            shape = f["features"].shape
            if len(shape) != 2 or shape[1] != len(FEATURE_NAMES):
                raise DataFormatError(
                    path, f"'features' has shape {list(shape)}; expected [N, {len(FEATURE_NAMES)}]"
                )
            names = _decoded(f["features"].attrs.get("names", []))
            if names != list(FEATURE_NAMES):
                raise DataFormatError(
                    path, f"feature names {names} differ from the expected {list(FEATURE_NAMES)}"
                )
            classes = _decoded(f["labels"].attrs.get("classes", []))
            if classes != list(CLASSES):
                raise DataFormatError(
                    path, f"label classes {classes} differ from the expected {list(CLASSES)}"
                )
            arrays = JetArrays(f["features"][...], f["labels"][...], dict(f.attrs))
    except DataFormatError:
        raise
    except (OSError, KeyError, ValueError) as exc:
        raise DataFormatError(path, f"cannot be read as HDF5 (truncated or corrupt?): {exc}") from exc
    return validate(arrays, path)
