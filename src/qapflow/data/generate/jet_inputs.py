"""A jet's constituents as a table and its jet image, from the same particles as its features.

The jet axis is the direction of the jet's summed four-momentum (anti-kT's E-scheme axis), so
relative to it the constituents' transverse momenta balance: sum_i pT_i sin(phi_rel_i) = 0 and
sum_i pT_i cos(phi_rel_i) = jet pT over all of the jet's constituents (not their pT-weighted mean
eta_rel or phi_rel, which is only near 0). Per constituent (schema.CONSTITUENT_NAMES):

- pt_rel = pT / jet pT, eta_rel = eta - jet eta (pseudorapidity), phi_rel = phi - jet phi
  wrapped into [-pi, pi), log_pt = ln(pT / GeV), e_rel = E / jet E,
  delta_r = sqrt(eta_rel^2 + phi_rel^2);
- charge: -1, 0 or +1. At particle level every particle's charge (Pythia's); behind the detector
  (detector.py) a track's or lepton's charge, 0 for calorimeter cells;
- four particle-flow flags, one of them 1: is_charged_hadron, is_lepton (e, mu, tau), is_photon,
  is_neutral_hadron. Behind the detector they are the kinds of detector object: a track, a
  lepton, an ECAL cell (photons and pi0s), an HCAL cell (neutral hadrons, and charged hadrons
  above the track pT limit, whose charge the detector does not see).

The table keeps the P leading constituents by pT (the generator's max_constituents), descending,
rows past the jet's multiplicity all zero (pt_rel = 0 marks them). The image uses all
constituents: IMAGE_PIXELS x IMAGE_PIXELS pixels over [-0.8, 0.8) in eta_rel (first index) and
phi_rel (second index), pixel = the summed pt_rel of the constituents in it, binned from the
float32 values the table stores, so a stored table re-bins to the same image.
"""

from __future__ import annotations

import numpy as np

from qapflow.data.generate.detector import ECAL_CELL, HCAL_CELL, LEPTON, LEPTONS, TRACK
from qapflow.data.schema import CONSTITUENT_NAMES, IMAGE_HALF_WIDTH, IMAGE_PIXELS

# the flag columns in the order of the detector's kinds (TRACK, LEPTON, ECAL_CELL, HCAL_CELL)
FLAG_COLUMNS = tuple(CONSTITUENT_NAMES.index(n) for n in
                     ("is_charged_hadron", "is_lepton", "is_photon", "is_neutral_hadron"))
COLUMN = {name: i for i, name in enumerate(CONSTITUENT_NAMES)}


def particle_kinds(pdg: np.ndarray, charge: np.ndarray) -> np.ndarray:
    """Particle-level kinds in the detector's numbering: leptons, photons, other charged
    particles (charged hadrons) and other neutral ones (neutral hadrons)."""
    kind = np.where(charge != 0, TRACK, HCAL_CELL)
    kind[np.abs(pdg) == 22] = ECAL_CELL
    kind[np.isin(np.abs(pdg), list(LEPTONS))] = LEPTON
    return kind


def _eta_phi(p4: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pt = np.hypot(p4[..., 0], p4[..., 1])
    return pt, np.arcsinh(p4[..., 2] / pt), np.arctan2(p4[..., 1], p4[..., 0])


def constituent_table(p4: np.ndarray, kind: np.ndarray, charge: np.ndarray) -> np.ndarray:
    """All of a jet's constituents (rows px, py, pz, E) as float32 rows of CONSTITUENT_NAMES,
    sorted by pT descending (ties in their given order)."""
    p4 = np.asarray(p4, np.float64).reshape(-1, 4)
    jet_pt, jet_eta, jet_phi = _eta_phi(p4.sum(axis=0))
    jet_e = p4[:, 3].sum()
    pt, eta, phi = _eta_phi(p4)
    order = np.argsort(-pt, kind="stable")
    table = np.zeros((len(p4), len(CONSTITUENT_NAMES)), dtype=np.float64)
    table[:, COLUMN["pt_rel"]] = pt / jet_pt
    table[:, COLUMN["eta_rel"]] = eta - jet_eta
    table[:, COLUMN["phi_rel"]] = np.remainder(phi - jet_phi + np.pi, 2 * np.pi) - np.pi
    table[:, COLUMN["log_pt"]] = np.log(pt)
    table[:, COLUMN["e_rel"]] = p4[:, 3] / jet_e
    table[:, COLUMN["delta_r"]] = np.hypot(table[:, COLUMN["eta_rel"]], table[:, COLUMN["phi_rel"]])
    table[:, COLUMN["charge"]] = charge
    table[np.arange(len(p4)), np.asarray(FLAG_COLUMNS)[np.asarray(kind, np.int64)]] = 1.0
    return table[order].astype(np.float32)


def padded(table: np.ndarray, max_constituents: int) -> np.ndarray:
    """The first `max_constituents` rows of `table`, zero rows appended up to that many."""
    out = np.zeros((max_constituents, table.shape[1]), dtype=np.float32)
    rows = table[:max_constituents]
    out[: len(rows)] = rows
    return out


def jet_image(table: np.ndarray) -> np.ndarray:
    """The [IMAGE_PIXELS, IMAGE_PIXELS] float32 pT-fraction image of constituent rows."""
    half = np.float32(IMAGE_HALF_WIDTH)  # the bounds in float32, as the stored values are
    eta, phi = table[:, COLUMN["eta_rel"]], table[:, COLUMN["phi_rel"]]
    inside = (eta >= -half) & (eta < half) & (phi >= -half) & (phi < half)
    width = 2.0 * float(half) / IMAGE_PIXELS

    def pixel(x):  # clip: float rounding at the upper edge must not leave the grid
        return np.clip(np.floor((x[inside] + float(half)) / width).astype(np.int64), 0, IMAGE_PIXELS - 1)

    flat = pixel(eta) * IMAGE_PIXELS + pixel(phi)
    weights = table[inside, COLUMN["pt_rel"]].astype(np.float64)
    image = np.bincount(flat, weights=weights, minlength=IMAGE_PIXELS * IMAGE_PIXELS)
    return image.reshape(IMAGE_PIXELS, IMAGE_PIXELS).astype(np.float32)


def jet_inputs(p4: np.ndarray, kind: np.ndarray, charge: np.ndarray, max_constituents: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """(constituents [max_constituents, F], image [IMAGE_PIXELS, IMAGE_PIXELS]) of one jet."""
    table = constituent_table(p4, kind, charge)
    return padded(table, max_constituents), jet_image(table)
