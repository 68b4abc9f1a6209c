"""The detector emulation on hand-made particles: what goes where, cell sums and centres, the
220 GeV track rule, lost energy beyond the calorimeter, smearing widths, seeding."""

import numpy as np
import pytest

from qapflow.data.generate.detector import (ECAL_CELL, HCAL_CELL, LEPTON, TRACK, DetectorSettings,
                                            detector_response, pt_eta_phi)

NO_SMEARING = DetectorSettings(resolution_fudge=0.0)


def particle(pt, eta, phi, mass=0.0):
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    return [px, py, pz, np.sqrt(px**2 + py**2 + pz**2 + mass**2)]


def respond(rows, ids, settings=NO_SMEARING, seed=0):
    return detector_response(np.array(rows), np.array(ids), settings, np.random.default_rng(seed))


def test_neutrinos_removed_unlisted_dropped_tracks_and_leptons_kept():
    rows = [particle(50, 0.1, 1.0), particle(40, 0.2, 1.0), particle(30, -0.5, 2.0), particle(20, 0.3, 3.0)]
    ev = respond(rows, [211, 14, 13, 9_900_000])
    assert ev.dropped == 1
    assert list(ev.kind) == [TRACK, LEPTON]
    assert np.array_equal(ev.p4, np.array([rows[0], rows[2]]))  # no smearing: unchanged


def test_photons_in_one_ecal_cell_are_summed_at_its_centre():
    s = NO_SMEARING
    n_eta = int(np.floor(6.0 / s.ecal_cell))
    w_eta = 6.0 / n_eta
    centre = -3.0 + (int(np.floor((0.5 + 3.0) / w_eta)) + 0.5) * w_eta
    a, b = particle(30, 0.5, 1.0), particle(20, 0.5 + 0.2 * w_eta, 1.0)
    ev = respond([a, b, particle(10, -1.0, 4.0)], [22, 111, 22], s)
    assert list(ev.kind) == [ECAL_CELL, ECAL_CELL]
    pt, eta, _ = pt_eta_phi(ev.p4)
    cell = int(np.argmin(np.abs(eta - centre)))
    assert ev.p4[cell, 3] == pytest.approx(a[3] + b[3], rel=1e-12)  # energies add
    assert eta[cell] == pytest.approx(centre, abs=1e-9)
    assert pt[cell] == pytest.approx(ev.p4[cell, 3] / np.cosh(centre), rel=1e-12)
    mass2 = ev.p4[:, 3] ** 2 - (ev.p4[:, :3] ** 2).sum(axis=1)
    assert np.all(np.abs(mass2) < 1e-6 * ev.p4[:, 3] ** 2)  # massless pseudo-particles


def test_the_220_gev_rule_and_neutral_hadrons_go_to_the_hcal():
    rows = [particle(219, 0.3, 0.5, 0.1396), particle(221, -0.3, 2.5, 0.1396), particle(50, 1.0, 5.0, 0.9396)]
    ev = respond(rows, [211, -211, 2112])
    assert sorted(ev.kind.tolist()) == [TRACK, HCAL_CELL, HCAL_CELL]
    assert np.array_equal(ev.p4[ev.kind == TRACK][0], np.array(rows[0]))
    lowered = respond(rows, [211, -211, 2112], DetectorSettings(max_track_pt_gev=200, resolution_fudge=0))
    assert lowered.kind.tolist().count(HCAL_CELL) == 3


def test_calorimeter_energy_beyond_eta_3_is_lost_tracks_are_not():
    ev = respond([particle(5, 3.2, 1.0), particle(5, -3.5, 1.0, 0.9396), particle(5, 3.2, 1.0, 0.1396)],
                 [22, 2112, 211])
    assert ev.kind.tolist() == [TRACK]


@pytest.mark.parametrize("ids, energy, sigma", [
    (211, None, float(np.hypot(2.5e-4 * 100, 0.015))),  # tracks at pT 100 GeV
    (2112, 100.0, float(np.hypot(1.20 / np.sqrt(100 / 7), 0.05))),  # HCAL cells at E 100 GeV
    (22, 100.0, float(np.sqrt((0.027 / np.sqrt(100 / 1.6)) ** 2 + (0.15 * 1.6 / 100) ** 2 + 0.005**2))),
])
def test_smearing_widths(ids, energy, sigma):
    # one particle per cell: 40 eta rows x 100 phi columns, well apart
    eta = np.repeat(np.linspace(-2.5, 2.5, 40), 100)
    phi = np.tile(np.linspace(0.05, 6.2, 100), 40)
    pt = np.full(eta.shape, 100.0) if energy is None else energy / np.cosh(eta)
    rows = np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), pt * np.cosh(eta)], axis=1)
    scales = []
    for seed in range(25):  # 100,000 draws
        ev = detector_response(rows, np.full(len(rows), ids), DetectorSettings(), np.random.default_rng(seed))
        assert len(ev.p4) == len(rows)
        order = np.lexsort((pt_eta_phi(ev.p4)[2], pt_eta_phi(ev.p4)[1]))
        ref = np.lexsort((phi, eta))
        scales.append(ev.p4[order, 3] / rows[ref, 3])
    scales = np.concatenate(scales)
    # the standard error of a standard deviation from 100,000 draws is 0.22%: 2% is 9 of them
    assert np.std(scales) == pytest.approx(sigma, rel=0.02)
    assert np.mean(scales) == pytest.approx(1.0, abs=5 * sigma / np.sqrt(len(scales)))


def test_seeded():
    rows = [particle(50, 0.1, 1.0), particle(80, 0.5, 2.0, 0.9396), particle(30, -0.2, 3.0)]
    ids = [211, 2112, 22]
    a, b = (respond(rows, ids, DetectorSettings(), seed=7) for _ in range(2))
    assert np.array_equal(a.p4, b.p4)
    assert not np.array_equal(a.p4, respond(rows, ids, DetectorSettings(), seed=8).p4)
