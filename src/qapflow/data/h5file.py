"""Read and write the canonical jet HDF5 file (see `schema`)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from qapflow.common.atomic import atomic_path
from qapflow.common.errors import DataFormatError
from qapflow.data.schema import (
    CLASSES,
    CONSTITUENT_NAMES,
    FEATURE_NAMES,
    IMAGE_HALF_WIDTH,
    IMAGE_PIXELS,
    JetArrays,
    validate,
)

# v1 still: the optional datasets leave features and labels as they were, old readers skip them
FORMAT_TAG = "qapflow-jets-v1"
IMAGE_EXTENT = (-IMAGE_HALF_WIDTH, IMAGE_HALF_WIDTH, -IMAGE_HALF_WIDTH, IMAGE_HALF_WIDTH)
IMAGE_AXES = ("eta_rel", "phi_rel")


def _strings(values) -> np.ndarray:
    return np.array(values, dtype=h5py.string_dtype())


def write_jets(path, arrays: JetArrays) -> None:
    """Write features, labels, constituents and images (when present) and `arrays.attrs` to
    `path` atomically."""
    validate(arrays, path)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            ds = f.create_dataset("features", data=arrays.features, compression="gzip")
            ds.attrs["names"] = _strings(FEATURE_NAMES)
            ds = f.create_dataset("labels", data=arrays.labels, compression="gzip")
            ds.attrs["classes"] = _strings(CLASSES)
            if arrays.constituents is not None:
                # shuffle: the zero padding and float32 exponents compress far better
                ds = f.create_dataset("constituents", data=arrays.constituents, compression="gzip",
                                      shuffle=True)
                ds.attrs["names"] = _strings(CONSTITUENT_NAMES)
            if arrays.images is not None:
                ds = f.create_dataset("images", data=arrays.images, compression="gzip", shuffle=True)
                ds.attrs["extent"] = np.array(IMAGE_EXTENT, dtype=np.float64)
                ds.attrs["pixels"] = np.array([IMAGE_PIXELS, IMAGE_PIXELS], dtype=np.int64)
                ds.attrs["axes"] = _strings(IMAGE_AXES)
                ds.attrs["weights"] = "pt_rel"
            f.attrs["format"] = FORMAT_TAG
            for key, value in arrays.attrs.items():
                f.attrs[key] = value


def _decoded(values) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def _constituents(f, path) -> np.ndarray | None:
    if "constituents" not in f:
        return None
    names = _decoded(f["constituents"].attrs.get("names", []))
    if names != list(CONSTITUENT_NAMES):
        raise DataFormatError(path, f"dataset 'constituents': names {names} differ from the "
                                    f"expected {list(CONSTITUENT_NAMES)}")
    return f["constituents"][...]


def _images(f, path) -> np.ndarray | None:
    if "images" not in f:
        return None
    attrs = f["images"].attrs
    extent = np.asarray(attrs.get("extent", []), dtype=np.float64).tolist()
    pixels = np.asarray(attrs.get("pixels", []), dtype=np.int64).tolist()
    if extent != list(IMAGE_EXTENT) or pixels != [IMAGE_PIXELS, IMAGE_PIXELS]:
        raise DataFormatError(path, f"dataset 'images': extent {extent} and pixels {pixels} differ "
                                    f"from the expected {list(IMAGE_EXTENT)} and {[IMAGE_PIXELS] * 2}")
    return f["images"][...]


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
            arrays = JetArrays(f["features"][...], f["labels"][...], dict(f.attrs),
                               _constituents(f, path), _images(f, path))
    except DataFormatError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as exc:  # TypeError: a group, not a dataset
        raise DataFormatError(path, f"cannot be read as HDF5 (truncated or corrupt?): {exc}") from exc
    return validate(arrays, path)
