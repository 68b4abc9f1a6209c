"""The network input of each architecture, and its scaling (fitted on the training split only).

- mlp: the 16 features [N, 16], standardised per feature (data.splits.Standardizer).
- deepsets: `arrays.constituents` [N, P_data, F], the first `particles`, as [N, F, P] (channels
  first); each feature standardised over the real particles only, and padded particles (all
  features 0) kept at exactly 0, so that padding stays the network's "no particle".
- cnn2d: `arrays.images` [N, H, W] as [N, 1, H, W], divided by one global scale (the training
  pixels' standard deviation): a pixel's meaning (its pT fraction) is the same everywhere.

Each scaler's to_dict() is saved as scaler.json and in every checkpoint, as the Standardizer's
is; `scaler_from_dict` reads any of them (a `kind` key tells the new ones apart). The scalers
live in data/scalers.py, where the simulators read them too.
"""

from __future__ import annotations


import numpy as np

from qapflow.common.errors import QapflowError
from qapflow.data.sources import require_inputs
from qapflow.data.scalers import ConstituentScaler, ImageScaler, scaler_from_dict  # noqa: F401 (re-exported)
from qapflow.data.splits import Standardizer
from qapflow.nn.spec import ModelSpec


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
