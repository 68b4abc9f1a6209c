"""The one in-memory and on-disk layout of the jet data, whatever its source.

HDF5: `features` [N, 16] float32 (attribute `names`), `labels` [N, 5] uint8 one-hot
(attribute `classes`), generator settings and seed as file attributes. Generated files also
hold, for the same jets in the same order:
- `constituents` [N, P, 11] float32 (attribute `names` = CONSTITUENT_NAMES): the jet's P
  leading constituents by pT (P = the generator's max_constituents, 32 by default), rows
  past the jet's multiplicity all zero;
- `images` [N, 16, 16] float32 (attributes `extent`, `pixels`, `axes`, `weights`): the jet's
  pT-fraction image in (eta_rel, phi_rel) over [-0.8, 0.8) x [-0.8, 0.8).
Both are optional: downloaded files (OpenML, Zenodo) and older files have neither.
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
# Per constituent, relative to the jet axis (the direction of the jet's summed four-momentum):
# pT / jet pT, eta - jet eta, phi - jet phi wrapped into [-pi, pi), ln(pT / GeV), E / jet E,
# sqrt(eta_rel^2 + phi_rel^2), electric charge, and its particle-flow type as four flags (see
# generate/jet_inputs.py for what each flag means with and without the detector).
CONSTITUENT_NAMES: tuple[str, ...] = (
    "pt_rel",
    "eta_rel",
    "phi_rel",
    "log_pt",
    "e_rel",
    "delta_r",
    "charge",
    "is_charged_hadron",
    "is_lepton",
    "is_photon",
    "is_neutral_hadron",
)
DEFAULT_MAX_CONSTITUENTS = 32
# The jet image: IMAGE_PIXELS x IMAGE_PIXELS pixels over [-IMAGE_HALF_WIDTH, IMAGE_HALF_WIDTH)
# in eta_rel (first index) and phi_rel (second index); a pixel holds the summed pT fractions.
IMAGE_PIXELS = 16
IMAGE_HALF_WIDTH = 0.8
CLASSES: tuple[str, ...] = ("g", "q", "w", "z", "t")
LABEL_NAMES: tuple[str, ...] = tuple(f"j_{c}" for c in CLASSES)


@dataclass
class JetArrays:
    """Features [N, 16] float32 and one-hot labels [N, 5] uint8, in the canonical order;
    optionally constituents [N, P, 11] and images [N, 16, 16] float32 of the same jets."""

    features: np.ndarray
    labels: np.ndarray
    attrs: dict = field(default_factory=dict)
    constituents: np.ndarray | None = None
    images: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.features)

    @property
    def class_index(self) -> np.ndarray:
        return self.labels.argmax(axis=1)

    def subset(self, index) -> "JetArrays":
        """The jets `index` picks (a slice, index or mask array), every array alike."""
        def take(a):
            return None if a is None else a[index]

        return JetArrays(self.features[index], self.labels[index], dict(self.attrs),
                         take(self.constituents), take(self.images))


def _per_jet(values, name: str, trailing: tuple, n: int, source) -> np.ndarray:
    """`values` as float32 of shape [n, *trailing] (None in `trailing`: any size >= 1) with
    finite values; else one DataFormatError naming `source` and the dataset."""
    where = f"dataset '{name}'"
    values = np.asarray(values)
    want = "[" + ", ".join(["N", *("*" if t is None else str(t) for t in trailing)]) + "]"
    if values.ndim != 1 + len(trailing) or any(
        (t is None and s < 1) or (t is not None and s != t) for s, t in zip(values.shape[1:], trailing)
    ):
        raise DataFormatError(source, f"{where} has shape {list(values.shape)}; expected {want}")
    if len(values) != n:
        raise DataFormatError(source, f"{where} holds {len(values)} jets but features hold {n}")
    if not (np.issubdtype(values.dtype, np.floating) or np.issubdtype(values.dtype, np.integer)):
        raise DataFormatError(source, f"{where} has dtype {values.dtype}; expected float32")
    values = np.ascontiguousarray(values, dtype=np.float32)
    bad = ~np.isfinite(values)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise DataFormatError(
            source, f"{where} holds {int(bad.sum())} non-finite values (NaN/inf), first at {list(first)}"
        )
    return values


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
    if arrays.constituents is not None:
        arrays.constituents = _per_jet(arrays.constituents, "constituents",
                                       (None, len(CONSTITUENT_NAMES)), len(f), source)
    if arrays.images is not None:
        arrays.images = _per_jet(arrays.images, "images", (IMAGE_PIXELS, IMAGE_PIXELS), len(f), source)
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
