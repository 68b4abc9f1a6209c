"""A simple detector, after the production code of the hls4ml jet data set
(github nhanvtran/trackObservables, branch boostedPrecision-hls4ml, processing/anaSubstructure.cpp:
discretizeEvent and smearJetPt; the real file's tag r1_h022_e0175_t220_nonu).

- Neutrinos are removed before anything else (`nonu`).
- Charged hadrons are tracks, unless their pT is above `max_track_pt_gev` (220 GeV, `t220`):
  their track would fail in a dense jet core, so they go to the HCAL. Leptons stay as they are.
- Photons (and pi0s) are summed into ECAL cells, neutral hadrons and untracked charged hadrons
  into HCAL cells: square eta x phi grids over |eta| < 3, phi in [0, 2pi); each cell with energy
  becomes a massless pseudo-particle at the cell centre with pT = E / cosh(eta). As in the
  original's ROOT histograms, a grid has floor(range / size) bins spread evenly over the range,
  and energy outside |eta| < 3 falls into ROOT's overflow bins and is lost.
- Every object is then smeared: its four-momentum times max(1e-10, N(1, sigma * `fudge`)), sigma
  by kind: tracks and leptons sqrt((2.5e-4 pT)^2 + 0.015^2) (Delphes CMS), ECAL cells
  sqrt((0.027 / sqrt(E / 1.6))^2 + (0.15 * 1.6 / E)^2 + 0.005^2), HCAL cells
  sqrt((1.20 / sqrt(E / 7))^2 + 0.05^2) (CMS, scaled for the energy particle flow subtracts).

The cell sizes are the ambiguous part: the tag reads h022 and e0175, which this module takes as
0.022 (a quarter of a CMS HCAL tower, 0.087) and 0.0175 (a CMS ECAL crystal, 0.0174); both are
settings. Everything is vectorised in numpy and seeded by the caller's Generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NEUTRINOS = frozenset({12, 14, 16, 18})
CHARGED_HADRONS = frozenset({211, 321, 2212, 3112, 3222, 3312})
PHOTONS = frozenset({22, 111})
NEUTRAL_HADRONS = frozenset({3122, 130, 310, 2112, 3322})
LEPTONS = frozenset({11, 13, 15})
# the charge of each listed charged particle with a positive PDG id (a negative id flips it):
# what a track's curvature measures; calorimeter cells carry none
CHARGES = {211: 1, 321: 1, 2212: 1, 3112: -1, 3222: 1, 3312: -1, 11: -1, 13: -1, 15: -1}
# the kinds of detector objects, as the smearing tells them apart
TRACK, LEPTON, ECAL_CELL, HCAL_CELL = 0, 1, 2, 3
CALORIMETER_ETA = 3.0


@dataclass(frozen=True)
class DetectorSettings:
    hcal_cell: float = 0.022
    ecal_cell: float = 0.0175
    max_track_pt_gev: float = 220.0
    resolution_fudge: float = 1.0


@dataclass
class DetectorEvent:
    p4: np.ndarray  # [n, 4] px, py, pz, E
    kind: np.ndarray  # [n] TRACK, LEPTON, ECAL_CELL, HCAL_CELL
    dropped: int  # particles of kinds the original code does not list (it drops them too)
    charge: np.ndarray | None = None  # [n] -1, 0, +1: tracks' and leptons' charge, 0 for cells


def _member(ids: np.ndarray, group: frozenset) -> np.ndarray:
    return np.isin(np.abs(ids), list(group))


def pt_eta_phi(p4: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pt = np.hypot(p4[:, 0], p4[:, 1])
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.arcsinh(p4[:, 2] / pt)
    phi = np.mod(np.arctan2(p4[:, 1], p4[:, 0]), 2 * np.pi)
    return pt, eta, phi


def calorimeter_cells(p4: np.ndarray, cell: float) -> np.ndarray:
    """Massless pseudo-particles [m, 4] of the cells the particles' energy falls into."""
    if not len(p4):
        return np.zeros((0, 4))
    n_eta = int(np.floor(2 * CALORIMETER_ETA / cell))
    n_phi = int(np.floor(2 * np.pi / cell))
    w_eta, w_phi = 2 * CALORIMETER_ETA / n_eta, 2 * np.pi / n_phi
    _, eta, phi = pt_eta_phi(p4)
    inside = np.isfinite(eta) & (eta >= -CALORIMETER_ETA) & (eta < CALORIMETER_ETA)
    i_eta = np.floor((eta[inside] + CALORIMETER_ETA) / w_eta).astype(np.int64)
    i_phi = np.minimum(np.floor(phi[inside] / w_phi).astype(np.int64), n_phi - 1)
    cells, where = np.unique(i_eta * n_phi + i_phi, return_inverse=True)
    energy = np.bincount(where, weights=p4[inside, 3], minlength=len(cells))
    keep = energy > 0
    cells, energy = cells[keep], energy[keep]
    c_eta = -CALORIMETER_ETA + (cells // n_phi + 0.5) * w_eta
    c_phi = (cells % n_phi + 0.5) * w_phi
    pt = energy / np.cosh(c_eta)
    return np.stack([pt * np.cos(c_phi), pt * np.sin(c_phi), pt * np.sinh(c_eta), energy], axis=1)


def charges(pdg: np.ndarray) -> np.ndarray:
    """Electric charge of charged hadrons and leptons (see CHARGES); 0 for any other id."""
    magnitude = np.array([CHARGES.get(int(abs(i)), 0) for i in pdg], dtype=np.int64)
    return magnitude * np.sign(pdg)


def resolution(p4: np.ndarray, kind: np.ndarray) -> np.ndarray:
    pt, energy = np.hypot(p4[:, 0], p4[:, 1]), p4[:, 3]
    sigma = np.hypot(2.5e-4 * pt, 0.015)  # tracks and leptons
    ecal, hcal = kind == ECAL_CELL, kind == HCAL_CELL
    sigma[ecal] = np.sqrt((0.027 / np.sqrt(energy[ecal] / 1.6)) ** 2 + (0.15 * 1.6 / energy[ecal]) ** 2 + 0.005**2)
    sigma[hcal] = np.hypot(1.20 / np.sqrt(energy[hcal] / 7.0), 0.05)
    return sigma


def detector_response(p4: np.ndarray, pdg: np.ndarray, settings: DetectorSettings,
                      rng: np.random.Generator) -> DetectorEvent:
    """The event as the detector sees it, from final-state particles (px, py, pz, E; PDG ids)."""
    p4, pdg = np.asarray(p4, np.float64).reshape(-1, 4), np.asarray(pdg, np.int64)
    visible = ~_member(pdg, NEUTRINOS)
    p4, pdg = p4[visible], pdg[visible]
    charged, lepton = _member(pdg, CHARGED_HADRONS), _member(pdg, LEPTONS)
    photon, neutral = _member(pdg, PHOTONS), _member(pdg, NEUTRAL_HADRONS)
    track = charged & (np.hypot(p4[:, 0], p4[:, 1]) <= settings.max_track_pt_gev)
    to_hcal = neutral | (charged & ~track)
    ecal = calorimeter_cells(p4[photon], settings.ecal_cell)
    hcal = calorimeter_cells(p4[to_hcal], settings.hcal_cell)
    out = np.concatenate([p4[track], p4[lepton], ecal, hcal])
    kind = np.concatenate([np.full(track.sum(), TRACK), np.full(lepton.sum(), LEPTON),
                           np.full(len(ecal), ECAL_CELL), np.full(len(hcal), HCAL_CELL)])
    scale = np.maximum(1e-10, rng.normal(1.0, resolution(out, kind) * settings.resolution_fudge))
    dropped = int(np.count_nonzero(~(charged | lepton | photon | neutral)))
    charge = np.concatenate([charges(pdg[track]), charges(pdg[lepton]), np.zeros(len(ecal) + len(hcal), np.int64)])
    return DetectorEvent(out * scale[:, None], kind, dropped, charge)
