"""The one in-memory and on-disk layout of the jet data, whatever its source.

HDF5: `features` [N, 16] float32 (attribute `names`), `labels` [N, 5] uint8 one-hot
(attribute `classes`), generator settings and seed as file attributes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from qapflow.common.errors import DataFormatError

FEATURE_NAMES: tuple[str, ...] = (
    "j_zlogz",
    "j_c1_b0_mmdt",
    "j_c1_b1_mmdt",
    "j_c1_b2_mmdt",
    "j_c2_b1_mmdt",
    "j_c2_b2_mmdt",
    "j_d2_b1_mmdt",
    "j_d2_b2_mmdt",
    "j_d2_a1_b1_mmdt",
    "j_d2_a1_b2_mmdt",
    "j_m2_b1_mmdt",
    "j_m2_b2_mmdt",
    "j_n2_b1_mmdt",
    "j_n2_b2_mmdt",
    "j_mass_mmdt",
    "j_multiplicity",
)
CLASSES: tuple[str, ...] = ("g", "q", "w", "z", "t")
LABEL_NAMES: tuple[str, ...] = tuple(f"j_{c}" for c in CLASSES)


@dataclass
class JetArrays:
    """Features [N, 16] float32 and one-hot labels [N, 5] uint8, in the canonical order."""

    features: np.ndarray
    labels: np.ndarray
    attrs: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.features)

    @property
    def class_index(self) -> np.ndarray:
        return self.labels.argmax(axis=1)

    def subset(self, index) -> "JetArrays":
        return JetArrays(self.features[index], self.labels[index], dict(self.attrs))


def validate(arrays: JetArrays, source) -> JetArrays:
    """Check shapes, dtypes and values; raise one DataFormatError naming `source`."""
    f, y = arrays.features, arrays.labels
    if f.ndim != 2 or f.shape[1] != len(FEATURE_NAMES):
        raise DataFormatError(
            source, f"expected features of shape [N, {len(FEATURE_NAMES)}], got {list(f.shape)}"
        )
    if y.ndim != 2 or y.shape[1] != len(CLASSES):
        raise DataFormatError(
            source, f"expected one-hot labels of shape [N, {len(CLASSES)}], got {list(y.shape)}"
        )
    if len(f) != len(y):
        raise DataFormatError(source, f"{len(f)} feature rows but {len(y)} label rows")
    if len(f) == 0:
        raise DataFormatError(source, "holds no jets")
    bad = ~np.isfinite(f)
    if bad.any():
        row, col = map(int, np.argwhere(bad)[0])
        raise DataFormatError(
            source,
            f"{int(bad.sum())} non-finite feature values (NaN/inf), first at jet {row}, "
            f"feature {FEATURE_NAMES[col]}",
        )
    if not np.isin(y, (0, 1)).all() or not (y.sum(axis=1) == 1).all():
        row = int(np.flatnonzero(~(np.isin(y, (0, 1)).all(axis=1) & (y.sum(axis=1) == 1)))[0])
        raise DataFormatError(
            source, f"labels are not one-hot over {list(CLASSES)} (first bad jet: {row})"
        )
    arrays.features = np.ascontiguousarray(f, dtype=np.float32)
    arrays.labels = np.ascontiguousarray(y, dtype=np.uint8)
    return arrays


def one_hot(class_index: np.ndarray) -> np.ndarray:
    out = np.zeros((len(class_index), len(CLASSES)), dtype=np.uint8)
    out[np.arange(len(class_index)), class_index] = 1
    return out


def class_index_from_names(names, source) -> np.ndarray:
    """Map class names ('g', 'q', 'w', 'z', 't', any case, or 'j_g' ...) to indices."""
    lookup = {c: i for i, c in enumerate(CLASSES)}
    lookup.update({f"j_{c}": i for i, c in enumerate(CLASSES)})
    uniques, inverse = np.unique(np.asarray(names), return_inverse=True)
    codes = np.empty(len(uniques), dtype=np.int64)
    for u, name in enumerate(uniques):
        key = name.decode() if isinstance(name, bytes) else str(name)
        key = key.strip().lower()
        if key not in lookup:
            row = int(np.flatnonzero(inverse == u)[0])
            raise DataFormatError(
                source, f"unknown class label {key!r} at row {row}; expected one of {list(CLASSES)}"
            )
        codes[u] = lookup[key]
    return codes[inverse.reshape(-1)]
