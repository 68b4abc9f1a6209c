"""Jet generation: recognisable physics, determinism, and resume after a kill."""

import signal
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("pythia8mc")
pytest.importorskip("fastjet")

from qapflow.data.generate.runner import plan_chunks  # noqa: E402
from qapflow.data.h5file import read_jets  # noqa: E402
from qapflow.data.schema import CLASSES, FEATURE_NAMES  # noqa: E402


def test_plan_is_balanced_and_covers_every_jet():
    chunks = plan_chunks(1003, 100)
    per_class = [sum(c.n_jets for c in chunks if c.class_index == i) for i in range(5)]
    assert per_class == [201, 201, 201, 200, 200]
    assert max(c.n_jets for c in chunks) == 100


@pytest.fixture(scope="module")
def physics_sample(generated_jets_file):
    return read_jets(generated_jets_file)


def test_generated_file_layout(physics_sample):
    assert physics_sample.features.shape == (10_000, len(FEATURE_NAMES))
    assert physics_sample.features.dtype == np.float32
    assert physics_sample.labels.dtype == np.uint8
    assert np.bincount(physics_sample.class_index).tolist() == [2000] * 5
    assert int(physics_sample.attrs["seed"]) == 2024
    assert "pythia8mc" in physics_sample.attrs["generator"]


def test_groomed_masses_are_those_of_the_parent_particles(physics_sample):
    mass = physics_sample.features[:, FEATURE_NAMES.index("j_mass_mmdt")]
    median = {c: float(np.median(mass[physics_sample.class_index == i])) for i, c in enumerate(CLASSES)}
    assert 70 <= median["w"] <= 90, median
    assert 80 <= median["z"] <= 100, median
    assert 140 <= median["t"] <= 190, median
    assert median["q"] < 40, median


def test_gluon_jets_have_the_highest_multiplicity(physics_sample):
    mult = physics_sample.features[:, FEATURE_NAMES.index("j_multiplicity")]
    mean = {c: float(mult[physics_sample.class_index == i].mean()) for i, c in enumerate(CLASSES)}
    assert mean["g"] > max(mean["q"], mean["w"], mean["z"]), mean


def _cli(*args):
    return [sys.executable, "-m", "qapflow.cli", "data", "generate", "--quiet", *args]


def test_killed_run_leaves_no_file_and_resumes_to_the_same_result(tmp_path):
    args = ["--jets", "40", "--chunk-jets", "4", "--seed", "5"]
    out = tmp_path / "jets.h5"
    parts = tmp_path / "jets.h5.parts"
    proc = subprocess.Popen(_cli(*args, "--out", str(out)), stdout=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(parts.glob("*.npy"))) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = sorted(p.name for p in parts.glob("*.npy"))
    assert 2 <= len(finished) < 10, finished
    assert not out.exists()

    # mark one finished chunk: if the resumed run reuses it, the mark reaches the output
    marked = parts / finished[0]
    rows = np.load(marked)
    rows[:, FEATURE_NAMES.index("j_multiplicity")] += 10_000
    np.save(marked, rows)
    subprocess.run(_cli(*args, "--out", str(out)), check=True, stdout=subprocess.DEVNULL)
    assert out.exists() and not parts.exists()
    multiplicity = read_jets(out).features[:, FEATURE_NAMES.index("j_multiplicity")]
    assert int((multiplicity >= 10_000).sum()) == len(rows)


def test_output_does_not_depend_on_worker_count(tmp_path):
    args = ["--jets", "30", "--chunk-jets", "4", "--seed", "9"]
    one, two = tmp_path / "one.h5", tmp_path / "two.h5"
    subprocess.run(_cli(*args, "--out", str(one)), check=True, stdout=subprocess.DEVNULL)
    subprocess.run(_cli(*args, "--workers", "2", "--out", str(two)), check=True,
                   stdout=subprocess.DEVNULL)
    a, b = read_jets(one), read_jets(two)
    assert np.array_equal(a.features, b.features) and np.array_equal(a.labels, b.labels)


def test_parts_of_another_run_are_refused(tmp_path):
    out = tmp_path / "jets.h5"
    (tmp_path / "jets.h5.parts").mkdir()
    (tmp_path / "jets.h5.parts" / "manifest.json").write_text('{"seed": 1, "n_jets": 10}')
    result = subprocess.run(_cli("--jets", "10", "--out", str(out)), capture_output=True, text=True)
    assert result.returncode == 2
    assert "jets.h5.parts" in result.stderr and "other settings" in result.stderr


def test_the_original_recipe_with_its_detector_is_seeded_and_recorded(tmp_path):
    import json

    args = ["--jets", "20", "--chunk-jets", "4", "--seed", "5", "--recipe", "hls4ml-lhc-jets"]
    one, two = tmp_path / "one.h5", tmp_path / "two.h5"
    subprocess.run(_cli(*args, "--out", str(one)), check=True, stdout=subprocess.DEVNULL)
    subprocess.run(_cli(*args, "--workers", "2", "--out", str(two)), check=True, stdout=subprocess.DEVNULL)
    a, b = read_jets(one), read_jets(two)
    assert np.array_equal(a.features, b.features)  # the detector's smearing is seeded per chunk
    settings = json.loads(a.attrs["settings"])
    assert settings["recipe"] == "hls4ml-lhc-jets" and settings["jet_radius"] == 0.4
    assert settings["detector"] == {"hcal_cell": 0.022, "ecal_cell": 0.0175, "max_track_pt_gev": 220.0,
                                    "resolution_fudge": 1.0}
    assert (settings["pthat_min_gev"], settings["pthat_max_gev"]) == (995.0, 1005.0)
    assert (settings["jet_min_pt_gev"], settings["jet_max_pt_gev"]) == (800.0, 1600.0)
    assert settings["resonance_decays"] == "longitudinal" and settings["resonance_mass_window_widths"] == 15.0
