"""Jet-substructure observables in vectorised numpy.

The energy-correlation functions (ECFs) follow Larkoski, Salam and Thaler (arXiv:1305.0007)
and their generalised form by Moult, Necib and Thaler (arXiv:1609.07483), with the pp
measure of fjcontrib's EnergyCorrelator: transverse momenta and boost-invariant angles
R_ij = sqrt(dy^2 + dphi^2). With momentum fractions z_i = pT_i / sum(pT) (so e_1 = 1):

  e2(b)        = sum_{i<j}   z_i z_j R_ij^b
  e3(b)        = sum_{i<j<k} z_i z_j z_k (R_ij R_ik R_jk)^b
  1_e3(b)      = sum_{i<j<k} z_i z_j z_k  min(R)^b              (smallest angle)
  2_e3(b)      = sum_{i<j<k} z_i z_j z_k (min(R) mid(R))^b      (two smallest angles)

  C1(b) = e2(b)           C2(b) = e3(b) / e2(b)^2      D2(b) = e3(b) / e2(b)^3
  D2(a,b) = e3(a) / e2(b)^(3a/b)   M2(b) = 1_e3(b) / e2(b)   N2(b) = 2_e3(b) / e2(b)^2

Written here rather than called from fjcontrib because the scikit-hep fastjet wheel
exposes fjcontrib only through its awkward multi-event interface, not per jet; the tests
cross-check these functions against it.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

BETAS_2POINT = (0, 1, 2)
BETAS_3POINT = (1, 2)


def delta_r_matrix(rap: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Pairwise R_ij = sqrt(dy^2 + dphi^2), dphi wrapped into [-pi, pi]."""
    dy = rap[:, None] - rap[None, :]
    dphi = np.remainder(phi[:, None] - phi[None, :] + np.pi, 2 * np.pi) - np.pi
    return np.sqrt(dy * dy + dphi * dphi)


@lru_cache(maxsize=64)
def _pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(n, k=1)


@lru_cache(maxsize=64)
def _triples(n: int) -> tuple[np.ndarray, ...]:
    """Index arrays of all i<j<k, built once per particle count (int32 to bound the cache)."""
    r = np.arange(n)
    mask = (r[:, None, None] < r[None, :, None]) & (r[None, :, None] < r[None, None, :])
    return tuple(a.astype(np.int32) for a in np.nonzero(mask))


def energy_correlators(pt: np.ndarray, rap: np.ndarray, phi: np.ndarray) -> dict[str, float]:
    """Normalised ECFs of one jet: keys e2_b{0,1,2}, e3_b{1,2}, e3m_b{1,2}, e3n_b{1,2}.

    `e3m` is the generalised 1_e3 (M series), `e3n` the generalised 2_e3 (N series).
    """
    z = pt / pt.sum()
    rmat = delta_r_matrix(rap, phi)
    n = len(z)
    out: dict[str, float] = {}
    pi, pj = _pairs(n)
    zz = z[pi] * z[pj]
    r2 = rmat[pi, pj]
    for b in BETAS_2POINT:
        out[f"e2_b{b}"] = float(np.sum(zz * r2**b))
    ti, tj, tk = _triples(n)
    zzz = z[ti] * z[tj] * z[tk]
    a, b_, c = rmat[ti, tj], rmat[ti, tk], rmat[tj, tk]
    smallest = np.minimum(np.minimum(a, b_), c)
    largest = np.maximum(np.maximum(a, b_), c)
    middle = a + b_ + c - smallest - largest
    for b in BETAS_3POINT:
        out[f"e3_b{b}"] = float(np.sum(zzz * (a * b_ * c) ** b))
        out[f"e3m_b{b}"] = float(np.sum(zzz * smallest**b))
        out[f"e3n_b{b}"] = float(np.sum(zzz * (smallest * middle) ** b))
    return out


def _ratio(num: float, den: float) -> float:
    """num/den, with 0 where the jet has too few prongs for the observable (den == 0)."""
    return num / den if den > 0 else 0.0


def ecf_ratios(e: dict[str, float]) -> dict[str, float]:
    """The C, D, M, N series of the data set, from `energy_correlators` output."""
    return {
        "c1_b0": e["e2_b0"],
        "c1_b1": e["e2_b1"],
        "c1_b2": e["e2_b2"],
        "c2_b1": _ratio(e["e3_b1"], e["e2_b1"] ** 2),
        "c2_b2": _ratio(e["e3_b2"], e["e2_b2"] ** 2),
        "d2_b1": _ratio(e["e3_b1"], e["e2_b1"] ** 3),
        "d2_b2": _ratio(e["e3_b2"], e["e2_b2"] ** 3),
        # D2^(alpha=1, beta): e3(1) / e2(beta)^(3/beta)
        "d2_a1_b1": _ratio(e["e3_b1"], e["e2_b1"] ** 3),
        "d2_a1_b2": _ratio(e["e3_b1"], e["e2_b2"] ** 1.5),
        "m2_b1": _ratio(e["e3m_b1"], e["e2_b1"]),
        "m2_b2": _ratio(e["e3m_b2"], e["e2_b2"]),
        "n2_b1": _ratio(e["e3n_b1"], e["e2_b1"] ** 2),
        "n2_b2": _ratio(e["e3n_b2"], e["e2_b2"] ** 2),
    }


def zlogz(pt: np.ndarray) -> float:
    """sum_i z_i log z_i with z_i = pT_i / sum(pT): 0 for one particle, more negative for more."""
    z = pt / pt.sum()
    return float(np.sum(z * np.log(z)))


def invariant_mass(p4: np.ndarray) -> float:
    """Mass of the summed four-momenta, rows (px, py, pz, E); 0 if rounding makes m^2 < 0."""
    px, py, pz, e = p4.sum(axis=0)
    return float(np.sqrt(max(e * e - px * px - py * py - pz * pz, 0.0)))


def kinematics(p4: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """pT, rapidity and azimuth of rows (px, py, pz, E)."""
    px, py, pz, e = p4.T
    pt = np.hypot(px, py)
    rap = 0.5 * np.log((e + pz) / (e - pz))
    return pt, rap, np.arctan2(py, px)
