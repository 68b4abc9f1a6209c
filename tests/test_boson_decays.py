"""W and Z decay angles under each recipe setting, the hand-off between the two Pythias, the
polarised two-body decay, and the leading jet's pT window."""

import dataclasses

import numpy as np
import pytest

pytest.importorskip("pythia8mc")
pytest.importorskip("fastjet")

from qapflow.data.generate.boson_decays import open_channels, two_body_decay  # noqa: E402
from qapflow.data.generate.jets import leading_jet  # noqa: E402
from qapflow.data.generate.lhe_handoff import TwoStagePythia  # noqa: E402
from qapflow.data.generate.processes import PROCESSES, RECIPES  # noqa: E402
from qapflow.data.generate.pythia_jets import GenerationError, make_pythia  # noqa: E402

NO_SHOWER = ["PartonLevel:all = off", "HadronLevel:all = off"]


def _helicity_cos2(boson: np.ndarray, daughter: np.ndarray) -> float:
    """cos^2 of the daughter's angle to the boson's flight direction, in the boson rest frame."""
    beta = boson[:3] / boson[3]
    gamma = 1 / np.sqrt(1 - beta @ beta)
    bp = beta @ daughter[:3]
    rest = daughter[:3] + ((gamma - 1) * bp / (beta @ beta) - gamma * daughter[3]) * beta
    return float((rest @ boson[:3]) ** 2 / (rest @ rest) / (boson[:3] @ boson[:3]))


def _w_decay_cos2(pythia, events: int) -> np.ndarray:
    """cos^2 theta* of every hard W's first daughter, over `events` events."""
    out = []
    for _ in range(events):
        assert pythia.next()
        record = pythia.process
        for i in range(record.size()):
            w = record[i]
            if w.idAbs() != 24 or w.daughter1() == 0 or record[w.daughter1()].idAbs() == 24:
                continue
            d = record[w.daughter1()]
            out.append(_helicity_cos2(np.array([w.px(), w.py(), w.pz(), w.e()]),
                                      np.array([d.px(), d.py(), d.pz(), d.e()])))
    return np.array(out)


def _two_stage(mode: str, seed: int = 3):
    settings = dataclasses.replace(RECIPES["hls4ml-lhc-jets"], resonance_decays=mode)
    process = PROCESSES["w"]
    return TwoStagePythia(settings.hard_process_settings(process, seed), [*process.decays, *NO_SHOWER],
                          seed + 1, settings.ecm_gev, GenerationError,
                          settings.resonance_mass_window_widths, mode == "longitudinal")


def _one_stage(seed: int = 3):
    import pythia8mc

    settings = RECIPES["particle-level"]
    pythia = pythia8mc.Pythia("", False)
    for line in [*settings.pythia_settings(PROCESSES["w"], seed), *NO_SHOWER]:
        assert pythia.readString(line)
    assert pythia.init()
    return pythia


def test_decay_angles_of_each_setting():
    # 2,000 events, 4,000 W decays: the standard error of <cos^2> is about 0.005
    isotropic = _w_decay_cos2(_two_stage("isotropic"), 2000)
    longitudinal = _w_decay_cos2(_two_stage("longitudinal"), 2000)
    in_process = _w_decay_cos2(_one_stage(), 2000)
    assert len(isotropic) == len(longitudinal) == len(in_process) == 4000
    assert abs(isotropic.mean() - 1 / 3) < 0.015, isotropic.mean()  # uniform cos theta
    assert abs(longitudinal.mean() - 1 / 5) < 0.015, longitudinal.mean()  # 3/4 (1 - c^2)
    # Pythia's own ffbar -> WW keeps the matrix element's angles: more transverse than isotropic
    assert in_process.mean() > 1 / 3 + 0.012, in_process.mean()
    # the prongs mMDT grooms away: momentum fraction below 0.1 <=> |cos theta*| above 0.8
    assert (longitudinal > 0.64).mean() < 0.5 * (isotropic > 0.64).mean()


def test_the_handoff_keeps_the_hard_process_and_showers_it():
    pythia = make_pythia("w", dataclasses.replace(RECIPES["hls4ml-lhc-jets"], resonance_decays="isotropic"), 5)
    assert pythia.next()
    hard = pythia.hard.process
    full = pythia.process
    bosons = lambda record: sorted((round(record[i].px(), 6), round(record[i].pz(), 6))  # noqa: E731
                                   for i in range(record.size()) if record[i].idAbs() == 24
                                   and record[i].statusAbs() in (22, 23))
    assert bosons(hard) == bosons(full) and len(bosons(full)) == 2
    # the shower ran from the hard scale (the Info pythia8mc copies would have said 0)
    assert pythia.full.infoPython().QFac() > 900
    assert pythia.event.size() > 200
    # W masses held within the run card's 15 widths of the pole
    masses = [full[i].m() for i in range(full.size()) if full[i].idAbs() == 24]
    assert all(80.4 - 15 * 2.1 < m < 80.4 + 15 * 2.1 for m in masses), masses


def test_two_body_decay_conserves_momentum_and_puts_the_angle_in_the_helicity_frame():
    boson = np.array([300.0, -400.0, 700.0, 0.0])
    boson[3] = np.sqrt(boson[:3] @ boson[:3] + 80.4**2)
    a, b = two_body_decay(boson, (0.33, 1.5), 0.6, 1.0)
    np.testing.assert_allclose(a + b, boson, rtol=0, atol=1e-9)
    assert np.sqrt(a[3] ** 2 - a[:3] @ a[:3]) == pytest.approx(0.33, abs=1e-6)
    assert np.sqrt(b[3] ** 2 - b[:3] @ b[:3]) == pytest.approx(1.5, abs=1e-5)
    assert _helicity_cos2(boson, a) == pytest.approx(0.36, abs=1e-9)
    # the other angle gives another decay: the test can fail
    c, _ = two_body_decay(boson, (0.33, 1.5), 0.1, 1.0)
    assert _helicity_cos2(boson, c) == pytest.approx(0.01, abs=1e-9)


def test_channels_follow_the_recipes_decay_settings():
    import pythia8mc

    pythia = pythia8mc.Pythia("", False)
    everything = open_channels(pythia.particleData, 24)
    for line in PROCESSES["w"].decays:
        pythia.readString(line)
    hadronic = open_channels(pythia.particleData, 24)
    assert hadronic and all(1 <= abs(i) <= 5 for c in hadronic for i in c.ids)
    assert len(everything) > len(hadronic)  # the leptonic channels were switched off
    assert all(c.ids[0] > 0 > c.ids[1] for c in hadronic)  # fermion, then antifermion


def _one_particle_event(pt: float) -> np.ndarray:
    return np.array([[pt, 0.0, 0.0, pt]])


def test_leading_jet_pt_window():
    settings = dataclasses.replace(RECIPES["hls4ml-lhc-jets"], jet_min_pt_gev=800.0, jet_max_pt_gev=1600.0)
    assert len(list(leading_jet(_one_particle_event(1000.0), settings))) == 1
    assert list(leading_jet(_one_particle_event(1700.0), settings)) == []
    assert list(leading_jet(_one_particle_event(700.0), settings)) == []
    unbounded = dataclasses.replace(settings, jet_max_pt_gev=None)
    assert len(list(leading_jet(_one_particle_event(1700.0), unbounded))) == 1


def test_an_unknown_decay_setting_is_named():
    with pytest.raises(GenerationError, match="resonance_decays"):
        make_pythia("w", dataclasses.replace(RECIPES["hls4ml-lhc-jets"], resonance_decays="sideways"), 1)
