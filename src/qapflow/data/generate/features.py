"""The 16 high-level features of one jet, in the data set's order (schema.FEATURE_NAMES)."""

from __future__ import annotations

import numpy as np

from qapflow.data.generate.substructure import (
    ecf_ratios,
    energy_correlators,
    invariant_mass,
    kinematics,
    zlogz,
)
from qapflow.data.schema import FEATURE_NAMES


def jet_features(constituents: np.ndarray, groomed: np.ndarray) -> np.ndarray:
    """Features from the jet's constituents and its mMDT-groomed constituents.

    Both arrays have rows (px, py, pz, E). j_zlogz and j_multiplicity describe the whole
    jet; the `_mmdt` observables the groomed one, as their names say.
    """
    pt, _, _ = kinematics(constituents)
    gpt, grap, gphi = kinematics(groomed)
    ratios = ecf_ratios(energy_correlators(gpt, grap, gphi))
    values = {
        "j_zlogz": zlogz(pt),
        **{f"j_{k}_mmdt": v for k, v in ratios.items()},
        "j_mass_mmdt": invariant_mass(groomed),
        "j_multiplicity": float(len(constituents)),
    }
    return np.array([values[name] for name in FEATURE_NAMES], dtype=np.float64)
