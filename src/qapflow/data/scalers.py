"""The scalers of the network inputs, fitted on a training split and saved with every model.

- features [N, 16]: data.splits.Standardizer (per feature).
- constituents [N, P_data, F] -> [N, F, P] (channels first, the first P particles): each feature
  standardised over the real particles only; padded particles (all features 0) stay exactly 0,
  so padding stays the network's "no particle".
- images [N, H, W] -> [N, 1, H, W]: divided by one global scale (a pixel's meaning, its pT
  fraction, is the same everywhere).
Each to_dict() carries a `kind` (none for the Standardizer's older files); scaler_from_dict
reads any of them. They live with the data stage because every later stage (training,
simulation) reads them: the simulators scale a data file's jets exactly as training did.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qapflow.common.atomic import write_json
from qapflow.common.errors import QapflowError
from qapflow.data.sources import require_inputs
from qapflow.data.splits import Standardizer


@dataclass
class ConstituentScaler:
    mean: np.ndarray
    std: np.ndarray
    particles: int

    @classmethod
    def fit(cls, constituents: np.ndarray, particles: int) -> "ConstituentScaler":
        c = constituents[:, :particles]
        real = c[_real(c)]  # [n_real, F]
        if len(real) == 0:
            raise QapflowError("constituents: the training split holds no particle (every row is zero padding)")
        mean, std = real.mean(axis=0, dtype=np.float64), real.std(axis=0, dtype=np.float64)
        std[std == 0] = 1.0
        return cls(mean, std, particles)

    def transform(self, constituents: np.ndarray) -> np.ndarray:
        """[N, P_data, F] -> [N, F, P] float32, padded particles 0."""
        c = constituents[:, : self.particles]
        out = np.where(_real(c)[..., None], (c - self.mean) / self.std, 0.0).astype(np.float32)
        return np.ascontiguousarray(out.transpose(0, 2, 1))

    def to_dict(self) -> dict:
        return {"kind": "constituents", "particles": self.particles, "mean": self.mean.tolist(),
                "std": self.std.tolist()}

    def save(self, path) -> None:
        write_json(path, self.to_dict())


@dataclass
class ImageScaler:
    scale: float

    @classmethod
    def fit(cls, images: np.ndarray) -> "ImageScaler":
        std = float(images.std(dtype=np.float64))
        return cls(std if std > 0 else 1.0)

    def transform(self, images: np.ndarray) -> np.ndarray:
        return (images / self.scale).astype(np.float32)[:, None]

    def to_dict(self) -> dict:
        return {"kind": "images", "scale": self.scale}

    def save(self, path) -> None:
        write_json(path, self.to_dict())


def _real(c: np.ndarray) -> np.ndarray:
    """Which particles [N, P] are real: a padded row is all zeros."""
    return (c != 0).any(axis=-1)


def scaler_from_dict(data: dict, source="scaler"):
    kind = data.get("kind")
    if kind == "constituents":
        return ConstituentScaler(np.asarray(data["mean"], np.float64), np.asarray(data["std"], np.float64),
                                 int(data["particles"]))
    if kind == "images":
        return ImageScaler(float(data["scale"]))
    return Standardizer.from_dict(data, source)


def scaled_inputs(arrays, scaler: dict, index, source="data") -> np.ndarray:
    """The jets `index` of `arrays` as the model saw them: the inputs its scaler's kind names,
    scaled, float32, channels first."""
    kind = scaler.get("kind", "features")
    raw = arrays.features if kind == "features" else require_inputs(arrays, kind, source)
    return scaler_from_dict(scaler, source).transform(raw[index])
