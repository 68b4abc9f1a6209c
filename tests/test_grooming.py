"""mMDT grooming: hand-built jets, and agreement with fjcontrib's SoftDrop (beta = 0)."""

import numpy as np
import pytest

fastjet = pytest.importorskip("fastjet")

from qapflow.data.generate.jets import mmdt_groom, to_pseudojets  # noqa: E402
from qapflow.data.generate.substructure import invariant_mass  # noqa: E402


def massless(pt, rap, phi):
    return [pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(rap), pt * np.cosh(rap)]


def groom(rows, zcut=0.1):
    return sorted(mmdt_groom(to_pseudojets(np.array(rows, dtype=float)), zcut).tolist())


def test_soft_wide_angle_particle_is_dropped_two_prongs_kept():
    rows = [
        massless(500, 0.0, 0.0),
        massless(480, 0.0, 0.4),  # hard prong 0.4 away: z ~ 0.49 > 0.1, kept
        massless(10, 0.6, -0.5),  # soft and far from both: z ~ 0.01, dropped first
    ]
    assert groom(rows) == [0, 1]


def test_soft_prong_below_zcut_is_dropped_to_one_prong():
    rows = [massless(900, 0.0, 0.0), massless(60, 0.0, 0.3)]  # z = 60/960 < 0.1
    assert groom(rows) == [0]
    assert groom(rows, zcut=0.05) == [0, 1]  # z = 0.0625 > 0.05: kept


def test_grooming_follows_the_harder_branch():
    rows = [
        massless(300, 0.0, 0.0),
        massless(290, 0.0, 0.1),  # these two cluster first (closest): the harder branch
        massless(40, 0.0, 0.6),  # 40/630 < 0.1 against the pair: dropped
    ]
    assert groom(rows) == [0, 1]


def test_groomed_mass_agrees_with_fjcontrib_softdrop_on_pythia_jets():
    pytest.importorskip("pythia8mc")
    ak = pytest.importorskip("awkward")
    from qapflow.data.generate.jets import final_state, hard_targets, matched_jets
    from qapflow.data.generate.processes import PROCESSES, GeneratorSettings
    from qapflow.data.generate.pythia_jets import make_pythia

    settings = GeneratorSettings()
    pythia = make_pythia("w", settings, seed=11)
    ours, theirs = [], []
    while len(ours) < 10:
        if not pythia.next():
            continue
        particles = final_state(pythia.event, settings.particle_max_abs_eta)
        for constituents, groomed in matched_jets(particles, hard_targets(pythia.process, PROCESSES["w"]), settings):
            ours.append(invariant_mass(groomed))
            records = [[dict(zip(("px", "py", "pz", "E"), map(float, r))) for r in constituents]]
            sequence = fastjet.ClusterSequence(
                ak.Array(records), fastjet.JetDefinition(fastjet.antikt_algorithm, 100.0)
            )
            sd = sequence.exclusive_jets_softdrop_grooming(njets=1, beta=0.0, symmetry_cut=0.1, R0=0.8)
            theirs.append(float(np.asarray(sd.msoftdrop)[0]))
    assert ours == pytest.approx(theirs, rel=1e-9, abs=1e-6)
