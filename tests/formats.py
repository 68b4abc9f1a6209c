"""Writers of the public data set's file formats, for tests (no network needed).

They write the formats as the sources publish them: OpenML's ARFF (16 numeric
attributes and a nominal `class`) and parquet, and Zenodo's HDF5 files with a `jets`
matrix whose columns are named by `jetFeatureNames`, packed in a .tar.gz.
"""

from __future__ import annotations

import io
import tarfile
import tempfile
from pathlib import Path

import h5py
import numpy as np

from qapflow.data.schema import CLASSES, FEATURE_NAMES, LABEL_NAMES, JetArrays

# Columns of the real Zenodo files that qapflow does not use, to test selection by name.
EXTRA_ZENODO_COLUMNS = ("j_ptfrac", "j_pt", "j_eta", "j_mass", "j_tau1_b1", "j_undef", "j_index")


def class_names(arrays: JetArrays) -> list[str]:
    return [CLASSES[i] for i in arrays.class_index]


def write_arff(path: Path, arrays: JetArrays, classes=None) -> None:
    lines = ["@RELATION hls4ml_lhc_jets_hlf", ""]
    lines += [f"@ATTRIBUTE {name} NUMERIC" for name in FEATURE_NAMES]
    lines += ["@ATTRIBUTE class {g,q,t,w,z}", "", "@DATA"]
    for row, label in zip(arrays.features, classes or class_names(arrays)):
        lines.append(",".join(f"{float(v)!r}" for v in row) + f",{label}")
    Path(path).write_text("\n".join(lines) + "\n")


def write_parquet(path: Path, arrays: JetArrays) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {name: arrays.features[:, j] for j, name in enumerate(FEATURE_NAMES)}
    columns["class"] = class_names(arrays)
    pq.write_table(pa.table(columns), path)


def write_zenodo_h5(path: Path, arrays: JetArrays) -> None:
    names = list(EXTRA_ZENODO_COLUMNS[:5]) + list(reversed(FEATURE_NAMES)) + list(LABEL_NAMES)
    names += list(EXTRA_ZENODO_COLUMNS[5:])
    rng = np.random.default_rng(0)
    jets = rng.normal(size=(len(arrays), len(names))).astype(np.float32)
    for j, name in enumerate(FEATURE_NAMES):
        jets[:, names.index(name)] = arrays.features[:, j]
    for j, name in enumerate(LABEL_NAMES):
        jets[:, names.index(name)] = arrays.labels[:, j]
    jets[:, names.index("j_undef")] = 0
    with h5py.File(path, "w") as f:
        f["jetFeatureNames"] = np.array([n.encode() for n in names])
        f["jets"] = jets


def zenodo_tarball(arrays: JetArrays, n_files: int = 2) -> bytes:
    """A .tar.gz of `n_files` Zenodo h5 files in a train/ folder, as the record ships them."""
    buffer = io.BytesIO()
    with tempfile.TemporaryDirectory() as tmp, tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for k, part in enumerate(np.array_split(np.arange(len(arrays)), n_files)):
            name = f"jetImage_{k}_100p_{part[0]}_{part[-1] + 1}.h5"
            write_zenodo_h5(Path(tmp) / name, arrays.subset(part))
            tar.add(Path(tmp) / name, arcname=f"train/{name}")
    return buffer.getvalue()
