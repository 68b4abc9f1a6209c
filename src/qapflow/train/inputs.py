"""The network input of each architecture, and its scaling (fitted on the training split only).

- mlp: the 16 features [N, 16], standardised per feature (data.splits.Standardizer).
- deepsets: `arrays.constituents` [N, P_data, F], the first `particles`, as [N, F, P] (channels
  first); each feature standardised over the real particles only, and padded particles (all
  features 0) kept at exactly 0, so that padding stays the network's "no particle".
- cnn2d: `arrays.images` [N, H, W] as [N, 1, H, W], divided by one global scale (the training
  pixels' standard deviation): a pixel's meaning (its pT fraction) is the same everywhere.

Each scaler's to_dict() is saved as scaler.json and in every checkpoint, as the Standardizer's
is; `scaler_from_dict` reads any of them (a `kind` key tells the new ones apart).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qapflow.common.atomic import write_json
from qapflow.common.errors import QapflowError
from qapflow.data.sources import require_inputs
from qapflow.data.splits import Standardizer
from qapflow.nn.spec import ModelSpec


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


def raw_inputs(spec: ModelSpec, arrays, source="data") -> np.ndarray:
    """The arrays this architecture reads (from the data file `source`), checked against the spec."""
    if spec.arch == "mlp":
        return arrays.features
    values = require_inputs(arrays, "constituents" if spec.arch == "deepsets" else "images", source)
    if spec.arch == "deepsets":
        if values.ndim != 3 or values.shape[2] != spec.particle_features:
            raise QapflowError(f"model.particle_features: {spec.particle_features}, but the constituents have "
                               f"shape {list(values.shape)} ([N, P, F])")
        if values.shape[1] < spec.particles:
            raise QapflowError(f"model.particles: {spec.particles}, but the data hold {values.shape[1]} per jet")
    elif values.ndim != 3 or list(values.shape[1:]) != list(spec.image):
        raise QapflowError(f"model.image: {spec.image}, but the images have shape {list(values.shape)} ([N, H, W])")
    return values


def fit_scaler(spec: ModelSpec, arrays, index, source="data"):
    values = raw_inputs(spec, arrays, source)[index]
    if spec.arch == "deepsets":
        return ConstituentScaler.fit(values, spec.particles)
    if spec.arch == "cnn2d":
        return ImageScaler.fit(values)
    return Standardizer.fit(values)


def model_inputs(spec: ModelSpec, arrays, index, scaler) -> np.ndarray:
    """The scaled network input of the jets `index`, float32, channels first."""
    return scaler.transform(raw_inputs(spec, arrays)[index])
