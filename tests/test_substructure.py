"""Substructure observables against hand-computed cases, brute force and fjcontrib."""

import itertools
import math

import numpy as np
import pytest

from qapflow.data.generate.substructure import (
    delta_r_matrix,
    ecf_ratios,
    energy_correlators,
    invariant_mass,
    kinematics,
    zlogz,
)

# Three particles at rapidity 0, phi 0, 0.3 and 0.7: R12=0.3, R13=0.7, R23=0.4;
# pT 1, 1, 2 so z = 0.25, 0.25, 0.5 and z1 z2 z3 = 1/32.
PT = np.array([1.0, 1.0, 2.0])
RAP = np.zeros(3)
PHI = np.array([0.0, 0.3, 0.7])


def test_three_particle_correlators_by_hand():
    e = energy_correlators(PT, RAP, PHI)
    assert e["e2_b0"] == pytest.approx(1 / 16 + 1 / 8 + 1 / 8, rel=1e-12)
    assert e["e2_b1"] == pytest.approx(0.3 / 16 + 0.7 / 8 + 0.4 / 8, rel=1e-12)
    assert e["e2_b2"] == pytest.approx(0.09 / 16 + 0.49 / 8 + 0.16 / 8, rel=1e-12)
    assert e["e3_b1"] == pytest.approx(0.3 * 0.7 * 0.4 / 32, rel=1e-12)
    assert e["e3_b2"] == pytest.approx((0.3 * 0.7 * 0.4) ** 2 / 32, rel=1e-12)
    assert e["e3m_b1"] == pytest.approx(0.3 / 32, rel=1e-12)  # smallest angle
    assert e["e3m_b2"] == pytest.approx(0.09 / 32, rel=1e-12)
    assert e["e3n_b1"] == pytest.approx(0.3 * 0.4 / 32, rel=1e-12)  # two smallest
    assert e["e3n_b2"] == pytest.approx((0.3 * 0.4) ** 2 / 32, rel=1e-12)


def test_three_particle_ratios_by_hand():
    r = ecf_ratios(energy_correlators(PT, RAP, PHI))
    e2_1, e2_2 = 0.15625, 0.086875
    e3_1 = 0.084 / 32
    assert r["c1_b1"] == pytest.approx(e2_1, rel=1e-12)
    assert r["c2_b1"] == pytest.approx(e3_1 / e2_1**2, rel=1e-12)
    assert r["d2_b1"] == pytest.approx(e3_1 / e2_1**3, rel=1e-12)
    assert r["d2_a1_b2"] == pytest.approx(e3_1 / e2_2**1.5, rel=1e-12)
    assert r["m2_b1"] == pytest.approx((0.3 / 32) / e2_1, rel=1e-12)
    assert r["n2_b2"] == pytest.approx((0.12**2 / 32) / e2_2**2, rel=1e-12)


def test_single_particle_jet_has_zero_ratios_not_nan():
    r = ecf_ratios(energy_correlators(np.array([5.0]), np.zeros(1), np.zeros(1)))
    assert all(v == 0.0 for v in r.values())


def test_zlogz_by_hand():
    assert zlogz(np.array([3.0, 3.0])) == pytest.approx(-math.log(2), rel=1e-12)
    assert zlogz(np.array([7.0])) == 0.0


def test_azimuth_wraps_around_pi():
    r = delta_r_matrix(np.zeros(2), np.array([math.pi - 0.1, -math.pi + 0.1]))
    assert r[0, 1] == pytest.approx(0.2, rel=1e-12)


def test_invariant_mass_of_two_massless_particles():
    # E1 = E2 = 100 at 90 degrees: m^2 = 2 E1 E2 (1 - cos theta) = 20000
    p4 = np.array([[100.0, 0, 0, 100.0], [0, 100.0, 0, 100.0]])
    assert invariant_mass(p4) == pytest.approx(math.sqrt(20000), rel=1e-12)


def _random_jet(n, seed):
    rng = np.random.default_rng(seed)
    pt = rng.exponential(20, n) + 1
    eta, phi = rng.normal(0, 0.3, n), rng.normal(0, 0.3, n)
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    return np.stack([px, py, pz, np.sqrt(px**2 + py**2 + pz**2)], axis=1)


def test_vectorised_correlators_equal_brute_force_loops():
    p4 = _random_jet(9, seed=3)
    pt, rap, phi = kinematics(p4)
    z = pt / pt.sum()
    R = lambda i, j: math.hypot(rap[i] - rap[j], phi[i] - phi[j])  # noqa: E731 (no wrap here)
    e = energy_correlators(pt, rap, phi)
    for b in (1, 2):
        e3 = m = nn = 0.0
        for i, j, k in itertools.combinations(range(9), 3):
            angles = sorted([R(i, j), R(i, k), R(j, k)])
            w = z[i] * z[j] * z[k]
            e3 += w * (angles[0] * angles[1] * angles[2]) ** b
            m += w * angles[0] ** b
            nn += w * (angles[0] * angles[1]) ** b
        assert e[f"e3_b{b}"] == pytest.approx(e3, rel=1e-12)
        assert e[f"e3m_b{b}"] == pytest.approx(m, rel=1e-12)
        assert e[f"e3n_b{b}"] == pytest.approx(nn, rel=1e-12)


def test_correlators_agree_with_fjcontrib():
    """fjcontrib's EnergyCorrelatorGeneralized, reached through fastjet's awkward interface."""
    ak = pytest.importorskip("awkward")
    fastjet = pytest.importorskip("fastjet")
    p4 = _random_jet(14, seed=5)
    records = [[dict(zip(("px", "py", "pz", "E"), map(float, row))) for row in p4]]
    sequence = fastjet.ClusterSequence(
        ak.Array(records), fastjet.JetDefinition(fastjet.cambridge_algorithm, 100.0)
    )

    def fj(func="generalized", beta=1.0, npoint=2, angles=-1):
        return float(
            np.asarray(
                sequence.exclusive_jets_energy_correlator(
                    njets=1, beta=beta, npoint=npoint, angles=angles, func=func, normalized=True
                )
            )[0]
        )

    e = energy_correlators(*kinematics(p4))
    r = ecf_ratios(e)
    assert r["c1_b0"] == pytest.approx(fj("c1", beta=0.0), rel=1e-9)
    for b in (1, 2):
        assert e[f"e2_b{b}"] == pytest.approx(fj(beta=b, npoint=2, angles=1), rel=1e-9)
        assert e[f"e3m_b{b}"] == pytest.approx(fj(beta=b, npoint=3, angles=1), rel=1e-9)
        assert e[f"e3n_b{b}"] == pytest.approx(fj(beta=b, npoint=3, angles=2), rel=1e-9)
        assert e[f"e3_b{b}"] == pytest.approx(fj(beta=b, npoint=3, angles=3), rel=1e-9)
        assert r[f"c2_b{b}"] == pytest.approx(fj("c2", beta=b), rel=1e-9)
        assert r[f"d2_b{b}"] == pytest.approx(fj("d2", beta=b), rel=1e-9)
        assert r[f"m2_b{b}"] == pytest.approx(fj("m2", beta=b), rel=1e-9)
        assert r[f"n2_b{b}"] == pytest.approx(fj("n2", beta=b), rel=1e-9)
