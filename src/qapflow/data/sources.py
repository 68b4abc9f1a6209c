"""Read every source of the jet data into one JetArrays layout.

- canonical qapflow HDF5 (`features`, `labels`): generated or converted files;
- OpenML data set 42468 as ARFF or parquet: 16 feature columns and a nominal `class`;
- Zenodo record 3602254: HDF5 files with `jets` [N, 59] and `jetFeatureNames`, either
  loose, in a folder, or inside the record's .tar.gz archives.

Only qapflow's generator writes constituents and jet images; `require_inputs` is what a later
stage calls to get the inputs it needs, with one error where the source lacks them.
"""

from __future__ import annotations

import tarfile
import tempfile
from pathlib import Path

import h5py
import numpy as np

from qapflow.common.errors import DataFormatError, QapflowError
from qapflow.data.h5file import read_jets
from qapflow.data.schema import (
    FEATURE_NAMES,
    LABEL_NAMES,
    JetArrays,
    class_index_from_names,
    one_hot,
    validate,
)

TARGET_COLUMNS = ("class", "target")
INPUT_KINDS = ("features", "constituents", "images")


def _columns(table: dict[str, np.ndarray], path) -> JetArrays:
    """Features by name and the class column from a column table (ARFF or parquet)."""
    missing = [n for n in FEATURE_NAMES if n not in table]
    if missing:
        raise DataFormatError(path, f"missing feature columns {missing}")
    target = next((t for t in TARGET_COLUMNS if t in table), None)
    if target is None:
        raise DataFormatError(path, f"no class column (looked for {list(TARGET_COLUMNS)})")
    features = np.stack([np.asarray(table[n], dtype=np.float64) for n in FEATURE_NAMES], axis=1)
    labels = one_hot(class_index_from_names(table[target], path))
    return validate(JetArrays(features, labels, {"source": f"openml:{Path(path).name}"}), path)


def read_arff(path) -> JetArrays:
    from scipy.io import arff

    try:
        data, _ = arff.loadarff(str(path))
    except Exception as exc:  # scipy raises several types for malformed ARFF
        raise DataFormatError(path, f"cannot be read as ARFF: {exc}") from exc
    return _columns({n: data[n] for n in data.dtype.names}, path)


def read_parquet(path) -> JetArrays:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise DataFormatError(path, "reading parquet needs pyarrow: pip install 'qapflow[parquet]'") from exc
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow's ArrowInvalid and OSError
        raise DataFormatError(path, f"cannot be read as parquet: {exc}") from exc
    return _columns({n: table.column(n).to_numpy() for n in table.column_names}, path)


def read_zenodo_h5(path) -> JetArrays:
    """One Zenodo file: columns picked from `jets` by the names in `jetFeatureNames`."""
    try:
        with h5py.File(path, "r") as f:
            if "jets" not in f or "jetFeatureNames" not in f:
                raise DataFormatError(path, "no 'jets'/'jetFeatureNames' datasets: not a Zenodo jet file")
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in f["jetFeatureNames"][...]]
            jets = f["jets"][...]
    except DataFormatError:
        raise
    except (OSError, KeyError, ValueError) as exc:
        raise DataFormatError(path, f"cannot be read as HDF5 (truncated or corrupt?): {exc}") from exc
    if jets.ndim != 2 or jets.shape[1] != len(names):
        raise DataFormatError(path, f"'jets' has shape {list(jets.shape)} but {len(names)} column names")
    missing = [n for n in (*FEATURE_NAMES, *LABEL_NAMES) if n not in names]
    if missing:
        raise DataFormatError(path, f"missing columns {missing}")
    col = {n: i for i, n in enumerate(names)}
    features = jets[:, [col[n] for n in FEATURE_NAMES]]
    labels = jets[:, [col[n] for n in LABEL_NAMES]]
    if not np.isin(labels, (0, 1)).all():
        raise DataFormatError(path, "label columns j_g..j_t hold values other than 0 and 1")
    return validate(JetArrays(features, labels.astype(np.uint8), {"source": "zenodo"}), path)


def _concat(parts: list[JetArrays], source: str) -> JetArrays:
    def joined(name):  # an optional array survives only if every part has it
        arrays = [getattr(p, name) for p in parts]
        return None if any(a is None for a in arrays) else np.concatenate(arrays)

    return JetArrays(
        np.concatenate([p.features for p in parts]),
        np.concatenate([p.labels for p in parts]),
        {"source": source},
        joined("constituents"),
        joined("images"),
    )


def read_zenodo_tree(paths) -> JetArrays:
    """Every Zenodo h5 file in the given files, folders and .tar.gz archives, in name order."""
    parts: list[JetArrays] = []
    for path in map(Path, paths):
        if path.is_dir():
            files = sorted(path.rglob("*.h5"))
            if not files:
                raise DataFormatError(path, "folder holds no .h5 files")
            parts += [read_zenodo_h5(f) for f in files]
        elif path.name.endswith((".tar.gz", ".tgz", ".tar")):
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    with tarfile.open(path) as tar:
                        tar.extractall(tmp, filter="data")
                except (tarfile.TarError, OSError, EOFError) as exc:
                    raise DataFormatError(path, f"cannot be unpacked (truncated?): {exc}") from exc
                parts.append(read_zenodo_tree([tmp]))
        else:
            parts.append(read_zenodo_h5(path))
    return _concat(parts, "zenodo")


def detect_format(path: Path) -> str:
    if path.is_dir() or path.name.endswith((".tar.gz", ".tgz", ".tar")):
        return "zenodo"
    suffix = path.suffix.lower()
    if suffix == ".arff":
        return "arff"
    if suffix in (".pq", ".parquet"):
        return "parquet"
    if suffix in (".h5", ".hdf5"):
        if not path.is_file():
            raise DataFormatError(path, "file not found")
        try:
            with h5py.File(path, "r") as f:
                return "zenodo" if "jets" in f else "canonical"
        except OSError as exc:
            raise DataFormatError(path, f"cannot be read as HDF5 (truncated or corrupt?): {exc}") from exc
    raise DataFormatError(path, "unknown data format; expected .h5, .arff, .parquet/.pq or .tar.gz")


READERS = {
    "canonical": read_jets,
    "arff": read_arff,
    "parquet": read_parquet,
    "zenodo": lambda p: read_zenodo_tree([p]),
}


def load_jets(path) -> JetArrays:
    """Load any supported jet data file or folder, validated, in the canonical class order."""
    path = Path(path)
    if not path.exists():
        raise DataFormatError(path, "file not found")
    return READERS[detect_format(path)](path)


def _downloaded_from(attrs: dict) -> str | None:
    """'openml' or 'zenodo' for a downloaded data set (converted or read directly), else None."""
    def text(v):
        return v.decode() if isinstance(v, bytes) else str(v)

    if "downloaded_from" in attrs:
        return text(attrs["downloaded_from"])
    origin = text(attrs.get("source", ""))
    return next((s for s in ("openml", "zenodo") if origin.startswith(s)), None)


def require_inputs(arrays: JetArrays, kind: str, source) -> np.ndarray:
    """The network inputs of `kind` ('features' [N, 16], 'constituents' [N, P, F] or 'images'
    [N, H, W]) of `arrays`, loaded from `source`; one DataFormatError naming `source` when it
    does not hold them (downloaded data sets never do: their files have only the 16 features)."""
    if kind not in INPUT_KINDS:
        raise QapflowError(f"unknown input kind {kind!r}; expected one of {list(INPUT_KINDS)}")
    values = getattr(arrays, kind)
    if values is not None:
        return values
    origin = _downloaded_from(arrays.attrs)
    remedy = "qapflow's generator writes them: make the data set with `qapflow data generate`"
    if origin == "openml":
        why = "the data set downloaded from OpenML (data set 42468) holds only the 16 high-level features"
    elif origin == "zenodo":
        why = ("the data set read from Zenodo (record 3602254) holds only the 16 high-level features "
               "here (qapflow does not convert the record's own constituent lists and images)")
    elif arrays.attrs.get("source") == "generated":
        why = f"the file has no '{kind}' dataset (generated before the generator stored them)"
    else:
        why = f"the file has no '{kind}' dataset"
    raise DataFormatError(source, f"{kind} requested, but {why}; {remedy}")
